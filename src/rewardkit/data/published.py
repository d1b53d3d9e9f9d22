"""More published preference sets with their own layout: OpenAI summarize-from-feedback
comparisons, AlpacaFarm / AlpacaEval pairwise preferences and the LMSYS Arena human-preference
export (``lmsys/lmsys-arena-human-preference-55k``, the Kaggle "LMSYS Chatbot Arena" CSV).

Each reader keeps both responses and says which one the dataset prefers; a tie stays a labelled
tie (both chosen). Fields a reader does not use go to ``Example.meta``. See
``docs/data-formats.md``.
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.readers import parse_json
from rewardkit.data.record import Record
from rewardkit.types import Example, Message

# --- OpenAI summarize-from-feedback ------------------------------------------------------------


def _tldr_prompt(rec: Record, info: dict[str, Any]) -> str:
    """The post as the paper's TL;DR query (``SUBREDDIT: r/…\\n\\nTITLE: …\\n\\nPOST: …\\n\\nTL;DR:``),
    or ``ARTICLE: …\\n\\nTL;DR:`` for the CNN/DM rows, which have ``article`` and no ``post``."""
    post, article = info.get("post"), info.get("article")
    if isinstance(post, str) and post.strip():
        head = [f"SUBREDDIT: r/{info['subreddit']}"] if info.get("subreddit") else []
        if info.get("title"):
            head.append(f"TITLE: {info['title']}")
        return "\n\n".join([*head, f"POST: {post}", "TL;DR:"])
    if isinstance(article, str) and article.strip():
        return f"ARTICLE: {article}\n\nTL;DR:"
    raise rec.error("info", f"expected a text 'post' or 'article', got {describe(post)}", ".post")


def convert_summarize(rec: Record) -> Example:
    """A comparison of ``openai/summarize_from_feedback`` (config ``comparisons``): ``info``
    (``post``, ``title``, ``subreddit``, or ``article``), ``summaries`` (two ``{text, policy}``)
    and ``choice`` (the index of the preferred summary, 0 or 1). Responses = the two summary
    texts as given; chosen = ``[choice]``; the post id, subreddit and policies go to ``meta``."""
    info = rec.require("info", structured=True)
    if not isinstance(info, dict):
        raise rec.error("info", f"expected an object, got {describe(info)}")
    summaries = rec.require("summaries", structured=True)
    if not isinstance(summaries, list) or len(summaries) != 2:
        raise rec.error("summaries", f"expected a list of 2 summaries, got {describe(summaries)}")
    texts: list[str] = []
    for i, s in enumerate(summaries):
        if not isinstance(s, dict) or "text" not in s:
            raise rec.error(
                "summaries", f"expected an object with 'text', got {describe(s)}", f"[{i}]"
            )
        texts.append(checks.response(rec, "summaries", s["text"], f"[{i}].text"))
    choice = _label(rec, "choice", {0: [0], 1: [1]})
    meta = {
        "post_id": info.get("id"),
        "subreddit": info.get("subreddit"),
        "title": info.get("title"),
        "policies": [s.get("policy") for s in summaries],
    }
    prompt: list[Message] = [{"role": "user", "content": _tldr_prompt(rec, info)}]
    return rec.finish("summarize-from-feedback", prompt, texts, choice, meta=meta)


def convert_summarize_axis(rec: Record) -> Example:
    """A rated summary of ``openai/summarize_from_feedback`` (config ``axis``): ``info`` (the
    post or article) and ``summary`` (``text``, ``policy``, ``axes`` with 1–7 ratings of
    ``overall``, ``accuracy``, ``coverage``, ``coherence``, and ``compatible``). One response,
    one ratings dict (a missing or null axis is NaN), so evaluation reports correlations with
    each axis; the post id, subreddit and policy go to ``meta``."""
    info = rec.require("info", structured=True)
    if not isinstance(info, dict):
        raise rec.error("info", f"expected an object, got {describe(info)}")
    summary = rec.require("summary", structured=True)
    if not isinstance(summary, dict) or "text" not in summary:
        raise rec.error("summary", f"expected an object with 'text', got {describe(summary)}")
    text = checks.response(rec, "summary", summary["text"], ".text")
    axes = summary.get("axes")
    if not isinstance(axes, dict):
        raise rec.error("summary", f"expected an object of ratings, got {describe(axes)}", ".axes")
    ratings: dict[str, float] = {}
    for name, value in axes.items():
        if value is None:
            ratings[str(name)] = math.nan
        elif isinstance(value, bool):
            ratings[str(name)] = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            ratings[str(name)] = rec.finite_rating("summary", value, f".axes.{name}")
        else:
            raise rec.error("summary", f"expected a rating, got {describe(value)}", f".axes.{name}")
    if not any(math.isfinite(v) for v in ratings.values()):
        raise rec.error("summary", "no rated axis (every rating is missing)", ".axes")
    meta = {
        "post_id": info.get("id"),
        "subreddit": info.get("subreddit"),
        "title": info.get("title"),
        "policy": summary.get("policy"),
    }
    prompt: list[Message] = [{"role": "user", "content": _tldr_prompt(rec, info)}]
    return rec.finish("summarize-axis", prompt, [text], [], ratings=[ratings], meta=meta)


# --- AlpacaFarm / AlpacaEval -------------------------------------------------------------------


def _label(rec: Record, name: str, table: dict[float, list[int]]) -> list[int]:
    """The chosen indices for the label in field ``name`` (a CSV number cell counts)."""
    value = rec.require_number(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in table:
        want = ", ".join(f"{k:g}" for k in table)
        raise rec.error(name, f"expected one of {want}, got {describe(value)}")
    return list(table[value])


def convert_alpacafarm(rec: Record) -> Example:
    """AlpacaFarm human / simulated preferences (``tatsu-lab/alpaca_farm``:
    ``alpaca_human_preference``, ``alpaca_gpt4_preference``, …) and AlpacaEval annotations:
    ``instruction``, optional ``input``, ``output_1``, ``output_2``, ``preference`` — 1: output_1
    preferred, 2: output_2 preferred (AlpacaFarm's ``{1: 0, 2: 1}``); 0 or 1.5 (AlpacaEval's
    draw) is a labelled tie; AlpacaEval's weighted annotators write 1 + P(output_2 preferred)
    (``1.73``): the side above or below 1.5 is chosen, the value kept in ``meta``. The prompt
    is the instruction, then the input after a blank line."""
    instruction = checks.text(rec, "instruction", rec.require("instruction"), what="an instruction")
    extra = rec.get("input")
    if extra is not None and not isinstance(extra, str):
        raise rec.error("input", f"expected text, got {describe(extra)}")
    content = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    chosen = _alpaca_preference(rec)
    responses = [checks.response(rec, k, rec.require(k)) for k in ("output_1", "output_2")]
    prompt: list[Message] = [{"role": "user", "content": content}]
    return rec.finish(
        "alpacafarm", prompt, responses, chosen, meta={"preference": rec.get("preference")}
    )


def _alpaca_preference(rec: Record) -> list[int]:
    """Chosen indices of an AlpacaFarm / AlpacaEval ``preference`` (see convert_alpacafarm)."""
    value = rec.require_number("preference")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value == 0 or 1 <= value <= 2)
    ):
        raise rec.error(
            "preference", f"expected 1, 2, 0 (a draw) or a weight in [1, 2], got {describe(value)}"
        )
    if value == 0 or value == 1.5:
        return [0, 1]
    return [0] if value < 1.5 else [1]


# --- LMSYS Arena human preference (55k / Kaggle) ------------------------------------------------


def _turns(rec: Record, name: str) -> list[Any]:
    """A JSON-encoded list of turn texts (``'["hi", "and?"]'``) as the list; ``null`` turns kept."""
    value = rec.require(name)
    if isinstance(value, str):
        try:
            value = parse_json(value)
        except ValueError as e:
            raise rec.error(name, f"expected a JSON list of turn texts: {e}") from None
    if not isinstance(value, list) or not value:
        raise rec.error(name, f"expected a non-empty list of turn texts, got {describe(value)}")
    for i, v in enumerate(value):
        if v is not None and not isinstance(v, str):
            raise rec.error(name, f"expected text or null, got {describe(v)}", f"[{i}]")
    return value


def _history(prompts: list[str], answers: list[Any]) -> list[Message]:
    out: list[Message] = []
    for q, a in zip(prompts[:-1], answers[:-1], strict=True):
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a or ""}]
    return [*out, {"role": "user", "content": prompts[-1]}]


def convert_arena(rec: Record) -> Example:
    """An LMSYS Arena human-preference row (``lmsys/lmsys-arena-human-preference-55k``, the
    Kaggle competition's ``train.csv``): ``prompt``, ``response_a``, ``response_b`` (JSON lists,
    one text per turn) and one-hot ``winner_model_a`` / ``winner_model_b`` / ``winner_tie``. The
    judged responses are each model's last turn; the prompt is the turns before it with model
    A's answers (B's own history, when it differs, in ``meta["prompt_b"]``). A tie is a labelled
    tie. A ``null`` turn (the model returned nothing) is read as ``""`` and counted in
    ``meta["null_turns"]``."""
    prompts = _turns(rec, "prompt")
    if any(p is None for p in prompts):
        raise rec.error("prompt", "expected a text for every user turn, got null")
    sides = [_turns(rec, k) for k in ("response_a", "response_b")]
    for name, side in zip(("response_a", "response_b"), sides, strict=True):
        if len(side) != len(prompts):
            raise rec.error(name, f"expected {len(prompts)} turn(s) like 'prompt', got {len(side)}")
    flags = [rec.require_number(k) for k in ("winner_model_a", "winner_model_b", "winner_tie")]
    if sorted(f if f in (0, 1) and not isinstance(f, bool) else -1 for f in flags) != [0, 0, 1]:
        raise rec.error(
            "winner_model_a",
            "expected exactly one of winner_model_a, winner_model_b, winner_tie to be 1 and the "
            f"others 0, got {flags}",
        )
    chosen = [[0], [1], [0, 1]][flags.index(1)]
    prompt = checks.last_user_turn(
        rec, "prompt", _history(prompts, sides[0]), lambda k: f"[{k // 2}]"
    )
    meta: dict[str, Any] = {}
    prompt_b = _history(prompts, sides[1])
    if prompt_b != prompt:
        meta["prompt_b"] = prompt_b
    nulls = sum(t is None for side in sides for t in side)
    if nulls:
        meta["null_turns"] = nulls
    responses = [side[-1] or "" for side in sides]
    return rec.finish("arena-human-preference", prompt, responses, chosen, meta=meta)

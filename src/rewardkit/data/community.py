"""Popular public preference sets with their own layout: PKU-SafeRLHF, Stanford SHP,
StackExchange paired, WebGPT comparisons, HelpSteer2-Preference, HelpSteer3-Preference,
UltraFeedback (raw, before binarization) and Nectar.

Each reader keeps every response and says which one the dataset prefers; the fields it does not
use go to ``Example.meta`` (``load`` does that for every format), so nothing is dropped.
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.prefsets import rated_preference
from rewardkit.data.record import Record, csv_number, finite_number
from rewardkit.types import Example


def _choice(rec: Record, name: str, allowed: tuple[int, ...]) -> int:
    """An integer label among ``allowed`` (a CSV cell ``'1'`` counts; ``1.0`` too)."""
    value = rec.require_number(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        want = ", ".join(str(a) for a in allowed[:-1]) + f" or {allowed[-1]}"
        raise rec.error(name, f"expected {want}, got {describe(value)}")
    return value


def _pair(rec: Record, fmt: str, prompt_field: str, a: str, b: str, chosen: list[int]) -> Example:
    prompt = checks.prompt(rec, prompt_field)
    responses = [checks.response(rec, k, rec.require(k)) for k in (a, b)]
    return rec.finish(fmt, prompt, responses, chosen)


# --- PKU-SafeRLHF ------------------------------------------------------------------------------


def _pku(rec: Record, fmt: str, label: str) -> Example:
    which = _choice(rec, label, (0, 1))
    return _pair(rec, fmt, "prompt", "response_0", "response_1", [which])


def convert_pku(rec: Record) -> Example:
    """PKU-SafeRLHF (``PKU-Alignment/PKU-SafeRLHF``): ``prompt``, ``response_0``,
    ``response_1``; chosen = ``better_response_id`` (the helpfulness preference). The safety
    labels (``safer_response_id``, ``is_response_*_safe``, …) stay in ``meta``; format
    ``pku-saferlhf-safer`` picks ``safer_response_id`` instead."""
    return _pku(rec, "pku-saferlhf", "better_response_id")


def convert_pku_safer(rec: Record) -> Example:
    """PKU-SafeRLHF with chosen = ``safer_response_id`` (never sniffed: ``format=`` only)."""
    return _pku(rec, "pku-saferlhf-safer", "safer_response_id")


# --- SHP ---------------------------------------------------------------------------------------


def convert_shp(rec: Record) -> Example:
    """Stanford SHP (``stanfordnlp/SHP``, SHP-2): ``history`` (the post), ``human_ref_A``,
    ``human_ref_B`` and ``labels`` — 1: A is preferred, 0: B is preferred (the dataset card).
    Responses = [A, B]; subset = ``domain``."""
    label = _choice(rec, "labels", (0, 1))
    if rec.has("domain"):
        rec.data.setdefault("subset", rec.opt_text("domain"))
    return _pair(rec, "shp", "history", "human_ref_A", "human_ref_B", [0] if label == 1 else [1])


# --- StackExchange paired / WebGPT comparisons --------------------------------------------------


def convert_stack_exchange_paired(rec: Record) -> Example:
    """StackExchange paired (``lvwerra/stack-exchange-paired``, TRL's StackLLaMA reward data):
    ``question``, ``response_j``, ``response_k``; ``response_j`` is the preferred answer (the
    higher-scored one; TRL's script trains r_j − r_k). Responses = [j, k], chosen [0]."""
    return _pair(rec, "stack-exchange-paired", "question", "response_j", "response_k", [0])


def convert_webgpt(rec: Record) -> Example:
    """WebGPT comparisons (``openai/webgpt_comparisons``): ``question`` (an object whose
    ``full_text`` is the question, or text), ``answer_0``, ``answer_1`` and the human
    ``score_0`` / ``score_1`` (−1…1, opposite signs): the higher score is chosen, equal scores
    are a labelled tie (both chosen). The quotes the answers cite stay in ``meta``."""
    question = rec.require("question", structured=True)
    if isinstance(question, dict):
        question = question.get("full_text")
        if not isinstance(question, str) or not question.strip():
            raise rec.error("question", "expected an object with a 'full_text' question")
    scores = [rec.require_number(k) for k in ("score_0", "score_1")]
    for k, v in zip(("score_0", "score_1"), scores, strict=True):
        if not finite_number(v):
            raise rec.error(k, f"expected a finite number, got {describe(v)}")
    chosen = [0] if scores[0] > scores[1] else [1] if scores[1] > scores[0] else [0, 1]
    prompt = [{"role": "user", "content": checks.text(rec, "question", question, what="a prompt")}]
    responses = [checks.response(rec, k, rec.require(k)) for k in ("answer_0", "answer_1")]
    return rec.finish("webgpt", prompt, responses, chosen)


# --- HelpSteer2-Preference ---------------------------------------------------------------------


def _strength(rec: Record, name: str) -> tuple[int, list[int]]:
    """A −3…3 preference of response 1 over response 2 (negative: response 1 is better) and
    the chosen indices it gives (0: a labelled tie, both chosen)."""
    strength = rec.require_number(name)
    if isinstance(strength, float) and strength.is_integer():
        strength = int(strength)
    if isinstance(strength, bool) or not isinstance(strength, int) or not -3 <= strength <= 3:
        raise rec.error(name, f"expected an integer from -3 to 3, got {describe(strength)}")
    return strength, [0] if strength < 0 else [1] if strength > 0 else [0, 1]


def convert_helpsteer2_preference(rec: Record) -> Example:
    """HelpSteer2-Preference (``nvidia/HelpSteer2``, ``preference/preference.jsonl``):
    ``prompt``, ``response_1``, ``response_2`` and ``preference_strength`` from −3 to 3:
    negative — response 1 is better (−3 much better), positive — response 2 is better, 0 — about
    the same (a labelled tie, both chosen). Assumption from the dataset card, stated in
    docs/data-formats.md."""
    strength, chosen = _strength(rec, "preference_strength")
    prompt = checks.prompt(rec)
    responses = [checks.response(rec, k, rec.require(k)) for k in ("response_1", "response_2")]
    return rec.finish(
        "helpsteer2-preference",
        prompt,
        responses,
        chosen,
        meta={"preference_strength": strength},
    )


def convert_helpsteer3(rec: Record) -> Example:
    """HelpSteer3-Preference (``nvidia/HelpSteer3``, config ``preference``): ``context`` (the
    conversation so far, a message list), ``response1``, ``response2`` and
    ``overall_preference`` from −3 to 3 — negative: response 1 is better, positive: response 2,
    0: about the same (a labelled tie), as the dataset card says. A context that ends with an
    assistant turn is refused (the responses answer its last user turn). Subset = ``domain``; in the
    ``code`` domain ``language`` names the programming language, so it goes to
    ``meta["code_language"]`` instead of ``Example.language``."""
    strength, chosen = _strength(rec, "overall_preference")
    prompt = checks.prompt(rec, "context")
    if prompt[-1]["role"] == "assistant":  # the responses answer the context's last user turn
        raise rec.error(
            "context",
            "expected the conversation up to the user turn that response1 and response2 answer, "
            "got a context that ends with an assistant turn",
            f"[{len(prompt) - 1}].role",
        )
    responses = [checks.response(rec, k, rec.require(k)) for k in ("response1", "response2")]
    domain = rec.opt_text("domain") if rec.has("domain") else None
    meta: dict[str, Any] = {"overall_preference": strength}
    if domain:
        rec.data.setdefault("subset", domain)
    if domain == "code" and rec.has("language"):
        meta["code_language"] = rec.opt_text("language")
        rec.data["language"] = None
    return rec.finish("helpsteer3", prompt, responses, chosen, meta=meta)


# --- UltraFeedback (raw) -----------------------------------------------------------------------


def _score(rec: Record, value: Any, sub: str) -> float:
    """A rating: a number, or text holding one (UltraFeedback's ``"4"``); ``"N/A"`` → NaN."""
    if isinstance(value, str):
        if value.strip().upper() in ("N/A", "NA", ""):
            return math.nan
        value = csv_number(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise rec.error("completions", f"expected a number or 'N/A', got {describe(value)}", sub)
    if isinstance(value, float) and math.isnan(value):  # JSON's NaN: unrated, as "N/A"
        return math.nan
    return rec.finite_rating("completions", value, sub)


def convert_ultrafeedback(rec: Record) -> Example:
    """UltraFeedback as published (``openbmb/UltraFeedback``): ``instruction`` and
    ``completions`` (``response``, ``model``, ``overall_score``, ``fine-grained_score``,
    ``annotations`` with one ``Rating`` per aspect). Responses = the completions; ratings per
    response = ``overall_score``, ``fine-grained_score`` and each aspect's rating ("N/A" → NaN).
    Chosen = the completions with the highest ``fine-grained_score`` (the mean of the aspect
    ratings, as UltraFeedback-binarized picks), or the highest ``overall_score`` when a
    completion has no finite fine-grained score; ``meta["chosen_by"]`` names which. A completion
    unrated under it ("N/A") is neither chosen nor rejected: left out of the responses, kept in
    ``meta["unrated_responses"]`` (:func:`~rewardkit.data.prefsets.rated_preference`)."""
    prompt = checks.prompt(rec, "instruction")
    comps = rec.require("completions", structured=True)
    if not isinstance(comps, list) or not comps:
        raise rec.error("completions", f"expected a list of completions, got {describe(comps)}")
    responses: list[str] = []
    ratings: list[dict[str, float]] = []
    models: list[Any] = []
    for i, c in enumerate(comps):
        if not isinstance(c, dict):
            raise rec.error(
                "completions", f"expected a completion object, got {describe(c)}", f"[{i}]"
            )
        if "response" not in c:
            raise rec.error("completions", "missing required field 'response'", f"[{i}]")
        responses.append(checks.response(rec, "completions", c["response"], f"[{i}].response"))
        models.append(c.get("model"))
        r: dict[str, float] = {}
        for key in ("overall_score", "fine-grained_score"):
            if c.get(key) is not None:
                r[key] = _score(rec, c[key], f"[{i}].{key}")
        notes = c.get("annotations") or {}
        if not isinstance(notes, dict):
            raise rec.error(
                "completions", f"expected an object, got {describe(notes)}", f"[{i}].annotations"
            )
        for aspect, note in notes.items():
            rating = note.get("Rating") if isinstance(note, dict) else note
            if rating is not None:
                r[str(aspect)] = _score(rec, rating, f"[{i}].annotations.{aspect}")
        ratings.append(r)
    by = "fine-grained_score"
    if not all(math.isfinite(r.get(by, math.nan)) for r in ratings):
        by = "overall_score"
    vals = [r.get(by, math.nan) for r in ratings]
    responses, ratings, chosen, meta = rated_preference(
        vals, responses, ratings, models, "completion_models"
    )
    meta["chosen_by"] = by if chosen else None
    return rec.finish("ultrafeedback", prompt, responses, chosen, ratings=ratings, meta=meta)


# --- Nectar ------------------------------------------------------------------------------------


def convert_nectar(rec: Record) -> Example:
    """Nectar (``berkeley-nest/Nectar``): ``prompt`` (an HH transcript ending in
    ``Assistant:``, read as its turns) and ``answers`` (``answer``, ``model``, ``rank``; rank 1 is
    the best). Responses = the answers in file order; chosen = the rank-1 answer(s); the ranks
    and models go to ``meta["ranks"]`` / ``meta["models"]`` (no ratings: a rank is not a
    score)."""
    prompt = checks.prompt(rec)
    answers = checks.objects(
        rec, "answers", rec.require("answers", structured=True), ("answer", "rank"), "answers"
    )
    responses: list[str] = []
    ranks: list[float] = []
    models: list[Any] = []
    for i, a in enumerate(answers):
        responses.append(checks.response(rec, "answers", a["answer"], f"[{i}].answer"))
        rank = csv_number(a["rank"]) if isinstance(a["rank"], str) else a["rank"]
        if not finite_number(rank):
            raise rec.error(
                "answers", f"expected a numeric rank, got {describe(rank)}", f"[{i}].rank"
            )
        ranks.append(float(rank))
        models.append(a.get("model"))
    top = min(ranks)
    chosen = [i for i, r in enumerate(ranks) if r == top]
    meta: dict[str, Any] = {"ranks": ranks, "models": models}
    source = rec.get("source", structured=True)
    if isinstance(source, list):  # Nectar lists its prompt sources: kept whole in meta
        meta["sources"] = source
        texts = [s for s in source if isinstance(s, str)]
        rec.data["source"] = ", ".join(texts) if len(texts) == len(source) else None
    return rec.finish("nectar", prompt, responses, chosen, meta=meta)

"""Field validators shared by the record formats; each raises a located :class:`DataError`."""

from __future__ import annotations

import math
import re
from typing import Any

from rewardkit.data.location import describe
from rewardkit.data.prompt_fields import as_message
from rewardkit.data.record import Record, csv_number
from rewardkit.types import Message

#: Message roles accepted in prompts and conversations.
ROLES = ("system", "developer", "user", "assistant", "tool")


def text(rec: Record, name: str, value: Any, sub: str = "", what: str = "text") -> str:
    """``value`` as non-empty text (``what`` names it in errors, e.g. "a response")."""
    if not isinstance(value, str):
        raise rec.error(name, f"expected {what}, got {describe(value)}", sub)
    if not value.strip():
        raise rec.error(name, f"expected {what} that is not empty, got {describe(value)}", sub)
    return value


def response(rec: Record, name: str, value: Any, sub: str = "") -> str:
    """``value`` as a response text. Empty (or blank) text is a response, as in TRL and
    reward-bench: a model can say nothing, and rewards score that; only a non-text is an error."""
    if not isinstance(value, str):
        raise rec.error(name, f"expected a response text, got {describe(value)}", sub)
    return value


def text_list(
    rec: Record, name: str, value: Any, *, allow_empty: bool = False, blank_ok: bool = True
) -> list[str]:
    """``value`` as a list of response texts (``blank_ok=False``: each must be non-empty)."""
    if not isinstance(value, list):
        raise rec.error(name, f"expected a list of response texts, got {describe(value)}")
    if not value and not allow_empty:
        raise rec.error(name, "expected at least one response, got an empty list")
    return [
        _parts(rec, name, v, f"[{i}]")
        if isinstance(v, list)  # a response given as content parts (an image, say)
        else response(rec, name, v, f"[{i}]")
        if blank_ok
        else text(rec, name, v, f"[{i}]", "a response text")
        for i, v in enumerate(value)
    ]


def _parts(rec: Record, name: str, value: Any, sub: str) -> Any:
    from rewardkit.data.multimodal import content

    return content(rec, name, value, sub)


def objects(
    rec: Record, name: str, value: Any, keys: tuple[str, ...], what: str
) -> list[dict[str, Any]]:
    """``value`` as a non-empty list of objects that each have ``keys`` (``what``: the items'
    name in the error, "answers"); the first item that does not is named by its index."""
    if not isinstance(value, list) or not value:
        raise rec.error(name, f"expected a list of {what}, got {describe(value)}")
    wanted = " and ".join(repr(k) for k in keys)
    for i, item in enumerate(value):
        if not isinstance(item, dict) or any(k not in item for k in keys):
            raise rec.error(
                name, f"expected an object with {wanted}, got {describe(item)}", f"[{i}]"
            )
    return value


def messages(rec: Record, name: str, value: Any) -> list[Message]:
    """``value`` as a non-empty list of ``{"role", "content"}`` messages with known roles
    (ShareGPT ``{"from", "value"}`` messages read as such)."""
    if not isinstance(value, list):
        raise rec.error(name, f"expected a list of messages, got {describe(value)}")
    if not value:
        raise rec.error(name, "expected at least one message, got an empty list")
    out: list[Message] = []
    for i, m in enumerate(value):
        m = as_message(rec, name, m, f"[{i}]")  # ShareGPT's from/value
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise rec.error(
                name, f"expected a message with 'role' and 'content', got {describe(m)}", f"[{i}]"
            )
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise rec.error(
                name, f"expected a role in {', '.join(ROLES)}, got {describe(role)}", f"[{i}].role"
            )
        extra = _tool_keys(rec, name, m, i)
        if content is None and "tool_calls" in extra:
            content = ""  # an OpenAI tool-call turn: no text, the call is in tool_calls
        elif isinstance(content, list):  # OpenAI/HF content parts (text and images)
            content = _parts(rec, name, content, f"[{i}].content")
        elif not isinstance(content, str):
            raise rec.error(name, f"expected text, got {describe(content)}", f"[{i}].content")
        msg: dict[str, Any] = {"role": role, "content": content, **extra}
        out.append(msg)  # type: ignore[arg-type]
    return out


#: OpenAI message keys kept next to ``role``/``content`` (tool use: ``name`` only on ``tool``
#: messages, where it names the function); others are not kept.
TOOL_KEYS = ("tool_calls", "tool_call_id", "name")


def _tool_keys(rec: Record, name: str, m: dict[str, Any], i: int) -> dict[str, Any]:
    """The tool-use keys of message ``m`` that carry a value (null / absent are left out, as
    Parquet and datasets fill absent struct fields with null): ``tool_calls`` a non-empty list
    of objects, ``tool_call_id`` and ``name`` texts."""
    out: dict[str, Any] = {}
    calls = m.get("tool_calls")
    if calls is not None and calls != []:
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise rec.error(
                name,
                f"expected a list of tool-call objects, got {describe(calls)}",
                f"[{i}].tool_calls",
            )
        out["tool_calls"] = calls
    for key in ("tool_call_id", "name"):
        if key == "name" and m.get("role") != "tool":
            continue  # a participant name on other roles is not kept (the function name is)
        value = m.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise rec.error(name, f"expected text, got {describe(value)}", f"[{i}].{key}")
        out[key] = value
    return out


def prompt(rec: Record, name: str = "prompt", *, allow_messages: bool = True) -> list[Message]:
    """The required prompt: text (one user message) or a message list; never empty."""
    value = rec.require(name, structured=allow_messages and _looks_like_messages(rec, name))
    if isinstance(value, str):
        from rewardkit.data.hh_rlhf import transcript_prompt

        turns = transcript_prompt(value)
        if turns is None:
            turns = nemo_prompt(value)
        if turns is not None:  # "\n\nHuman: …\n\nAssistant:" (Dahoas, Nectar), HelpSteer2
            return turns
        return [{"role": "user", "content": text(rec, name, value, what="a prompt")}]
    if not allow_messages:
        raise rec.error(name, f"expected prompt text, got {describe(value)}")
    if not isinstance(value, list):
        raise rec.error(name, f"expected prompt text or a list of messages, got {describe(value)}")
    msgs = messages(rec, name, value)
    if not any(not isinstance(m["content"], str) or m["content"].strip() for m in msgs):
        raise rec.error(name, "expected a prompt that is not empty, got only empty messages")
    return msgs


_NEMO_TURN = re.compile(r"(?<!\s)\s*+<extra_id_1>(User|Assistant)[ \t]*+\n?")


def nemo_prompt(value: str) -> list[Message] | None:
    """A HelpSteer2 multi-turn prompt (``"{user 1}\n<extra_id_1>Assistant\n{assistant 1}\n
    <extra_id_1>User\n{user 2}"``, the dataset card's layout) as its messages; None for any other
    text. Only that shape is parsed: it starts with a user turn, speakers alternate, it ends with
    a user turn and no user turn is empty."""
    if "<extra_id_1>" not in value:
        return None
    parts = _NEMO_TURN.split(value)
    turns = [("User", parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]
    roles = [who for who, _ in turns]
    if roles != ["User", "Assistant"] * (len(turns) // 2) + ["User"]:
        return None
    if any(who == "User" and not said.strip() for who, said in turns):
        return None
    if any("<extra_id_" in said for _, said in turns):
        return None
    return [{"role": who.lower(), "content": said.strip()} for who, said in turns]  # type: ignore[misc]


def _looks_like_messages(rec: Record, name: str) -> bool:
    value = rec.peek(name)
    return isinstance(value, str) and value.lstrip().startswith("[{")


def _index_error(rec: Record, name: str, n: int, got: Any) -> Exception:
    return rec.error(
        name, f"expected an int index in [0, {n}) or a list of them, got {describe(got)}"
    )


def indices(rec: Record, name: str, value: Any, n: int) -> list[int]:
    """``value`` (an index or a list of indices) as distinct ints in ``[0, n)``."""
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise _index_error(rec, name, n, v)
        if v in out:
            raise rec.error(name, f"expected distinct indices, got {v} twice in {value}")
        out.append(v)
    return out


def _number(rec: Record, name: str, value: Any, sub: str) -> float:
    """A rating as a float; ``None`` (JSON null, a missing rating) is NaN, as a missing
    Parquet/pandas cell is (docs/training.md: missing ratings are masked)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise rec.error(name, f"expected a number, got {describe(value)}", sub)
    return float(value)


def ratings(rec: Record, name: str, value: Any, n: int) -> tuple[list[dict[str, float]], bool]:
    """One rating per response: numbers (→ ``{"rating": x}``) or dicts of attribute ratings.

    Returns the ratings and whether they were scalar.
    """
    if not isinstance(value, list):
        raise rec.error(name, f"expected a list of {n} ratings, got {describe(value)}")
    if len(value) != n:
        raise rec.error(name, f"expected {n} ratings (one per response), got {len(value)}")
    scalar = all(not isinstance(v, dict) for v in value)
    out: list[dict[str, float]] = []
    for i, v in enumerate(value):
        if scalar:
            out.append({"rating": _number(rec, name, v, f"[{i}]")})
        elif isinstance(v, dict):
            out.append({str(k): _number(rec, name, x, f"[{i}].{k}") for k, x in v.items()})
        else:
            raise rec.error(name, f"expected an object of ratings, got {describe(v)}", f"[{i}]")
    return out, scalar


def best(ratings_: list[dict[str, float]]) -> list[int]:
    """Indices of the highest scalar rating (NaN ignored; empty when all are NaN)."""
    vals = [r["rating"] for r in ratings_]
    finite = [v for v in vals if not math.isnan(v)]
    if not finite:
        return []
    top = max(finite)
    return [i for i, v in enumerate(vals) if v == top]


#: Per-side score columns of published DPO sets, as (chosen column, rejected column):
#: UltraFeedback-binarized (``score_chosen``), argilla dpo-mix-7k and Tulu 3 (``chosen_rating``),
#: Capybara-DPO (``rating_chosen``), the ``chosen_score`` spelling and argilla's UltraFeedback
#: preference sets.
SIDE_SCORES = (
    ("score_chosen", "score_rejected"),
    ("chosen_rating", "rejected_rating"),
    ("rating_chosen", "rating_rejected"),
    ("chosen_score", "rejected_score"),
    ("chosen-rating", "rejected-rating"),  # argilla ultrafeedback-binarized-preferences-cleaned
    ("chosen_avg_rating", "rejected_avg_rating"),  # argilla ultrafeedback-binarized-preferences
)


def side_scores(rec: Record) -> tuple[str, float, float] | None:
    """The first pair of per-side score columns with two finite numbers, as
    ``(chosen column, chosen score, rejected score)``; None when there is none. The columns are
    only read (they stay in ``meta``)."""
    for c, r in SIDE_SCORES:
        a, b = rec.peek(c), rec.peek(r)
        if rec.loc.kind == "csv":
            a, b = csv_number(a), csv_number(b)
        if all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in (a, b)
        ):
            return c, float(a), float(b)
    return None


def _flag(value: Any) -> bool:
    """A true flag: JSON/Parquet ``true``, or a CSV cell ``True``/``true``/``1``."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1"))


def score_tie(rec: Record, chosen: list[int]) -> tuple[list[int], dict[str, Any]]:
    """A pair whose own per-side scores are equal is a labelled tie (both chosen), not a
    preference: ``meta["tied_scores"]`` names the column. Scores that rank the rejected side
    higher keep the file's label and are flagged in ``meta["scores_disagree"]``
    (docs/data-formats.md, "Per-side scores"). argilla's distilabel pairs mark equal ratings
    with ``status: "tie"``, and MultiPref's binarized configs a pair whose most common human (or
    GPT-4) vote was a tie with ``tie_is_common: true``: labelled ties too."""
    if chosen == [0] and rec.peek("status") == "tie" and rec.has("generations"):
        return [0, 1], {"tied_scores": "status"}  # argilla distilabel pairs: equal ratings
    if chosen == [0] and _flag(rec.peek("tie_is_common")):
        return [0, 1], {"tied_scores": "tie_is_common"}  # MultiPref binarized: a tie voted most
    found = side_scores(rec)
    if found is None or chosen != [0]:
        return chosen, {}
    col, a, b = found
    if a == b:
        return [0, 1], {"tied_scores": col}
    if a < b:
        return chosen, {"scores_disagree": col}
    return chosen, {}


def with_system(rec: Record, prompt: list[Message]) -> list[Message]:
    """``prompt`` after the record's ``system`` text column as a system message (Intel
    orca_dpo_pairs, argilla distilabel-intel-orca-dpo-pairs), unless the prompt already starts
    with a system or developer message; an empty ``system`` adds nothing."""
    value = rec.get("system")
    if value is None or (isinstance(value, str) and not value.strip()):
        return prompt
    if not isinstance(value, str):
        raise rec.error("system", f"expected a system prompt text, got {describe(value)}")
    if prompt and prompt[0]["role"] in ("system", "developer"):
        rec.used.discard("system")  # the prompt has its own: the column stays in meta
        return prompt
    return [{"role": "system", "content": value}, *prompt]

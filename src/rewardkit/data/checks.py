"""Field validators shared by the record formats; each raises a located :class:`DataError`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from rewardkit.data.location import describe
from rewardkit.data.prompt_fields import SHAREGPT_ROLES, is_sharegpt
from rewardkit.data.record import Record, as_float, csv_number, finite_number
from rewardkit.types import Message

#: Message roles accepted in prompts and conversations.
ROLES = ("system", "developer", "user", "assistant", "tool")
#: Roles read as another (:func:`chat_role`; any letter case is read too, ``User`` as ``user``):
#: the legacy OpenAI ``function`` result and Llama 3.1's ``ipython`` are tool results.
ROLE_ALIASES = {"function": "tool", "ipython": "tool"}
#: Keys that hold an assistant turn's reasoning beside its ``content``: DeepSeek-R1 and vLLM's
#: reasoning parser, TRL's parsed completions (``reasoning_content``), OpenRouter and newer vLLM
#: (``reasoning``), LFM (``thinking``). A response gets it back as a ``<think>`` block
#: (:func:`with_reasoning`); a prompt message does not keep it.
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


class MessageError(ValueError):
    """A chat message that cannot be read: ``sub`` locates the problem in the message (``""``,
    ``".role"``, ``".tool_calls"``…) and ``reason`` says what was found. Each path names the
    message its own way (a file's field, an item's index, ``prompts[3][1]``)."""

    def __init__(self, sub: str, reason: str) -> None:
        super().__init__(f"{sub.lstrip('.') or 'message'}: {reason}")
        self.sub = sub
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # across processes (workers, Ray)
        return type(self), (self.sub, self.reason)


def chat_role(role: Any) -> str:
    """``role`` as one of :data:`ROLES`: letter case and surrounding blanks ignored, the
    aliases of :data:`ROLE_ALIASES` mapped; anything else is a :class:`MessageError`."""
    if isinstance(role, str):
        key = role.strip().lower()
        key = ROLE_ALIASES.get(key, key)
        if key in ROLES:
            return key
    raise MessageError(".role", f"expected a role in {', '.join(ROLES)}, got {describe(role)}")


def read_message(m: Any) -> dict[str, Any]:
    """One chat message as every path reads it (data files, ``rewardkit score``, the server,
    the trainer adapters): ``{"role", "content", **tool keys}``. A ShareGPT ``{"from",
    "value"}`` message is read as its role and content; the role goes through
    :func:`chat_role`; a ``refusal`` (OpenAI: the assistant declined, ``content`` null) is the
    content; ``content`` null or absent beside tool calls is ``""`` (:func:`tool_keys`); other
    null content stays None for the caller to judge. The content is otherwise as given (text or
    parts) for the caller's part reader. Reasoning keys are not kept (:func:`reasoning_of`)."""
    if type(m) is dict and len(m) == 2 and m.get("role") in ROLES and type(m.get("content")) is str:
        return {"role": m["role"], "content": m["content"]}  # the common case, read as below
    if is_sharegpt(m):
        speaker = m["from"]
        role = SHAREGPT_ROLES.get(speaker.strip().lower()) if isinstance(speaker, str) else None
        if role is None:
            known = ", ".join(SHAREGPT_ROLES)
            raise MessageError(
                ".from", f"expected a ShareGPT speaker in {known}, got {describe(speaker)}"
            )
        m = {"role": role, "content": m["value"]}
    if not isinstance(m, Mapping) or "role" not in m:
        raise MessageError("", f"expected a message with 'role' and 'content', got {describe(m)}")
    role = chat_role(m["role"])
    extra = tool_keys(m, role)
    content = m.get("content")
    refusal = m.get("refusal")
    if refusal is not None:
        if not isinstance(refusal, str):
            raise MessageError(".refusal", f"expected text, got {describe(refusal)}")
        if content not in (None, "", []):
            raise MessageError(
                ".refusal", "expected either content or a refusal, got both (the refusal is the "
                "turn's text when content is null)"
            )  # fmt: skip
        content = refusal
    if content is None and "tool_calls" in extra:
        content = ""  # an OpenAI tool-call turn: no text, the call is in tool_calls
    return {"role": role, "content": content, **extra}


def message_at(m: Any, where: str, what: str, role: str | None = None) -> dict[str, Any]:
    """Message ``m`` read by :func:`read_message` for a caller outside the data files (the
    trainer adapters), ``role`` given to one without (a completion's); a TypeError or
    ValueError names ``where`` (``prompts[3][1].role: expected a role in …``) and ``what``
    the list is."""
    if not isinstance(m, Mapping):
        raise TypeError(
            f"{where} is {type(m).__name__}: a {what} is a list of chat messages (dicts with "
            "role and content); pass plain text as a string"
        )
    if "role" not in m and not is_sharegpt(m):
        if role is None:
            raise ValueError(f"{where} has no 'role': a chat message needs a role and content")
        m = {**m, "role": role}
    try:
        return read_message(m)
    except MessageError as e:
        raise ValueError(f"{where}{e.sub}: {e.reason}") from None


def tool_keys(m: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The tool-use keys of message ``m`` (role ``role``) that carry a value (null / absent are
    left out, as Parquet and datasets fill absent struct fields with null): ``tool_calls`` a
    non-empty list of objects (a legacy ``function_call`` object is read as one such call),
    ``tool_call_id`` and ``name`` texts, ``name`` kept on ``tool`` messages only (the function's
    name; a participant name on other roles is not kept)."""
    out: dict[str, Any] = {}
    calls = m.get("tool_calls")
    if calls is not None and calls != []:
        if not isinstance(calls, list) or not all(isinstance(c, Mapping) for c in calls):
            raise MessageError(
                ".tool_calls", f"expected a list of tool-call objects, got {describe(calls)}"
            )
        out["tool_calls"] = [dict(c) for c in calls]
    call = m.get("function_call")
    if call is not None:
        if not isinstance(call, Mapping):
            raise MessageError(
                ".function_call", f"expected a function-call object, got {describe(call)}"
            )
        if "tool_calls" in out:
            raise MessageError(".function_call", "expected tool_calls or function_call, got both")
        out["tool_calls"] = [{"type": "function", "function": dict(call)}]
    for key in ("tool_call_id", "name"):
        value = m.get(key)
        if value is None or (key == "name" and role != "tool"):
            continue
        if not isinstance(value, str):
            raise MessageError(f".{key}", f"expected text, got {describe(value)}")
        out[key] = value
    return out


def reasoning_of(m: Any) -> str | None:
    """The reasoning an assistant message carries beside its content (the first non-empty text
    of :data:`REASONING_KEYS`), None without; a non-text value is a :class:`MessageError`."""
    if not isinstance(m, Mapping):
        return None
    for key in REASONING_KEYS:
        value = m.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise MessageError(f".{key}", f"expected text, got {describe(value)}")
        return value
    return None


def with_reasoning(content: Any, reasoning: str | None) -> Any:
    """A response's ``content`` with its separated ``reasoning`` put back in front as the
    ``<think>`` block it was parsed from (Qwen3/DeepSeek-R1 layout: ``<think>\n…\n</think>\n\n``),
    so a response reads the same whether a trainer passed it parsed (TRL) or decoded (verl):
    ``think=require`` rules read what follows ``</think>`` on both. Parts get it as a first text
    part; no reasoning: ``content`` as it is."""
    if reasoning is None:
        return content
    block = f"<think>\n{reasoning}\n</think>\n"
    if isinstance(content, str):
        return f"{block}\n{content}"
    return [{"type": "text", "text": block}, *content]


def text(rec: Record, name: str, value: Any, sub: str = "", what: str = "text") -> str:
    """``value`` as non-empty text (``what`` names it in errors, e.g. "a response")."""
    if not isinstance(value, str):
        raise rec.error(name, f"expected {what}, got {describe(value)}", sub)
    if not value.strip():
        raise rec.error(name, f"expected {what} that is not empty, got {describe(value)}", sub)
    return value


def response(rec: Record, name: str, value: Any, sub: str = "") -> str:
    """``value`` as a response text. Empty (or blank) text is a response, as in TRL and
    reward-bench, when the row writes it: a model can say nothing, and rewards score that; only a
    non-text is an error. A CSV cell that is empty is not written text: CSV (and pandas'
    ``to_csv``) writes a missing value and an empty string alike, so it is refused as a null is in
    JSON and Parquet (an empty text inside a JSON cell, ``'["a", ""]'``, is written and kept)."""
    if not isinstance(value, str):
        raise rec.error(name, f"expected a response text, got {describe(value)}", sub)
    if value == "" and not sub and rec.loc.kind == "csv" and rec.data.get(name) == "":
        raise rec.error(
            name,
            "expected a response text, got an empty CSV cell, which is read as missing (a CSV "
            'writes a missing value and an empty text alike); write an empty response as "" '
            "in JSON Lines or Parquet, or drop the row",
        )
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
    """``value`` as a non-empty list of ``{"role", "content"}`` messages with known roles, read by
    :func:`read_message` as on every path (ShareGPT ``{"from", "value"}``, role case and
    aliases, refusals, tool-call turns without text)."""
    if not isinstance(value, list):
        raise rec.error(name, f"expected a list of messages, got {describe(value)}")
    if not value:
        raise rec.error(name, "expected at least one message, got an empty list")
    out: list[Message] = []
    for i, raw in enumerate(value):
        try:
            m = read_message(raw)
        except MessageError as e:
            raise rec.error(name, e.reason, f"[{i}]{e.sub}") from None
        content = m["content"]
        if content is None and isinstance(raw, Mapping) and not {"content", "value"} & set(raw):
            raise rec.error(
                name, f"expected a message with 'role' and 'content', got {describe(raw)}", f"[{i}]"
            )
        if isinstance(content, list):  # OpenAI/HF content parts (text and images)
            m["content"] = _parts(rec, name, content, f"[{i}].content")
        elif not isinstance(content, str):
            raise rec.error(name, f"expected text, got {describe(content)}", f"[{i}].content")
        out.append(m)  # type: ignore[arg-type]
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
    return last_user_turn(rec, name, msgs)


def _blank(content: Any) -> bool:
    """Whether message content holds nothing: blank text, or parts that are all blank text."""
    if isinstance(content, str):
        return not content.strip()
    if isinstance(content, list):
        return all(
            isinstance(p, Mapping)
            and p.get("type") == "text"
            and not str(p.get("text") or "").strip()
            for p in content
        )
    return content is None


def last_user_turn(
    rec: Record, name: str, msgs: list[Message], sub: Callable[[int], str] | None = None
) -> list[Message]:
    """``msgs`` (a prompt's messages, from field ``name``) when its last user turn holds
    something; that turn empty is a :class:`DataError` naming the file, line, field and the
    message's index (``sub(k)``, default ``"[k].content"``): the responses answer that turn, so
    an empty one is a broken row (none of the 6,240 HH-RLHF test rows has one). Earlier empty
    turns are kept. Every format that reads a prompt from messages applies this rule."""
    users = [k for k, m in enumerate(msgs) if m["role"] == "user"]
    if users and _blank(msgs[users[-1]]["content"]):
        k = users[-1]
        raise rec.error(
            name,
            "expected a last user turn that is not empty (the turn the responses answer), got "
            f"{describe(msgs[k]['content'])}",
            sub(k) if sub else f"[{k}].content",
        )
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
    return as_float(value)


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
        if finite_number(a) and finite_number(b):
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

"""Where pair files that are not in TRL's layout keep their prompt, and ShareGPT messages.

Published DPO pair files name the prompt in other ways than ``prompt``; the generic format reads
the first of :data:`PROMPT_FIELDS` that a record has:

- ``conversations`` — LLaMA-Factory's ShareGPT preference layout: the turns before the judged
  one as ``{"from": "human"|"gpt"|"system", "value": …}`` messages, and ``chosen``/``rejected``
  as one such message each;
- ``question`` — Intel ``orca_dpo_pairs`` (with a ``system`` column);
- ``instruction`` and an optional ``input`` — the Alpaca layout (LLaMA-Factory's default
  preference format): the prompt is the instruction, then the input on the next line, after
  any ``history`` of ``[user, assistant]`` turns;
- ``input`` — argilla ``distilabel-intel-orca-dpo-pairs`` (with ``system``);
- ``query``, then ``trajectory`` (UltraInteract pairs: ShareGPT turns).

The sides are ``chosen``/``rejected``, or argilla's ``chosen_response``/``rejected_response``.

ShareGPT messages are read wherever messages are (:func:`rewardkit.data.checks.read_message`):
``human`` → user, ``gpt``/``bot`` → assistant, ``system``; other speakers are refused by name.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Message

#: Prompt fields of pair files, in the order they are looked for.
PROMPT_FIELDS = (
    "prompt",
    "conversations",
    "question",
    "instruction",
    "input",
    "query",
    "trajectory",
)
#: ShareGPT speakers and the roles they are read as.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


#: (chosen, rejected) field names of pair files, in the order they are looked for: TRL's, and
#: argilla's ``ultrafeedback-binarized-preferences`` (``chosen_response``/``rejected_response``).
SIDE_FIELDS = (("chosen", "rejected"), ("chosen_response", "rejected_response"))


def side_fields(rec: Record) -> tuple[str, str]:
    """The record's (chosen, rejected) field names (TRL's when it has neither pair)."""
    return next((p for p in SIDE_FIELDS if p[0] in rec.data or p[1] in rec.data), SIDE_FIELDS[0])


def prompt_field(rec: Record) -> str | None:
    """The first field of :data:`PROMPT_FIELDS` the record has, or None."""
    return next((k for k in PROMPT_FIELDS if rec.has(k)), None)


def is_sharegpt(m: Any) -> bool:
    """Whether ``m`` is a ShareGPT message (``from`` and ``value``, no ``role``)."""
    return isinstance(m, dict) and "from" in m and "value" in m and "role" not in m


def alpaca_prompt(rec: Record) -> list[Message]:
    """An Alpaca-layout prompt: ``history`` turns, then ``instruction`` and ``input``."""
    from rewardkit.data import checks

    instruction = checks.text(rec, "instruction", rec.require("instruction"), what="a prompt")
    extra = rec.get("input")
    if extra is not None and not isinstance(extra, str):
        raise rec.error("input", f"expected text, got {describe(extra)}")
    content = f"{instruction}\n{extra}" if extra and extra.strip() else instruction
    msgs: list[Message] = []
    history = rec.get("history", structured=True)
    if history not in (None, "", []):
        if not isinstance(history, list):
            raise rec.error(
                "history", f"expected a list of [user, assistant] turns, got {describe(history)}"
            )
        for i, turn in enumerate(history):
            if not (
                isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)
            ):
                raise rec.error(
                    "history",
                    f"expected a [user, assistant] pair of texts, got {describe(turn)}",
                    f"[{i}]",
                )
            msgs += [
                {"role": "user", "content": turn[0]},
                {"role": "assistant", "content": turn[1]},
            ]
    if not content.strip():
        raise rec.error("instruction", "expected a prompt that is not empty")
    return [*msgs, {"role": "user", "content": content}]


def read_prompt(rec: Record) -> list[Message]:
    """The prompt of a generic pair record from its :func:`prompt_field`."""
    from rewardkit.data import checks

    name = prompt_field(rec) or "prompt"
    if name == "instruction":
        return alpaca_prompt(rec)
    msgs = checks.prompt(rec, name)
    if name in ("conversations", "trajectory") and msgs and msgs[-1]["role"] == "assistant":
        raise rec.error(
            name, "expected the turns before the judged answer, got a conversation that ends "
            "with an assistant turn", f"[{len(msgs) - 1}]"
        )  # fmt: skip
    return msgs


def is_message_like(m: Any) -> bool:
    """Whether ``m`` is an object that names a speaker (``role`` or ShareGPT's ``from``)."""
    return isinstance(m, dict) and ("role" in m or "from" in m)


def side(rec: Record, name: str) -> Any:
    """``chosen``/``rejected`` as a text or list: one message object (ShareGPT or OpenAI) is
    read as its text, and must be the assistant's. A CSV cell holding a JSON object that is no
    message (an answer written as JSON, ``{"a": 1}``) is that text."""
    raw = rec.get(name)
    value = rec.get(name, structured=True) if _is_object_cell(rec, name) else raw
    if not isinstance(value, dict):
        return value
    if value is not raw and not is_message_like(value):
        return raw  # JSON text in a CSV cell, not a message object
    from rewardkit.data import checks

    if "role" not in value and not is_sharegpt(value):
        raise rec.error(name, f"expected a text or one message, got {describe(value)}")
    try:  # read as every path reads a message: role case, refusal, reasoning as <think>
        m = checks.read_message(value)
        reasoning = checks.reasoning_of(value)
    except checks.MessageError as e:
        raise rec.error(name, e.reason, e.sub) from None
    if m["content"] is None:
        raise rec.error(name, f"expected a text or one message, got {describe(value)}")
    if m["role"] != "assistant":
        raise rec.error(
            name,
            f"expected the assistant's answer, got a message whose role is {describe(m['role'])}",
        )
    return checks.with_reasoning(m["content"], reasoning)


def _is_object_cell(rec: Record, name: str) -> bool:
    value = rec.peek(name)
    return isinstance(value, dict) or (isinstance(value, str) and value.lstrip().startswith("{"))

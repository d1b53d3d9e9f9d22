"""Anthropic HH-RLHF transcripts: ``"\\n\\nHuman: …\\n\\nAssistant: …"`` strings.

The prompt is the turns the two transcripts share before the last assistant turn; the response is
that assistant turn. Real-data quirks:

- surrounding whitespace is ignored, and each turn's text is stripped;
- ``chosen == rejected`` is kept, with ``meta["identical_responses"] = True`` (set for every
  format by :meth:`rewardkit.data.record.Record.finish`);
- transcripts that differ in more than the last assistant turn: the prompt is the longest shared
  turn prefix that is followed by an assistant turn on both sides, and each response is the rest of
  its transcript rendered as text (``"<reply>\\n\\nHuman: …\\n\\nAssistant: …"``), with
  ``meta["multi_turn_response"] = True``;
- an empty final assistant turn is an empty response (``""``), scored like any other (as TRL and
  reward-bench do); ``rewardkit eval`` counts such examples in its reports. A transcript that does
  not parse into turns, or has no assistant turn after the shared prompt, is still an error.
"""

from __future__ import annotations

import re

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example, Message

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}

Turn = tuple[str, str]


def looks_like(value: object) -> bool:
    """Whether ``value`` is a transcript string (starts with ``Human:`` after whitespace)."""
    return isinstance(value, str) and value.lstrip().startswith("Human:")


def parse(rec: Record, name: str) -> list[Turn]:
    """Split the transcript in field ``name`` into ``(speaker, text)`` turns."""
    value = checks.text(rec, name, rec.require(name), what="a transcript")
    if not looks_like(value):
        raise rec.error(
            name, f"expected a transcript starting with 'Human:', got {describe(value)}"
        )
    parts = _TURN.split(_unix_lines(value).strip())
    return [(who, said.strip()) for who, said in zip(parts[1::2], parts[2::2], strict=True)]


def _unix_lines(value: str) -> str:
    """``value`` with Windows and old-Mac line ends as ``\n``: a transcript saved with
    ``\r\n`` has ``\r\n\r\nAssistant:`` turns, which were no turns at all ("expected an
    assistant turn after a prompt shared with 'chosen'")."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def transcript_prompt(value: str) -> list[Message] | None:
    """A prompt given as an HH transcript that ends in an open assistant turn
    (``"\n\nHuman: …\n\nAssistant:"``, as in Dahoas' ``rm-static`` and Nectar) as its
    messages, without the empty final assistant turn; None for any other text (read as one user
    message). Only that exact shape is parsed: it starts with ``Human:``, ends with
    ``Assistant:``, alternates speakers and has no empty human turn."""
    if not looks_like(value) or not value.rstrip().endswith("Assistant:"):
        return None
    parts = _TURN.split(_unix_lines(value).strip())
    turns = [(who, said.strip()) for who, said in zip(parts[1::2], parts[2::2], strict=True)]
    if parts[0].strip() or len(turns) < 2 or turns[-1] != ("Assistant", ""):
        return None
    turns = turns[:-1]
    if any(who == prev for (who, _), (prev, _) in zip(turns[1:], turns, strict=False)):
        return None
    if any(not said for who, said in turns if who == "Human"):
        return None
    return [{"role": _ROLE[who], "content": said} for who, said in turns]


def _render(turns: list[Turn]) -> str:
    return turns[0][1] + "".join(f"\n\n{who}: {said}" for who, said in turns[1:])


def convert(rec: Record) -> Example:
    """Validate an HH-RLHF record and build its :class:`Example`."""
    a, b = parse(rec, "chosen"), parse(rec, "rejected")
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    n = min(common, len(a) - 1, len(b) - 1)
    while n > 0 and not (a[n][0] == "Assistant" and b[n][0] == "Assistant"):
        n -= 1
    if n == 0:
        raise rec.error(
            "rejected", "expected an assistant turn after a prompt shared with 'chosen'"
        )
    prompt: list[Message] = [{"role": _ROLE[who], "content": said} for who, said in a[:n]]
    if not any(m["content"] for m in prompt):
        raise rec.error("chosen", "expected a prompt that is not empty, got only empty turns")
    responses = []
    for name, turns in (("chosen", a), ("rejected", b)):
        responses.append(checks.response(rec, name, _render(turns[n:])))
    meta = {}
    if len(a) - n > 1 or len(b) - n > 1:
        meta["multi_turn_response"] = True
    return rec.finish("hh-rlhf", prompt, responses, [0], meta=meta)

"""Token usage as servers report it, read by one validated reader: a count is a whole number from
0 to :data:`MAX_USAGE_TOKENS`; anything else (negative, ``1e30``, ``true``, ``"1000"``, ``0.9``,
NaN) is unknown — counted as such, never read as 0 nor as itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The most tokens one answer may claim (prompt or completion): 2**24, the range in which
#: float32 holds every whole number, so a count stored with a cached answer stays exact (no
#: model's context is near it); a larger count is unknown.
MAX_USAGE_TOKENS = 2**24


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the server, and ``unreported``: how many answers gave no
    readable count (their tokens are unknown, so a total with ``unreported > 0`` is a lower
    bound and its cost unknown)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    unreported: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.unreported + other.unreported,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "unreported": self.unreported,
        }

    @classmethod
    def from_dict(cls, counts: Mapping[str, Any] | None) -> Usage:
        """The inverse of :meth:`as_dict` (missing counts are 0)."""
        counts = counts or {}
        return cls(
            int(counts.get("prompt_tokens", 0)),
            int(counts.get("completion_tokens", 0)),
            int(counts.get("unreported", 0)),
        )


def token_count(value: Any) -> int | None:
    """A reported token count: a whole number (``12`` or ``12.0``) in ``[0,
    MAX_USAGE_TOKENS]``; None for anything else (a bool, a string, a fraction, NaN, ±inf,
    negative, too large)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_USAGE_TOKENS else None


def _first(block: Mapping[str, Any], names: tuple[str, ...]) -> tuple[bool, int | None]:
    """(whether any of ``names`` is present, the first readable count among them)."""
    present = [block[n] for n in names if n in block]
    counts = [c for c in map(token_count, present) if c is not None]
    return bool(present), counts[0] if counts else None


def openai_usage(body: Any) -> Usage:
    """The ``usage`` block of an OpenAI-style answer (``prompt_tokens``/``completion_tokens``,
    or ``input_tokens``/``output_tokens``). The answer counts as ``unreported`` when the block
    is absent, has no readable prompt count, or has a completion count that is not readable (an
    absent completion count is 0: embedding and pooling answers have none); its counts are then
    0, whatever part of them was readable."""
    block = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(block, Mapping):
        return Usage(unreported=1)
    _, prompt = _first(block, ("prompt_tokens", "input_tokens"))
    has_completion, completion = _first(block, ("completion_tokens", "output_tokens"))
    if prompt is None or (has_completion and completion is None):
        return Usage(unreported=1)  # all or nothing: a half-read answer is not a count
    return Usage(prompt, completion or 0)


def generation_usage(body: Any) -> Usage:
    """:func:`openai_usage` of an answer that generated text (a chat or completions answer): an
    absent completion count is unknown there, not 0 — a judge's answer has at least one token,
    and a price table that bills completions far above prompts would report a known, too low
    cost."""
    block = body.get("usage") if isinstance(body, Mapping) else None
    if isinstance(block, Mapping) and not any(
        n in block for n in ("completion_tokens", "output_tokens")
    ):
        return Usage(unreported=1)
    return openai_usage(body)


def no_usage(body: Any) -> Usage:
    """The usage of an answer that bills no tokens (a rewardkit server's): zero, known."""
    return Usage()

"""``rule:format`` — does the response follow a required layout? 1.0 / 0.0.

Default: the R1-style layout ``<think>…</think>`` then ``<answer>…</answer>`` and nothing else
(whitespace allowed around and between the blocks), each tag exactly once: no block may contain
another ``<think>``/``</think>``/``<answer>``/``</answer>`` tag, so stacked or nested blocks fail.
This is open-r1's / TRL's format reward made tolerant of whitespace and strict about duplicates.

Options (one of):

- ``tags=think,answer`` — the same layout for any ordered list of tag names;
- ``pattern=REGEX`` — any Python regex, matched with ``re.search`` and ``re.DOTALL`` (anchor it with
  ``^…$`` or ``\\A…\\Z`` to constrain the whole response).

Never NaN (a layout always applies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward
from rewardkit.types import Query

DEFAULT_TAGS = ("think", "answer")
_TAG_NAME = re.compile(r"[A-Za-z_][\w\-.:]*")


def tags_pattern(tags: Sequence[str]) -> str:
    """The regex of "these tag blocks, in this order, each once, nothing else but whitespace"."""
    if not tags:
        raise SpecError("rule:format needs at least one tag")
    for t in tags:
        if not _TAG_NAME.fullmatch(t):
            raise SpecError(f"rule:format tag {t!r} is not a tag name")
    any_tag = "|".join(re.escape(t) for t in tags)
    body = rf"(?:(?!</?(?:{any_tag})>).)*"
    blocks = r"\s*".join(rf"<{re.escape(t)}>{body}</{re.escape(t)}>" for t in tags)
    return rf"\A\s*{blocks}\s*\Z"


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise SpecError(f"rule:format pattern {pattern!r} is not a valid regex: {exc}") from None


def _tag_list(tags: Any) -> tuple[str, ...]:
    if isinstance(tags, str):
        return tuple(t.strip() for t in tags.split(",") if t.strip())
    return tuple(str(t).strip() for t in tags)


class FormatReward(RuleReward):
    """``rule:format`` — 1.0 when the response matches the layout (see the module docstring)."""

    rule = "format"

    def __init__(self, pattern: str | None = None, tags: str | Sequence[str] | None = None) -> None:
        if pattern is not None and tags is not None:
            raise SpecError("rule:format takes either pattern or tags, not both")
        if pattern is None:
            pattern = tags_pattern(_tag_list(tags) if tags is not None else DEFAULT_TAGS)
        super().__init__(pattern=str(pattern))
        self._regex = _compile(str(pattern))

    def score_one(self, query: Query) -> float:
        return 1.0 if self._regex.search(query.response) else 0.0


def compute_score(
    solution: str, ground_truth: Any = None, pattern: str | None = None, tags: Any = None
) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution`` follows the layout (default
    ``<think>…</think><answer>…</answer>``; or ``tags``/``pattern``), else 0.0.
    ``ground_truth`` is ignored."""
    if pattern is None:
        pattern = tags_pattern(_tag_list(tags) if tags is not None else DEFAULT_TAGS)
    return 1.0 if _compile(pattern).search(solution) else 0.0

"""``rule:format`` — does the response follow a required layout? 1.0 / 0.0.

Default: the R1-style layout ``<think>…</think>`` then ``<answer>…</answer>`` and nothing else
(whitespace allowed around and between the blocks), each tag exactly once: no block may contain
another ``<think>``/``</think>``/``<answer>``/``</answer>`` tag, in any spelling (``</answer >``,
``<Answer>``, ``< answer>``, ``<answer x=1>``, ``<answer/>``), so stacked or nested blocks fail.
This is open-r1's / TRL's format reward made tolerant of whitespace and strict about duplicates.

Options (one of):

- ``tags=think,answer`` — the same layout for any ordered list of tag names;
- ``pattern=REGEX`` — any Python regex, matched with ``re.search`` and ``re.DOTALL`` (anchor it with
  ``^…$`` or ``\\A…\\Z`` to constrain the whole response).

Never NaN (a layout always applies).

Time limit: Python's ``re`` holds the GIL with no time limit, and everyday patterns such as
``^(\\w+\\s?)*$`` backtrack exponentially on a response like ``"aaaa…!"``, so a response could
stall a whole server. A ``pattern`` is therefore searched in a worker process
(:mod:`.regex_worker`: one call per batch), each response given ``timeout`` seconds (default 5):
one past it scores 0.0 (unverified is not a match, so a response cannot win by being slow to
check) and is named as a failure of its call with the reason. ``timeout=0`` searches in-process,
untimed. The built-in layouts (default, ``tags=``) are linear-time and always run in-process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules import regex_worker
from rewardkit.rewards.rules._common import BadReference, RuleReward, as_number, as_text
from rewardkit.types import Query

DEFAULT_TAGS = ("think", "answer")

#: Seconds a ``pattern`` search may take on one response before it is given up.
DEFAULT_TIMEOUT_S = 5.0
_TAG_NAME = re.compile(r"[A-Za-z_][\w\-.:]*")


def tags_pattern(tags: Sequence[str]) -> str:
    """The regex of "these tag blocks, in this order, each once, nothing else but whitespace"."""
    if not tags:
        raise SpecError("rule:format needs at least one tag")
    for t in tags:
        if not _TAG_NAME.fullmatch(t):
            raise SpecError(f"rule:format tag {t!r} is not a tag name")
    any_tag = "|".join(re.escape(t) for t in tags)
    # Any spelling of a layout tag counts as that tag: "</answer >", "<ANSWER>", "< answer>",
    # "<answer id=2>", "<answer/>" (HTML-style readers take them all as one). A variant inside
    # a block is a second tag there. Linear: "[^<>]*" stops at the next "<".
    variant = rf"<\s*(?:/\s*)?(?i:{any_tag})(?=[\s/>])[^<>]*>"
    body = rf"(?:(?!{variant}).)*"
    blocks = r"\s*".join(rf"<{re.escape(t)}>{body}</{re.escape(t)}>" for t in tags)
    return rf"\A\s*{blocks}\s*\Z"


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise SpecError(f"rule:format pattern {pattern!r} is not a valid regex: {exc}") from None


def _tag_list(tags: Any) -> tuple[str, ...]:
    """``tags=`` as tag names: a comma list, or a list of names (never true/false)."""
    if isinstance(tags, list | tuple):
        return tuple(as_text("tags", "format", t).strip() for t in tags)
    return tuple(t.strip() for t in as_text("tags", "format", tags).split(",") if t.strip())


class FormatReward(RuleReward):
    """``rule:format`` — 1.0 when the response matches the layout (see the module docstring).

    Options: ``tags`` (ordered tag names) or ``pattern`` (a regex), and ``timeout`` (seconds
    for a ``pattern`` search on one response, in a worker process; default 5, 0: in-process
    and untimed)."""

    rule = "format"

    def __init__(
        self,
        pattern: str | None = None,
        tags: str | Sequence[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if pattern is not None and tags is not None:
            raise SpecError("rule:format takes either pattern or tags, not both")
        timeout = as_number("timeout", self.rule, timeout, minimum=0.0)
        pattern = None if pattern is None else as_text("pattern", self.rule, pattern)
        if pattern is not None and timeout > 0:
            # searched in a worker; the limit can change a score, so it is part of the identity
            super().__init__(pattern=str(pattern), timeout=timeout)
        else:
            if pattern is None:
                pattern = tags_pattern(_tag_list(tags) if tags is not None else DEFAULT_TAGS)
            super().__init__(pattern=str(pattern))
        self._regex = _compile(str(pattern))

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """1.0 / 0.0, and why when the search ran past its time limit (then 0.0)."""
        verdict = self.verdicts([query])[0]
        assert not isinstance(verdict, BadReference)  # a layout never reads a reference
        return verdict

    def verdicts(self, queries: Sequence[Query]) -> list[tuple[float, str | None] | BadReference]:
        """Every response's verdict, a ``pattern``'s in one worker call per chunk."""
        return [
            _verdict(found, self.options.get("timeout", 0.0)) for found in self._searches(queries)
        ]

    def _searches(self, queries: Sequence[Query]) -> list[bool | str | None]:
        """Whether the layout is found in each response: None where the search ran past its
        time limit, the reason where its worker stopped."""
        texts = [q.response for q in queries]
        if "timeout" in self.options:  # a user pattern with a time limit
            try:
                return regex_worker.search_in_worker(
                    self._regex.pattern, self._regex.flags, texts, self.options["timeout"]
                )
            except regex_worker.WorkerDidNotStart as exc:
                regex_worker.POOL.warn_no_worker(
                    exc, "rule:format patterns are now searched here, without a time limit"
                )
        return [self._regex.search(t) is not None for t in texts]


def _verdict(found: bool | str | None, limit: float) -> tuple[float, str | None]:
    """1.0 / 0.0 for a search that finished; 0.0 and why for one given up."""
    if isinstance(found, bool):
        return float(found), None
    if found is None:
        found = (
            f"the pattern's search did not finish in {limit:g} s on this response (a pattern "
            "that backtracks without end?)"
        )
    return 0.0, f"rule:format: {found}: scored 0.0"


def compute_score(
    solution: str,
    ground_truth: Any = None,
    pattern: str | None = None,
    tags: Any = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution`` follows the layout (default
    ``<think>…</think><answer>…</answer>``; or ``tags``/``pattern``, searched within ``timeout``
    seconds), else 0.0. ``ground_truth`` is ignored."""
    return FormatReward(pattern=pattern, tags=tags, timeout=timeout).score_one(
        Query(prompt="", response=solution)
    )

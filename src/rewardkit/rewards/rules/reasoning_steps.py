"""``rule:reasoning_steps`` — does the response lay its reasoning out in steps? In [0, 1].

open-r1's ``reasoning_steps_reward``: count the step markers ::

    "Step N:"   a line-start "N."   "\\n-"   "\\n*"   "First,"   "Second,"   "Next,"   "Finally,"

(non-overlapping, case-sensitive, ``re.findall`` of one alternation) and reward
``min(1, count / steps)``, ``steps`` = 3 by default (open-r1's "magic number 3 to encourage 3
steps and more"). Worked example: ``"Step 1: add.\\nStep 2: carry."`` has 2 markers → 2/3.

``lines`` (default false, as open-r1): the peer's pattern ``^\\d+\\.`` is searched without
``re.MULTILINE``, so only a number at the very start of the response counts ("1. a\\n2. b\\n3. c"
counts 1 marker, not 3). ``lines=true`` counts a numbered line anywhere (3 there), what the
peer's docstring describes. A shaping reward: it counts markers, not reasoning ("First, Next,
Finally," scores 1.0). Never NaN; linear in the response.
"""

from __future__ import annotations

import re
from typing import Any

from rewardkit.rewards.rules._common import RuleReward, as_bool, as_count
from rewardkit.types import Query

_MARKERS = r"(?:Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)"
_AT_START = re.compile(_MARKERS)
_ANY_LINE = re.compile(_MARKERS, re.MULTILINE)


def step_count(text: str, lines: bool = False) -> int:
    """Number of step markers in ``text`` (a numbered line anywhere with ``lines``, else only
    at the start of ``text``)."""
    return sum(1 for _ in (_ANY_LINE if lines else _AT_START).finditer(text))


def reasoning_steps(text: str, steps: int = 3, lines: bool = False) -> float:
    """``min(1, step_count / steps)``."""
    return min(1.0, step_count(text, lines) / steps)


class ReasoningStepsReward(RuleReward):
    """``rule:reasoning_steps`` — options ``steps`` (markers for full credit, default 3) and
    ``lines`` (count numbered lines anywhere, default false as open-r1)."""

    rule = "reasoning_steps"

    def __init__(self, steps: int = 3, lines: bool = False) -> None:
        super().__init__(
            steps=as_count("steps", self.rule, steps), lines=as_bool("lines", self.rule, lines)
        )

    def score_one(self, query: Query) -> float:
        return reasoning_steps(query.response, self.options["steps"], self.options["lines"])


def compute_score(
    solution: str, ground_truth: Any = None, steps: int = 3, lines: bool = False
) -> float:
    """verl-style ``compute_score``: ``min(1, step markers / steps)`` of ``solution``;
    ``ground_truth`` is ignored."""
    return ReasoningStepsReward(steps=steps, lines=lines).score_one(
        Query(prompt="", response=solution)
    )

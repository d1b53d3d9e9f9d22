"""``rule:cosine`` — correctness scaled by length on a cosine schedule (card C11), in [−1, 1].

docs/methods/C11-cosine-length-reward.md (*Demystifying Long Chain-of-Thought Reasoning in
LLMs*, the cosine length-scaling reward), as TRL's ``get_cosine_scaled_reward`` and open-r1's
``cosine`` reward compute it. With ``L`` the response length, ``p = min(L / max_len, 1)`` and
the bounds ``(v_min, v_max)``::

    R = v_min + ½ (v_max − v_min) (1 + cos(π p))

    correct:  (v_min, v_max) = (min_value_correct, max_value_correct) = (0.5, 1.0)
    wrong:    (v_min, v_max) = (max_value_wrong, min_value_wrong)     = (−0.5, −1.0)

so a short correct response earns most (1.0 at L = 0, 0.5 at ``max_len``) and a short wrong one
is penalised most (−1.0 at L = 0, −0.5 at ``max_len``: long wrong attempts keep exploring).
Card vector, ``max_len=100``: L = 0, 25, 50, 100, 200 → correct 1, 0.926777, 0.75, 0.5, 0.5;
wrong −1, −0.926777, −0.75, −0.5, −0.5.

Correctness is ``check``'s verdict (``math``, default: ``rule:math``; ``gsm8k``;
``exact_match``), 1.0 meaning correct; NaN where the check does not apply (no reference, or
math-verify cannot read the gold: TRL's ``None``; open-r1 gives 1.0 there). A check that
times out is wrong (0.0) and named as a failure of its call, as in the check rule itself.

``L`` is counted in ``unit``: ``chars`` (default, as open-r1; its ``max_len`` default 1000 is
kept), ``words`` (:func:`~._common.word_count`), or ``tokens`` with ``tokenizer=NAME_OR_PATH``
(TRL counts completion tokens; give the policy's tokenizer and its ``max_len``). Past
``max_len`` the schedule stays at its long-length bound (TRL's clamp; open-r1 does not clamp,
so there ``L = 2·max_len`` scores like ``L = 0``: cos is periodic).

Bounds under which some wrong answer would outscore some correct one (``max_value_wrong=0.8``
beside ``min_value_correct=0.5``: a long wrong answer 0.8, a long correct one 0.5) are a
``SpecError``; TRL accepts them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.engine.special_tokens import escape_texts
from rewardkit.errors import SpecError
from rewardkit.results import ScoreResult
from rewardkit.rewards.rules._common import (
    THINK_MODES,
    RuleReward,
    as_choice,
    as_count,
    as_number,
    word_count,
)
from rewardkit.types import Query, Reward

UNITS = ("chars", "words", "tokens")
#: Rules whose 1.0 / 0.0 verdict is the correctness the schedule scales.
CHECKS = ("math", "gsm8k", "exact_match")
#: The four bounds and their defaults (TRL's and open-r1's).
BOUNDS = {
    "min_value_wrong": -1.0,
    "max_value_wrong": -0.5,
    "min_value_correct": 0.5,
    "max_value_correct": 1.0,
}


def cosine_scaled(
    length: float,
    max_len: int,
    correct: bool,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
) -> float:
    """Card C11 — the cosine length-scaled reward of one response (module docstring).

    NaN for a NaN (unknown) length; a negative, infinite or non-numeric ``length`` or a
    ``max_len`` that is not a finite number > 0 is a ValueError (cos is even, so a negative
    length scored like its absolute value; ``max_len=0`` raised ZeroDivisionError)."""
    if not (is_real(max_len) and math.isfinite(max_len) and max_len > 0):
        raise ValueError(f"cosine_scaled: max_len must be a finite number > 0; got {max_len!r}")
    if not is_real(length) or length < 0 or math.isinf(length):
        raise ValueError(f"cosine_scaled: length must be a finite number ≥ 0; got {length!r}")
    if math.isnan(length):
        return math.nan
    progress = min(length / max_len, 1.0)
    if correct:
        low, high = min_value_correct, max_value_correct
    else:
        low, high = max_value_wrong, min_value_wrong
    return float(low + 0.5 * (high - low) * (1.0 + math.cos(progress * math.pi)))


class CosineReward(RuleReward):
    """``rule:cosine`` — options ``max_len`` (1000), the bounds ``min_value_wrong`` (−1),
    ``max_value_wrong`` (−0.5), ``min_value_correct`` (0.5), ``max_value_correct`` (1),
    ``unit`` (``chars``, ``words`` or ``tokens``), ``tokenizer`` (implies ``unit=tokens``) and
    ``check`` (``math``, ``gsm8k`` or ``exact_match``: which rule says correct) and ``think``
    (passed to the check: ``require`` grades only after the last ``</think>``, none → wrong)."""

    rule = "cosine"

    def __init__(
        self,
        max_len: int = 1000,
        min_value_wrong: float = BOUNDS["min_value_wrong"],
        max_value_wrong: float = BOUNDS["max_value_wrong"],
        min_value_correct: float = BOUNDS["min_value_correct"],
        max_value_correct: float = BOUNDS["max_value_correct"],
        unit: str | None = None,
        tokenizer: str | None = None,
        check: str = "math",
        think: str = "whole",
    ) -> None:
        values = {
            "min_value_wrong": min_value_wrong,
            "max_value_wrong": max_value_wrong,
            "min_value_correct": min_value_correct,
            "max_value_correct": max_value_correct,
        }
        bounds = {k: float(as_number(k, self.rule, v)) for k, v in values.items()}
        best_wrong = max(bounds["min_value_wrong"], bounds["max_value_wrong"])
        worst_right = min(bounds["min_value_correct"], bounds["max_value_correct"])
        if best_wrong > worst_right:
            raise SpecError(
                f"rule:cosine bounds let a wrong answer score {best_wrong:g}, above a correct "
                f"one's {worst_right:g}: keep min_value_wrong and max_value_wrong at or below "
                "min_value_correct and max_value_correct"
            )
        if unit is None:
            unit = "tokens" if tokenizer else "chars"
        if unit not in UNITS:
            raise SpecError(f"rule:cosine unit must be one of {UNITS}, got {unit!r}")
        if unit == "tokens" and not tokenizer:
            raise SpecError("rule:cosine unit=tokens needs tokenizer=NAME_OR_PATH")
        if check not in CHECKS:
            raise SpecError(f"rule:cosine check must be one of {CHECKS}, got {check!r}")
        super().__init__(
            max_len=as_count("max_len", self.rule, max_len),
            **bounds,
            unit=unit,
            tokenizer=tokenizer if unit == "tokens" else None,
            check=check,
            think=as_choice("think", self.rule, think, THINK_MODES),
        )
        from rewardkit.rewards.rules import build

        self._check: Reward = build(check, think=think)
        self._tok: Any = None

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "check": self._check.identity()}

    def length(self, text: str) -> int:
        """The length of ``text`` in this reward's unit."""
        unit = self.options["unit"]
        if unit == "chars":
            return len(text)
        if unit == "words":
            return word_count(text)
        text = escape_texts(self._tokenizer(), [text])[0]  # "<|endoftext|>" is 13 characters, not 1
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def _tokenizer(self) -> Any:
        """The ``tokenizer=`` option's tokenizer, loaded once; one line naming the option when
        it cannot be loaded (a typo'd path, a folder without tokenizer files)."""
        if self._tok is None:
            from transformers import AutoTokenizer

            name = self.options["tokenizer"]
            try:
                self._tok = AutoTokenizer.from_pretrained(name)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                first = (str(exc).strip().splitlines() or [""])[0][:200] or type(exc).__name__
                raise SpecError(
                    f"rule:cosine tokenizer={name} cannot be loaded ({first}); give the "
                    "policy's tokenizer folder or Hub id"
                ) from None
        return self._tok

    def _values(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[str, Any]]:
        """float64 rewards and the check's call details (its failures re-scored)."""
        if self.options["unit"] == "tokens" and queries:
            self._tokenizer()  # before the check runs: a bad tokenizer fails in a second
        checked = self._check.score_full(queries)
        o = self.options
        bounds = {k: o[k] for k in BOUNDS}
        out = np.full(len(queries), np.nan, dtype=np.float64)
        for i, (query, verdict) in enumerate(zip(queries, checked.scores, strict=True)):
            if not math.isnan(float(verdict)):
                correct = float(verdict) >= 1.0
                out[i] = cosine_scaled(self.length(query.response), o["max_len"], correct, **bounds)
        stats = dict(checked.stats)
        if "errors" in stats:
            stats["errors"] = [
                {**e, "score": float(out[e["index"]])} if "score" in e else e
                for e in stats["errors"]
            ]
        return out, stats

    def score_one(self, query: Query) -> float:
        return float(self._values([query])[0][0])

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        scores, stats = self._values(queries)
        return ScoreResult(scores, stats=stats)


def compute_score(
    solution: str,
    ground_truth: Any,
    max_len: int = 1000,
    unit: str = "chars",
    check: str = "math",
    **bounds: float,
) -> float:
    """verl-style ``compute_score``: the cosine length-scaled reward of ``solution`` against
    ``ground_truth`` (``unit`` chars or words; ``bounds`` as the rule's options); NaN without a
    reference."""
    if unit == "tokens":
        raise SpecError("rule:cosine compute_score counts chars or words; use the rule for tokens")
    reward = CosineReward(max_len=max_len, unit=unit, check=check, **bounds)
    return reward.score_one(Query(prompt="", response=solution, reference=ground_truth))

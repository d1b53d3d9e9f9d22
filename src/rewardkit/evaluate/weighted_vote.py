"""The weighted vote of test-time scaling (docs/methods/B4-orm-vs-prm.md): of N sampled solutions
to one problem, the answer whose solutions hold the most reward wins::

    answer* = argmax_a Σ_{i: ans_i = a} r_i

With every r_i = 1 it is the majority vote; best-of-N instead keeps the single solution with the
highest r_i. Answers are compared by a key (default: the text stripped and lower-cased, as the
paper's code compares them); a solution without an answer (None, blank) or without a reward (NaN)
casts no vote. Ties go to the answer that appears first, so the vote is deterministic. The
rewards are meant to be ≥ 0 (probabilities such as GenORM's): a negative reward takes votes away.

On best-of-N data the answers come from an extractor; :func:`final_answer` reads a solution's
final answer as ``rule:math`` and ``rule:gsm8k`` do (a boxed answer, ``#### 42``, the last
number), numbers by their exact value, so that ``1,000``, ``1000.0`` and ``\\frac{2000}{2}`` vote
together; :func:`vote_accuracy` scores pools of solutions with a correctness label each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from fractions import Fraction
from typing import Any

Key = Callable[[Any], Hashable]


def default_key(answer: Any) -> Hashable:
    """How answers are compared by default: text stripped and lower-cased (``" A"`` = ``"a"``);
    other hashable values as they are."""
    return answer.strip().lower() if isinstance(answer, str) else answer


def _votes(
    answers: Sequence[Any], rewards: Sequence[float], key: Key | None
) -> dict[Hashable, tuple[Any, float]]:
    """Key → (first spelling, total reward), in the order the answers first appear."""
    if len(answers) != len(rewards):
        raise ValueError(f"{len(answers)} answers but {len(rewards)} rewards")
    key = key or default_key
    out: dict[Hashable, tuple[Any, float]] = {}
    for answer, reward in zip(answers, rewards, strict=True):
        r = float(reward)
        if answer is None or (isinstance(answer, str) and not answer.strip()) or math.isnan(r):
            continue
        k = key(answer)
        first, total = out.get(k, (answer, 0.0))
        out[k] = (first, total + r)
    return out


def vote_totals(
    answers: Sequence[Any], rewards: Sequence[float], key: Key | None = None
) -> dict[Any, float]:
    """Each answer's summed reward (keyed by its first spelling, in order of appearance)."""
    return dict(_votes(answers, rewards, key).values())


def weighted_vote(
    answers: Sequence[Any], rewards: Sequence[float], key: Key | None = None
) -> Any | None:
    """The answer with the largest summed reward (its first spelling); a tie goes to the answer
    that appears first; None when no solution has both an answer and a reward.
    ``weighted_vote(["A", "B", "A"], [0.4, 0.9, 0.6])`` → ``"A"`` (1.0 against 0.9)."""
    best, best_total = None, -math.inf
    for first, total in _votes(answers, rewards, key).values():
        if total > best_total:  # strictly: an equal total later does not take the lead
            best, best_total = first, total
    return best


# -- answers of math solutions -------------------------------------------------------------------

_LATEX_FRACTION = re.compile(r"(-?)\\frac\{?(\d+)\}?\{?(\d+)\}?")


def _exact(answer: str) -> str:
    """A number's exact value as text (``1,000`` and ``1000.0`` → ``1000``, ``0.5`` and
    ``\\frac{1}{2}`` → ``1/2``); another answer (or a number too long to convert) without
    its whitespace."""
    from rewardkit.rewards.rules.math_fast import clean_answer, plain_value

    text = clean_answer(answer)
    try:  # a number past Python's 4,300-digit int/str limit stays text, never fails the run
        value = plain_value(text)
        frac = _LATEX_FRACTION.fullmatch(text)
        if value is None and frac and int(frac.group(3)) != 0:
            value = Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
        if value is not None:
            return str(value)
    except (ValueError, OverflowError, ArithmeticError):
        pass
    return "".join(text.split())


def final_answer(solution: str) -> str | None:
    """The final answer of a math solution, for voting: what ``rule:math``'s fast path reads (the
    boxed answer, or the last number of a plain-text solution), else what ``rule:gsm8k`` reads
    (``#### 42``, ``The answer is 42``); None when neither finds one. Numbers read as their
    exact value (:func:`_exact`); other answers (``x^2+1``) as written, without spaces — pass a
    ``key`` to :func:`weighted_vote` that knows more equivalences (math-verify's) if needed."""
    from rewardkit.rewards.rules.gsm8k import extract_answer
    from rewardkit.rewards.rules.math_fast import response_candidate

    if not isinstance(solution, str) or not solution.strip():
        return None
    found = response_candidate(solution)
    if found is not None and found.strip():
        return _exact(found)
    value = extract_answer(solution)
    return None if value is None else str(value)


def _best_of_n(rewards: Sequence[float]) -> int | None:
    """Index of the highest reward (the first among equals); None when every reward is NaN."""
    best, best_r = None, -math.inf
    for i, r in enumerate(rewards):
        if not math.isnan(float(r)) and (best is None or float(r) > best_r):
            best, best_r = i, float(r)
    return best


def vote_accuracy(
    pools: Iterable[tuple[Sequence[Any], Sequence[float], Sequence[float]]],
    key: Key | None = None,
) -> dict[str, float | int]:
    """Accuracy of the weighted vote, the majority vote and best-of-N over pools of
    (answers, rewards, correct) — ``correct`` 1 for a solution whose answer is right, else 0.

    A vote is right when the first solution holding the winning answer is; a pool where no
    solution has an answer (or a reward) counts as wrong (``no_vote`` counts those). A pool
    whose labels are not all 0 or 1 (graded ratings such as a 1-10 score, NaN) has no accuracy:
    it is left out and counted in ``not_binary`` (a rating of 9 is no "right" nine times).
    ``{"weighted_vote", "majority_vote", "best_of_n", "pools", "no_vote"}``, and
    ``"not_binary"`` when a pool was left out."""
    hits = {"weighted_vote": 0.0, "majority_vote": 0.0, "best_of_n": 0.0}
    pools_seen = no_vote = not_binary = 0
    for answers, rewards, correct in pools:
        if not len(answers) == len(rewards) == len(correct):
            raise ValueError("a pool needs one reward and one correctness label per answer")
        if not all(_is_label(c) for c in correct):
            not_binary += 1
            continue
        pools_seen += 1
        k = key or default_key
        picks = {
            "weighted_vote": weighted_vote(answers, rewards, key),
            "majority_vote": weighted_vote(answers, [1.0] * len(answers), key),
        }
        no_vote += picks["weighted_vote"] is None
        for name, pick in picks.items():
            if pick is not None:
                i = next(j for j, a in enumerate(answers) if a is not None and k(a) == k(pick))
                hits[name] += float(correct[i])
        best = _best_of_n(rewards)
        if best is not None:
            hits["best_of_n"] += float(correct[best])
    n = max(pools_seen, 1)
    out: dict[str, float | int] = {
        name: (h / n if pools_seen else math.nan) for name, h in hits.items()
    }
    out.update(pools=pools_seen, no_vote=no_vote)
    if not_binary:
        out["not_binary"] = not_binary
    return out


def _is_label(value: Any) -> bool:
    """Whether ``value`` is a correctness label: 0 or 1 (a bool, an int, a float)."""
    try:
        return float(value) in (0.0, 1.0)
    except (TypeError, ValueError):
        return False

"""``rule:math`` — final-answer correctness against a reference, checked by math-verify.

The reference is a final answer (``"18"``, ``"\\frac{\\pi}{2}"``), a worked solution holding a
``\\boxed{…}`` answer (MATH), a GSM8K solution ending in ``#### 42``, or a list of acceptable
answers. The response is parsed by ``math_verify.parse`` and compared by ``math_verify.verify``:
1.0 (equivalent) or 0.0; NaN when there is no reference, or it cannot be parsed, or it is prose
(:func:`.math_reading.prose_gold`). ``think=require`` reads only the text after the last
``</think>``, and a response without one has no answer (0.0: TRL's ``reasoning_accuracy_reward``,
verifiers' ``MathRubric``). A response's ``X%`` is read on one scale (:mod:`.math_percent`).
Where math-verify's verdict was wrong by a hand truth (hedges, retractions, false equations,
bases, 6-decimal rounding, unread notations), :mod:`.math_reading` reads the response first.

Speed (``fast=true``, the default; docs/rules.md, ``benchmarks/rules.py``): each distinct gold is
parsed once and only when needed, and a fast path decides without sympy where the verdict is
certain: the response's answer (the last ``\\boxed{…}``; or, with no LaTeX command and no word
"answer", its last number) is the gold's string (→ 1), or both are plain decimals (→ 1 if equal,
→ 0 if more than 1e-4 apart relatively). All else goes to math-verify; on the shared GSM8K / MATH
data the fast path agrees with plain math-verify on every row it decides.

Robustness: math-verify's timeouts (``signal.alarm``, main thread only; elsewhere the slow path
runs in a worker process, :mod:`.math_worker`, killed when it overruns) and its exceptions score
0.0 (an unparseable reference: NaN), are counted in :attr:`MathVerifier.stats` (``timeout``,
``error``), never raised, and each query they hit is a failure of its call
(``ScoreResult.stats["failed"]`` / ``["errors"]``, with the reason and the score it got).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache, partial
from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    THINK_MODES,
    BadReference,
    RuleReward,
    after_think,
    as_bool,
    as_choice,
    as_number,
    references,
)
from rewardkit.rewards.rules.math_fast import (
    SPACED_DIGITS,
    clean_answer,
    plain_value,
    response_candidate,
)
from rewardkit.rewards.rules.math_percent import (
    PERCENT_WORDS,
    asks_percent,
    percent_after_box,
    percent_read,
)
from rewardkit.rewards.rules.math_reading import (
    false_claims_dropped,
    last_boxed,
    nested_box,
    prose_gold,
    read_answer,
    spell_out,
)
from rewardkit.rewards.rules.math_relations import false_relation
from rewardkit.types import Query, ScoreResult, prompt_text

#: Distinct references whose parsed gold is kept.
GOLD_CACHE_SIZE = 8192

_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def gold_answer(reference: str) -> str:
    """The final answer held by a reference: the last ``\\boxed{}``, the text after ``####``, or
    the reference itself."""
    if "\\boxed" in reference or "\\fbox" in reference:
        boxed = last_boxed(reference)
        if boxed is not None:
            return boxed
    if "####" in reference:
        return reference.rsplit("####", 1)[1].strip()
    return reference.strip()


@dataclass
class _Gold:
    source: str  # what math-verify parses: the answer, wrapped in $…$ unless it has math delimiters
    text: str  # cleaned gold answer string
    value: Fraction | None  # its value when it is a plain decimal number
    # the reference writes its answer as a percentage ("42\%", "\boxed{42}\%")
    percent: bool = False
    parsed: list[Any] | None = None  # math-verify's parse, made on first need ([]: unparseable)
    problem: str | None = None  # why the parse failed, when math-verify timed out or raised
    prose: bool = False  # plain prose, no mathematical answer: the rule does not apply


class MathVerifier:
    """Reference-answer checking with math-verify, a gold cache and a certain-verdict fast path.

    Usable from several threads (the gold cache is locked; statistics counts may be lost under
    threads, verdicts are not). math-verify's timeouts need the main thread; elsewhere the slow
    path runs in a worker process where they hold (:mod:`.math_worker`).
    """

    def __init__(
        self,
        strict: bool = True,
        timeout: float | None = 5,
        fast: bool = True,
        max_chars: int = 20000,
    ) -> None:
        self.strict = strict
        # signal.alarm takes whole seconds: round a fractional timeout up, never down to "off"
        self.timeout = max(1, math.ceil(timeout)) if timeout else None
        self.fast = fast
        self.max_chars = int(max_chars)
        self.stats: Counter[str] = Counter()
        self._gold: OrderedDict[str, _Gold] = OrderedDict()
        self._gold_lock = threading.Lock()

    # -- math-verify calls, guarded ----------------------------------------------------------

    def _timeout(self) -> int | None:
        if self.timeout and threading.current_thread() is threading.main_thread():
            return self.timeout
        return None

    def _parse(self, text: str, what: str) -> tuple[list[Any], str | None]:
        """math-verify's parse of ``text`` and, when it timed out or raised, why (naming
        ``what`` was parsed); ``[]`` then."""
        from math_verify import parse
        from math_verify.errors import TimeoutException

        try:
            return list(parse(text, parsing_timeout=self._timeout(), raise_on_error=True)), None
        except TimeoutException:
            self.stats["timeout"] += 1
            return [], f"math-verify timed out parsing {what} (timeout {self.timeout} s)"
        except Exception as exc:
            self.stats["error"] += 1
            return [], f"math-verify failed parsing {what}: {type(exc).__name__}: {exc}"

    def _verify(self, gold: list[Any], pred: list[Any], places: int = 6) -> tuple[bool, str | None]:
        """Whether any gold/prediction pair is equivalent (numbers rounded to ``places``, as
        math-verify does) and, when a comparison timed out or raised (and none matched), why."""
        from math_verify import verify
        from math_verify.errors import TimeoutException

        timeout = self._timeout()
        check = partial(verify, float_rounding=places, strict=self.strict, raise_on_error=True)
        problem = None
        for g in gold:
            for p in pred:
                try:
                    if check(g, p, timeout_seconds=timeout):
                        return True, None
                except TimeoutException:
                    self.stats["timeout"] += 1
                    problem = problem or f"math-verify timed out comparing (timeout {timeout} s)"
                except Exception as exc:
                    self.stats["error"] += 1
                    problem = (
                        problem or f"math-verify failed comparing: {type(exc).__name__}: {exc}"
                    )
        return False, problem

    # -- gold ----------------------------------------------------------------------------------

    def gold(self, reference: str) -> _Gold:
        """The gold answer of ``reference`` (cached per distinct reference; math-verify parses it
        only when the fast path cannot decide)."""
        with self._gold_lock:
            hit = self._gold.get(reference)
            if hit is not None:
                self._gold.move_to_end(reference)
                return hit
        answer = spell_out(gold_answer(reference))
        text = answer if _UNESCAPED_DOLLAR.search(answer) else f"${answer}$"
        cleaned = clean_answer(answer)
        percent = "%" in answer or bool(PERCENT_WORDS.search(answer))
        if not percent and "\\boxed" in reference:
            percent = percent_after_box(reference, last_boxed(reference))
        gold = _Gold(text, cleaned, plain_value(cleaned), percent, prose=prose_gold(answer))
        gold.parsed = [] if nested_box(answer) else None  # "\boxed{\boxed{41} 42}": none
        with self._gold_lock:
            self._gold[reference] = gold
            if len(self._gold) > GOLD_CACHE_SIZE:
                self._gold.popitem(last=False)
        return gold

    # -- scoring -------------------------------------------------------------------------------

    def fast_verdict(self, response: str, gold: _Gold) -> float | None:
        """1.0 / 0.0 when the verdict is certain without sympy, else None."""
        candidate = response_candidate(response)
        if candidate is None or SPACED_DIGITS.search(candidate):
            return None  # "2 5" is not "25" (math-verify reads 2 + 5): one box, two golds
        cand = clean_answer(candidate)
        if cand and "".join(cand.split()) == "".join(gold.text.split()):
            return 1.0
        if gold.value is None:
            return None
        value = plain_value(cand)
        if value is None:
            return None
        if value == gold.value:
            return 1.0
        if abs(value - gold.value) > Fraction(1, 10_000) * max(1, abs(gold.value)):
            return 0.0
        return None

    def check(self, response: str, reference: Any, percent: bool = False) -> float:
        """1.0 if ``response``'s final answer matches any reference, 0.0 if not, NaN if none."""
        return self.verdict(response, reference, percent)[0]

    def verdict(
        self, response: str, reference: Any, percent: bool = False
    ) -> tuple[float, str | None]:
        """:meth:`check`'s score and, when math-verify timed out or raised on the way, why.

        A response whose parse or comparison failed scores 0.0 (unverified is not correct, so a
        response cannot escape a wrong verdict by being slow to parse); a reference that failed
        to parse gives NaN (no usable reference). ``percent``: the question asks for a
        percentage, so the response's ``42%`` is read as 42 (else as 0.42, unless the gold
        itself is a percentage; :func:`percent_read`). A reference that is a mapping with no
        answer key (``{"solution": "42"}``) gives NaN and says so: its ``str()`` is no answer.
        """
        try:
            refs = references(reference, strict=True)
        except BadReference as exc:
            return NAN, f"rule:math: {exc}"
        if not refs:
            return NAN, None
        golds = [g for g in (self.gold(r) for r in refs) if not g.prose]
        if not golds:
            self.stats["gold_prose"] += 1
            return NAN, None
        if len(response) > self.max_chars:
            response = response[-self.max_chars :]
        response, golds, ruled = self._read(response, golds)
        if ruled is not None:
            self.stats["ruled"] += 1
            return ruled, None
        if self.fast:
            verdicts = [self.fast_verdict(response, g) for g in golds]
            if 1.0 in verdicts or all(v == 0.0 for v in verdicts):
                self.stats["fast"] += 1
                return (1.0 if 1.0 in verdicts else 0.0), None
        if self.timeout and threading.current_thread() is not threading.main_thread():
            from rewardkit.rewards.rules.math_worker import verdict_in_worker

            answer = verdict_in_worker(self, response, refs, percent)
            if answer is not None:
                return answer
        for g in golds:
            if g.parsed is None:
                g.parsed, g.problem = self._parse(g.source, "the reference")
        usable = [g for g in golds if g.parsed]
        if not usable:
            self.stats["gold_unparsed"] += 1
            return NAN, next((g.problem for g in golds if g.problem), None)
        self.stats["slow"] += 1
        pred, problem = self._parse(response, "the response")
        unsure: list[str] = []
        pred = false_claims_dropped(pred, lambda a, b: self._holds(a, b, unsure))
        side = lambda text: self._parse(text, "a side of the answer")[0]  # noqa: E731
        if false_relation(
            pred, [g.text for g in usable], side, partial(self._holds, unsure=unsure)
        ):
            self.stats["ruled"] += 1  # "\boxed{41 \to 42}": math_relations.py
            return 0.0, problem or next(iter(unsure), None)
        problem = problem or next(iter(unsure), None)
        if not pred:
            if problem is None:
                self.stats["no_answer"] += 1
            return 0.0, problem
        plain = _plain_reading(pred)
        for g in usable:
            if g.value is not None and plain is not None and plain != g.value:
                continue  # math-verify rounds to 6 decimals: 3.1415926 matched 3.1415927
            same, why = self._verify(g.parsed, percent_read(pred, percent or g.percent))
            if same:
                return 1.0, None
            problem = problem or why
        return 0.0, problem

    @staticmethod
    def _read(response: str, golds: list[_Gold]) -> tuple[str, list[_Gold], float | None]:
        """:func:`.math_reading.read_answer`: the response as math-verify should read it, the
        golds it can still match, and a verdict where one is certain before math-verify."""
        response, keep, verdict = read_answer(response, [g.text for g in golds])
        return response, [g for g, k in zip(golds, keep, strict=True) if k], verdict

    def _holds(self, lhs: Any, rhs: Any, unsure: list[str], places: int = 6) -> bool:
        """math-verify's equality of the two sides of a response's equation (rounded to
        ``places``); False when it timed out or raised (``\\boxed{9^{9^{9^{9}}} = 2}``:
        unverified is not correct), with the reason added to ``unsure``."""
        same, problem = self._verify([lhs], [rhs], places)
        if problem is not None:
            unsure.append(problem)
        return same


def _plain_reading(pred: list[Any]) -> Fraction | None:
    """The value of math-verify's text reading of the answer when it is a plain decimal number
    ("3.1415926"), else None."""
    texts = [p for p in pred if isinstance(p, str)]
    return plain_value(clean_answer(texts[0])) if len(texts) == 1 else None


class MathReward(RuleReward):
    """``rule:math`` — 1.0 when the response's final answer is equivalent to the reference.

    Options: ``strict`` (math-verify strict mode, default true), ``timeout`` (seconds per
    math-verify parse/compare, default 5; 0 turns it off), ``fast`` (the certain-verdict fast
    path, default true), ``max_chars`` (only the last N characters of a response are parsed,
    default 20000), ``think`` (``whole``, default, or ``require``: only the text after the last
    ``</think>``; none → 0.0). NaN without a reference. Timeouts and errors score 0.0 and are
    counted in each call's ``score_full(...).stats`` (and in the lifetime counts :attr:`stats`).
    """

    rule = "math"

    def __init__(
        self,
        strict: bool = True,
        timeout: float = 5,
        fast: bool = True,
        max_chars: int = 20000,
        think: str = "whole",
    ) -> None:
        strict = as_bool("strict", self.rule, strict)
        self.think = as_choice("think", self.rule, think, THINK_MODES)
        fast = as_bool("fast", self.rule, fast)
        timeout = as_number("timeout", self.rule, timeout or 0, minimum=0)
        max_chars = int(as_number("max_chars", self.rule, max_chars, minimum=1))
        super().__init__(
            strict=strict, timeout=timeout, fast=fast, max_chars=max_chars, think=self.think
        )
        self.verifier = MathVerifier(strict=strict, timeout=timeout, fast=fast, max_chars=max_chars)

    def identity(self) -> dict[str, Any]:
        # timeout only decides how long a row may run, not its verdict; the rest can matter.
        return {
            "class": "MathReward",
            "strict": self.options["strict"],
            "fast": self.options["fast"],
            "max_chars": self.options["max_chars"],
            **({"think": self.think} if self.think != "whole" else {}),  # old fingerprints hold
        }

    @property
    def stats(self) -> Counter[str]:
        """Counts: ``fast``/``slow`` path, ``ruled`` (decided before math-verify: hedge, empty
        box, base, choice letter), ``timeout``, ``error``, ``no_answer``, ``gold_unparsed``,
        ``gold_prose`` (a prose reference: NaN)."""
        return self.verifier.stats

    @property
    def failures(self) -> int:
        """math-verify timeouts and exceptions so far (each scored 0.0)."""
        return self.verifier.stats["timeout"] + self.verifier.stats["error"]

    def score_one(self, query: Query) -> float:
        return self._verdict(query)[0]

    def _verdict(self, query: Query) -> tuple[float, str | None]:
        """The verifier's verdict on the part of the response ``think`` reads; a response that
        never closes its reasoning (``think=require``) is read as no answer: 0.0, or NaN where
        the reference gives none (what the response cannot change)."""
        text = after_think(query.response, self.think)
        return self.verifier.verdict(text or "", query.reference, _asks(query))

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """Scores, with this call's verifier counts (``fast``, ``timeout``…) as ``stats`` and
        each query math-verify timed out or raised on as a failure (``failed``, ``errors``
        with the score it got: 0.0, or NaN when the reference was the problem)."""
        before = Counter(self.verifier.stats)
        scores, errors = [], []
        for i, q in enumerate(queries):
            value, problem = self._verdict(q)
            scores.append(value)
            if problem is not None:
                errors.append({"index": i, "error": problem, "score": value})
        stats: dict[str, Any] = {"queries": len(queries), **(self.verifier.stats - before)}
        if errors:
            stats.update(failed=len(errors), errors=errors)
        return ScoreResult(scores, stats=stats)


def _asks(query: Query) -> bool:
    """Whether the query's prompt asks for a percentage (:func:`asks_percent`)."""
    return asks_percent(prompt_text(query.prompt))


@lru_cache(maxsize=8)
def _verifier(strict: bool, timeout: float, fast: bool) -> MathVerifier:
    return MathVerifier(strict=strict, timeout=timeout, fast=fast)


def compute_score(
    solution: str,
    ground_truth: Any,
    strict: bool = True,
    timeout: float = 5,
    fast: bool = True,
    prompt: str = "",
    think: str = "whole",
) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution``'s final answer matches ``ground_truth``
    (a string or a list of acceptable answers), else 0.0; NaN when ``ground_truth`` is empty.
    ``prompt``: the question, when at hand (a response's ``42%`` is 42 where it asks for a
    percentage, else 0.42 unless the gold is a percentage). ``think="require"``: only the text
    after the last ``</think>`` is read; none → 0.0 (NaN still where the reference gives none).

    Uses a shared :class:`MathVerifier` per option set, so golds are parsed once.
    """
    text = after_think(solution, as_choice("think", "math", think, THINK_MODES))
    return _verifier(strict, timeout, fast).check(text or "", ground_truth, asks_percent(prompt))

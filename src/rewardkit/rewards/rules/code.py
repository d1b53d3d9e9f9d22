"""Code correctness: run the response's Python against unit tests in a sandbox; reward = pass rate.

The response's code is the last fenced ```python block (also ```py / ```python3), else the last
unlabelled fenced block, else the whole text. The tests are the query's ``reference``, in any
form :func:`rewardkit.rewards.sandbox.run_tests` reads (assert code, ``{"tests": [...]}``,
``{"inputs", "outputs", "fn_name"?}``, HumanEval's ``{"test", "entry_point"}``). Each solution
runs in its own sandboxed process tree (see ``docs/sandbox.md``); a query without a reference
scores NaN. By default only tests whose verdict the code cannot forge are accepted (stdin/stdout,
``fn_name`` calls, ``assert EXPR == LITERAL``); ``allow_in_process=True`` also runs tests that
must run beside the code (other asserts, ``def test_*``, HumanEval's ``check``).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import no_reference
from rewardkit.rewards.sandbox import (
    DEFAULT_HIDE,
    Sandbox,
    SandboxResult,
    SandboxUnavailableError,
    TestPlan,
    parse_tests,
)
from rewardkit.types import Query, Reward, ScoreResult

__all__ = ["CodeReward", "compute_score", "extract_code", "plan_tests"]

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def extract_code(text: str) -> str:
    """The last ```python fenced block of ``text``; else the last unlabelled block; else ``text``."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    for wanted in (_PYTHON_TAGS, {""}):
        chosen = [body for tag, body in blocks if tag in wanted]
        if chosen:
            return chosen[-1]
    return text


class CodeReward(Reward):
    """Fraction of the reference's unit tests that the response's code passes, in a sandbox.

    Options (defaults): ``timeout_s`` wall clock per sandboxed process (10), ``memory_mb`` per
    process and per tree (1024), ``workers`` solutions run at once (CPU count),
    ``test_timeout_s`` per Python test (None), ``max_procs`` (32), ``cpu_s`` (timeout_s + 1),
    ``allow_network`` (False: refuse to run where a private network namespace cannot be made),
    ``allow_subprocess`` (False), ``allow_in_process`` (False: a reference with tests that must
    run beside the code, whose verdict the code can forge, scores NaN with an error; True runs
    them, see ``docs/sandbox.md``). Scores are in [0, 1]; NaN when a query has no usable
    reference. A query whose run fails scores NaN and its error is in ``score_full(...).stats``
    (``failed``, ``errors``: index and message); the other queries are scored. Where the sandbox cannot isolate, scoring raises
    :class:`~rewardkit.rewards.sandbox.SandboxUnavailableError` (fail closed).
    """

    def __init__(
        self,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        workers: int | None = None,
        test_timeout_s: float | None = None,
        max_procs: int = 32,
        cpu_s: float | None = None,
        allow_network: bool = False,
        allow_subprocess: bool = False,
        fsize_mb: int = 16,
        disk_mb: int = 64,
        max_output_bytes: int = 1 << 20,
        hide: Sequence[str] = DEFAULT_HIDE,
        allow_in_process: bool = False,
    ) -> None:
        try:
            self.sandbox = Sandbox(
                timeout_s=float(timeout_s),
                memory_mb=int(memory_mb),
                test_timeout_s=test_timeout_s,
                max_procs=int(max_procs),
                cpu_s=cpu_s,
                allow_network=bool(allow_network),
                allow_subprocess=bool(allow_subprocess),
                fsize_mb=int(fsize_mb),
                disk_mb=int(disk_mb),
                max_output_bytes=int(max_output_bytes),
                hide=tuple(hide),
            )
        except (TypeError, ValueError) as e:
            raise SpecError(f"rule:code: {e}") from e
        self.workers = int(workers) if workers else (os.cpu_count() or 1)
        if self.workers < 1:
            raise SpecError(f"rule:code workers must be >= 1, got {workers!r}")
        if not isinstance(allow_in_process, bool):
            raise SpecError(
                f"rule:code allow_in_process must be true or false, got {allow_in_process!r}"
            )
        self.allow_in_process = allow_in_process
        self.name = "rule:code"

    def identity(self) -> dict[str, Any]:
        limits = self.sandbox.limits()
        for key in ("python", "workers"):
            limits.pop(key, None)
        return {
            "class": "CodeReward",
            "version": 2,
            "allow_in_process": self.allow_in_process,
            **limits,
        }

    def run(self, query: Query) -> SandboxResult | None:
        """The full sandbox result for one query (None when it has no reference: None, blank
        text or an empty list, :func:`~rewardkit.rewards.rules._common.no_reference`).

        Raises ValueError for an unusable reference or one with in-process tests that this
        reward does not allow."""
        if no_reference(query.reference):
            return None
        plan = plan_tests(query.reference, self.allow_in_process)
        return self.sandbox.run_tests(extract_code(query.response), plan)

    def _one(self, query: Query) -> tuple[float, str | None]:
        """(score, error) of one query; a failure of this query never escapes as an exception,
        except that the sandbox cannot isolate on this machine (then nothing can be scored)."""
        try:
            result = self.run(query)
        except SandboxUnavailableError:
            raise
        except Exception as e:  # this item alone fails: NaN with the reason
            return math.nan, f"{type(e).__name__}: {e}"
        return (math.nan, None) if result is None else (result.fraction, None)

    def score_items(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[int, str]]:
        """Scores of ``queries`` and the error of each query that failed (index → message)."""
        if len(queries) > 1 and self.workers > 1:
            with ThreadPoolExecutor(min(self.workers, len(queries))) as pool:
                done = list(pool.map(self._one, queries))
        else:
            done = [self._one(q) for q in queries]
        scores = np.array([value for value, _ in done], dtype=np.float64)
        errors = {i: err for i, (_, err) in enumerate(done) if err is not None}
        if errors:
            first = min(errors)
            log.warning(
                "rule:code: %d of %d queries failed and score NaN (query %d: %s)",
                len(errors),
                len(queries),
                first,
                errors[first],
            )
        return scores, errors

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        scores, errors = self.score_items(queries)
        stats = {
            "queries": len(queries),
            "failed": len(errors),
            "errors": [{"index": i, "error": e} for i, e in sorted(errors.items())],
        }
        return ScoreResult(scores, stats=stats)


def plan_tests(reference: Any, allow_in_process: bool = False) -> TestPlan:
    """The test plan of ``reference``; ValueError when it is unusable, or when it has tests whose
    verdict the code under test could forge (in-process tests) and ``allow_in_process`` is False."""
    plan = parse_tests(reference)
    if plan.forgeable and not allow_in_process:
        raise ValueError(
            f"{plan.forgeable} of {plan.total} tests run beside the code under test, which can "
            "forge their verdict; use stdin/stdout cases, fn_name calls or "
            "`assert EXPR == LITERAL` tests, or pass allow_in_process=true (docs/sandbox.md)"
        )
    return plan


def compute_score(
    solution: str, ground_truth: Any, allow_in_process: bool = False, **options: Any
) -> float:
    """verl-shaped scorer: pass fraction of ``solution`` (model text) on ``ground_truth`` tests.

    ``ground_truth`` is anything :func:`~rewardkit.rewards.sandbox.run_tests` reads, including a
    JSON string (verl's code datasets store ``{"inputs", "outputs"}`` that way). ``options`` are
    :class:`~rewardkit.rewards.sandbox.Sandbox` settings. Raises ValueError for unusable tests
    and for in-process tests unless ``allow_in_process`` (see :class:`CodeReward`).
    """
    if ground_truth is None:
        raise ValueError("compute_score needs ground_truth tests")
    options.pop("workers", None)
    plan = plan_tests(ground_truth, allow_in_process)
    result = Sandbox(**options).run_tests(extract_code(solution), plan)
    value = result.fraction
    return 0.0 if math.isnan(value) else float(value)

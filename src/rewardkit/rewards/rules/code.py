"""Code correctness: run the response's Python against unit tests in a sandbox; reward = pass rate.

The response's code is the last fenced ```python block (also ```py / ```python3), else the last
unlabelled fenced block, else the whole text. The tests are the query's ``reference``, in any
form :func:`rewardkit.rewards.sandbox.run_tests` reads (assert code, ``{"tests": [...]}``,
``{"inputs", "outputs", "fn_name"?}``, HumanEval's ``{"test", "entry_point"}``). Each solution
runs in its own sandboxed process tree (see ``docs/sandbox.md``); a query without a reference
scores NaN.
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
from rewardkit.rewards.sandbox import (
    DEFAULT_HIDE,
    Sandbox,
    SandboxResult,
    TestPlan,
    parse_tests,
)
from rewardkit.types import Query, Reward

__all__ = ["CodeReward", "compute_score", "extract_code"]

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
    ``allow_subprocess`` (False). Scores are in [0, 1]; NaN when a query has no usable reference.
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
        self.name = "rule:code"

    def identity(self) -> dict[str, Any]:
        limits = self.sandbox.limits()
        for key in ("python", "workers"):
            limits.pop(key, None)
        return {"class": "CodeReward", "version": 1, **limits}

    def run(self, query: Query) -> SandboxResult | None:
        """The full sandbox result for one query (None when it has no usable reference)."""
        plan = self._plan(query)
        if plan is None:
            return None
        return self.sandbox.run_tests(extract_code(query.response), plan)

    def _plan(self, query: Query) -> TestPlan | None:
        if query.reference is None:
            return None
        try:
            return parse_tests(query.reference)
        except ValueError as e:
            log.warning("rule:code: unusable reference (%s); scoring NaN", e)
            return None

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        scores = np.full(len(queries), np.nan, dtype=np.float64)
        jobs = [(i, plan) for i, q in enumerate(queries) if (plan := self._plan(q)) is not None]

        def one(job: tuple[int, TestPlan]) -> tuple[int, float]:
            i, plan = job
            result = self.sandbox.run_tests(extract_code(queries[i].response), plan)
            return i, result.fraction

        if len(jobs) > 1 and self.workers > 1:
            with ThreadPoolExecutor(min(self.workers, len(jobs))) as pool:
                done = list(pool.map(one, jobs))
        else:
            done = [one(job) for job in jobs]
        for i, value in done:
            scores[i] = value
        return scores


def compute_score(solution: str, ground_truth: Any, **options: Any) -> float:
    """verl-shaped scorer: pass fraction of ``solution`` (model text) on ``ground_truth`` tests.

    ``ground_truth`` is anything :func:`~rewardkit.rewards.sandbox.run_tests` reads, including a
    JSON string (verl's code datasets store ``{"inputs", "outputs"}`` that way). ``options`` are
    :class:`~rewardkit.rewards.sandbox.Sandbox` settings. Raises ValueError for unusable tests.
    """
    if ground_truth is None:
        raise ValueError("compute_score needs ground_truth tests")
    options.pop("workers", None)
    result = Sandbox(**options).run_tests(extract_code(solution), ground_truth)
    value = result.fraction
    return 0.0 if math.isnan(value) else float(value)

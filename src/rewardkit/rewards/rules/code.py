"""Code correctness: run the response's Python against unit tests in a sandbox; reward = pass rate.

The response's code is the last fenced ```python block (also ```py / ```python3), else the last
unlabelled fenced block, else the whole text. The tests are the query's ``reference``, in any
form :func:`rewardkit.rewards.sandbox.run_tests` reads (assert code, ``{"tests": [...]}``,
``{"inputs", "outputs", "fn_name"?}``, HumanEval's ``{"test", "entry_point"}``, open-r1's
``{"language": "python", "test_cases": [{"input", "output"}, ...]}``). Each solution
runs in its own sandboxed process tree (see ``docs/sandbox.md``); a query without a reference
scores NaN. By default only tests whose verdict the code cannot forge are accepted (stdin/stdout,
``fn_name`` calls, ``assert EXPR == LITERAL``); ``allow_in_process=True`` also runs tests that
must run beside the code (other asserts, ``def test_*``, test classes, HumanEval's ``check``
with loops, and any statement of the test code that checks by raising or exiting, such as
``if f(2) != 4: raise ...``: no such statement is ever run as set-up, where its failure would
not count).
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
from rewardkit.rewards.rules._common import as_bool, no_reference
from rewardkit.rewards.sandbox import (
    DEFAULT_HIDE,
    Sandbox,
    SandboxError,
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
    ``test_timeout_s`` per Python test (None), ``total_timeout_s`` all stdin/stdout cases (or
    runs of Python tests) of one response (None: ``max(3 × timeout_s, 0.5 s × cases)``),
    ``max_procs`` (32), ``cpu_s`` (timeout_s + 1), ``hide`` (directories covered inside the
    file-system view),
    ``allow_network`` (False: refuse to run where a private network namespace cannot be made),
    ``allow_subprocess`` (False), ``allow_in_process`` (False: a reference with tests that must
    run beside the code, whose verdict the code can forge, scores NaN with an error; True runs
    them, see ``docs/sandbox.md``). Scores are in [0, 1]; NaN only when the reward does not
    apply, which the response cannot change: no usable reference, or the machine failed (a
    sandbox error). Its error is in ``score_full(...).stats`` (``failed``, ``errors``: index and
    message); a response whose judging failed scores 0.0 and is listed there with its
    ``score``; the other queries are scored. Where the sandbox cannot isolate, scoring raises
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
        total_timeout_s: float | None = None,
    ) -> None:
        # as_bool: bool("off") is True, which gave the code under test the network
        network = as_bool("allow_network", "code", allow_network)
        subprocess = as_bool("allow_subprocess", "code", allow_subprocess)
        hidden = _hide_paths(hide)
        try:
            self.sandbox = Sandbox(
                timeout_s=float(timeout_s),
                memory_mb=int(memory_mb),
                test_timeout_s=test_timeout_s,
                total_timeout_s=None if total_timeout_s is None else float(total_timeout_s),
                max_procs=int(max_procs),
                cpu_s=cpu_s,
                allow_network=network,
                allow_subprocess=subprocess,
                fsize_mb=int(fsize_mb),
                disk_mb=int(disk_mb),
                max_output_bytes=int(max_output_bytes),
                hide=hidden,
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
            "version": 3,
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
            if no_reference(query.reference):
                return math.nan, None
            plan = plan_tests(query.reference, self.allow_in_process)
        except Exception as e:  # the reference: the reward does not apply to this item
            return math.nan, f"{type(e).__name__}: {e}"
        return _judge(self.sandbox, query.response, plan)

    def score_items(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[int, str]]:
        """Scores of ``queries`` and the error of each query that failed (index → message)."""
        if len(queries) > 1 and self.workers > 1:
            with ThreadPoolExecutor(min(self.workers, len(queries))) as pool:
                done = list(pool.map(self._one, queries))
        else:
            done = [self._one(q) for q in queries]
        scores = np.array([value for value, _ in done], dtype=np.float64)
        errors = {i: err for i, (_, err) in enumerate(done) if err is not None}
        failed = [i for i in errors if math.isnan(scores[i])]
        if errors:
            first = min(errors)
            log.warning(
                "rule:code: %d of %d queries of this call failed (%d score NaN; the first, "
                "query %d of the call counted from 1: %s)",
                len(errors),
                len(queries),
                len(failed),
                first + 1,
                errors[first],
            )
        return scores, errors

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        scores, errors = self.score_items(queries)
        listed = []
        for i, e in sorted(errors.items()):
            entry: dict[str, Any] = {"index": i, "error": e}
            if not math.isnan(scores[i]):
                entry["score"] = float(scores[i])  # judging the response failed: 0.0, not NaN
            listed.append(entry)
        stats = {"queries": len(queries), "failed": len(errors), "errors": listed}
        return ScoreResult(scores, stats=stats)


def _hide_paths(hide: Any) -> tuple[str, ...]:
    """``hide`` as absolute paths: a list, or one string of comma-separated paths (a spec's
    ``hide=/opt,/srv``; ``tuple("/opt")`` made four one-character paths)."""
    paths = hide.split(",") if isinstance(hide, str) else hide
    if not isinstance(paths, Sequence) or not all(isinstance(p, str) for p in paths):
        raise SpecError(f"rule:code hide must be a list of absolute paths, got {hide!r}")
    out = tuple(p.strip() for p in paths if p.strip())
    bad = [p for p in out if not p.startswith("/")]
    if bad:
        raise SpecError(f"rule:code hide takes absolute paths, got {bad[0]!r}")
    return out


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


def _judge(sandbox: Sandbox, response: str, plan: TestPlan) -> tuple[float, str | None]:
    """(pass fraction, error) of ``response`` on ``plan``. What the code does decides only the
    fraction: anything it makes go wrong in judging it fails it (0.0, with the error), so no
    response can score NaN, which composites would leave out. NaN only when the machine failed
    (:class:`~rewardkit.rewards.sandbox.SandboxError`, ``OSError``); a machine that cannot
    isolate raises."""
    try:
        result = sandbox.run_tests(extract_code(response), plan)
    except SandboxUnavailableError:
        raise
    except (SandboxError, OSError) as e:  # the machine, not the response
        return math.nan, f"{type(e).__name__}: {e}"
    except Exception as e:  # judging this response failed: it does not pass
        return 0.0, f"judging failed, scored 0.0: {type(e).__name__}: {e}"
    value = result.fraction
    return (0.0 if math.isnan(value) else float(value)), None


def compute_score(
    solution: str, ground_truth: Any, allow_in_process: bool = False, **options: Any
) -> float:
    """verl-shaped scorer: pass fraction of ``solution`` (model text) on ``ground_truth`` tests.

    ``ground_truth`` is anything :func:`~rewardkit.rewards.sandbox.run_tests` reads, including a
    JSON string (verl's code datasets store ``{"inputs", "outputs"}`` that way). ``options`` are
    :class:`~rewardkit.rewards.sandbox.Sandbox` settings. Raises ValueError for unusable tests
    and for in-process tests unless ``allow_in_process`` (see :class:`CodeReward`), and
    :class:`~rewardkit.rewards.sandbox.SandboxError` when the machine fails; nothing the
    solution does makes it raise or return NaN (a run that cannot be judged scores 0.0).
    """
    if ground_truth is None:
        raise ValueError("compute_score needs ground_truth tests")
    options.pop("workers", None)
    plan = plan_tests(ground_truth, allow_in_process)
    value, error = _judge(Sandbox(**options), solution, plan)
    if math.isnan(value):
        raise SandboxError(f"rule:code: the sandbox failed: {error}")
    if error is not None:
        log.warning("rule:code: %s", error)
    return value

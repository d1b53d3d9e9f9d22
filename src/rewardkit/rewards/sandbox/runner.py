"""The sandbox's policy and entry points: :class:`Sandbox`, :func:`run_tests`, :func:`sandbox_info`.

A :class:`Sandbox` holds limits and policy; each run is a fresh process tree
(:mod:`~rewardkit.rewards.sandbox.process`). Verdicts are made here, in the trusted parent
(:mod:`~rewardkit.rewards.sandbox.verdict`): stdin/stdout output and every value or call result
is compared with expected values the sandbox never sees. See ``docs/sandbox.md``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

from rewardkit.rewards.sandbox.leaks import isolated_runs
from rewardkit.rewards.sandbox.plan import TestPlan, parse_tests
from rewardkit.rewards.sandbox.process import spawn
from rewardkit.rewards.sandbox.results import (
    ProcessResult,
    SandboxResult,
    SandboxUnavailableError,
)
from rewardkit.rewards.sandbox.verdict import same_output, step_statuses

__all__ = ["DEFAULT_HIDE", "Sandbox", "run_tests", "sandbox_info"]

log = logging.getLogger(__name__)

#: Directories covered by an empty read-only tmpfs where they lie inside the sandbox's
#: file-system view (which holds only the interpreter and the system libraries: none of these
#: is in it by default, so they matter only when the interpreter's prefix holds one).
DEFAULT_HIDE: tuple[str, ...] = (
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run",
    "/root",
    "/home",
    "/mnt",
    "/media",
    "/srv",
)


@dataclass(frozen=True)
class Sandbox:
    """Limits and policy for running untrusted Python; every run is a fresh process tree.

    Limits (defaults in brackets): ``timeout_s`` wall clock per process [10]; ``cpu_s`` CPU seconds
    per process [``timeout_s`` + 1]; ``memory_mb`` address space per process and memory of the whole
    tree [1024]; ``max_procs`` processes + threads [32]; ``fsize_mb`` largest file written [16];
    ``disk_mb`` / ``max_files`` size and inodes of the working directory [64 / 1024]; ``nofile``
    open files [64]; ``max_output_bytes`` stdout and stderr each [1 MiB]; ``test_timeout_s`` per
    Python test, None for none [None]; ``total_timeout_s`` wall clock of all stdin/stdout cases of
    one response (or of all its runs of Python tests, when some tests need a run of their own:
    ``leaks.py``), None for ``max(3 × timeout_s, 0.5 s × cases)`` [None] (cases not started by then
    are skipped, the one running is cut: all fail). Policy: ``allow_network`` [False: refuse to run
    without a private network namespace]; ``allow_subprocess`` [False: process-creating functions
    raise; True also puts ``/bin``, ``/usr/bin``, ``/usr/local/bin`` in the file-system view];
    ``hide`` directories masked inside the view [:data:`DEFAULT_HIDE`]; ``python`` interpreter [this
    one]; ``workers`` stdin/stdout cases in parallel within one :meth:`run_tests` [1];
    ``early_stop`` skip remaining stdin/stdout cases after one times out [True]; ``use_namespaces``
    [True; False is a degraded mode for debugging that needs ``allow_network=True``, shows the whole
    host file system and leaves it writable wherever the sandbox uid may write; it logs a warning].
    """

    timeout_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 1024
    max_procs: int = 32
    fsize_mb: int = 16
    disk_mb: int = 64
    max_files: int = 1024
    nofile: int = 64
    max_output_bytes: int = 1 << 20
    test_timeout_s: float | None = None
    total_timeout_s: float | None = None
    allow_network: bool = False
    allow_subprocess: bool = False
    hide: tuple[str, ...] = DEFAULT_HIDE
    python: str | None = None
    workers: int = 1
    early_stop: bool = True
    use_namespaces: bool = True

    def __post_init__(self) -> None:
        if sys.platform != "linux":
            raise SandboxUnavailableError("the rewardkit sandbox needs Linux")
        for name in ("timeout_s", "memory_mb", "max_procs", "fsize_mb", "disk_mb", "max_files"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Sandbox.{name} must be > 0, got {getattr(self, name)!r}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"Sandbox.cpu_s must be > 0, got {self.cpu_s!r}")
        for name in ("test_timeout_s", "total_timeout_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Sandbox.{name} must be > 0, got {value!r}")
        if self.workers < 1 or self.nofile < 16 or self.max_output_bytes < 1:
            raise ValueError("Sandbox: workers >= 1, nofile >= 16, max_output_bytes >= 1")
        object.__setattr__(self, "hide", tuple(self.hide))
        if not self.use_namespaces:
            log.warning(
                "rewardkit sandbox: use_namespaces=False: the code under test sees the host's "
                "whole file system and network, and may write wherever its uid can "
                "(a debugging mode, docs/sandbox.md)"
            )

    # -- identity --------------------------------------------------------------------------------

    def limits(self) -> dict[str, Any]:
        """Every setting as a plain dict (what a reward's identity records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def cpu_limit_s(self) -> int:
        """The CPU-time soft limit in whole seconds."""
        return math.ceil(self.cpu_s if self.cpu_s is not None else self.timeout_s + 1)

    # -- running -----------------------------------------------------------------------------------

    def run(
        self, code: str, stdin: str | bytes | None = None, timeout_s: float | None = None
    ) -> ProcessResult:
        """Run ``code`` as a script with ``stdin`` (closed when None); stdout is returned.
        ``timeout_s`` shortens this run's wall clock (never past ``self.timeout_s``)."""
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        return spawn(self, {"mode": "script", "code": code}, data, timeout_s)

    def total_budget_s(self, cases: int) -> float:
        """Wall clock of all stdin/stdout cases (or runs of Python tests) of one response
        (``total_timeout_s``)."""
        if self.total_timeout_s is not None:
            return float(self.total_timeout_s)
        return max(3.0 * self.timeout_s, 0.5 * cases)

    def run_tests(self, code: str, tests: Any) -> SandboxResult:
        """Run ``code`` against ``tests`` (see :func:`run_tests`)."""
        plan = tests if isinstance(tests, TestPlan) else parse_tests(tests)
        if plan.kind == "stdio":
            return self._run_stdio(code, plan)
        return self._run_steps(code, plan)

    def _run_steps(self, code: str, plan: TestPlan) -> SandboxResult:
        start = time.monotonic()
        # a test whose answer another test shows is judged in a run without that test (leaks.py);
        # all runs of one response share total_timeout_s, as stdin/stdout cases do
        extra = isolated_runs(plan)
        deadline = start + self.total_budget_s(1 + len(extra))
        statuses, proc, malformed = self._spawn_steps(code, plan, plan.steps)
        killed_by = proc.killed_by
        for judged, steps in extra:
            left = deadline - time.monotonic()
            if left <= 0:
                for i in judged:
                    statuses[i] = "skipped"
                killed_by = "total_timeout"
                continue
            alone, other, bad = self._spawn_steps(code, plan, steps, min(self.timeout_s, left))
            order = [s["index"] for s in steps if s["kind"] != "setup"]
            for i in judged:
                statuses[i] = alone[order.index(i)]
            malformed += bad
            killed_by = killed_by or other.killed_by
        return SandboxResult(
            passed=sum(s == "passed" for s in statuses),
            total=plan.total,
            statuses=statuses,
            stderr=proc.stderr,
            timed_out=killed_by in ("timeout", "total_timeout"),
            killed_by=killed_by,
            wall_s=time.monotonic() - start,
            isolation=proc.isolation,
            kinds=plan.kinds,
            malformed=malformed,
        )

    def _spawn_steps(
        self,
        code: str,
        plan: TestPlan,
        steps: list[dict[str, Any]],
        timeout_s: float | None = None,
    ) -> tuple[list[str], ProcessResult, int]:
        """(statuses of the tests in ``steps``, in order; the process; malformed lines) of one
        run. The expected values (``plan.expected``) stay here: the sandbox gets what it runs."""
        payload = {
            "mode": "tests",
            "code": code,
            "steps": steps,
            "fn_name": plan.fn_name,
            "test_timeout": self.test_timeout_s,
        }
        proc = spawn(self, payload, None, timeout_s)
        if proc.killed_by == "timeout":
            missing = "timeout"
        elif proc.killed_by:
            missing = f"killed: {proc.killed_by}"
        else:
            missing = "not_run"
        part = TestPlan("steps", steps, fn_name=plan.fn_name, expected=plan.expected)
        statuses, _, malformed = step_statuses(part, proc.stdout, missing)
        return statuses, proc, malformed

    def _run_stdio(self, code: str, plan: TestPlan) -> SandboxResult:
        start = time.monotonic()
        deadline = start + self.total_budget_s(len(plan.cases))
        stop, spent = threading.Event(), threading.Event()
        results: list[ProcessResult | None] = [None] * len(plan.cases)

        def one(i: int) -> None:
            if self.early_stop and stop.is_set():
                return
            left = deadline - time.monotonic()
            if left <= 0:  # the response's budget is spent: this case fails unrun
                spent.set()
                return
            stdin, _ = plan.cases[i]
            results[i] = res = self.run(code, stdin, timeout_s=min(self.timeout_s, left))
            if res.killed_by == "timeout":
                stop.set()
                if left < self.timeout_s:
                    spent.set()

        if self.workers > 1 and len(plan.cases) > 1:
            with ThreadPoolExecutor(min(self.workers, len(plan.cases))) as pool:
                list(pool.map(one, range(len(plan.cases))))
        else:
            for i in range(len(plan.cases)):
                one(i)
        statuses: list[str] = []
        stderr, killed_by, isolation = "", None, {}
        for res, (_, expected) in zip(results, plan.cases, strict=True):
            if res is None:
                statuses.append("skipped")
                continue
            isolation = isolation or res.isolation
            if res.killed_by:
                statuses.append(
                    "timeout" if res.killed_by == "timeout" else f"killed: {res.killed_by}"
                )
                killed_by = killed_by or res.killed_by
            elif res.returncode != 0:
                statuses.append(f"error: exit status {res.returncode}")
            else:
                statuses.append("passed" if same_output(res.stdout, expected) else "failed")
            if statuses[-1] != "passed" and not stderr:
                stderr = res.stderr
        if spent.is_set():
            killed_by = "total_timeout"
        return SandboxResult(
            passed=sum(s == "passed" for s in statuses),
            total=len(statuses),
            statuses=statuses,
            stderr=stderr,
            timed_out=any(r is not None and r.timed_out for r in results) or spent.is_set(),
            killed_by=killed_by,
            wall_s=time.monotonic() - start,
            isolation=isolation,
            kinds=plan.kinds,
        )


def run_tests(
    code: str,
    tests: Any,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: float | None = None,
    test_timeout_s: float | None = None,
    total_timeout_s: float | None = None,
    max_procs: int = 32,
    fsize_mb: int = 16,
    disk_mb: int = 64,
    max_output_bytes: int = 1 << 20,
    allow_network: bool = False,
    allow_subprocess: bool = False,
    workers: int = 1,
    **options: Any,
) -> SandboxResult:
    """Run ``code`` against ``tests`` in a fresh sandbox; a pure function of its arguments.

    ``tests`` is one of:

    - a string of Python test code: each top-level ``assert`` and each top-level ``def test*``
      is one test, every other statement is set-up run in order (a string with neither is one
      test that passes when it runs cleanly); a string holding a JSON object is read as a dict;
    - ``{"tests": [str, ...]}`` (or ``test_list``, MBPP; optional ``setup``): each string one test;
    - ``{"test": str, "entry_point": name}`` (HumanEval): one test, ``check(entry_point)``;
    - ``{"inputs": [...], "outputs": [...]}``: stdin/stdout cases, one process each; the
      stripped stdout must equal the stripped expected output (trailing spaces per line ignored)
      and the program must exit 0;
    - the same with ``"fn_name"``: call that function (or ``Solution().fn_name``) with the
      inputs as arguments (a string input is one JSON value per line) and compare the return
      value with the output (JSON-decoded when a string).

    Raises ValueError for a malformed ``tests``, :class:`SandboxUnavailableError` when network
    isolation is missing and ``allow_network`` is False; the solution never makes it raise.
    """
    sandbox = Sandbox(
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        cpu_s=cpu_s,
        test_timeout_s=test_timeout_s,
        total_timeout_s=total_timeout_s,
        max_procs=max_procs,
        fsize_mb=fsize_mb,
        disk_mb=disk_mb,
        max_output_bytes=max_output_bytes,
        allow_network=allow_network,
        allow_subprocess=allow_subprocess,
        workers=workers,
        **options,
    )
    return sandbox.run_tests(code, tests)


_info_cache: dict[tuple[str, bool], dict[str, Any]] = {}


def sandbox_info(python: str | None = None, allow_network: bool = False) -> dict[str, Any]:
    """The isolation this machine gives (namespaces, cgroups, uid, file system), by a real run.

    Raises :class:`SandboxUnavailableError` like a real run would.
    """
    key = (os.path.realpath(python or sys.executable), allow_network)
    if key not in _info_cache:
        res = Sandbox(python=python, allow_network=allow_network, timeout_s=10).run("pass")
        _info_cache[key] = dict(res.isolation)
    return dict(_info_cache[key])

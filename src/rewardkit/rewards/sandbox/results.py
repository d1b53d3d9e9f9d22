"""What a sandbox run gives back: errors, one process's outcome, and a solution's test results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rewardkit.errors import RewardkitError

__all__ = [
    "ProcessResult",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailableError",
]


class SandboxError(RewardkitError, RuntimeError):
    """The sandbox itself could not be set up or run (never the solution's fault)."""


class SandboxUnavailableError(SandboxError):
    """Isolation the caller required is not available on this machine (fail closed)."""


@dataclass
class ProcessResult:
    """What one sandboxed process did."""

    returncode: int | None
    signal: int | None
    stdout: bytes
    stderr: str
    timed_out: bool
    killed_by: str | None
    wall_s: float
    cpu_s: float | None
    isolation: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the process exited 0 on its own."""
        return self.returncode == 0 and self.killed_by is None


@dataclass
class SandboxResult:
    """Outcome of running one solution against its tests.

    ``statuses`` has one entry per test: ``"passed"``, ``"failed"`` (assertion or wrong output),
    ``"timeout"``, ``"error: <Exception>: <message>"``, ``"killed: <reason>"``, ``"not_run"`` or
    ``"skipped"`` (stdin/stdout case not run after an earlier case timed out).
    ``kinds`` says for each test where its verdict was made: ``"stdio"``, ``"call"`` and
    ``"value"`` are compared in the trusted parent (forgery-proof); ``"in_process"`` tests run
    beside the solution, which can forge their verdict (see ``docs/sandbox.md``).
    ``killed_by`` is why the sandbox killed a process (``"timeout"``, ``"cpu"``, ``"memory"``,
    ``"file_size"``, ``"output_limit"``, ``"signal:SIGSEGV"``…), None when nothing was killed.
    ``malformed`` counts result-channel lines that were not well-formed results (ignored).
    """

    passed: int
    total: int
    statuses: list[str]
    stderr: str = ""
    timed_out: bool = False
    killed_by: str | None = None
    wall_s: float = 0.0
    isolation: dict[str, Any] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)
    malformed: int = 0

    @property
    def fraction(self) -> float:
        """Fraction of tests passed (NaN when there are no tests)."""
        return self.passed / self.total if self.total else math.nan

    @property
    def forgeable(self) -> int:
        """Number of tests whose verdict came from inside the sandbox (``in_process``)."""
        return sum(k == "in_process" for k in self.kinds)

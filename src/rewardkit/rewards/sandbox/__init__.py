"""Run untrusted Python in a contained child process: the sandbox behind ``rule:code``.

Each run is one fresh process tree::

    rewardkit ──Popen──▶ launcher (joins cgroups, unshare(net, mnt, pid, ipc, uts))
                           └─fork─▶ init (pid 1 of the new pid namespace; pivot_root into a
                                      fresh read-only root: interpreter, system libraries,
                                      the work directory; nothing else of the host)
                                      └─fork─▶ solution (fresh uid, rlimits, no_new_privs,
                                                 seccomp filter, exec ``python -I -S -B`` +
                                                 the test harness)

Modules: ``runner`` (:class:`Sandbox`, :func:`run_tests`, :func:`sandbox_info`), ``plan`` (test
references → :class:`TestPlan`; ``testcode`` sorts test code into set-up and checks), ``verdict``
(the parent-side comparison of what the sandbox sent back), ``leaks`` (tests whose answer
another test shows, judged in a run of their own), ``process`` (one process tree), ``view``
(which host paths the sandbox sees), ``cgroups`` (cgroups and clean-up), ``results``;
``launcher.py`` and ``harness.py`` are the standard-library programs that run in the child processes
(read as text, never imported by rewardkit).

Verdicts are made in the parent: stdin/stdout, call-style and ``assert EXPR == LITERAL`` tests
cannot be forged by the code under test; other Python tests run beside it and can be
(``SandboxResult.kinds``). What is contained, how, and what is not guaranteed:
``docs/sandbox.md``.
"""

from __future__ import annotations

from rewardkit.rewards.sandbox.plan import TestPlan, parse_tests
from rewardkit.rewards.sandbox.process import _UID_BASE, _UID_SPAN
from rewardkit.rewards.sandbox.results import (
    ProcessResult,
    SandboxError,
    SandboxResult,
    SandboxUnavailableError,
)
from rewardkit.rewards.sandbox.runner import DEFAULT_HIDE, Sandbox, run_tests, sandbox_info

__all__ = [
    "DEFAULT_HIDE",
    "_UID_BASE",
    "_UID_SPAN",
    "ProcessResult",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailableError",
    "TestPlan",
    "parse_tests",
    "run_tests",
    "sandbox_info",
]

"""The sandbox fails closed where it cannot isolate, and the test suite says so loudly.

These tests run on every Linux machine, isolation or not: they make namespace creation really
fail in a subprocess (``tests/no_isolation.py``) instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HELPER = str(TESTS / "no_isolation.py")

_PROBE = """
import numpy as np
from rewardkit.rewards.rules.code import CodeReward
from rewardkit.rewards.sandbox import SandboxUnavailableError, run_tests, sandbox_info
from rewardkit.types import Query

for name, call in (
    ("run_tests", lambda: run_tests("def f():\\n    return 1\\n", "assert f() == 1")),
    ("sandbox_info", sandbox_info),
    ("rule:code", lambda: CodeReward(timeout_s=5).score([Query([], "x = 1", "assert x == 1")])),
):
    try:
        call()
    except SandboxUnavailableError as e:
        print(name, "REFUSED", e)
    else:
        print(name, "RAN")
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, **extra}


def _without_isolation(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, HELPER, *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=REPO,
        timeout=120,
    )
    if proc.returncode == 3 and "cannot block namespaces" in proc.stderr:
        # The machine forbids the simulation itself; then it cannot isolate either: real case.
        proc = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=_env(**env), cwd=REPO
        )
    return proc


def test_refuses_to_run_when_network_isolation_is_unavailable():
    proc = _without_isolation("-c", _PROBE)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("run_tests", "sandbox_info", "rule:code"):
        line = next((x for x in lines if x.startswith(name + " ")), "")
        assert "REFUSED" in line and "no network isolation" in line, (name, proc.stdout)


def test_refuses_without_namespaces_unless_network_is_allowed():
    from rewardkit.rewards.sandbox import SandboxUnavailableError, run_tests

    with pytest.raises(SandboxUnavailableError, match="network"):
        run_tests("def f():\n    return 1\n", "assert f() == 1", use_namespaces=False)


def _has_xdist() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param((), id="one-process"),
        pytest.param(
            ("-n", "2", "--dist", "loadfile"),
            marks=pytest.mark.skipif(not _has_xdist(), reason="pytest-xdist is not installed"),
            id="xdist",  # as `make test` runs it: the skips happen in the workers
        ),
    ],
)
def test_suite_reports_unisolated_machine_loudly_and_fails_in_ci(workers):
    args = (
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *workers,
        "tests/test_rules_code.py::test_registered",
        "tests/test_rules_code.py::test_extract_code",
    )
    proc = _without_isolation(*args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "SANDBOX NOT TESTED" in out and "2 sandbox tests did not run" in out, out[-3000:]
    assert "network" in out.split("SANDBOX NOT TESTED", 1)[1], out[-3000:]  # the reason itself
    proc = _without_isolation(*args, CI="true")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "CI=true" in out, out[-3000:]

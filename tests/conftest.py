"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The shared data directory beside the repository checkout (``<checkout>/../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray of 2 CPUs (one torch thread per worker), started once for the session and shut
    down at its end: starting Ray again in a process where it ran can leave its threads on freed
    state (ray-project/ray#31145). With one Ray per module, one full run of 2026-12-06 in three
    ended by SIGSEGV as the interpreter exited, after every test had passed; this is the
    suspected cause (Ray's gRPC threads were the native threads still alive at exit)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'rewardkit[ray]')")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny random BERT classifier with the embedded MiniLM tokenizer (one torch thread), for a
    module's training tests."""
    torch = pytest.importorskip("torch")
    from tests.train_helpers import tiny_bert

    torch.set_num_threads(1)
    return tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data not found at {SHARED_DATA.resolve()} (clone shared/ beside the repo)"
        )
    return SHARED_DATA


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe nothing writes (``pipe.json``): reading it blocks for ever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


@pytest.fixture
def fake_reward():
    """A factory of rewards that return a fixed score per response text (no model)."""
    from collections.abc import Sequence

    import numpy as np

    from rewardkit.types import Query, Reward

    class TableReward(Reward):
        def __init__(self, table: dict[str, float], name: str = "fake") -> None:
            self.table, self.name = table, name

        def identity(self) -> dict:
            return {"class": "TableReward", "name": self.name}

        def _score(self, queries: Sequence[Query]) -> np.ndarray:
            return np.array([self.table[q.response] for q in queries], dtype=np.float64)

    return TableReward


_SANDBOX_MARK = "sandbox isolation unavailable on this machine"


@pytest.fixture(scope="session")
def sandbox_isolation() -> dict:
    """What isolation the code sandbox gets here (``sandbox_info()``).

    Where it cannot isolate (no network namespace), the tests that need it are skipped and the
    session ends with a loud report; with ``CI=true`` they fail instead.
    """
    import os

    from rewardkit.rewards.sandbox import SandboxUnavailableError, sandbox_info

    try:
        return sandbox_info()
    except SandboxUnavailableError as e:
        reason = f"{_SANDBOX_MARK}: {e}"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason} (CI=true: the sandbox tests must run)", pytrace=False)
        pytest.skip(reason)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``make test`` runs ``-n 2 --dist loadfile``: xdist's file scheduling (a module's tests in
    order on one worker, its fixtures built once), with the Ray files as one unit
    (``tests/xdist_units.py``). A scheduler, not ``xdist_group`` marks: xdist 3.8 writes the
    group into ``item._nodeid``, which pytest 9 no longer reads (``--dist loadgroup`` split
    files: a test that counted on an earlier one's request ran on the other worker)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    from xdist_units import work_unit

    class FileOrRayScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FileOrRayScheduling(config, log)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say loudly when sandbox tests did not run because the sandbox cannot isolate here (read
    from the skip reports, which reach the controller under pytest-xdist too)."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if _SANDBOX_MARK in str(r.longrepr)
    ]
    if not skipped:
        return
    longrepr = skipped[0].longrepr  # (path, line, "Skipped: <reason>") for a skip
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    terminalreporter.section("SANDBOX NOT TESTED", sep="!", red=True, bold=True)
    terminalreporter.line(
        f"{len(skipped)} sandbox tests did not run: {reason}. "
        "rule:code refuses to run on this machine; set CI=true to make this a failure.",
        red=True,
        bold=True,
    )


@pytest.fixture(autouse=True)
def _sigint_not_left_ignored(request):
    """A test (or a library it drives) that leaves SIGINT ignored in this process passes that on
    to every command a later test starts, where Ctrl-C then does nothing (stop 39's CI: two
    serve Ctrl-C tests exited 0 on one xdist worker). Restored, and said, after such a test."""
    import signal
    import warnings

    yield
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        warnings.warn(f"{request.node.nodeid} left SIGINT ignored; restored", stacklevel=1)

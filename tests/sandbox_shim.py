"""Running the sandbox as an unprivileged user (tests only): a system Python another user can
run, and a throw-away ``PYTHONPATH`` folder holding just the modules the sandbox imports."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import rewardkit

PKG = Path(rewardkit.__file__).resolve().parent
#: Run a command as nobody (uid/gid 65534), without supplementary groups.
SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def system_python() -> str | None:
    """A system Python ≥ 3.10 that another user can run, or None."""
    for path in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(path, os.X_OK):
            ok = subprocess.run(
                [path, "-c", "import sys; sys.exit(sys.version_info < (3, 10))"], timeout=30
            )
            if ok.returncode == 0:
                return path
    return None


@contextlib.contextmanager
def sandbox_shim() -> Iterator[Path]:
    """A world-readable folder under /tmp whose ``rewardkit`` package holds only ``errors.py``
    and ``rewards/sandbox`` (links to this checkout's); removed afterwards."""
    shim = Path(tempfile.mkdtemp(prefix="rewardkit-shim-", dir="/tmp"))
    try:
        shim.chmod(0o755)
        pkg = shim / "rewardkit"
        (pkg / "rewards").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "rewards" / "__init__.py").write_text("")
        (pkg / "errors.py").symlink_to(PKG / "errors.py")
        (pkg / "rewards" / "sandbox").symlink_to(PKG / "rewards" / "sandbox")
        yield shim
    finally:
        shutil.rmtree(shim, ignore_errors=True)


def run_as_nobody(python: str, shim: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``python ARGS`` as nobody, in /tmp, with only the shim on ``PYTHONPATH``."""
    return subprocess.run(
        [*SETPRIV, python, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/tmp",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(shim)},
    )

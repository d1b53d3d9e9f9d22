"""cgroups (pids, memory) for a sandbox run, and the clean-up of everything a run leaves behind.

Root only and best effort: without a usable cgroup hierarchy a run still has its pid namespace
and ``RLIMIT_NPROC`` (``docs/sandbox.md``). After every run the parent kills what is left in the
run's cgroups and every process of the run's uid, and removes the cgroups.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time

__all__ = [
    "kill",
    "kill_cgroup_members",
    "kill_uid",
    "killpg",
    "make_cgroups",
    "oom_kills",
    "remove_cgroup",
    "sweep_stale",
]

_cgroup_lock = threading.Lock()
_cgroup_bases_cache: list[tuple[str, str, int]] | None = None


def cgroup_bases() -> list[tuple[str, str, int]]:
    """(controllers, directory of our own cgroup, version) for usable pids/memory controllers."""
    global _cgroup_bases_cache
    with _cgroup_lock:
        if _cgroup_bases_cache is not None:
            return _cgroup_bases_cache
        bases: list[tuple[str, str, int]] = []
        try:
            with open("/proc/self/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            hid, _, rest = line.partition(":")
            ctrls, _, path = rest.partition(":")
            if hid == "0" and ctrls == "":
                if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                    base = "/sys/fs/cgroup" + path
                    try:
                        with open(os.path.join(base, "cgroup.subtree_control")) as f:
                            enabled = f.read().split()
                    except OSError:
                        enabled = []
                    usable = [c for c in ("pids", "memory") if c in enabled]
                    if usable:
                        bases.append(("+".join(usable), base, 2))
                continue
            for ctrl in ctrls.split(","):
                if ctrl in ("pids", "memory"):
                    base = f"/sys/fs/cgroup/{ctrl}{path}"
                    if os.path.isdir(base):
                        bases.append((ctrl, base, 1))
        _cgroup_bases_cache = bases
        return bases


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


_swept = False


def sweep_stale() -> None:
    """Remove cgroups and work directories left by rewardkit processes that were killed."""
    global _swept
    with _cgroup_lock:
        if _swept:
            return
        _swept = True
    places = [(base, "rewardkit-") for _, base, _ in cgroup_bases()]
    places.append((tempfile.gettempdir(), "rewardkit-sbx-"))
    for where, prefix in places:
        try:
            names = os.listdir(where)
        except OSError:
            continue
        for name in names:
            owner = name[len(prefix) :].split("-", 1)[0]
            if not name.startswith(prefix) or not owner.isdigit():
                continue
            if os.path.exists(f"/proc/{owner}"):
                continue
            path = os.path.join(where, name)
            if prefix == "rewardkit-sbx-":
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.rmdir(path)


def make_cgroups(max_procs: int, memory_bytes: int) -> tuple[list[tuple[str, str, int]], list[str]]:
    """(cgroups made for one run: controllers, path, version; why any controller is missing)."""
    made = []
    errors = []
    bases = cgroup_bases()
    if not bases:
        errors.append("no writable pids/memory cgroup controller delegated to this process")
    for ctrls, base, version in bases:
        path = os.path.join(base, f"rewardkit-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            os.mkdir(path)
        except OSError as e:
            errors.append(f"{ctrls}: cannot create a cgroup in {base}: {e.strerror}")
            continue
        try:
            if "pids" in ctrls:
                _write(os.path.join(path, "pids.max"), str(max_procs))
            if "memory" in ctrls:
                if version == 1:
                    _write(os.path.join(path, "memory.limit_in_bytes"), str(memory_bytes))
                    with contextlib.suppress(OSError):
                        _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(memory_bytes))
                else:
                    _write(os.path.join(path, "memory.max"), str(memory_bytes))
                    with contextlib.suppress(OSError):
                        _write(os.path.join(path, "memory.swap.max"), "0")
        except OSError as e:
            errors.append(f"{ctrls}: cannot set limits in {path}: {e.strerror}")
            remove_cgroup(path)
            continue
        made.append((ctrls, path, version))
    return made, errors


def oom_kills(path: str, version: int) -> int:
    name = "memory.oom_control" if version == 1 else "memory.events"
    try:
        with open(os.path.join(path, name)) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def remove_cgroup(path: str) -> None:
    procs = os.path.join(path, "cgroup.procs")
    for _ in range(400):
        try:
            with open(procs) as f:
                pids = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            break
        if not pids:
            break
        for pid in pids:
            kill(pid)
        time.sleep(0.005)
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _pids_of_uid(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                status = f.read()
        except OSError:
            continue
        state = re.search(r"^State:\s*(\S)", status, re.M)
        uids = re.search(r"^Uid:\s*(\d+)\s+(\d+)", status, re.M)
        if uids and state and state.group(1) not in ("Z", "X") and uid in map(int, uids.groups()):
            found.append(int(name))
    return found


def kill_uid(uid: int) -> None:
    """Kill every live process of a sandbox uid (the fallback when there is no pid namespace)."""
    for _ in range(200):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            kill(pid)
        time.sleep(0.005)


def killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def kill_cgroup_members(path: str) -> None:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        kill(pid)

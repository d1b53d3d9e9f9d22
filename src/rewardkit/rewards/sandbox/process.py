"""One sandboxed process tree: start the launcher, feed it, read it, kill and clean up.

``spawn`` starts ``python -I -S -B -c <launcher.py>`` (the launcher and harness are files of this
package, read as text: never imported here), writes the run's config to a pipe the harness reads
and the stdin data to its stdin, reads stdout/stderr/status under caps and a wall clock, then
kills whatever is left (process group, cgroups, the run's uid) and removes the working
directory. See ``docs/sandbox.md`` for the process tree and every limit.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from rewardkit.rewards.sandbox.cgroups import (
    kill_cgroup_members,
    kill_uid,
    killpg,
    make_cgroups,
    oom_kills,
    remove_cgroup,
    sweep_stale,
)
from rewardkit.rewards.sandbox.results import ProcessResult, SandboxError, SandboxUnavailableError
from rewardkit.rewards.sandbox.view import PROGRAM_VIEW, SYSTEM_VIEW, interpreter_paths, plan_view

if TYPE_CHECKING:
    from rewardkit.rewards.sandbox.runner import Sandbox

__all__ = ["STDERR_TAIL_BYTES", "signal_name", "spawn", "weak_points"]

log = logging.getLogger(__name__)

#: Bytes of stderr kept in results.
STDERR_TAIL_BYTES = 4096
#: Extra seconds the parent allows beyond ``timeout_s`` (start-up) before it kills the tree.
_PARENT_SLACK_S = 5.0
#: Sandbox uids are drawn at random from [_UID_BASE, _UID_BASE + _UID_SPAN).
_UID_BASE = 1 << 30
_UID_SPAN = 1 << 28


@cache
def script(name: str) -> str:
    """The text of one of the child programs shipped in this package (``launcher``, ``harness``)."""
    return resources.files(__package__).joinpath(f"{name}.py").read_text(encoding="utf-8")


def signal_name(sig: int) -> str:
    """``SIGSEGV``; ``SIGRTMIN+6`` or ``SIG<n>`` for a signal the ``signal.Signals`` enum lacks
    (a real-time signal made the parent raise ValueError: a death by any signal is a failed
    case)."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        low, high = getattr(signal, "SIGRTMIN", 0), getattr(signal, "SIGRTMAX", -1)
        return f"SIGRTMIN+{sig - low}" if low <= sig <= high else f"SIG{sig}"


def _mb(x: float) -> int:
    return int(x * 1024 * 1024)


def _python(sb: Sandbox) -> str:
    return os.path.realpath(sb.python or sys.executable)


def weak_points(isolation: dict[str, Any]) -> dict[str, str]:
    """What this run's isolation lacks that the sandbox normally has (key → why it matters)."""
    weak: dict[str, str] = {}
    if isolation.get("view") != "minimal":
        weak["view"] = (
            f"no private file-system view (view={isolation.get('view')!r}, "
            f"namespaces={isolation.get('namespaces')}, {isolation.get('fs_failures') or ''}): "
            "the code under test can read every file its uid can read on this host (reference "
            "data, datasets, the working directory) and reach pathname Unix sockets"
        )
    if isolation.get("memory") != "cgroup":
        weak["memory"] = (
            f"no memory cgroup ({isolation.get('memory')}): memory is capped per process "
            "(RLIMIT_AS) only, so one run can hold about max_procs x memory_mb, plus its "
            "work directory and kernel buffers"
        )
    if isolation.get("seccomp") != "on":
        weak["seccomp"] = (
            f"no seccomp filter ({isolation.get('seccomp')}): the code under test can create "
            "kernel keys (kept after the run, shared between runs) and memfds (memory outside "
            "RLIMIT_AS)"
        )
    return weak


_warned: set[str] = set()


def _warn_once(isolation: dict[str, Any]) -> None:
    """Log each kind of missing isolation once per process."""
    for key, text in weak_points(isolation).items():
        if key not in _warned:
            _warned.add(key)
            log.warning("rewardkit sandbox: %s (docs/sandbox.md)", text)


def spawn(
    sb: Sandbox, payload: dict[str, Any], stdin: bytes | None, timeout_s: float | None = None
) -> ProcessResult:
    """Run one process tree; ``timeout_s`` (≤ ``sb.timeout_s``) shortens its wall clock."""
    wall_limit = float(sb.timeout_s if timeout_s is None else min(timeout_s, sb.timeout_s))
    payload = {**payload, "allow_subprocess": sb.allow_subprocess}
    # stdin is always a pipe of ours, closed once written: an empty one reads as EOF whatever the
    # host's /dev/null is (a CI container once had a regular file there, with content in it)
    stdin = stdin or b""
    python = _python(sb)
    root = os.geteuid() == 0
    uid = gid = None
    if root:
        uid = gid = _UID_BASE + secrets.randbelow(_UID_SPAN)
    sweep_stale()
    workdir = tempfile.mkdtemp(prefix=f"rewardkit-sbx-{os.getpid()}-")
    if uid is not None:
        os.chown(workdir, uid, gid)
    cgroups, cgroup_errors = [], ["not root: no cgroups"]
    if root:
        cgroups, cgroup_errors = make_cgroups(sb.max_procs + 2, _mb(sb.memory_mb) + _mb(64))
    paths = [*interpreter_paths(python, sb.python is None), *SYSTEM_VIEW]
    if sb.allow_subprocess:
        paths += PROGRAM_VIEW
    view = plan_view(paths, sb.hide)
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    if os.environ.get("LANG"):
        env["LANG"] = os.environ["LANG"]
    status_r, status_w = os.pipe()
    cfg_r, cfg_w = os.pipe()
    mem = _mb(sb.memory_mb)
    launch = {
        "status_fd": status_w,
        "parent_pid": os.getpid(),
        "cfg_fd": cfg_r,
        "timeout_s": wall_limit,
        "allow_network": sb.allow_network,
        "namespaces": sb.use_namespaces,
        "uid": uid,
        "gid": gid,
        "workdir": workdir,
        "disk_mb": int(sb.disk_mb),
        "max_files": int(sb.max_files),
        "binds": view.binds,
        "links": view.links,
        "cover": view.cover,
        "cgroups": [(ctrls, path) for ctrls, path, _ in cgroups],
        "rlimits": [
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_CPU", sb.cpu_limit_s, sb.cpu_limit_s + 1),
            ("RLIMIT_AS", mem, mem),
            ("RLIMIT_FSIZE", _mb(sb.fsize_mb), _mb(sb.fsize_mb)),
            ("RLIMIT_NOFILE", sb.nofile, sb.nofile),
            ("RLIMIT_NPROC", sb.max_procs, sb.max_procs),
        ],
        "argv": [python, "-I", "-S", "-B", "-c", script("harness"), str(cfg_r)],
        "env": {**env, "HOME": workdir, "TMPDIR": workdir},
    }
    start = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    owned = [cfg_w, status_r]  # closed here until _communicate takes them over
    try:
        try:
            proc = subprocess.Popen(
                [python, "-I", "-S", "-B", "-c", script("launcher"), json.dumps(launch)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(status_w, cfg_r),
                start_new_session=True,
                env=env,
                cwd="/",
            )
        finally:
            os.close(status_w)
            os.close(cfg_r)
        owned = []
        out, err_tail, status, killed_by = _communicate(
            sb,
            proc,
            cfg_w,
            json.dumps(payload).encode("utf-8"),
            stdin,
            status_r,
            cgroups,
            wall_limit,
        )
    finally:
        for fd in owned:
            os.close(fd)
        if proc is not None:
            killpg(proc)
            proc.wait()
        oom = sum(oom_kills(path, v) for ctrls, path, v in cgroups if "memory" in ctrls)
        for _, path, _ in cgroups:
            remove_cgroup(path)
        if uid is not None:
            kill_uid(uid)
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - start

    messages: dict[str, Any] = {"iso": {}}
    for line in status.split(b"\n"):
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        iso = msg.pop("iso", None)
        if iso:
            messages["iso"].update(iso)
        messages.update(msg)
    isolation = messages["iso"]
    isolation["cgroup_errors"] = cgroup_errors + list(isolation.get("cgroup_errors") or [])
    isolation["memory"] = (
        "cgroup"
        if "memory" in "+".join(isolation.get("cgroups") or [])
        else ("; ".join(isolation["cgroup_errors"]) or "no memory controller")
    )
    if "unavailable" in messages:
        raise SandboxUnavailableError(messages["unavailable"])
    if "error" in messages and killed_by is None:
        raise SandboxError(f"{messages['error']} (stderr: {err_tail[-500:]!r})")
    if "namespaces" in isolation:
        _warn_once(isolation)
    user = messages.get("user") or {}
    sig = user.get("signal")
    cpu = user.get("cpu_s")
    if killed_by is None:
        if messages.get("timed_out"):
            killed_by = "timeout"
        elif oom:
            killed_by = "memory"
        elif sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and cpu is not None and cpu >= sb.cpu_limit_s - 0.05
        ):
            killed_by = "cpu"
        elif sig == signal.SIGXFSZ:
            killed_by = "file_size"
        elif sig is not None:
            killed_by = f"signal:{signal_name(sig)}"
        elif not messages.get("done") or "user" not in messages:
            killed_by = "lost"
    return ProcessResult(
        returncode=user.get("exit"),
        signal=sig,
        stdout=bytes(out),
        stderr=err_tail.decode("utf-8", "replace"),
        timed_out=killed_by == "timeout",
        killed_by=killed_by,
        wall_s=wall,
        cpu_s=cpu,
        isolation=isolation,
    )


def _communicate(
    sb: Sandbox,
    proc: subprocess.Popen[bytes],
    cfg_w: int,
    payload: bytes,
    stdin: bytes | None,
    status_r: int,
    cgroups: list[tuple[str, str, int]],
    wall_limit: float,
) -> tuple[bytearray, bytes, bytes, str | None]:
    assert proc.stdout is not None and proc.stderr is not None
    cap = sb.max_output_bytes
    out, err_tail, status = bytearray(), b"", bytearray()
    err_total = 0
    killed_by: str | None = None
    writes: dict[int, memoryview] = {cfg_w: memoryview(payload)}
    stdin_fd = proc.stdin.fileno() if proc.stdin is not None else -1
    if stdin is not None and stdin_fd >= 0:
        writes[stdin_fd] = memoryview(stdin)
    sel = selectors.DefaultSelector()
    for name, fd in (
        ("out", proc.stdout.fileno()),
        ("err", proc.stderr.fileno()),
        ("status", status_r),
    ):
        sel.register(fd, selectors.EVENT_READ, name)
    for fd in writes:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_WRITE, "write")
    deadline = time.monotonic() + wall_limit + _PARENT_SLACK_S
    drain_until: float | None = None

    def close(fd: int) -> None:
        sel.unregister(fd)
        if fd in (cfg_w, status_r):
            os.close(fd)
        elif fd == stdin_fd and proc.stdin is not None:
            proc.stdin.close()

    def kill(reason: str) -> None:
        nonlocal killed_by, drain_until
        if killed_by is None:
            killed_by = reason
        killpg(proc)
        for _, path, _ in cgroups:
            kill_cgroup_members(path)
        if drain_until is None:
            drain_until = time.monotonic() + 1.0

    try:
        while sel.get_map():
            now = time.monotonic()
            if drain_until is not None and now >= drain_until:
                break
            if now >= deadline:
                kill("timeout")
                continue
            if drain_until is None and proc.poll() is not None:
                drain_until = now + 0.5
            limit = min(deadline, drain_until or deadline) - now
            for key, _ in sel.select(max(0.0, min(limit, 0.25))):
                fd = key.fd
                if key.data == "write":
                    buf = writes[fd]
                    try:
                        n = os.write(fd, buf[: 1 << 16])
                    except BlockingIOError:
                        continue
                    except OSError:
                        close(fd)
                        continue
                    writes[fd] = buf = buf[n:]
                    if not len(buf):
                        close(fd)
                    continue
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    data = b""
                if not data:
                    close(fd)
                    continue
                if key.data == "status":
                    status += data
                elif key.data == "out":
                    room = cap - len(out)
                    out += data[: max(room, 0)]
                    if len(data) > room:
                        kill("output_limit")
                else:
                    err_total += len(data)
                    err_tail = (err_tail + data)[-STDERR_TAIL_BYTES:]
                    if err_total > cap:
                        kill("output_limit")
    finally:
        for key in list(sel.get_map().values()):
            close(key.fd)
        sel.close()
    return out, err_tail, bytes(status), killed_by

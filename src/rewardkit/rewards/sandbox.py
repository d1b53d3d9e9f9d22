"""Run untrusted Python in a contained child process: the sandbox behind ``rule:code``.

Each run is one fresh process tree::

    rewardkit ──Popen──▶ launcher (root; joins cgroups, unshare(net, mnt, pid, ipc, uts))
                           └─fork─▶ init (pid 1 of the new pid namespace; sets up the mounts)
                                      └─fork─▶ solution (fresh uid, rlimits, no_new_privs,
                                                 exec ``python -I -S -B`` + the test harness)

* **network**: an empty network namespace (no interface but a down loopback). When it cannot
  be created the run is refused (:class:`SandboxUnavailableError`) unless ``allow_network=True``.
* **processes**: a pid namespace (killing its init kills every process in it), a pids cgroup
  (``max_procs``) and ``RLIMIT_NPROC`` under a fresh uid; leftovers are killed through the
  cgroup and by uid when the run ends.
* **memory / CPU / files**: ``RLIMIT_AS``, a memory cgroup for the whole tree, ``RLIMIT_CPU``,
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_CORE=0``; a wall clock kills the whole tree.
* **file system**: a private mount namespace in which every mount is read-only, ``/tmp``,
  ``/root``, ``/home``… are hidden behind empty tmpfs, and the working directory is a fresh,
  size-limited tmpfs that vanishes with the run.
* **identity**: as root, the solution runs under a fresh unprivileged uid/gid with no
  supplementary groups and ``PR_SET_NO_NEW_PRIVS``; without root, a user namespace is used and
  capabilities are given up before ``exec``.

What this is not: a security boundary against kernel exploits, side channels or a determined
attacker. See ``docs/sandbox.md`` for every limit, its default, and what is not guaranteed.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

from rewardkit.errors import RewardkitError

__all__ = [
    "DEFAULT_HIDE",
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


class SandboxError(RewardkitError, RuntimeError):
    """The sandbox itself could not be set up or run (never the solution's fault)."""


class SandboxUnavailableError(SandboxError):
    """Isolation the caller required is not available on this machine (fail closed)."""


#: Directories hidden behind an empty read-only tmpfs inside the sandbox (the interpreter's
#: own directories are bound back in when they live below one of them).
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

#: Bytes of stderr kept in results.
STDERR_TAIL_BYTES = 4096
#: Extra seconds the parent allows beyond ``timeout_s`` (start-up) before it kills the tree.
_PARENT_SLACK_S = 5.0
#: Sandbox uids are drawn at random from [_UID_BASE, _UID_BASE + _UID_SPAN).
_UID_BASE = 1 << 30
_UID_SPAN = 1 << 28


# ----------------------------------------------------------------------------------------------
# Code that runs in the child processes. Both run under ``python -I -S -B`` (no site-packages,
# no environment variables, no user directories), so they use only the standard library.
# ----------------------------------------------------------------------------------------------

_LAUNCHER = r"""
import ctypes, json, os, re, select, signal, sys, time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
KEEP_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 16 | 64 | 1024 | 2048 | 4096
PR_SET_PDEATHSIG, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 28, 38
NS_NAMES = ((CLONE_NEWNET, "net"), (CLONE_NEWNS, "mnt"), (CLONE_NEWPID, "pid"),
            (CLONE_NEWIPC, "ipc"), (CLONE_NEWUTS, "uts"), (CLONE_NEWUSER, "user"))

cfg = json.loads(sys.argv[1])
ST = cfg["status_fd"]
os.set_inheritable(ST, False)
os.umask(0o022)
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p,) * 3 + (ctypes.c_ulong, ctypes.c_char_p)
libc.prctl.argtypes = (ctypes.c_int,) + (ctypes.c_ulong,) * 4
libc.unshare.argtypes = (ctypes.c_int,)
libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)


def send(**msg):
    os.write(ST, (json.dumps(msg) + "\n").encode())


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, what + ": " + os.strerror(err))


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), "mount " + target)


def prctl(option, arg):
    check(libc.prctl(option, arg, 0, 0, 0), "prctl %d" % option)


def unescape(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def setup_fs(ns):
    work, uid = cfg["workdir"], cfg["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = sorted({os.path.realpath(k) for k in cfg["keep"] if os.path.isdir(k)})
    keep = [k for k in keep if not any(k != o and k.startswith(o + "/") for o in keep)]
    hidden = []
    for m in cfg["hide"]:
        if os.path.islink(m) or not os.path.isdir(m):
            continue
        m = os.path.realpath(m)
        if m == "/" or any(k == m or m.startswith(k + "/") for k in keep):
            continue
        inner = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY)) for k in keep
                 if k.startswith(m + "/")]
        mount("tmpfs", m, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m,nr_inodes=4096")
        for k, fd in inner:
            os.makedirs(k, 0o755, exist_ok=True)
            mount("/proc/self/fd/%d" % fd, k, None, MS_BIND | MS_REC)
            os.close(fd)
        hidden.append(m)
    os.makedirs(work, 0o755, exist_ok=True)
    opts = "size=%dm,nr_inodes=%d,mode=700" % (cfg["disk_mb"], cfg["max_files"])
    if uid is not None:
        opts += ",uid=%d,gid=%d" % (uid, cfg["gid"])
    mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    failed = []
    with open("/proc/self/mountinfo") as f:
        points = [unescape(line.split()[4]) for line in f]
    for mp in points:
        if mp == work or mp == "/proc" or mp.startswith("/proc/"):
            continue
        try:
            flags = os.statvfs(mp).f_flag
            if not flags & MS_RDONLY:
                mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & KEEP_FLAGS))
        except FileNotFoundError:  # below a hidden directory: unreachable
            continue
        except OSError as e:
            failed.append("%s: %s" % (mp, e.strerror))
    proc = "host"
    if ns & CLONE_NEWPID:
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            proc = "private"
        except OSError as e:
            failed.append("/proc: %s" % e.strerror)
    return {"filesystem": "partial" if failed else "read-only", "fs_failures": failed,
            "hidden": hidden, "workdir": "private tmpfs", "proc": proc}


def run_user(ns):
    import resource
    for name, soft, hard in cfg["rlimits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    elif ns & CLONE_NEWUSER:
        # Root of the user namespace: make exec drop every capability, for good.
        prctl(PR_SET_SECUREBITS, 0x01 | 0x02 | 0x40 | 0x80)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.chdir(cfg["workdir"])
    keep = {0, 1, 2, ST, cfg["cfg_fd"]}
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def run_init(ns):
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    iso = {"filesystem": "host", "workdir": "host directory", "proc": "host"}
    if ns & CLONE_NEWNS:
        iso = setup_fs(ns)
    if ns & CLONE_NEWUTS:
        libc.sethostname(b"sandbox", 7)
    send(iso=iso)
    child = os.fork()
    if child == 0:
        try:
            run_user(ns)
        except BaseException as e:
            send(error="sandbox setup: %s: %s" % (type(e).__name__, e))
        os._exit(125)
    while True:
        try:
            pid, status, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            send(user={
                "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss})
            break
    os._exit(0)


def main():
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # rewardkit died: so does the whole tree
    if os.getppid() != cfg["parent_pid"]:
        os._exit(0)
    iso = {"cgroups": [], "cgroup_errors": []}
    for name, path in cfg["cgroups"]:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            iso["cgroups"].append(name)
        except OSError as e:
            iso["cgroup_errors"].append("%s: %s" % (name, e.strerror))
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    errors = []
    base = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    net = 0 if cfg["allow_network"] else CLONE_NEWNET
    tries = [base | net, net | CLONE_NEWNS | CLONE_NEWIPC, net]
    if not cfg["namespaces"]:
        tries, errors = [0], ["namespaces disabled by use_namespaces=False"]
    elif not root:
        tries = [t | CLONE_NEWUSER for t in tries]
    ns = 0
    for flags in tries:
        if flags == 0 or libc.unshare(flags) == 0:
            ns = flags
            break
        errors.append(os.strerror(ctypes.get_errno()))
    if ns & CLONE_NEWUSER:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write("0 %d 1" % uid)
        with open("/proc/self/gid_map", "w") as f:
            f.write("0 %d 1" % gid)
    iso["namespaces"] = [n for bit, n in NS_NAMES if ns & bit]
    iso["network"] = "isolated" if ns & CLONE_NEWNET else "host"
    iso["uid"] = cfg["uid"] if cfg["uid"] is not None else ("userns-root" if ns else uid)
    if not cfg["allow_network"] and not ns & CLONE_NEWNET:
        send(iso=iso, unavailable="no network isolation: unshare(CLONE_NEWNET) failed (%s); "
             "refusing to run untrusted code (pass allow_network=True to run anyway)"
             % "; ".join(errors))
        os._exit(0)
    send(iso=iso)
    pid = os.fork()
    if pid == 0:
        try:
            run_init(ns)
        except BaseException as e:
            send(error="sandbox init: %s: %s" % (type(e).__name__, e))
        os._exit(125)
    deadline = time.monotonic() + cfg["timeout_s"]
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    timed_out = False
    while True:
        got, _ = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        if pidfd is not None:
            select.select([pidfd], [], [], left)
        else:
            time.sleep(min(left, 0.01))
    send(done=True, timed_out=timed_out)
    os._exit(0)


main()
"""

_HARNESS = r"""
import json, os, signal, sys


def _read_config():
    fd, chunks = int(sys.argv[1]), []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return json.loads(b"".join(chunks))


_cfg = _read_config()
sys.argv = ["solution.py"]


def _deny(*args, **kwargs):
    raise PermissionError("process creation is disabled in the rewardkit sandbox")


if not _cfg["allow_subprocess"]:
    import posix, _posixsubprocess
    for _mod in (os, posix):
        for _name in ("fork", "forkpty", "system", "popen", "execv", "execve", "execl",
                      "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnv", "spawnve",
                      "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
                      "posix_spawn", "posix_spawnp"):
            if hasattr(_mod, _name):
                setattr(_mod, _name, _deny)
    _posixsubprocess.fork_exec = _deny


def _describe(exc):
    text = str(exc).strip().splitlines()
    return type(exc).__name__ + (": " + text[0][:200] if text else "")


def _finish(code):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code)


if _cfg["mode"] == "script":
    _rc = 0
    try:
        exec(compile(_cfg["code"], "solution.py", "exec"), {"__name__": "__main__"})
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            _rc = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            _rc = 1
    except BaseException:
        import traceback
        traceback.print_exc()
        _rc = 1
    _finish(_rc & 0xFF)

import traceback

_RES = os.dup(1)
os.dup2(2, 1)
_NONCE = _cfg["nonce"]


def _emit(**obj):
    os.write(_RES, (_NONCE + json.dumps(obj) + "\n").encode())


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


signal.signal(signal.SIGALRM, _alarm)
_NO = object()


def _plain(x):
    # Only plain JSON-like values take part in comparisons: an object with a forged __eq__
    # never equals anything.
    t = type(x)
    if t in (int, float, str, bool, type(None)):
        return x
    if t in (list, tuple):
        return [_plain(v) for v in x]
    if t is dict:
        return {_plain(k): _plain(v) for k, v in x.items()}
    return _NO


def _contains_no(x):
    if x is _NO:
        return True
    if type(x) is list:
        return any(_contains_no(v) for v in x)
    if type(x) is dict:
        return any(_contains_no(v) for v in x.values())
    return False


def _match(got, expected):
    got, expected = _plain(got), _plain(expected)
    if _contains_no(got):
        return False
    if got == expected:
        return True
    return type(expected) is list and len(expected) == 1 and got == expected[0]


_g = {"__name__": "__main__", "__file__": "solution.py"}
try:
    exec(compile(_cfg["code"], "solution.py", "exec"), _g)
except BaseException as e:
    traceback.print_exc()
    _emit(solution=_describe(e))
    _finish(0)
_emit(solution="ok")

_fn = None
if _cfg.get("fn_name"):
    _name = _cfg["fn_name"]
    _fn = _g.get(_name)
    if not callable(_fn) and isinstance(_g.get("Solution"), type):
        try:
            _fn = getattr(_g["Solution"](), _name)
        except BaseException:
            _fn = None

_limit = _cfg.get("test_timeout")
for _step in _cfg["steps"]:
    if _step["kind"] == "setup":
        try:
            exec(compile(_step["src"], "<tests>", "exec"), _g)
        except BaseException:
            traceback.print_exc()
        continue
    _i = _step["index"]
    try:
        if _limit:
            signal.setitimer(signal.ITIMER_REAL, _limit)
        try:
            if _step["kind"] == "call":
                if not callable(_fn):
                    raise NameError("function %r not found" % _cfg["fn_name"])
                _status = "passed" if _match(_fn(*_step["args"]), _step["expected"]) else "failed"
            else:
                exec(compile(_step["src"], "<test %d>" % _i, "exec"), _g)
                _status = "passed"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except AssertionError as e:
        _status = "failed"
        print("test %d failed: %s" % (_i, _describe(e)), file=sys.stderr)
    except _Timeout:
        _status = "timeout"
    except BaseException as e:
        _status = "error: " + _describe(e)
        print("test %d: %s" % (_i, _status), file=sys.stderr)
    _emit(test=_i, status=_status)
_emit(done=True)
_finish(0)
"""


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


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
    ``killed_by`` is why the sandbox killed a process (``"timeout"``, ``"cpu"``, ``"memory"``,
    ``"file_size"``, ``"output_limit"``, ``"signal:SIGSEGV"``…), None when nothing was killed.
    """

    passed: int
    total: int
    statuses: list[str]
    stderr: str = ""
    timed_out: bool = False
    killed_by: str | None = None
    wall_s: float = 0.0
    isolation: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Fraction of tests passed (NaN when there are no tests)."""
        return self.passed / self.total if self.total else math.nan


# ----------------------------------------------------------------------------------------------
# Test specifications
# ----------------------------------------------------------------------------------------------


@dataclass
class TestPlan:
    """Tests normalised into what the harness runs.

    ``kind`` is ``"steps"`` (Python tests run in the solution's process: ``steps`` holds setup
    code, ``test`` snippets and ``call`` cases) or ``"stdio"`` (``cases`` of (stdin, expected
    stdout), one process per case).
    """

    __test__ = False  # not a pytest class

    kind: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    cases: list[tuple[str, str]] = field(default_factory=list)
    fn_name: str | None = None

    @property
    def total(self) -> int:
        """Number of tests."""
        if self.kind == "stdio":
            return len(self.cases)
        return sum(1 for s in self.steps if s["kind"] != "setup")


def parse_tests(tests: Any) -> TestPlan:
    """Normalise a test reference (see :func:`run_tests`) into a :class:`TestPlan`.

    Raises ValueError when the reference is not a test specification.
    """
    if isinstance(tests, str):
        text = tests.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return parse_tests(obj)
        return _plan_from_source(tests)
    if isinstance(tests, Mapping):
        if "input_output" in tests and "inputs" not in tests:
            io = tests["input_output"]
            return parse_tests(json.loads(io) if isinstance(io, str) else io)
        if "inputs" in tests and "outputs" in tests:
            return _plan_from_io(tests["inputs"], tests["outputs"], tests.get("fn_name"))
        setup = tests.get("setup") or tests.get("test_setup_code") or ""
        for key in ("tests", "test_list"):
            if key in tests:
                return _plan_from_list(tests[key], setup)
        if "test" in tests:
            src = str(tests["test"])
            if tests.get("entry_point"):
                return _plan_from_list([f"{src}\n\ncheck({tests['entry_point']})\n"], setup)
            return _plan_from_source(f"{setup}\n{src}" if setup else src)
        raise ValueError(
            "test dict needs 'tests' (list of code strings), 'inputs'/'outputs' "
            f"(stdin/stdout or fn_name cases) or 'test'; got keys {sorted(tests)}"
        )
    if isinstance(tests, Sequence) and not isinstance(tests, bytes | bytearray):
        return _plan_from_list(tests, "")
    raise ValueError(f"cannot read tests of type {type(tests).__name__}")


def _plan_from_list(items: Any, setup: str) -> TestPlan:
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise ValueError("'tests' must be a list of Python code strings")
    if not all(isinstance(t, str) for t in items):
        raise ValueError("every test in 'tests' must be a string of Python code")
    steps: list[dict[str, Any]] = [{"kind": "setup", "src": setup}] if setup else []
    steps += [{"kind": "test", "src": t, "index": i} for i, t in enumerate(items)]
    plan = TestPlan("steps", steps)
    if not plan.total:
        raise ValueError("no tests")
    return plan


def _plan_from_source(src: str) -> TestPlan:
    """Each top-level ``assert`` and each top-level ``def test*`` is one test; the rest is set-up."""
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise ValueError(f"test code does not parse: {e}") from e
    steps: list[dict[str, Any]] = []
    n = 0
    for node in tree.body:
        if isinstance(node, ast.Assert):
            steps.append({"kind": "test", "src": ast.unparse(node), "index": n})
            n += 1
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            steps.append({"kind": "setup", "src": ast.unparse(node)})
            call = f"{node.name}()"
            if isinstance(node, ast.AsyncFunctionDef):
                call = f"import asyncio\nasyncio.run({node.name}())"
            steps.append({"kind": "test", "src": call, "index": n})
            n += 1
        else:
            steps.append({"kind": "setup", "src": ast.unparse(node)})
    if n == 0:  # e.g. a script that checks by itself: one test, passes when it runs cleanly
        if not src.strip():
            raise ValueError("no tests")
        steps = [{"kind": "test", "src": src, "index": 0}]
    return TestPlan("steps", steps)


def _as_text(x: Any) -> str:
    if isinstance(x, list | tuple):
        return "\n".join(str(v) for v in x)
    return str(x)


def _call_args(x: Any) -> list[Any]:
    if isinstance(x, str):
        lines = [line for line in x.split("\n") if line.strip()]
        try:
            return [json.loads(line) for line in lines]
        except ValueError:
            return [x]
    if isinstance(x, list | tuple):
        return list(x)
    return [x]


def _call_expected(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def _plan_from_io(inputs: Any, outputs: Any, fn_name: Any) -> TestPlan:
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ValueError("'inputs' and 'outputs' must be lists")
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise ValueError("no tests")
    if fn_name:
        steps = [
            {"kind": "call", "args": _call_args(i), "expected": _call_expected(o), "index": k}
            for k, (i, o) in enumerate(zip(inputs, outputs, strict=True))
        ]
        return TestPlan("steps", steps, fn_name=str(fn_name))
    cases = [(_as_text(i), _as_text(o)) for i, o in zip(inputs, outputs, strict=True)]
    return TestPlan("stdio", cases=cases)


def _same_output(got: bytes, expected: str) -> bool:
    text = got.decode("utf-8", "replace").replace("\r\n", "\n")
    expected = expected.replace("\r\n", "\n")
    if text.strip() == expected.strip():
        return True
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return lines == [line.rstrip() for line in expected.strip().split("\n")]


# ----------------------------------------------------------------------------------------------
# cgroups and clean-up (root only, best effort)
# ----------------------------------------------------------------------------------------------

_cgroup_lock = threading.Lock()
_cgroup_bases_cache: list[tuple[str, str, int]] | None = None


def _cgroup_bases() -> list[tuple[str, str, int]]:
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


def _sweep_stale() -> None:
    """Remove cgroups and work directories left by rewardkit processes that were killed."""
    global _swept
    with _cgroup_lock:
        if _swept:
            return
        _swept = True
    places = [(base, "rewardkit-") for _, base, _ in _cgroup_bases()]
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


def _make_cgroups(max_procs: int, memory_bytes: int) -> list[tuple[str, str, int]]:
    made = []
    for ctrls, base, version in _cgroup_bases():
        path = os.path.join(base, f"rewardkit-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            os.mkdir(path)
        except OSError:
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
        except OSError:
            _remove_cgroup(path)
            continue
        made.append((ctrls, path, version))
    return made


def _oom_kills(path: str, version: int) -> int:
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


def _remove_cgroup(path: str) -> None:
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
            _kill(pid)
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


def _kill_uid(uid: int) -> None:
    """Kill every live process of a sandbox uid (the fallback when there is no pid namespace)."""
    for _ in range(200):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            _kill(pid)
        time.sleep(0.005)


# ----------------------------------------------------------------------------------------------
# The sandbox
# ----------------------------------------------------------------------------------------------


def _mb(x: float) -> int:
    return int(x * 1024 * 1024)


@dataclass(frozen=True)
class Sandbox:
    """Limits and policy for running untrusted Python; every run is a fresh process tree.

    Limits (defaults in brackets): ``timeout_s`` wall clock per process [10]; ``cpu_s`` CPU
    seconds per process [``timeout_s`` + 1]; ``memory_mb`` address space per process and memory
    of the whole tree [1024]; ``max_procs`` processes + threads [32]; ``fsize_mb`` largest file
    written [16]; ``disk_mb`` / ``max_files`` size and inodes of the working directory [64 / 1024];
    ``nofile`` open files [256]; ``max_output_bytes`` stdout and stderr each [1 MiB];
    ``test_timeout_s`` per Python test, None for none [None].
    Policy: ``allow_network`` [False: refuse to run without a private network namespace];
    ``allow_subprocess`` [False: process-creating functions raise]; ``hide`` directories masked
    [:data:`DEFAULT_HIDE`]; ``python`` interpreter [this one]; ``workers`` stdin/stdout cases in
    parallel within one :meth:`run_tests` [1]; ``early_stop`` skip remaining stdin/stdout cases
    after one times out [True]; ``use_namespaces`` [True; False is a degraded mode for
    debugging that needs ``allow_network=True`` and leaves the host file system writable
    wherever the sandbox uid may write].
    """

    timeout_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 1024
    max_procs: int = 32
    fsize_mb: int = 16
    disk_mb: int = 64
    max_files: int = 1024
    nofile: int = 256
    max_output_bytes: int = 1 << 20
    test_timeout_s: float | None = None
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
        if self.test_timeout_s is not None and self.test_timeout_s <= 0:
            raise ValueError(f"Sandbox.test_timeout_s must be > 0, got {self.test_timeout_s!r}")
        if self.workers < 1 or self.nofile < 16 or self.max_output_bytes < 1:
            raise ValueError("Sandbox: workers >= 1, nofile >= 16, max_output_bytes >= 1")
        object.__setattr__(self, "hide", tuple(self.hide))

    # -- identity --------------------------------------------------------------------------------

    def limits(self) -> dict[str, Any]:
        """Every setting as a plain dict (what a reward's identity records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def cpu_limit_s(self) -> int:
        """The CPU-time soft limit in whole seconds."""
        return math.ceil(self.cpu_s if self.cpu_s is not None else self.timeout_s + 1)

    # -- running -----------------------------------------------------------------------------------

    def run(self, code: str, stdin: str | bytes | None = None) -> ProcessResult:
        """Run ``code`` as a script with ``stdin`` (closed when None); stdout is returned."""
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        return self._spawn({"mode": "script", "code": code}, data)

    def run_tests(self, code: str, tests: Any) -> SandboxResult:
        """Run ``code`` against ``tests`` (see :func:`run_tests`)."""
        plan = tests if isinstance(tests, TestPlan) else parse_tests(tests)
        if plan.kind == "stdio":
            return self._run_stdio(code, plan)
        return self._run_steps(code, plan)

    def _run_steps(self, code: str, plan: TestPlan) -> SandboxResult:
        nonce = "\x00rk" + secrets.token_hex(16) + ":"
        payload = {
            "mode": "tests",
            "code": code,
            "steps": plan.steps,
            "fn_name": plan.fn_name,
            "nonce": nonce,
            "test_timeout": self.test_timeout_s,
        }
        proc = self._spawn(payload, None)
        by_index: dict[int, str] = {}
        solution_error: str | None = None
        for line in proc.stdout.split(b"\n"):
            text = line.decode("utf-8", "replace")
            if not text.startswith(nonce):
                continue
            try:
                msg = json.loads(text[len(nonce) :])
            except ValueError:
                continue
            if "test" in msg:
                by_index[int(msg["test"])] = str(msg["status"])
            elif msg.get("solution", "ok") != "ok":
                solution_error = str(msg["solution"])
        if proc.killed_by == "timeout":
            missing = "timeout"
        elif proc.killed_by:
            missing = f"killed: {proc.killed_by}"
        elif solution_error:
            missing = f"error: {solution_error}"
        else:
            missing = "not_run"
        statuses = [by_index.get(i, missing) for i in range(plan.total)]
        return SandboxResult(
            passed=sum(s == "passed" for s in statuses),
            total=plan.total,
            statuses=statuses,
            stderr=proc.stderr,
            timed_out=proc.timed_out,
            killed_by=proc.killed_by,
            wall_s=proc.wall_s,
            isolation=proc.isolation,
        )

    def _run_stdio(self, code: str, plan: TestPlan) -> SandboxResult:
        start = time.monotonic()
        stop = threading.Event()
        results: list[ProcessResult | None] = [None] * len(plan.cases)

        def one(i: int) -> None:
            if self.early_stop and stop.is_set():
                return
            stdin, _ = plan.cases[i]
            results[i] = res = self.run(code, stdin)
            if res.killed_by == "timeout":
                stop.set()

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
                statuses.append("passed" if _same_output(res.stdout, expected) else "failed")
            if statuses[-1] != "passed" and not stderr:
                stderr = res.stderr
        return SandboxResult(
            passed=sum(s == "passed" for s in statuses),
            total=len(statuses),
            statuses=statuses,
            stderr=stderr,
            timed_out=any(r is not None and r.timed_out for r in results),
            killed_by=killed_by,
            wall_s=time.monotonic() - start,
            isolation=isolation,
        )

    # -- the process tree --------------------------------------------------------------------------

    def _python(self) -> str:
        return os.path.realpath(self.python or sys.executable)

    def _keep_paths(self, python: str) -> list[str]:
        keep = {os.path.dirname(os.path.dirname(python))}
        if self.python is None:
            keep |= {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
        return sorted(keep)

    def _spawn(self, payload: dict[str, Any], stdin: bytes | None) -> ProcessResult:
        payload = {**payload, "allow_subprocess": self.allow_subprocess}
        python = self._python()
        root = os.geteuid() == 0
        uid = gid = None
        if root:
            uid = gid = _UID_BASE + secrets.randbelow(_UID_SPAN)
        _sweep_stale()
        workdir = tempfile.mkdtemp(prefix=f"rewardkit-sbx-{os.getpid()}-")
        if uid is not None:
            os.chown(workdir, uid, gid)
        cgroups = _make_cgroups(self.max_procs + 2, _mb(self.memory_mb) + _mb(64)) if root else []
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
        if os.environ.get("LANG"):
            env["LANG"] = os.environ["LANG"]
        status_r, status_w = os.pipe()
        cfg_r, cfg_w = os.pipe()
        mem = _mb(self.memory_mb)
        launch = {
            "status_fd": status_w,
            "parent_pid": os.getpid(),
            "cfg_fd": cfg_r,
            "timeout_s": float(self.timeout_s),
            "allow_network": self.allow_network,
            "namespaces": self.use_namespaces,
            "uid": uid,
            "gid": gid,
            "workdir": workdir,
            "disk_mb": int(self.disk_mb),
            "max_files": int(self.max_files),
            "keep": self._keep_paths(python),
            "hide": list(self.hide),
            "cgroups": [(ctrls, path) for ctrls, path, _ in cgroups],
            "rlimits": [
                ("RLIMIT_CORE", 0, 0),
                ("RLIMIT_CPU", self.cpu_limit_s, self.cpu_limit_s + 1),
                ("RLIMIT_AS", mem, mem),
                ("RLIMIT_FSIZE", _mb(self.fsize_mb), _mb(self.fsize_mb)),
                ("RLIMIT_NOFILE", self.nofile, self.nofile),
                ("RLIMIT_NPROC", self.max_procs, self.max_procs),
            ],
            "argv": [python, "-I", "-S", "-B", "-c", _HARNESS, str(cfg_r)],
            "env": {**env, "HOME": workdir, "TMPDIR": workdir},
        }
        start = time.monotonic()
        proc: subprocess.Popen[bytes] | None = None
        owned = [cfg_w, status_r]  # closed here until _communicate takes them over
        try:
            try:
                proc = subprocess.Popen(
                    [python, "-I", "-S", "-B", "-c", _LAUNCHER, json.dumps(launch)],
                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
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
            out, err_tail, status, killed_by = self._communicate(
                proc, cfg_w, json.dumps(payload).encode("utf-8"), stdin, status_r, cgroups
            )
        finally:
            for fd in owned:
                os.close(fd)
            if proc is not None:
                _killpg(proc)
                proc.wait()
            oom = sum(_oom_kills(path, v) for ctrls, path, v in cgroups if "memory" in ctrls)
            for _, path, _ in cgroups:
                _remove_cgroup(path)
            if uid is not None:
                _kill_uid(uid)
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
        if "unavailable" in messages:
            raise SandboxUnavailableError(messages["unavailable"])
        if "error" in messages and killed_by is None:
            raise SandboxError(f"{messages['error']} (stderr: {err_tail[-500:]!r})")
        user = messages.get("user") or {}
        sig = user.get("signal")
        cpu = user.get("cpu_s")
        if killed_by is None:
            if messages.get("timed_out"):
                killed_by = "timeout"
            elif oom:
                killed_by = "memory"
            elif sig == signal.SIGXCPU or (
                sig == signal.SIGKILL and cpu is not None and cpu >= self.cpu_limit_s - 0.05
            ):
                killed_by = "cpu"
            elif sig == signal.SIGXFSZ:
                killed_by = "file_size"
            elif sig is not None:
                killed_by = f"signal:{signal.Signals(sig).name}"
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
        self,
        proc: subprocess.Popen[bytes],
        cfg_w: int,
        payload: bytes,
        stdin: bytes | None,
        status_r: int,
        cgroups: list[tuple[str, str, int]],
    ) -> tuple[bytearray, bytes, bytes, str | None]:
        assert proc.stdout is not None and proc.stderr is not None
        cap = self.max_output_bytes
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
        deadline = time.monotonic() + self.timeout_s + _PARENT_SLACK_S
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
            _killpg(proc)
            for _, path, _ in cgroups:
                _kill_cgroup_members(path)
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


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _kill_cgroup_members(path: str) -> None:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        _kill(pid)


# ----------------------------------------------------------------------------------------------
# Functional API
# ----------------------------------------------------------------------------------------------


def run_tests(
    code: str,
    tests: Any,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: float | None = None,
    test_timeout_s: float | None = None,
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

"""The test harness: the program the sandboxed solution process runs (standard library only).

rewardkit never imports this file: it reads it as text and runs it with ``python -I -S -B -c``
inside the sandbox (``docs/sandbox.md``). ``argv[1]`` is a pipe that carries the JSON config:
``mode`` (``"script"`` or ``"tests"``), ``code``, ``allow_subprocess``, and for tests ``steps``,
``fn_name`` and ``test_timeout``.

Nothing here is trusted by the parent. The solution runs in this process and can replace any
function below or write to the result channel itself; the parent therefore reads the channel
as plain data and makes every value/call verdict itself, against expected values that are never
sent here (``rewardkit/rewards/sandbox/verdict.py``).
"""

import builtins
import contextlib
import json
import os
import signal
import sys
import types

PROCESS_FUNCTIONS = (
    "fork", "forkpty", "system", "popen", "execv", "execve", "execl", "execle", "execlp",
    "execlpe", "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp",
    "spawnlpe", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp",
)  # fmt: skip
MAX_DEPTH = 64


class Timeout(BaseException):
    """Raised by SIGALRM when one test runs past ``test_timeout``."""


class NotPlain(TypeError):
    """A value or call test gave something that is not builtin data: the test fails."""


def read_config(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return json.loads(b"".join(chunks))


def deny(*args, **kwargs):
    raise PermissionError("process creation is disabled in the rewardkit sandbox")


def block_process_creation():
    """A convenience, not the barrier (that is the pid namespace, cgroup and RLIMIT_NPROC)."""
    import _posixsubprocess
    import posix

    for mod in (os, posix):
        for name in PROCESS_FUNCTIONS:
            if hasattr(mod, name):
                setattr(mod, name, deny)
    _posixsubprocess.fork_exec = deny


def describe(exc):
    text = str(exc).strip().splitlines()
    return type(exc).__name__ + (": " + text[0][:200] if text else "")


def finish(code):
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)


def solution_namespace():
    """A fresh ``__main__`` module for the solution: none of the harness's names are in it."""
    module = types.ModuleType("__main__")
    module.__file__ = "solution.py"
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    return module.__dict__


def encode(x, depth=0):
    """``x`` as JSON-ready plain data (see verdict.py for the format); NotPlain otherwise."""
    if depth > MAX_DEPTH:
        raise NotPlain("value nested too deeply")
    t = type(x)
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return x if x - x == 0 else {"float": repr(x)}
    if t is complex:
        return {"complex": [x.real, x.imag]}
    d = depth + 1
    if isinstance(x, list):
        return [encode(v, d) for v in x]
    if isinstance(x, tuple):
        return {"tuple": [encode(v, d) for v in x]}
    if isinstance(x, frozenset):
        return {"frozenset": [encode(v, d) for v in x]}
    if isinstance(x, set):
        return {"set": [encode(v, d) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[encode(k, d), encode(v, d)] for k, v in x.items()]}
    if isinstance(x, bytes | bytearray):
        return {"bytes": bytes(x).hex()}
    raise NotPlain(f"a {t.__name__} is not plain data (return builtin values)")


def run_script(cfg):
    g = solution_namespace()
    rc = 0
    try:
        exec(compile(cfg["code"], "solution.py", "exec"), g)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            rc = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            rc = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        rc = 1
    finish(rc & 0xFF)


def run_tests(cfg):
    import traceback

    channel = os.dup(1)
    os.dup2(2, 1)  # the solution's prints go to stderr; the channel carries results only
    dumps, write = json.dumps, os.write

    def emit(obj):
        try:
            line = dumps(obj)
        except (TypeError, ValueError, RecursionError) as e:
            line = dumps({"i": obj["i"], "status": "error: " + describe(e)})
        write(channel, (line + "\n").encode())

    def alarm(signum, frame):
        raise Timeout()

    signal.signal(signal.SIGALRM, alarm)
    g = solution_namespace()
    try:
        exec(compile(cfg["code"], "solution.py", "exec"), g)
    except BaseException as e:
        traceback.print_exc()
        emit({"solution": describe(e)})
        finish(0)
    emit({"solution": "ok"})

    fn = None
    if cfg.get("fn_name"):
        fn = g.get(cfg["fn_name"])
        if not callable(fn) and isinstance(g.get("Solution"), type):
            try:
                fn = getattr(g["Solution"](), cfg["fn_name"])
            except BaseException:
                fn = None
    limit = cfg.get("test_timeout")
    for step in cfg["steps"]:
        kind = step["kind"]
        if kind == "setup":
            try:
                exec(compile(step["src"], "<tests>", "exec"), g)
            except BaseException:
                traceback.print_exc()
            continue
        i = step["index"]
        try:
            if limit:
                signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                if kind == "call":
                    if not callable(fn):
                        raise NameError(f"function {cfg['fn_name']!r} not found")
                    msg = {"i": i, "value": encode(fn(*step["args"]))}
                elif kind == "value":
                    value = eval(compile(step["src"], f"<test {i}>", "eval"), g)
                    msg = {"i": i, "value": encode(value)}
                else:
                    exec(compile(step["src"], f"<test {i}>", "exec"), g)
                    msg = {"i": i, "status": "passed"}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except SystemExit as e:  # a check that exits: status 0 passes, any other fails
            ok = kind == "test" and e.code in (None, 0, False)
            msg = {"i": i, "status": "passed" if ok else "failed"}
            print(f"test {i}: SystemExit({e.code!r})", file=sys.stderr)
        except (AssertionError, NotPlain) as e:
            msg = {"i": i, "status": "failed"}
            print(f"test {i} failed: {describe(e)}", file=sys.stderr)
        except Timeout:
            msg = {"i": i, "status": "timeout"}
        except BaseException as e:
            msg = {"i": i, "status": "error: " + describe(e)}
            print(f"test {i}: {msg['status']}", file=sys.stderr)
        emit(msg)
    emit({"done": True})
    finish(0)


def main():
    cfg = read_config(int(sys.argv[1]))
    sys.argv = ["solution.py"]
    if not cfg["allow_subprocess"]:
        block_process_creation()
    if cfg["mode"] == "script":
        run_script(cfg)
    else:
        run_tests(cfg)


if __name__ == "__main__":
    main()

"""math-verify off the main thread, with a timeout that holds: a worker process per caller.

math-verify's timeouts are ``signal.alarm``, which works only in a process's main thread. A
server, an evaluation with threads or a trainer's reward thread calls ``rule:math`` elsewhere,
where a response like ``\\boxed{9^{9^{9^{9}}}}`` held sympy (and the GIL) for minutes: the server
stopped answering, even ``/health`` and SIGTERM. So off the main thread, the slow path
(:meth:`~rewardkit.rewards.rules.math_answer.MathVerifier.verdict` without the fast path) runs in
a worker process, in its main thread, where math-verify's own timeouts work; a worker that does
not answer by a deadline is killed and replaced, and the query scores 0.0 with the reason.

Workers are plain ``python -m rewardkit.rewards.rules.math_worker`` processes speaking JSON lines
on stdin/stdout (no pickling, no re-import of the caller's ``__main__``), started on first need,
one per thread calling at once, reused, killed when the interpreter exits.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from typing import Any

#: Seconds a new worker may take to import math-verify and say it is ready.
START_TIMEOUT_S = 60.0


class WorkerDied(RuntimeError):
    """The worker exited or stopped answering before its deadline."""


class WorkerDidNotStart(WorkerDied):
    """No worker process could be started here."""


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rewardkit.rewards.rules.math_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            raise WorkerDidNotStart(f"cannot start a math-verify worker: {e}") from None
        self._buf = b""
        try:
            ready = self._line(START_TIMEOUT_S)
        except (WorkerDied, ValueError):
            ready = None
        if ready != {"ready": True}:
            self.kill()
            raise WorkerDidNotStart("the math-verify worker did not start")

    def _line(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        out = self.proc.stdout
        assert out is not None
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise WorkerDied("math-verify worker did not answer in time")
            chunk = os.read(out.fileno(), 1 << 16)
            if not chunk:
                raise WorkerDied("math-verify worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise WorkerDied(f"math-verify worker exited ({e})") from None
        return self._line(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


_idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
_all: set[_Worker] = set()
_lock = threading.Lock()


def run(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``job`` (``response``, ``reference``, ``strict``, ``timeout``) answered by a worker in
    ``timeout`` seconds: ``{"score", "problem", "stats"}``. Raises :class:`WorkerDied` when it
    did not answer in time or exited (the worker is killed), :class:`WorkerDidNotStart` when
    none could start."""
    try:
        worker = _idle.get_nowait()
    except queue.Empty:
        worker = _Worker()
        with _lock:
            _all.add(worker)
    try:
        answer = worker.ask(job, timeout)
    except BaseException:
        with _lock:
            _all.discard(worker)
        worker.kill()
        raise
    _idle.put(worker)
    return answer


@atexit.register
def _shutdown() -> None:
    with _lock:
        workers = list(_all)
        _all.clear()
    for w in workers:
        w.kill()


def main() -> None:
    """The worker: one JSON job per stdin line, one JSON answer per stdout line."""
    from rewardkit.rewards.rules.math_answer import MathVerifier

    verifiers: dict[tuple[bool, int | None], MathVerifier] = {}
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        key = (bool(job["strict"]), job["timeout"])
        v = verifiers.get(key)
        if v is None:
            v = verifiers[key] = MathVerifier(strict=key[0], timeout=key[1], fast=False)
        before = v.stats.copy()
        score, problem = v.verdict(job["response"], job["reference"])
        stats = dict(v.stats - before)
        out.write(json.dumps({"score": score, "problem": problem, "stats": stats}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()

"""Rule checks that can hang, run in worker processes with a deadline that holds.

Some checks hold the GIL for as long as they run: sympy inside math-verify
(``\\boxed{9^{9^{9^{9}}}}``), Python's ``re`` on a catastrophic pattern (``(a+)+$`` against
``"aaaa…!"``). In a thread, no timeout can stop them, and a server stops answering, even
``/health`` and SIGTERM. So such a check runs in a worker process: one that does not answer by a
deadline is killed and replaced, and the caller scores the item as unverified.

Workers are plain ``python -m MODULE`` processes speaking JSON lines on stdin/stdout (no
pickling, no re-import of the caller's ``__main__``), started on first need, one per thread
calling at once, reused, killed when the interpreter exits; a child forked later starts its own.
A worker says it got a job (an ``{"got": true}`` line) before it runs it. A worker that died idle
(the OOM killer, a signal, its own crash after a job) is replaced before it is handed a job; one
that dies before it says it got the job was dead already, and the job runs again, once, on a fresh
worker: only a worker that dies after ``got`` (or misses the deadline) counts against the job.
A module serves with :func:`serve`; a caller asks with :meth:`WorkerPool.run` (one job, killed
past its deadline) or :meth:`WorkerPool.run_batches` (a list of items, each given its own time
inside the worker by :func:`run_timed`, so a slow item is given up without a restart).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds a new worker may take to import what it needs and say it is ready.
START_TIMEOUT_S = 60.0

#: Items sent to a worker in one call by :meth:`WorkerPool.run_batches` (bounds the caller's
#: deadline and the message size).
BATCH = 256

#: Seconds a worker gets beyond the sum of its items' limits before the caller kills it.
SLACK_S = 10.0


def batch_deadline(count: int, timeout: float) -> float:
    """The caller's deadline for one worker call of ``count`` items: each may run its full
    ``timeout`` before the worker gives it up (:func:`run_timed`), plus :data:`SLACK_S`."""
    return count * timeout + SLACK_S


class WorkerDied(RuntimeError):
    """The worker exited or stopped answering before its deadline."""


class WorkerDidNotStart(WorkerDied):
    """No worker process could be started here."""


class _Exited(WorkerDied):
    """The worker's stdout ended: it exited."""


class _NotReceived(WorkerDied):
    """The worker exited before it said it got the job: it was dead already (the job's fault
    only where a fresh worker dies the same way)."""


#: What a worker says as soon as it has read a job, before it runs it.
GOT = {"got": True}


class _Worker:
    def __init__(self, module: str, label: str) -> None:
        self.label = label
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            raise WorkerDidNotStart(f"cannot start a {label} worker: {e}") from None
        self._buf = b""
        try:
            ready = self._line(START_TIMEOUT_S)
        except (WorkerDied, ValueError):
            ready = None
        if ready != {"ready": True}:
            self.kill()
            raise WorkerDidNotStart(f"the {label} worker did not start")

    def _line(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        out = self.proc.stdout
        assert out is not None
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise WorkerDied(f"{self.label} worker did not answer in time")
            chunk = os.read(out.fileno(), 1 << 16)
            if not chunk:
                raise _Exited(f"{self.label} worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:  # something in the worker printed to its stdout
            raise WorkerDied(f"{self.label} worker wrote {line[:80]!r}, not JSON") from None

    def ask(self, line: bytes, timeout: float) -> dict[str, Any]:
        """The answer to the job ``line`` within ``timeout`` seconds. Raises
        :class:`_NotReceived` when the worker exited before it said it got the job, and
        :class:`WorkerDied` when it exited or missed the deadline after that."""
        assert self.proc.stdin is not None
        deadline = time.monotonic() + timeout
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except OSError as e:
            raise _NotReceived(f"{self.label} worker had exited ({e})") from None
        try:
            got = self._line(timeout)
        except _Exited:
            raise _NotReceived(f"{self.label} worker had exited") from None
        if got != GOT:
            raise WorkerDied(f"{self.label} worker: unexpected reply {str(got)[:80]!r}")
        return self._line(max(0.0, deadline - time.monotonic()))

    def idle_alive(self) -> bool:
        """Whether this idle worker can take a job: running, nothing unread, and its stdout
        neither closed nor holding anything unasked for."""
        if self.proc.poll() is not None or self._buf or self.proc.stdout is None:
            return False
        try:
            return not select.select([self.proc.stdout], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def disown(self) -> None:
        """Close this process's ends of the worker's pipes, leaving the worker running (it
        belongs to the process that started it)."""
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self.proc.returncode = 0  # not this process's child: never wait for it or kill it here

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:  # a job left unflushed to a dead worker: EPIPE on close
                with contextlib.suppress(OSError):
                    f.close()


class WorkerPool:
    """Workers running ``python -m module`` (``label`` names them in errors)."""

    def __init__(self, module: str, label: str) -> None:
        self.module, self.label = module, label
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._warned = False
        _POOLS.append(self)

    def warn_no_worker(self, error: BaseException, consequence: str) -> None:
        """Log, once per pool, that no worker could start (``error``) and what the caller does
        instead (``consequence``: the check now runs here, untimed)."""
        if not self._warned:
            self._warned = True
            logging.getLogger(__name__).warning(
                "%s: no worker process (%s); %s", self.label, error, consequence
            )

    def workers(self) -> list[_Worker]:
        """The pool's live workers (idle or busy)."""
        with self._lock:
            return list(self._all)

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """``job`` answered by a worker within ``timeout`` seconds. Raises :class:`WorkerDied`
        when it did not answer in time or exited after it got the job (the worker is killed),
        :class:`WorkerDidNotStart` when none could start, and ``ValueError`` or ``RecursionError``
        (before any worker is involved) when ``job`` cannot be written as JSON. A worker found
        dead is replaced first; one that dies before it got the job was dead already: the job
        runs once more, on a fresh worker."""
        line = (json.dumps(job) + "\n").encode()
        for fresh in (False, True):
            worker = self._start() if fresh else self._take()
            try:
                answer = worker.ask(line, timeout)
            except _NotReceived:
                self._drop(worker)
                if fresh:
                    raise
                continue
            except BaseException:
                self._drop(worker)
                raise
            self._idle.put(worker)
            return answer
        raise AssertionError("unreachable")

    def _take(self) -> _Worker:
        """An idle worker that is still alive (the dead ones dropped), else a new one."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._start()
            if worker.idle_alive():
                return worker
            logging.getLogger(__name__).info(
                "%s worker %d died while idle (exit %s); replacing it",
                self.label,
                worker.proc.pid,
                worker.proc.returncode,
            )
            self._drop(worker)

    def _start(self) -> _Worker:
        worker = _Worker(self.module, self.label)
        with self._lock:
            self._all.add(worker)
        return worker

    def _drop(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()

    def run_batches(
        self,
        items: list[Any],
        job: Callable[[list[Any]], dict[str, Any]],
        key: str,
        timeout: float,
        died: Callable[[WorkerDied], Any],
    ) -> list[Any]:
        """One answer per item: ``job(chunk)`` for chunks of up to :data:`BATCH` items, each
        answered as a list under ``key`` by a worker that gives each item ``timeout`` seconds;
        every item of a chunk whose worker exited or stopped answering is ``died(error)``.
        Raises :class:`WorkerDidNotStart` when no worker can start here."""
        out: list[Any] = []
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            try:
                answer = self.run(job(chunk), batch_deadline(len(chunk), timeout))
                answers = answer.get(key)
                if not isinstance(answers, list) or len(answers) != len(chunk):
                    raise WorkerDied(f"{self.label} worker: {answer.get('error', 'bad answer')}")
            except WorkerDidNotStart:
                raise
            except WorkerDied as exc:
                answers = [died(exc)] * len(chunk)
            out.extend(answers)
        return out

    def forget_inherited(self) -> None:
        """In a child process just forked: the workers are the parent's. Their queue, set and
        lock start afresh here (the lock may have been held by a parent thread at the fork),
        and the child's copies of their pipes are closed, never the workers themselves: a
        child writing to a parent's worker would interleave its jobs with the parent's and
        its siblings', and read their answers as its own."""
        for worker in self._all:
            worker.disown()
        self._idle = queue.SimpleQueue()
        self._all = set()
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        """Kill every worker (idle or busy)."""
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()


_POOLS: list[WorkerPool] = []


@atexit.register
def _shutdown() -> None:
    for pool in list(_POOLS):
        pool.shutdown()


def _forget_inherited() -> None:
    for pool in _POOLS:
        pool.forget_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited)


def _exit_when_orphaned() -> None:
    """A worker whose caller died (killed, crashed) while it ran a long check would spin on,
    alone: an idle one reads the end of its stdin and exits, a busy one never reads it. A CPU-time
    timer (``ITIMER_VIRTUAL``: it ticks only while the worker computes, and it is not the
    ``SIGALRM`` math-verify's timeouts use) checks the parent about once a CPU second; ``re`` and
    sympy let the handler run mid-check."""
    if not hasattr(signal, "setitimer"):
        return
    parent = os.getppid()

    def check(signum: int, frame: Any) -> None:
        if os.getppid() != parent:
            os._exit(1)

    signal.signal(signal.SIGVTALRM, check)
    signal.setitimer(signal.ITIMER_VIRTUAL, 1.0, 1.0)


class _Overrun(BaseException):
    """Raised by :func:`run_timed`'s timer inside a call past its limit (a ``BaseException``,
    as ``KeyboardInterrupt`` is, so the checked code's own ``except Exception`` cannot keep it)."""


def _on_timer(signum: int, frame: Any) -> None:
    raise _Overrun


def run_timed(call: Callable[[], T], timeout: float) -> tuple[bool, T | None]:
    """``(True, call())``, or ``(False, None)`` when ``call`` ran past ``timeout`` seconds
    (``timeout <= 0``: no limit).

    For a worker's main thread: a real-time timer's handler ends the call (``re`` and
    pure-Python loops run signal handlers as they go), so a worker gives up one slow check and
    goes on with the next, where the caller's deadline would kill and restart it."""
    if timeout <= 0:
        return True, call()
    previous = signal.signal(signal.SIGALRM, _on_timer)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return True, call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Overrun:  # also when the timer fired as the call returned: at its limit
        return False, None
    finally:  # the one-shot timer has fired or is disarmed: nothing can interrupt this
        signal.signal(signal.SIGALRM, previous)


def serve(handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A worker's main loop: say it is ready, then for each JSON job on a stdin line say it got
    it (:data:`GOT`) and answer ``handle(job)`` as one JSON line on stdout (exiting when its
    caller is gone)."""
    _exit_when_orphaned()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        out.write(json.dumps(GOT) + "\n")  # before the job can end this worker
        out.flush()
        out.write(json.dumps(handle(json.loads(line))) + "\n")
        out.flush()

"""Regular-expression searches with a time limit per text, in a worker process: the user
patterns of ``rule:format``.

Python's ``re`` holds the GIL with no time limit, and an everyday pattern such as
``^(\\w+\\s?)*$`` backtracks exponentially on a response like ``"aaaa…!"``: in the scoring
process that would stop a whole server. Here a search runs in a worker (:mod:`.worker_pool`)
under a real-time timer whose signal handler ends it (``re`` lets signal handlers run while it
matches), so one worker call checks a whole batch and only the slow texts are given up on. The
caller's own deadline (the batch's total) still kills a worker that stops answering.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from typing import Any

from rewardkit.rewards.rules.worker_pool import WorkerDidNotStart, WorkerDied, WorkerPool, serve

__all__ = ["POOL", "WorkerDidNotStart", "WorkerDied", "job_deadline", "search_in_worker"]

#: The regex workers of this process.
POOL = WorkerPool("rewardkit.rewards.rules.regex_worker", "regex")

#: Texts sent to a worker in one call (bounds the caller's deadline and the message size).
CHUNK = 256

#: Seconds a worker gets beyond the sum of its texts' limits before the caller kills it.
SLACK_S = 10.0


def job_deadline(count: int, timeout: float) -> float:
    """The caller's deadline for one worker call of ``count`` texts: each may run its full
    ``timeout`` before the worker gives it up, plus :data:`SLACK_S`."""
    return count * timeout + SLACK_S


def search_in_worker(
    pattern: str, flags: int, texts: Sequence[str], timeout: float
) -> list[bool | None]:
    """Whether ``pattern`` is found in each text, None for a text whose search ran past
    ``timeout`` seconds. Raises :class:`WorkerDidNotStart` when no worker can start here and
    :class:`WorkerDied` when one exited or stopped answering."""
    found: list[bool | None] = []
    for start in range(0, len(texts), CHUNK):
        chunk = list(texts[start : start + CHUNK])
        job = {"pattern": pattern, "flags": flags, "texts": chunk, "timeout": timeout}
        answer = POOL.run(job, job_deadline(len(chunk), timeout))
        if "error" in answer or len(answer.get("found", ())) != len(chunk):
            raise WorkerDied(f"regex worker: {answer.get('error', 'a malformed answer')}")
        found.extend(None if f is None else bool(f) for f in answer["found"])
    return found


class _Overrun(Exception):
    """Raised by the timer's handler inside a search past its limit."""


def _on_timer(signum: int, frame: Any) -> None:
    raise _Overrun


def timed_search(regex: re.Pattern[str], text: str, timeout: float) -> bool | None:
    """``regex.search(text)`` found something; None when it ran past ``timeout`` seconds.
    Main thread of a worker only (a signal handler ends the search)."""
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return regex.search(text) is not None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Overrun:  # also when the timer fired as the search returned: at its limit
        return None


def main() -> None:
    """The worker: ``{"pattern", "flags", "texts", "timeout"}`` per stdin line,
    ``{"found": [true | false | null, …]}`` (null: past the limit) or ``{"error": why}`` per
    stdout line."""
    signal.signal(signal.SIGALRM, _on_timer)
    compiled: dict[tuple[str, int], re.Pattern[str]] = {}

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        key = (str(job["pattern"]), int(job["flags"]))
        regex = compiled.get(key)
        if regex is None:
            try:
                regex = re.compile(*key)
            except re.error as exc:  # the caller compiled it first; never end the worker
                return {"error": f"invalid pattern: {exc}"}
            if len(compiled) > 256:
                compiled.clear()
            compiled[key] = regex
        timeout = float(job["timeout"])
        found: list[bool | None] = []
        for text in job["texts"]:
            try:
                found.append(timed_search(regex, str(text), timeout))
            except _Overrun:  # a timer signal handled just past the search's own guard
                found.append(None)
        return {"found": found}

    serve(handle)


if __name__ == "__main__":
    main()

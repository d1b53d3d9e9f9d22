"""Regular-expression searches with a time limit per text, in a worker process: the user
patterns of ``rule:format``.

Python's ``re`` holds the GIL with no time limit, and an everyday pattern such as
``^(\\w+\\s?)*$`` backtracks exponentially on a response like ``"aaaa…!"``: in the scoring
process that would stop a whole server. Here a search runs in a worker (:mod:`.worker_pool`)
under a real-time timer whose signal handler ends it (``re`` lets signal handlers run while it
matches), so one worker call checks a whole batch and only the slow texts are given up on. The
caller's own deadline (the batch's total: :func:`~.worker_pool.batch_deadline`) still kills a
worker that stops answering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any

from rewardkit.rewards.rules.worker_pool import (
    WorkerDidNotStart,
    WorkerPool,
    run_timed,
    serve,
)

__all__ = ["POOL", "WorkerDidNotStart", "search_in_worker"]

#: The regex workers of this process.
POOL = WorkerPool("rewardkit.rewards.rules.regex_worker", "regex")


def search_in_worker(
    pattern: str, flags: int, texts: Sequence[str], timeout: float
) -> list[bool | str | None]:
    """Whether ``pattern`` is found in each text; None for a text whose search ran past
    ``timeout`` seconds, the reason (a string) for one whose worker exited or stopped
    answering. Raises :class:`WorkerDidNotStart` when no worker can start here."""

    def job(chunk: list[str]) -> dict[str, Any]:
        return {"pattern": pattern, "flags": flags, "texts": chunk, "timeout": timeout}

    return POOL.run_batches(list(texts), job, "found", timeout, died=str)


@lru_cache(maxsize=256)
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def main() -> None:
    """The worker: ``{"pattern", "flags", "texts", "timeout"}`` per stdin line,
    ``{"found": [true | false | null, …]}`` (null: past the limit) or ``{"error": why}`` per
    stdout line."""

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        try:
            regex = _compiled(str(job["pattern"]), int(job["flags"]))
        except re.error as exc:  # the caller compiled it first; never end the worker
            return {"error": f"invalid pattern: {exc}"}
        timeout = float(job["timeout"])
        found: list[bool | None] = []
        for text in job["texts"]:
            search = partial(regex.search, str(text))
            finished, match = run_timed(search, timeout)
            found.append(match is not None if finished else None)
        return {"found": found}

    serve(handle)


if __name__ == "__main__":
    main()

"""math-verify off the main thread, with a timeout that holds: a worker process per caller.

math-verify's timeouts are ``signal.alarm``, which works only in a process's main thread. A
server, an evaluation with threads or a trainer's reward thread calls ``rule:math`` elsewhere,
where a response like ``\\boxed{9^{9^{9^{9}}}}`` held sympy (and the GIL) for minutes: the server
stopped answering, even ``/health`` and SIGTERM. So off the main thread, the slow path
(:meth:`~rewardkit.rewards.rules.math_answer.MathVerifier.verdict` without the fast path) runs in
a worker process (:mod:`.worker_pool`), in its main thread, where math-verify's own timeouts
work; a worker that does not answer by a deadline is killed and replaced, and the query scores
0.0 with the reason.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rewardkit.rewards.rules.worker_pool import WorkerDidNotStart, WorkerDied, WorkerPool, serve

if TYPE_CHECKING:
    from rewardkit.rewards.rules.math_answer import MathVerifier

__all__ = ["POOL", "WorkerDidNotStart", "WorkerDied", "main", "run", "verdict_in_worker"]

#: The math-verify workers of this process.
POOL = WorkerPool("rewardkit.rewards.rules.math_worker", "math-verify")


def run(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """``job`` (``response``, ``reference``, ``strict``, ``percent``, ``timeout``) answered by a worker in
    ``timeout`` seconds: ``{"score", "problem", "stats"}``. Raises :class:`WorkerDied` when it
    did not answer in time or exited (the worker is killed), :class:`WorkerDidNotStart` when
    none could start."""
    return POOL.run(job, timeout)


def verdict_in_worker(
    verifier: MathVerifier, response: str, refs: list[str], percent: bool = False
) -> tuple[float, str | None] | None:
    """``verifier``'s slow path for ``response`` in a worker process, where math-verify's timeouts
    work: (score, problem), with the worker's counts added to ``verifier.stats``; None when no
    worker can start (the caller then runs it in its own thread, untimed)."""
    assert verifier.timeout is not None
    deadline = verifier.timeout * (3 + 2 * len(refs)) + 2.0
    job = {"response": response, "reference": refs, "strict": verifier.strict, "percent": percent}
    try:
        answer = run({**job, "timeout": verifier.timeout}, deadline)
    except WorkerDidNotStart as e:
        _warn_no_worker(e)
        return None
    except WorkerDied:
        verifier.stats["timeout"] += 1
        return 0.0, f"math-verify did not finish in {deadline:.0f} s (worker killed)"
    verifier.stats.update(answer["stats"])
    return float(answer["score"]), answer["problem"]


@lru_cache(maxsize=1)
def _warn_no_worker(error: BaseException) -> None:
    logging.getLogger(__name__).warning(
        "rule:math: no math-verify worker process (%s); off the main thread math-verify now runs "
        "without a timeout",
        error,
    )


def main() -> None:
    """The worker: one JSON job per stdin line, one JSON answer per stdout line."""
    from rewardkit.rewards.rules.math_answer import MathVerifier

    verifiers: dict[tuple[bool, int | None], MathVerifier] = {}

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        key = (bool(job["strict"]), job["timeout"])
        v = verifiers.get(key)
        if v is None:
            v = verifiers[key] = MathVerifier(strict=key[0], timeout=key[1], fast=False)
        before = v.stats.copy()
        score, problem = v.verdict(job["response"], job["reference"], bool(job.get("percent")))
        return {"score": score, "problem": problem, "stats": dict(v.stats - before)}

    serve(handle)


if __name__ == "__main__":
    main()

"""An engine run's forward passes on several worker threads at once, each on its share of the
torch threads (docs/performance.md, "Forward passes on worker threads").

On a CPU one forward pass on every torch thread meets at the barrier of each operator's
parallel region, and rewardkit's sleeping OpenMP waits (:mod:`rewardkit.models.openmp`) add a
wake-up to each: a SmolLM2 forward pass is 30 blocks of a few dozen operators each, many of
them tiny. Two passes at once, each on half the threads, run the same operators without those
barriers (on one thread a region costs nothing to open). Measured on the project's 2-core
host, 60 HH pairs, SmolLM2-135M bf16, eager, interleaved rounds: shared prompts 20.9 s → 15.1 s
(1.38×), padded 21.0 s → 18.9 s (1.11×). Passes are independent (a shared-prompt pass runs its
own prefixes), so only their outputs come back to the calling thread, in plan order: cache
writes, progress and statistics stay where they were.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from rewardkit.engine.compiling import CompileGate

#: One forward pass of a run: its row indices and a call returning their outputs in that order.
Step = tuple[list[int], Callable[[], list[np.ndarray]]]
#: A compile gate's warm-up probe: (rows, real tokens, the call).
Probe = tuple[int, int, Callable[[], list[np.ndarray]]]

#: Passes at once on a CPU with two or more torch threads, unless ``EngineConfig.workers`` says.
AUTO_WORKERS = 2


def worker_count(requested: int | None, device: torch.device, threads: int, steps: int) -> int:
    """How many passes run at once: ``requested`` (None: :data:`AUTO_WORKERS`), at most one
    per torch thread and per pass; always 1 off the CPU (one device runs one pass at a time)."""
    if device.type != "cpu":
        return 1
    return max(1, min(AUTO_WORKERS if requested is None else requested, threads, steps))


def passes_at_once(gate: CompileGate, workers: int) -> int:
    """Passes a run's decided steps take at once: ``workers``, but one on compiled blocks
    (dynamo guards on the thread count, so a worker's share would build a second set of graphs,
    and a compiling run times its steps)."""
    return 1 if gate.outcome == "compiled" else workers


def thread_share(threads: int, workers: int, index: int) -> int:
    """Torch threads of worker ``index``: an even split, the remainder to the first ones."""
    return threads // workers + (1 if index < threads % workers else 0)


def run_steps(
    steps: Sequence[Step], workers: int, threads: int
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """``(rows, outputs)`` of every step in order, computed ``workers`` at a time.

    Each worker thread sets its own torch threads (OpenMP keeps the setting per thread) and runs
    under ``torch.inference_mode`` (a per-thread mode). A step that raises stops the run: steps
    not started are cancelled, the ones running finish, and the error reaches the caller after
    the outputs of every step before it (so a resumable caller keeps them). The calling thread's
    torch threads are set back on the way out (a worker's setting also becomes the count new
    threads start from)."""
    if workers <= 1:
        for rows, run in steps:
            with torch.inference_mode():
                out = run()
            yield rows, out
        return
    slots = iter(range(workers))

    def start() -> None:
        share = thread_share(threads, workers, next(slots))
        torch.get_num_threads()  # a thread's first parallel call reads the process-wide count
        torch.set_num_threads(share)

    def call(run: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
        with torch.inference_mode():
            return run()

    pool = concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix="rewardkit-pass", initializer=start
    )
    futures = [(rows, pool.submit(call, run)) for rows, run in steps]
    try:
        for rows, future in futures:
            yield rows, future.result()
    finally:
        for _, future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        torch.set_num_threads(threads)


def gated_outputs(
    steps: Sequence[Step],
    gate: CompileGate,
    lengths: Sequence[int],
    probe: Callable[[list[int]], Probe | None],
    work: Mapping[int, float],
    workers: int,
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Every step's ``(rows, outputs)`` in plan order. Steps pass through ``gate`` one at a time
    until it has decided whether to compile; the rest run :func:`passes_at_once` at a time
    (:func:`run_steps`). ``probe(rows)``: the gate's warm-up probe for a first step;
    ``work[n]``: step ``n``'s planned cost."""
    n = 0
    while n < len(steps) and (not gate.decided or passes_at_once(gate, workers) <= 1):
        rows, run = steps[n]
        trial = None if gate.decided else probe(rows)
        yield rows, gate.run([lengths[i] for i in rows], run, trial, work.get(n))
        n += 1
    rest = [
        (rows, functools.partial(gate.run, [lengths[i] for i in rows], run))
        for rows, run in steps[n:]
    ]
    yield from run_steps(rest, min(workers, len(rest)), torch.get_num_threads())

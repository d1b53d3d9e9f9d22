"""What one server process holds: its routes (a reward, its batcher, its layout of results),
the response cache, metrics, and the drain state used at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from rewardkit.errors import ItemFailed, SpecError
from rewardkit.results import failed_rows
from rewardkit.serve.batcher import BatcherConfig, DynamicBatcher
from rewardkit.serve.cache import ResponseCache
from rewardkit.serve.config import (
    DEFAULT_ROUTE,
    SERVE_ENGINE_DEFAULTS,
    ServeConfig,
    default_model_workers,
)
from rewardkit.serve.memory import TRIM_INTERVAL, UnsentAnswers, release_memory
from rewardkit.serve.metrics import Metrics
from rewardkit.serve.protocol import PROTOCOL_VERSION
from rewardkit.serve.threads import ThreadShare
from rewardkit.types import Capability, Query, Reward, stable_hash

log = logging.getLogger("rewardkit.serve")


# -- rewards behind routes -------------------------------------------------------------------
class Route:
    """One reward as served: its component layout, cache fingerprint and batcher.

    Results are float32 vectors ``[reward, component_1, …]``: a scalar reward has itself as its
    one component; a multi-objective reward's value is the NaN-aware mean of its objectives
    (card C5 — mean aggregate) with one component per objective; an ensemble reports each member.
    """

    def __init__(self, name: str, spec: Any, reward: Reward) -> None:
        self.name = name
        self.spec = spec if isinstance(spec, str) else reward.name
        self.reward = reward
        # a composite answers from its members: any member runs a model
        self.model_backed = reward.can(Capability.MODEL_BACKED)
        self.is_ensemble = reward.can(Capability.MEMBERS)
        if self.is_ensemble:
            self.components: tuple[str, ...] = reward.member_names
        elif reward.objectives:
            self.components = tuple(reward.objectives)
        else:
            self.components = (reward.name,)
        self.reward_fingerprint = reward.fingerprint()
        #: Cache namespace: the reward's fingerprint and the served vector layout.
        self.fingerprint = stable_hash(
            {"serve": PROTOCOL_VERSION, "reward": self.reward_fingerprint, "c": self.components}
        )
        self.batcher: DynamicBatcher | None = None
        #: How the server's concurrent model batches share the torch threads (set by the server
        #: for model-backed routes; None: batches keep whatever threads torch has).
        self.threads: ThreadShare | None = None
        #: Where endpoint rewards' token usage and cost are counted (set by the server).
        self.metrics: Metrics | None = None

    def score_batch(self, queries: list[Query]) -> list[Any]:
        """What the batcher calls (in a worker thread): the whole batch in one reward call, so a
        model-backed reward tokenizes it once and its engine plans length-sorted sub-batches on
        real token counts, as offline scoring does; errors are isolated per item. Afterwards
        the allocator gives freed memory back to the system (:func:`release_memory`, at most
        every ``TRIM_INTERVAL`` seconds). Concurrent batches share the torch threads
        (:class:`~rewardkit.serve.threads.ThreadShare`)."""
        share = contextlib.nullcontext() if self.threads is None else self.threads.batch(self.name)
        try:
            with share:
                return self.score_isolating(queries)
        finally:
            if self.model_backed:
                release_memory(TRIM_INTERVAL)

    def vectors(self, queries: list[Query]) -> tuple[np.ndarray, dict[int, str]]:
        """Score a batch into ``(n, 1 + len(components))`` float32 rows (called in a worker), with
        the items the reward failed alone (index → error, :func:`~rewardkit.results.failed_rows`)."""
        full = self.reward.score_full(queries)
        first = full.scores if full.scores.ndim == 1 else full.scores[:, 0]
        failed = failed_rows(full.stats, first)
        if self.is_ensemble:
            nan = np.full(len(full), np.nan)  # no queries: no member columns either
            members = [full.members.get(name, nan) for name in self.components]
            return np.column_stack([full.scores, *members]).astype(np.float32), failed
        if self.metrics is not None:
            self.metrics.record_endpoint(self.name, full.stats)
            if self.model_backed:
                self.metrics.record_model(self.name, full.stats)
        out = full.scores
        if out.ndim == 1:
            return np.column_stack([out, out]).astype(np.float32), failed
        from rewardkit.combine.aggregate import aggregate

        value = aggregate(out.astype(np.float64), "mean").value
        return np.column_stack([value, out]).astype(np.float32), failed

    def score_isolating(self, queries: list[Query]) -> list[Any]:
        """Score a batch; when it raises, split it in halves until the failing items are alone,
        so one bad item gets its own error and the rest are still scored. An item the reward
        failed without raising gets :class:`~rewardkit.errors.ItemFailed`: served as a
        ``scoring_error`` and not cached (it was served as a score NaN or 0, and cached)."""
        try:
            rows, failed = self.vectors(queries)
            return [ItemFailed(failed[i]) if i in failed else rows[i] for i in range(len(queries))]
        except Exception as exc:
            if len(queries) == 1:
                return [exc]
            mid = len(queries) // 2
            return self.score_isolating(queries[:mid]) + self.score_isolating(queries[mid:])


def refuse_listwise(name: str, reward: Reward) -> None:
    """A listwise reward ranks the responses that share one call, and a batch-relative one
    (``Capability.BATCH_RELATIVE``: an ensemble standardised over the call without ``stats``)
    scores each against the rest of its call: behind a server either's scores would depend on
    which requests a dynamic batch happened to merge, and a cached score on the batch it came
    from, so both are refused (docs/serving.md, "Batching")."""
    if reward.can(Capability.LISTWISE):
        raise SpecError(
            f"route {name!r}: {reward.name} ranks the responses that share one call, so served "
            "its scores would depend on how requests are batched; serve a pointwise or pairwise "
            "reward, or rank groups with `rewardkit score` or the Python API"
        )
    if reward.can(Capability.BATCH_RELATIVE):
        raise SpecError(
            f"route {name!r}: {reward.name} scores each item against the rest of its call (an "
            "ensemble's zscore without fixed stats), so served its scores would depend on how "
            "requests are batched; give the ensemble stats= (docs/composition.md, "
            '"Standardising members")'
        )


def _replica_id() -> str:
    try:
        from ray import serve

        ctx = serve.get_replica_context()
        rid = getattr(ctx, "replica_id", None)
        return str(getattr(rid, "unique_id", None) or rid)
    except Exception:
        return f"{socket.gethostname()}:{os.getpid()}"


# -- state -----------------------------------------------------------------------------------
class ServeState:
    """Routes, batchers, cache and metrics of one server process."""

    def __init__(self, config: ServeConfig) -> None:
        from rewardkit.registry import load_reward

        if not config.rewards:
            raise ValueError("no reward to serve: give at least one route")
        self.config = config
        self.metrics = Metrics()
        self.cache = ResponseCache(config.cache_bytes, config.cache_dir)
        self.replica = config.replica_id or _replica_id()
        #: Answers written to clients that do not read them (the connection guard counts them).
        self.unsent = UnsentAnswers(config.unsent_budget_bytes, config.write_timeout)
        #: The app's paths (set by ``create_app``): labels of ``rewardkit_requests_total``.
        self.endpoints: frozenset[str] = frozenset()
        self.draining = False
        #: When accepted requests stop waiting for their scores (monotonic seconds).
        self.drain_deadline: float | None = None
        #: When the process should be gone: the shutdown signal + ``graceful_timeout``.
        self.exit_deadline: float | None = None
        self._expired: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rule_pool = ThreadPoolExecutor(
            max_workers=config.rule_workers, thread_name_prefix="rewardkit-rules"
        )
        self._executors: list[Executor] = [self.rule_pool]
        built: dict[str, Route] = {}
        self.routes: dict[str, Route] = {}
        engine = {**SERVE_ENGINE_DEFAULTS, **dict(config.engine)}
        if config.model_workers == 1 and "workers" not in config.engine:
            engine["workers"] = None  # one batch at a time: its passes share the threads
        for name, spec in config.rewards.items():
            key = spec if isinstance(spec, str) else f"object:{id(spec)}"
            if key not in built:
                reward = (
                    spec if isinstance(spec, Reward) else load_reward(spec, engine_defaults=engine)
                )
                refuse_listwise(name, reward)
                built[key] = Route(name, spec, reward)
            self.routes[name] = built[key]
        models = [r for r in built.values() if r.model_backed]
        threads = self._torch_threads(engine) if models else 1
        workers = self.model_workers(engine, threads) if models else 1
        share = ThreadShare(threads) if models else None
        for route in built.values():
            if route.model_backed:
                executor: Executor = ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix=f"rewardkit-model-{route.name}"
                )
                self._executors.append(executor)
                route.threads = share
                batch = BatcherConfig(**{**asdict(config.batch), "concurrency": workers})
            else:
                executor = self.rule_pool
                batch = BatcherConfig(
                    **{**asdict(config.batch), "concurrency": config.rule_workers}
                )
            route.metrics = self.metrics
            route.batcher = DynamicBatcher(
                route.name,
                route.score_batch,
                executor,
                batch,
                self.metrics,
                on_scored=functools.partial(self.cache.put_many, route.fingerprint),
            )
            self.cache.register(route.fingerprint, {"serve": route.reward.identity()})

    def model_workers(self, engine: dict[str, Any], threads: int) -> int:
        """Batches each model-backed route runs at once (``ServeConfig.model_workers``, else
        :func:`~rewardkit.serve.config.default_model_workers` for the server's device and its
        ``threads`` torch threads)."""
        if self.config.model_workers is not None:
            return self.config.model_workers
        from rewardkit.models.loading import resolve_device

        on_gpu = resolve_device(str(engine.get("device") or "auto")).type != "cpu"
        return default_model_workers(threads, on_gpu)

    @staticmethod
    def _torch_threads(engine: dict[str, Any]) -> int:
        import torch

        return int(engine.get("threads") or torch.get_num_threads())

    def count_refused_connection(self) -> None:
        """A connection was closed on arrival (``max_connections`` open): count it."""
        self.metrics.inc("rewardkit_connections_refused_total")

    def count_protocol_answer(self, path: str | None, status: int) -> None:
        """An answer given below the app (uvicorn's 400 to bytes that are not HTTP, the
        connection guard's 431): count it in ``rewardkit_requests_total`` like the app's own."""
        endpoint = path if path in self.endpoints else "other"
        self.metrics.inc("rewardkit_requests_total", endpoint=endpoint, status=str(status))

    def unique_routes(self) -> list[Route]:
        return list({id(r): r for r in self.routes.values()}.values())

    def resolve(self, data_source: str | None) -> Route | None:
        if data_source is not None and data_source in self.routes:
            return self.routes[data_source]
        return self.routes.get(DEFAULT_ROUTE)

    def bind_loop(self) -> None:
        """Called once the event loop runs (app startup): drains can now wake waiters."""
        self._loop = asyncio.get_running_loop()
        self._expired = self._loop.create_future()
        if self.drain_deadline is not None:  # a drain begun before the loop ran
            self._loop.call_soon(self._start_expiry)

    def begin_drain(self, grace: float) -> None:
        """Stop taking requests; accepted ones get at most ``grace`` seconds more. Safe to call
        from a signal handler (the waiters are woken through the loop)."""
        if self.draining:
            return
        self.draining = True
        now = time.monotonic()
        self.drain_deadline = now + max(0.0, grace)
        self.exit_deadline = now + self.config.graceful_timeout
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_expiry)

    def _start_expiry(self) -> None:
        assert self._loop is not None and self.drain_deadline is not None
        delay = max(0.0, self.drain_deadline - time.monotonic())
        self._loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        if self._expired is not None and not self._expired.done():
            self._expired.set_result(None)

    def drain_expired(self) -> asyncio.Future[None]:
        """One future shared by every waiting request (no task per request): done once a drain
        has begun and its deadline has passed. Await it shielded, never cancel it."""
        if self._expired is None or self._loop is not asyncio.get_running_loop():
            self.bind_loop()  # an app used without its lifespan (tests)
        assert self._expired is not None
        return self._expired

    def shutdown_time_left(self) -> float:
        """Seconds left for :meth:`close`: until the exit deadline when a drain has begun (the
        drain has used the rest of ``graceful_timeout``), else the whole ``graceful_timeout``."""
        if self.exit_deadline is None:
            return self.config.graceful_timeout
        return max(0.0, self.exit_deadline - time.monotonic())

    async def close(self, timeout: float | None = None) -> None:
        """Finish or drop queued work within ``timeout`` seconds in all, then stop every thread
        pool without waiting for a batch still running (the process may exit under it)."""
        self.draining = True
        end = None if timeout is None else time.monotonic() + timeout
        for route in self.unique_routes():
            if route.batcher is not None:
                # at least a moment: wait_for(…, 0) would not let even an idle batcher close
                wait = None if end is None else max(0.05, end - time.monotonic())
                try:
                    await asyncio.wait_for(route.batcher.close(), wait)
                except TimeoutError:
                    log.warning("%s: queued work dropped at shutdown", route.name)
        for ex in self._executors:
            ex.shutdown(wait=False, cancel_futures=True)
        self.cache.close()

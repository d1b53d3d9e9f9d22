"""The one batching engine behind every model-backed reward.

:class:`Engine` holds a :class:`~rewardkit.engine.adapter.ModelAdapter` (one model, one
``forward(batch)`` contract) and does the rest the same way for every model: cache look-up,
de-duplication, length-sorted batches under a token budget, right padding with an attention
mask, progress, cache writes after every batch, and statistics, returned as an
:class:`EngineRun` value. In float32, scores do not depend on batch budget or query order (to
~1e-6); in bfloat16 the batch shape changes rounding, so compare bf16 runs with a tolerance.

Adapters whose model exposes its transformer body (:meth:`ModelAdapter.backbone`) can also run
shared prompts (each shared prefix runs once) or packed sequences (no padding): ``EngineConfig.
layout``, :mod:`rewardkit.engine.layout`. The engine lays the hidden states out as the padded
batch would have had them (:attr:`Batch.hidden`): the adapter's readout is one code path.

:class:`ModelBackedReward` is the :class:`~rewardkit.types.Reward` side: it holds an engine
built from :meth:`ModelBackedReward.model_adapter`; each reward family has its own adapter (the
model families', the shared causal-LM one of judges, log-prob and PRM rewards, …).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from rewardkit.engine import execute, special_tokens
from rewardkit.engine.adapter import Batch, EncodedRow, ModelAdapter
from rewardkit.engine.batching import plan_batches, stack_rows
from rewardkit.engine.cache import RESPONSE_CUT, TRUNCATED, ScoreCache, truncation_flags
from rewardkit.engine.compiling import DENSE_SHARED, CompileGate, layout_gain
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.layout import pack_rows, plan_shared_batches, prefix_groups, shared_tokens
from rewardkit.engine.layout_check import verify_layouts, warn_nothing_shared, warn_refused
from rewardkit.engine.planning import (
    Estimate,
    cpu_shared_overhead,
    padded_estimate,
    prefer_shared,
    shared_batch_estimate,
)
from rewardkit.engine.workers import Probe, Step, gated_outputs, passes_at_once, worker_count
from rewardkit.errors import CapabilityError
from rewardkit.models.loading import cpu_has_amx
from rewardkit.progress import progress_bar
from rewardkit.types import Capability, Query, Reward, ScoreResult

__all__ = ["Batch", "EncodedRow", "Engine", "EngineRun", "ModelAdapter", "ModelBackedReward"]


@dataclass(frozen=True)
class EngineRun:
    """What one engine run returns: values (n, k) float32, truncation flags (n,), statistics."""

    values: np.ndarray
    truncated: np.ndarray
    stats: dict[str, Any]

    def result(self, scores: np.ndarray, **stats: Any) -> ScoreResult:
        """A :class:`~rewardkit.types.ScoreResult` of ``scores`` with this run's flags and
        statistics (``stats`` added or overriding)."""
        return ScoreResult(scores, stats={**self.stats, **stats}, truncated=self.truncated)


@dataclass
class LayoutPlan:
    """The steps of one engine run: (row indices, a call returning their scores in that order)."""

    layout: str
    steps: list[Step]
    #: Tokens the model runs (padding included, each shared prefix once per batch).
    model_tokens: int
    #: Estimated cost in linear-equivalent tokens (:mod:`rewardkit.engine.planning`).
    cost: float = 0.0
    #: Estimated cost of single steps, by index, where their rows' lengths misstate it.
    work: dict[int, float] = field(default_factory=dict)


class Engine:
    """Batches, caches and lays out rows for one :class:`ModelAdapter` (module docstring)."""

    def __init__(
        self, adapter: ModelAdapter, config: EngineConfig, device: torch.device, name: str = "model"
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.device = device
        self.name = name
        self._attn_width: float | None = None

    # -- what the model allows ----------------------------------------------------------------
    def supported_layouts(self, longest: int | None = None) -> frozenset[str]:
        """The adapter's :attr:`~ModelAdapter.layouts` the backbone allows for rows of up to
        ``longest`` tokens (a sliding window: rows that fit; None: never) where a one-time probe
        matches its own forward (:mod:`rewardkit.engine.layout_check`)."""
        body, a = self.adapter.backbone(), self.adapter
        if not a.layouts or body is None:
            return frozenset()
        free = self.config.attention != "dense"
        kept = verify_layouts(body, a.layouts, a.causal, a.pad_token_id, self.device, free)
        return kept & execute.model_layouts(body, longest)  # less only where a window is short

    def attention_width(self) -> float | None:
        """Where attention costs as much as the linear layers (None: unknown)."""
        body = self.adapter.backbone()
        if body is None or not self.config.attention_aware:
            return None
        if self._attn_width is None:  # counted once, not on every batch
            self._attn_width = execute.model_attention_width(body)
        return self._attn_width

    def batch_overhead(self) -> int:
        """Fixed cost of a forward pass in tokens (``EngineConfig.batch_overhead``)."""
        if self.config.batch_overhead is not None:
            return int(self.config.batch_overhead)
        return 128 if self.device.type == "cpu" else 2048

    # -- a run --------------------------------------------------------------------------------
    def run(
        self,
        items: Sequence[Any],
        keys: Sequence[str],
        encode: Callable[[list[Any]], list[EncodedRow]],
        cache: ScoreCache | None = None,
        fingerprint: str = "",
        identity: dict[str, Any] | None = None,
    ) -> EngineRun:
        """Score keyed rows. ``items`` are whatever ``encode`` turns into :class:`EncodedRow`;
        ``keys[i]`` is a stable content hash of ``items[i]``: rows with one key are computed once
        and share a cache entry (under ``fingerprint``), so keys of different row kinds must not
        collide (hash a tag with the content)."""
        started = time.perf_counter()
        keys = list(keys)
        if len(keys) != len(items):
            raise ValueError(f"{len(items)} rows but {len(keys)} keys")
        unique_keys = list(dict.fromkeys(keys))
        first_index = {k: i for i, k in reversed(list(enumerate(keys)))}  # first row per key

        results: dict[str, tuple[np.ndarray, int]] = {}
        if cache is not None:
            cache.register(fingerprint, identity or {})
            results.update(cache.get_flagged(fingerprint, unique_keys))
        n_cached = len(results)

        todo_keys = [k for k in unique_keys if k not in results]
        todo_items = [items[first_index[k]] for k in todo_keys]
        rows = encode(todo_items) if todo_items else []
        lengths = [len(r.input_ids) for r in rows]
        plan = self.plan_layout(rows)
        workers = worker_count(
            self.config.workers, self.device, torch.get_num_threads(), len(plan.steps)
        )
        gate = CompileGate(
            False if workers > 1 and self.config.compile == "auto" else self.config.compile,
            self.adapter.backbone(),
            self.device,
            self.config.dtype,
            self.compiled_layout(plan.layout),
            sum(lengths),
        )

        progress = None
        if self.config.progress and rows:
            progress = progress_bar(len(rows), f"scoring {self.name}", "q")
        try:
            probe = functools.partial(self._probe, plan, rows)
            outputs = gated_outputs(plan.steps, gate, lengths, probe, plan.work, workers)
            with torch.inference_mode(), contextlib.closing(outputs):
                for batch, out in outputs:
                    scored = [
                        (
                            todo_keys[i],
                            out[j],
                            truncation_flags(rows[i].prompt_dropped, rows[i].response_dropped),
                        )
                        for j, i in enumerate(batch)
                    ]
                    results.update((key, (value, trunc)) for key, value, trunc in scored)
                    if cache is not None:
                        cache.put_many(fingerprint, scored)
                    if progress is not None:
                        progress.update(len(batch))
        finally:
            if progress is not None:
                progress.close()

        seconds = time.perf_counter() - started
        real_tokens = sum(lengths)
        flags = np.array([results[k][1] for k in keys], dtype=np.int64).reshape(-1)
        truncated = (flags & TRUNCATED).astype(bool)
        stats = {
            "queries": len(keys),
            "unique": len(unique_keys),
            "cache_hits": n_cached,
            "computed": len(rows),
            "batches": len(plan.steps),
            "layout": plan.layout,
            # "eager", "compiled" or "fallback" (EngineConfig.compile).
            "compile": gate.outcome,
            "workers": passes_at_once(gate, workers),
            "tokens": real_tokens,
            # Tokens the model actually ran: padding included, shared prefixes counted once.
            "model_tokens": plan.model_tokens,
            "padded_tokens": plan.model_tokens,
            # Over every query (cached ones too), so a resumed run reports the same truncation.
            "truncated_rows": int(truncated.sum()),
            # Rows where even the response had to be cut, over every query as above.
            "response_truncated_rows": int(np.count_nonzero(flags & RESPONSE_CUT)),
            "seconds": seconds,
            "tokens_per_second": real_tokens / seconds if seconds > 0 and rows else None,
        }
        empty = np.zeros((0, 1), dtype=np.float32)
        values = stack_rows([np.atleast_1d(results[k][0]) for k in keys]) if keys else empty
        return EngineRun(values, truncated, stats)

    def _probe(self, plan: LayoutPlan, rows: list[EncodedRow], batch: list[int]) -> Probe | None:
        """The first two rows of a padded step as their own batch, for the compile gate's
        warm-up and check (:meth:`CompileGate.run`); None where the whole step serves (other
        layouts' graphs differ; dynamo would specialise a one-row step's batch size)."""
        if plan.layout != "padded" or len(batch) < 2:
            return None
        head = [rows[i] for i in batch[:2]]
        return 2, sum(len(r.input_ids) for r in head), lambda: self.run_batch(head)

    # -- layouts ------------------------------------------------------------------------------
    def shared_overhead(self) -> float:
        """Extra time per unit of the shared layout over padded (``EngineConfig.shared_overhead``)."""
        if self.config.shared_overhead is not None:
            return float(self.config.shared_overhead)
        return cpu_shared_overhead(cpu_has_amx())

    def compiled_layout(self, layout: str) -> str:
        """The layout as the compile gate sees it: shared on dense masks is its own (eager)."""
        body, free = self.adapter.backbone(), self.config.attention != "dense"
        free = free and body is not None and execute.attention.switchable(body, self.device)
        return DENSE_SHARED if layout == "shared" and not free else layout

    def _cut(self, attn: float | None) -> Callable[[list[int]], list[list[int]]]:
        """Length-sorted sub-batches under the budget (padded batches, shared sub-batches)."""
        cfg, overhead = self.config, self.batch_overhead()
        return lambda lengths: plan_batches(
            lengths, cfg.token_budget, cfg.max_batch_size, attn, overhead
        )

    def plan_layout(self, rows: list[EncodedRow]) -> LayoutPlan:
        """Choose the layout for these rows and cut them into steps (row indices, runner).

        ``auto`` on CPU shares prompts when sharing saves ``min_shared_fraction`` of the tokens
        and the shared plan's estimated time, scaled by :meth:`shared_overhead`, beats the padded
        plan's, each over what compiling it may gain (:func:`prefer_shared`, :func:`layout_gain`)."""
        cfg = self.config
        lengths = [len(r.input_ids) for r in rows]
        longest = max(lengths, default=0)
        supported = self.supported_layouts(longest) if rows else frozenset()
        want = cfg.layout
        if want == "auto" and self.device.type != "cpu":
            # Measured on an H200 (docs/performance.md): padded batches beat sharing there.
            want = "padded"
        if want in ("shared", "packed") and want not in supported and rows:
            # say, an encoder asked to share prompts, or rows longer than a sliding window
            warn_refused(self.name, self.adapter, want, longest)
            want = "padded"
        attn = self.attention_width()
        if want == "packed":
            return self._plan_packed(rows, attn)
        padded = self._plan_padded(rows, attn)
        if want in ("auto", "shared") and "shared" in supported:
            ids = [r.input_ids for r in rows]
            groups, singles = prefix_groups(ids, min_prefix=cfg.min_shared_prefix)
            saved = 1.0 - shared_tokens(ids, groups) / max(sum(lengths), 1)
            if groups and (want == "shared" or saved >= cfg.min_shared_fraction):
                shared = self._plan_shared(rows, groups, singles, attn)
                on = (cfg.compile, self.adapter.backbone(), self.device, cfg.dtype)
                gains = [layout_gain(*on, self.compiled_layout(x)) for x in ("shared", "padded")]
                costs = (shared.cost / gains[0], padded.cost / gains[1], self.shared_overhead())
                cheaper = prefer_shared(*costs)
                if want == "shared" or cheaper:
                    return shared
            if want == "shared" and not groups:
                warn_nothing_shared(self.name, self.adapter, cfg.min_shared_prefix)
        return padded

    def _plan_padded(self, rows: list[EncodedRow], attn: float | None) -> LayoutPlan:
        # cut on the widths batches run at (``pad_multiple``): rows of one width share a pass
        limit, multiple = self._position_limit(), self.config.pad_multiple
        lengths = [execute.padded_width(len(r.input_ids), multiple, limit) for r in rows]
        batches = self._cut(attn)(lengths) if rows else []
        steps: list[Step] = [(b, lambda b=b: self.run_batch([rows[i] for i in b])) for b in batches]
        est = padded_estimate(lengths, batches, attn, self.batch_overhead())
        return LayoutPlan("padded", steps, est.tokens, est.cost)

    def _plan_shared(
        self,
        rows: list[EncodedRow],
        groups: list[Any],
        singles: list[int],
        attn: float | None,
    ) -> LayoutPlan:
        cfg = self.config
        lengths = [len(r.input_ids) for r in rows]
        ids = [r.input_ids for r in rows]
        cut, overhead = self._cut(attn), self.batch_overhead()
        steps: list[Step] = []
        est, work = Estimate(), {}
        plan = plan_shared_batches(
            ids, groups, cfg.token_budget, cfg.max_batch_size, attn, overhead
        )
        for batch in plan:
            members = [(groups[g].prefix, r) for g, ms in batch for r in ms]
            order = [r for _, r in members]
            steps.append((order, lambda m=members: self._run_shared([(p, rows[r]) for p, r in m])))
            parts = [(p, lengths[r] - p) for p, r in members]
            prefixes = [groups[g].prefix for g, _ in batch]
            one = shared_batch_estimate(prefixes, parts, cut, attn, overhead)
            est, work[len(steps) - 1] = est + one, one.cost
        single_lengths = [lengths[i] for i in singles]
        single_batches = cut(single_lengths) if singles else []
        for b in single_batches:
            idx = [singles[i] for i in b]
            steps.append((idx, lambda idx=idx: self.run_batch([rows[i] for i in idx])))
        est += padded_estimate(single_lengths, single_batches, attn, overhead)
        return LayoutPlan("shared", steps, est.tokens, est.cost, work)

    def _plan_packed(self, rows: list[EncodedRow], attn: float | None) -> LayoutPlan:
        cfg = self.config
        lengths = [len(r.input_ids) for r in rows]
        bins = pack_rows(lengths, cfg.pack_length)
        widths = [sum(lengths[i] for i in b) for b in bins]
        steps: list[Step] = []
        model_tokens = 0
        for group in plan_batches(widths, cfg.token_budget, cfg.max_batch_size, attn):
            packs = [[rows[i] for i in bins[g]] for g in group]
            order = [i for g in group for i in bins[g]]
            steps.append((order, lambda packs=packs: self._run_packed(packs)))
            model_tokens += len(group) * max(widths[g] for g in group)
        return LayoutPlan("packed", steps, model_tokens)

    # -- running one batch --------------------------------------------------------------------
    def _position_limit(self) -> int | None:
        """The widest a padded batch may be rounded to (:func:`execute.padded_width`)."""
        return self.config.max_length or execute.model_position_limit(self.adapter.backbone())

    def make_batch(self, rows: Sequence[EncodedRow], hidden: torch.Tensor | None = None) -> Batch:
        """The right-padded :class:`Batch` of ``rows`` on the engine's device."""
        ids, mask, types = execute.pad_rows(
            [r.input_ids for r in rows],
            [r.token_type_ids for r in rows] if rows[0].token_type_ids is not None else None,
            self.adapter.pad_token_id,
            self.config.pad_multiple,
            self._position_limit(),
        )
        starts = torch.tensor(
            [-1 if r.response_start is None else r.response_start for r in rows],
            dtype=torch.long,
        )
        if self.device.type != "cpu":
            ids, mask, starts = ids.to(self.device), mask.to(self.device), starts.to(self.device)
            types = None if types is None else types.to(self.device)
        return Batch(ids, mask, types, starts, list(rows), hidden)

    def _forward(self, batch: Batch) -> list[np.ndarray]:
        out = self.adapter.forward(batch).float().cpu().numpy()
        return [np.atleast_1d(out[j]) for j in range(len(batch.rows))]

    def run_batch(self, rows: Sequence[EncodedRow]) -> list[np.ndarray]:
        """Scores of rows as one right-padded batch (the "padded" layout's step). A causal body
        that can run the engine's layouts on these rows runs it without a mask
        (:func:`execute.padded_hidden`)."""
        batch = self.make_batch(rows)
        body = self.adapter.backbone()
        longest = max((len(r.input_ids) for r in rows), default=0)
        if body is not None and self.adapter.causal and self.supported_layouts(longest):
            free = self.config.attention != "dense"
            batch = replace(batch, hidden=execute.padded_hidden(body, batch.input_ids, free))
        return self._forward(batch)

    def _run_shared(self, members: list[tuple[int, EncodedRow]]) -> list[np.ndarray]:
        """Members (prefix length, row) in group order: each distinct prefix runs once."""
        body = self.adapter.backbone()
        assert body is not None
        cfg = self.config
        hidden = execute.shared_prefix_hidden(
            body,
            [(p, r.input_ids) for p, r in members],
            self.adapter.pad_token_id,
            self.device,
            self._cut(self.attention_width()),
            mask_free=cfg.attention != "dense",
        )
        return self._forward(self.make_batch([r for _, r in members], hidden))

    def _run_packed(self, packs: list[list[EncodedRow]]) -> list[np.ndarray]:
        body = self.adapter.backbone()
        assert body is not None
        flat = [r for p in packs for r in p]
        hidden = execute.packed_hidden(
            body,
            [[r.input_ids for r in p] for p in packs],
            [[r.token_type_ids for r in p] for p in packs] if flat[0].token_type_ids else None,
            self.adapter.pad_token_id,
            self.adapter.causal,
            self.device,
            mask_free=self.config.attention != "dense",
        )
        return self._forward(self.make_batch(flat, hidden))


class ModelBackedReward(Reward):
    """Base class of rewards computed by a neural model through an :class:`Engine`.

    A subclass encodes queries (:meth:`encode`) and gives the engine its model through
    :meth:`model_adapter`; the engine does the rest.
    """

    capabilities = frozenset({Capability.MODEL_BACKED})

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._cache: ScoreCache | None = None
        self.device = torch.device("cpu")  # subclasses move their model and set this
        self._engine: Engine | None = None

    # -- what a subclass provides -------------------------------------------------------------
    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """Token ids for each query, already fitted to the length limit. Rewards that score only
        keyed rows of their own (pairs, images) through :meth:`run_rows` keep this default."""
        raise CapabilityError(
            f"{type(self).__name__} scores its own keyed rows, not plain queries through encode()"
        )

    @abstractmethod
    def model_adapter(self) -> ModelAdapter:
        """The adapter the engine runs (one model, one ``forward(batch)``)."""

    @property
    def pad_token_id(self) -> int:
        """The id used to pad batches."""
        return self.engine.adapter.pad_token_id

    # -- the engine ---------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine over :meth:`model_adapter`, built on first use."""
        if self._engine is None:
            self._engine = Engine(self.model_adapter(), self.config, self.device, self.name)
        return self._engine

    def supported_layouts(self, longest: int | None = None) -> frozenset[str]:
        """The layouts this reward can run now on rows of up to ``longest`` tokens (see
        :meth:`Engine.supported_layouts`)."""
        return self.engine.supported_layouts(longest)

    def engine_identity(self) -> dict[str, Any]:
        """The engine settings that change scores (not budget, threads or caching)."""
        c = self.config
        return {
            "dtype": c.dtype.lower().replace("fp32", "float32").replace("bf16", "bfloat16"),
            "truncation": c.truncation,
            "text": special_tokens.TEXT_ENCODING,  # scores cached before the escaping: not reused
        }

    def cache(self) -> ScoreCache | None:
        """The score cache, opened on first use when ``config.cache_dir`` is set."""
        if self._cache is None and self.config.cache_dir:
            self._cache = ScoreCache(self.config.cache_dir)
        return self._cache

    def engine_variant(self, **changes: Any) -> ModelBackedReward:
        """A twin sharing the loaded model with ``config`` fields replaced and its own cache
        and engine."""
        twin = copy.copy(self)
        twin.config = replace(self.config, **changes)
        twin._cache = None
        twin._engine = None
        return twin

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        keys = [q.key(with_meta=self.uses_meta) for q in queries]
        run = self.run_rows(queries, keys, self.encode)
        return run.result(run.values if self.objectives else run.values[:, 0])

    def run_rows(
        self,
        items: Sequence[Any],
        keys: Sequence[str],
        encode: Callable[[list[Any]], list[EncodedRow]],
    ) -> EngineRun:
        """One engine run over keyed rows with this reward's cache (see :meth:`Engine.run`):
        (n, k) values, one truncation flag per item, and the run's statistics."""
        cache = self.cache()
        fingerprint = self.fingerprint() if cache is not None else ""
        identity = self.identity() if cache is not None else None
        return self.engine.run(items, keys, encode, cache, fingerprint, identity)

"""The one batching engine behind every model-backed reward.

A model-backed reward says how to turn queries into token ids (:meth:`ModelBackedReward.encode`)
and how to turn a padded batch into scores (:meth:`ModelBackedReward.forward`). The engine does
the rest, the same way for all of them: cache look-up, de-duplication, length-sorted batches under
a token budget, right padding with an attention mask, progress, cache writes after every batch,
and statistics (returned with the scores, :class:`EngineRun`). In float32, scores do not depend on batch budget or query order
(to ~1e-6); in bfloat16 the batch shape changes rounding, so compare bf16 runs with a tolerance.

Rewards whose model exposes its transformer body (:meth:`ModelBackedReward.backbone`) can also
run in two other layouts (``EngineConfig.layout``, :mod:`rewardkit.engine.layout`): shared
prompts (a decoder runs each shared prefix once and scores every response on its key/value
cache) and packed sequences (no padding, block-diagonal attention). The reward's own
:meth:`~ModelBackedReward.forward` is reused unchanged: the engine computes the hidden states in
the chosen layout, lays them out as the padded batch would have had them, and the reward reads
them through :meth:`~ModelBackedReward.hidden`.
"""

from __future__ import annotations

import contextlib
import copy
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from rewardkit.engine import execute
from rewardkit.engine.batching import padded_tokens, plan_batches
from rewardkit.engine.cache import ScoreCache
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.layout import (
    pack_rows,
    plan_shared_batches,
    prefix_groups,
    shared_tokens,
)
from rewardkit.types import Capability, Query, Reward, ScoreResult


@dataclass(frozen=True)
class EncodedRow:
    """Token ids of one query, ready for the model, and what truncation removed."""

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    prompt_dropped: int = 0
    response_dropped: int = 0
    #: Index in ``input_ids`` of the first response token (None: the row has no response span).
    #: Log-prob rewards score the tokens from here to the end of the row.
    response_start: int | None = None


class ModelBackedReward(Reward):
    """Base class of rewards computed by a neural model through the engine."""

    capabilities = frozenset({Capability.MODEL_BACKED})

    #: Whether :meth:`forward` takes ``response_start`` (a (b,) long tensor, -1 where a row has
    #: none), built by the engine from :attr:`EncodedRow.response_start`.
    uses_response_start: bool = False
    #: Layouts beyond "padded" that this reward can run ("packed", "shared"); see
    #: :meth:`supported_layouts`, which checks the loaded model too.
    layouts: frozenset[str] = frozenset()

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._cache: ScoreCache | None = None
        self.device = torch.device("cpu")  # subclasses move their model and set this
        self._given_hidden: torch.Tensor | None = None
        self._attn_width: float | None = None

    # -- what a subclass provides -------------------------------------------------------------
    @abstractmethod
    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """Token ids for each query, already fitted to the length limit."""

    @abstractmethod
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        """Scores of a right-padded batch: shape (b,) or (b, k)."""

    @property
    @abstractmethod
    def pad_token_id(self) -> int:
        """The id used to pad batches."""

    # -- what a subclass may provide for the shared and packed layouts ---------------------------
    def backbone(self) -> torch.nn.Module | None:
        """The transformer body whose ``last_hidden_state`` :meth:`forward` reads (or None)."""
        return None

    @property
    def causal(self) -> bool:
        """Whether the backbone attends causally (decoders) rather than both ways (encoders)."""
        return True

    def hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last hidden states (b, w, H) of a right-padded batch, as :meth:`forward` reads them.

        In the shared and packed layouts the engine has already computed them and hands them in.
        """
        if self._given_hidden is not None:
            return self._given_hidden
        body = self.backbone()
        assert body is not None, f"{type(self).__name__} has no backbone"
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return body(**kwargs).last_hidden_state

    @contextlib.contextmanager
    def given_hidden(self, hidden: torch.Tensor) -> Iterator[None]:
        """Within the block, :meth:`hidden` returns ``hidden`` instead of running the model."""
        self._given_hidden = hidden
        try:
            yield
        finally:
            self._given_hidden = None

    def supported_layouts(self) -> frozenset[str]:
        """The layouts this reward can run now: its :attr:`layouts` where the model allows."""
        body = self.backbone()
        if not self.layouts or body is None:
            return frozenset()
        return self.layouts & execute.model_layouts(body)

    def attention_width(self) -> float | None:
        """Where attention costs as much as the linear layers (None: unknown)."""
        body = self.backbone()
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

    def engine_identity(self) -> dict[str, Any]:
        """The engine settings that change scores (not budget, threads or caching)."""
        c = self.config
        return {
            "dtype": c.dtype.lower().replace("fp32", "float32").replace("bf16", "bfloat16"),
            "truncation": c.truncation,
        }

    def engine_variant(self, **changes: Any) -> ModelBackedReward:
        """A twin sharing the loaded model with ``config`` fields replaced and its own cache."""
        twin = copy.copy(self)
        twin.config = replace(self.config, **changes)
        twin._cache = None
        return twin

    # -- the engine ---------------------------------------------------------------------------
    def cache(self) -> ScoreCache | None:
        """The score cache, opened on first use when ``config.cache_dir`` is set."""
        if self._cache is None and self.config.cache_dir:
            self._cache = ScoreCache(self.config.cache_dir)
        return self._cache

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
        """Run the engine over arbitrary keyed rows: (n, k) values, flags and statistics.

        ``items`` are whatever ``encode`` turns into :class:`EncodedRow` (queries, (prompt, a, b)
        pairs, single texts…); ``keys[i]`` is a stable content hash of ``items[i]`` — rows with
        the same key are computed once and share a cache entry, so keys of different row kinds
        must not collide (hash a tag with the content). Cache, de-duplication, token-budget
        batches and progress work as for queries; ``truncated`` holds one flag per item.
        """
        started = time.perf_counter()
        keys = list(keys)
        if len(keys) != len(items):
            raise ValueError(f"{len(items)} rows but {len(keys)} keys")
        unique_keys = list(dict.fromkeys(keys))
        first_index = {}
        for i, k in enumerate(keys):
            first_index.setdefault(k, i)

        cache = self.cache()
        fingerprint = self.fingerprint()
        results: dict[str, tuple[np.ndarray, bool]] = {}
        if cache is not None:
            cache.register(fingerprint, self.identity())
            results.update(cache.get_many(fingerprint, unique_keys))
        n_cached = len(results)

        todo_keys = [k for k in unique_keys if k not in results]
        todo_items = [items[first_index[k]] for k in todo_keys]
        rows = encode(todo_items) if todo_items else []
        lengths = [len(r.input_ids) for r in rows]
        plan = self.plan_layout(rows)

        progress = None
        if self.config.progress and rows:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(rows), desc=f"scoring {self.name}", unit="q", leave=False)
        try:
            with torch.inference_mode():
                for batch, run in plan.steps:
                    out = run()
                    scored = [
                        (
                            todo_keys[i],
                            out[j],
                            rows[i].prompt_dropped + rows[i].response_dropped > 0,
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
        truncated = np.array([results[k][1] for k in keys], dtype=bool)
        stats = {
            "queries": len(keys),
            "unique": len(unique_keys),
            "cached": n_cached,
            "computed": len(rows),
            "batches": len(plan.steps),
            "layout": plan.layout,
            "tokens": real_tokens,
            # Tokens the model actually ran: padding included, shared prefixes counted once.
            "model_tokens": plan.model_tokens,
            "padded_tokens": plan.model_tokens,
            # Over every query (cached ones too), so a resumed run reports the same truncation.
            "truncated_rows": int(truncated.sum()),
            # Among the rows computed now: rows where even the response had to be cut.
            "response_truncated_rows": sum(1 for r in rows if r.response_dropped),
            "seconds": seconds,
            "tokens_per_second": real_tokens / seconds if seconds > 0 and rows else None,
        }
        if not keys:
            values = np.zeros((0, 1), dtype=np.float32)
        else:
            values = stack_rows([np.atleast_1d(results[k][0]) for k in keys])
        return EngineRun(values, truncated, stats)

    # -- layouts ------------------------------------------------------------------------------
    def plan_layout(self, rows: list[EncodedRow]) -> LayoutPlan:
        """Choose the layout for these rows and cut them into steps (row indices, runner)."""
        cfg = self.config
        lengths = [len(r.input_ids) for r in rows]
        supported = self.supported_layouts() if rows else frozenset()
        want = cfg.layout
        if want == "auto" and self.device.type != "cpu":
            # Measured on an H200 (docs/performance.md): padded batches beat sharing there.
            want = "padded"
        if want in ("shared", "packed") and want not in supported:
            want = "padded"  # the model cannot (say, an encoder asked to share prompts)
        attn = self.attention_width()
        if want in ("auto", "shared") and "shared" in supported:
            ids = [r.input_ids for r in rows]
            groups, singles = prefix_groups(ids, min_prefix=cfg.min_shared_prefix)
            saved = 1.0 - shared_tokens(ids, groups) / max(sum(lengths), 1)
            if groups and (want == "shared" or saved >= cfg.min_shared_fraction):
                return self._plan_shared(rows, groups, singles, attn)
        if want == "packed":
            return self._plan_packed(rows, attn)
        batches = plan_batches(
            lengths, cfg.token_budget, cfg.max_batch_size, attn, self.batch_overhead()
        )
        steps = [(b, lambda b=b: self._run_batch([rows[i] for i in b])) for b in batches]
        model_tokens = padded_tokens(lengths, batches) if rows else 0
        return LayoutPlan("padded", steps, model_tokens)

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
        steps: list[tuple[list[int], Callable[[], list[np.ndarray]]]] = []
        model_tokens = 0
        plan = plan_shared_batches(
            ids, groups, cfg.token_budget, cfg.max_batch_size, attn, self.batch_overhead()
        )
        for batch in plan:
            members = [(groups[g].prefix, r) for g, ms in batch for r in ms]
            order = [r for _, r in members]
            steps.append((order, lambda m=members: self._run_shared([(p, rows[r]) for p, r in m])))
            s_max = max(lengths[r] - p for p, r in members)
            # Prefixes run in length-sorted sub-batches: about their own lengths.
            model_tokens += sum(groups[g].prefix for g, _ in batch) + len(members) * s_max
        single_lengths = [lengths[i] for i in singles]
        for b in plan_batches(
            single_lengths, cfg.token_budget, cfg.max_batch_size, attn, self.batch_overhead()
        ):
            idx = [singles[i] for i in b]
            steps.append((idx, lambda idx=idx: self._run_batch([rows[i] for i in idx])))
            model_tokens += len(b) * max(single_lengths[i] for i in b)
        return LayoutPlan("shared", steps, model_tokens)

    def _plan_packed(self, rows: list[EncodedRow], attn: float | None) -> LayoutPlan:
        cfg = self.config
        lengths = [len(r.input_ids) for r in rows]
        bins = pack_rows(lengths, cfg.pack_length)
        widths = [sum(lengths[i] for i in b) for b in bins]
        steps: list[tuple[list[int], Callable[[], list[np.ndarray]]]] = []
        model_tokens = 0
        for group in plan_batches(widths, cfg.token_budget, cfg.max_batch_size, attn):
            packs = [[rows[i] for i in bins[g]] for g in group]
            order = [i for g in group for i in bins[g]]
            steps.append((order, lambda packs=packs: self._run_packed(packs)))
            model_tokens += len(group) * max(widths[g] for g in group)
        return LayoutPlan("packed", steps, model_tokens)

    def _padded(
        self, rows: list[EncodedRow]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Right-padded ids, mask, token types and response starts of rows, on the device."""
        ids, mask, types = execute.pad_rows(
            [r.input_ids for r in rows],
            [r.token_type_ids for r in rows] if rows[0].token_type_ids is not None else None,
            self.pad_token_id,
        )
        starts = None
        if self.uses_response_start:
            starts = torch.tensor(
                [-1 if r.response_start is None else r.response_start for r in rows],
                dtype=torch.long,
            )
        move = (
            (lambda t: t if t is None else t.to(self.device))
            if self.device.type != "cpu"
            else (lambda t: t)
        )
        return move(ids), move(mask), move(types), move(starts)

    def _forward_rows(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        types: torch.Tensor | None,
        starts: torch.Tensor | None,
    ) -> list[np.ndarray]:
        if self.uses_response_start:
            out = self.forward(ids, mask, types, response_start=starts)  # type: ignore[call-arg]
        else:
            out = self.forward(ids, mask, types)
        out = out.float().cpu().numpy()
        return [np.atleast_1d(out[j]) for j in range(ids.shape[0])]

    def _run_batch(self, rows: list[EncodedRow]) -> list[np.ndarray]:
        return self._forward_rows(*self._padded(rows))

    def _run_shared(self, members: list[tuple[int, EncodedRow]]) -> list[np.ndarray]:
        """Members (prefix length, row) in group order: each distinct prefix runs once."""
        body = self.backbone()
        assert body is not None
        cfg = self.config
        attn, overhead = self.attention_width(), self.batch_overhead()

        def plan(lengths: list[int]) -> list[list[int]]:
            return plan_batches(lengths, cfg.token_budget, cfg.max_batch_size, attn, overhead)

        hidden = execute.shared_prefix_hidden(
            body, [(p, r.input_ids) for p, r in members], self.pad_token_id, self.device, plan
        )
        ids, mask, types, starts = self._padded([r for _, r in members])
        with self.given_hidden(hidden):
            return self._forward_rows(ids, mask, types, starts)

    def _run_packed(self, packs: list[list[EncodedRow]]) -> list[np.ndarray]:
        body = self.backbone()
        assert body is not None
        flat = [r for p in packs for r in p]
        hidden = execute.packed_hidden(
            body,
            [[r.input_ids for r in p] for p in packs],
            [[r.token_type_ids for r in p] for p in packs] if flat[0].token_type_ids else None,
            self.pad_token_id,
            self.causal,
            self.device,
        )
        ids, mask, types, starts = self._padded(flat)
        with self.given_hidden(hidden):
            return self._forward_rows(ids, mask, types, starts)


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
    steps: list[tuple[list[int], Callable[[], list[np.ndarray]]]]
    #: Tokens the model runs (padding included, each shared prefix once per batch).
    model_tokens: int


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Per-row outputs as one (n, k) float32 array; rows of different lengths (per-step and
    per-token rewards) are padded with NaN to the longest."""
    width = max(r.shape[0] for r in rows)
    if all(r.shape[0] == width for r in rows):
        return np.stack(rows).astype(np.float32)
    out = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out

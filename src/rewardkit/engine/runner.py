"""The one batching engine behind every model-backed reward.

A model-backed reward says how to turn queries into token ids (:meth:`ModelBackedReward.encode`)
and how to turn a padded batch into scores (:meth:`ModelBackedReward.forward`). The engine does
the rest, the same way for all of them: cache look-up, de-duplication, length-sorted batches under
a token budget, right padding with an attention mask, progress, cache writes after every batch,
and statistics (``last_stats``). In float32, scores do not depend on batch budget or query order
(to ~1e-6); in bfloat16 the batch shape changes rounding, so compare bf16 runs with a tolerance.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewardkit.engine.batching import padded_tokens, plan_batches
from rewardkit.engine.cache import ScoreCache
from rewardkit.engine.config import EngineConfig
from rewardkit.types import Query, Reward


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

    #: Whether :meth:`forward` takes ``response_start`` (a (b,) long tensor, -1 where a row has
    #: none), built by the engine from :attr:`EncodedRow.response_start`.
    uses_response_start: bool = False

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.last_stats: dict[str, Any] | None = None
        self.last_truncated: np.ndarray | None = None
        self._cache: ScoreCache | None = None
        self.device = torch.device("cpu")  # subclasses move their model and set this

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

    def engine_identity(self) -> dict[str, Any]:
        """The engine settings that change scores (not budget, threads or caching)."""
        c = self.config
        return {
            "dtype": c.dtype.lower().replace("fp32", "float32").replace("bf16", "bfloat16"),
            "truncation": c.truncation,
        }

    # -- the engine ---------------------------------------------------------------------------
    def cache(self) -> ScoreCache | None:
        """The score cache, opened on first use when ``config.cache_dir`` is set."""
        if self._cache is None and self.config.cache_dir:
            self._cache = ScoreCache(self.config.cache_dir)
        return self._cache

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        keys = [q.key(with_meta=self.uses_meta) for q in queries]
        stacked = self.score_rows(queries, keys, self.encode)
        return stacked if self.objectives else stacked[:, 0]

    def score_rows(
        self,
        items: Sequence[Any],
        keys: Sequence[str],
        encode: Callable[[list[Any]], list[EncodedRow]],
    ) -> np.ndarray:
        """Run the engine over arbitrary keyed rows; returns an (n, k) float32 array.

        ``items`` are whatever ``encode`` turns into :class:`EncodedRow` (queries, (prompt, a, b)
        pairs, single texts…); ``keys[i]`` is a stable content hash of ``items[i]`` — rows with
        the same key are computed once and share a cache entry, so keys of different row kinds
        must not collide (hash a tag with the content). Cache, de-duplication, token-budget
        batches, progress and ``last_stats`` work as for queries; ``last_truncated`` holds one
        flag per item.
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
        batches = plan_batches(lengths, self.config.token_budget, self.config.max_batch_size)

        progress = None
        if self.config.progress and rows:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(rows), desc=f"scoring {self.name}", unit="q", leave=False)
        try:
            with torch.inference_mode():
                for batch in batches:
                    out = self._run_batch([rows[i] for i in batch])
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
        self.last_truncated = np.array([results[k][1] for k in keys], dtype=bool)
        self.last_stats = {
            "queries": len(keys),
            "unique": len(unique_keys),
            "cached": n_cached,
            "computed": len(rows),
            "batches": len(batches),
            "tokens": real_tokens,
            "padded_tokens": padded_tokens(lengths, batches) if rows else 0,
            # Over every query (cached ones too), so a resumed run reports the same truncation.
            "truncated_rows": int(self.last_truncated.sum()),
            # Among the rows computed now: rows where even the response had to be cut.
            "response_truncated_rows": sum(1 for r in rows if r.response_dropped),
            "seconds": seconds,
            "tokens_per_second": real_tokens / seconds if seconds > 0 and rows else None,
        }
        if not keys:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([np.atleast_1d(results[k][0]) for k in keys]).astype(np.float32)

    def _run_batch(self, rows: list[EncodedRow]) -> list[np.ndarray]:
        width = max(len(r.input_ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = None
        if rows[0].token_type_ids is not None:
            types = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            n = len(r.input_ids)
            ids[j, :n] = torch.tensor(r.input_ids, dtype=torch.long)
            mask[j, :n] = 1
            if types is not None and r.token_type_ids is not None:
                types[j, :n] = torch.tensor(r.token_type_ids, dtype=torch.long)
        if self.device.type != "cpu":
            ids, mask = ids.to(self.device), mask.to(self.device)
            types = None if types is None else types.to(self.device)
        if self.uses_response_start:
            starts = torch.tensor(
                [-1 if r.response_start is None else r.response_start for r in rows],
                dtype=torch.long,
                device=ids.device,
            )
            out = self.forward(ids, mask, types, response_start=starts)  # type: ignore[call-arg]
        else:
            out = self.forward(ids, mask, types)
        out = out.float().cpu().numpy()
        return [np.atleast_1d(out[j]) for j in range(len(rows))]

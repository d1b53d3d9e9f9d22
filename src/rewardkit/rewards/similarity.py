"""Embedding similarity to a reference: ``similarity:minilm`` and ``bmas:minilm``.

``similarity`` — cosine between sentence embeddings of the response and ``query.reference`` (the
best of several references). Sentence embeddings are computed as sentence-transformers does for
all-MiniLM-L6-v2: ``[CLS] text [SEP]`` (at most 256 tokens, the model's ``max_seq_length``),
mean of the last hidden states over the real tokens, L2-normalised. Texts (responses and
references) run through the engine as rows of their own, so a reference shared by many queries
is embedded once, and embeddings are cached. ``against=prompt`` compares the response with the
prompt instead (the relevance term of docs/methods/B10-relevance-reward.md, R³).

``bmas`` — docs/methods/B9-mixed-rewards.md (Mixed-R1) Bidirectional Max-Average Similarity on *token* embeddings
from the model's input-embedding table E (no forward pass)::

    S_ij = cos(E[y_i], E[y_gt_j]);   BMAS = ½ (mean_i max_j S_ij + mean_j max_i S_ij)

Both return NaN for a query without a usable reference (None, not text, empty).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.engine.adapter import Batch, OwnForwardAdapter
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.runner import EncodedRow, EngineRun, ModelBackedReward
from rewardkit.engine.special_tokens import escape_texts
from rewardkit.engine.truncation import fit_pair
from rewardkit.models.integrity import load_pretrained, pooler_weight
from rewardkit.models.loading import (
    finish_dtype,
    fit_max_length,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
    torch_dtype,
)
from rewardkit.types import (
    Capability,
    Query,
    Reward,
    ScoreResult,
    prompt_text,
    stable_hash,
    text_queries,
)

DEFAULT_ENCODER = "minilm"


def references_of(query: Query) -> list[str]:
    """The reference texts of a query: a string, or the strings of a list/tuple; else none."""
    ref = query.reference
    if isinstance(ref, str):
        return [ref] if ref.strip() else []
    if isinstance(ref, (list, tuple)):
        return [r for r in ref if isinstance(r, str) and r.strip()]
    return []


def query_cache_stats(
    run_stats: Mapping[str, Any], groups: Sequence[Sequence[str]], computed: set[str]
) -> dict[str, Any]:
    """An embedding run's statistics with ``unique``, ``cache_hits`` and ``computed`` counted
    over distinct queries, as every engine-backed reward counts them: a query (the texts it
    embeds, ``groups[i]``) is a cache hit when none of its texts needed the model. The run's own
    per-text counts move under ``texts``."""
    distinct = {tuple(g) for g in groups}
    hits = sum(1 for g in distinct if not any(t in computed for t in g))
    texts = {k: run_stats[k] for k in ("unique", "cache_hits", "computed") if k in run_stats}
    return {
        **run_stats,
        "unique": len(distinct),
        "cache_hits": hits,
        "computed": len(distinct) - hits,
        "texts": texts,
    }


def cosine_matrix(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Cosines between the rows of ``a`` (n, d) and of ``b`` (m, d); a zero row has cosine 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), eps)
    return an @ bn.T


def bmas(emb_gen: np.ndarray, emb_ref: np.ndarray) -> float:
    """Bidirectional Max-Average Similarity (docs/methods/B9-mixed-rewards.md).

    ``½ (mean_i max_j S_ij + mean_j max_i S_ij)`` with ``S`` the cosine matrix of generated (rows)
    against reference token embeddings. Card toy: gen (1,0),(0,1),(1,1), ref (1,0),(1,1) →
    ½ (0.902369 + 1.0) = 0.951184. NaN when either side has no tokens.
    """
    g = np.asarray(emb_gen, dtype=np.float64)
    t = np.asarray(emb_ref, dtype=np.float64)
    if g.ndim != 2 or t.ndim != 2 or not len(g) or not len(t):
        return math.nan
    s = cosine_matrix(g, t)
    return float(0.5 * (s.max(axis=1).mean() + s.max(axis=0).mean()))


def _sentence_transformers_config(path: str) -> dict[str, Any]:
    """Pooling mode and max_seq_length from a sentence-transformers model directory, if any."""
    root = Path(path)
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        out["max_seq_length"] = int(
            json.loads((root / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        modules = json.loads((root / "modules.json").read_text())
        for m in modules:
            if str(m.get("type", "")).endswith("Pooling"):
                cfg = json.loads((root / m["path"] / "config.json").read_text())
                if cfg.get("pooling_mode_cls_token"):
                    out["pooling"] = "cls"
                elif cfg.get("pooling_mode_mean_tokens"):
                    out["pooling"] = "mean"
    return out


def _single_layout(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens around a single text (``[CLS]`` … ``[SEP]`` for BERT)."""
    bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare) :])
    return [], []


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """L2-normalised sentence embeddings (b, H) in float32: the first token's hidden state
    (``cls``) or the mean over real tokens (``mean``), as sentence-transformers pools."""
    hidden = hidden.float()
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        m = attention_mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


class EmbeddingSimilarityReward(ModelBackedReward):
    """Cosine of sentence embeddings: response vs reference (max over references) or prompt.

    Its features (:meth:`features`) are the responses' sentence embeddings."""

    capabilities = ModelBackedReward.capabilities | {Capability.FEATURES}

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        config: EngineConfig | None = None,
        *,
        pooling: str | None = None,
        against: str = "reference",
    ) -> None:
        super().__init__(config)
        import transformers

        if against not in ("reference", "prompt"):
            raise ValueError(f"against must be 'reference' or 'prompt', got {against!r}")
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.tokenizer = load_tokenizer(resolved.source)
        st = _sentence_transformers_config(resolved.source)
        self.pooling = pooling or st.get("pooling", "mean")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        self.against = against
        dtype = torch_dtype(self.config.dtype)
        # Weights it lacks would be random (a pooler's are unused): refused in one line.
        model, _ = load_pretrained(
            transformers.AutoModel, resolved.source, may_lack=pooler_weight, dtype=dtype
        )
        self.model = finish_dtype(model, self.config.dtype)
        self.device = resolve_device(self.config.device)
        self.model.to(self.device)
        # sentence-transformers' max_seq_length is the default, not a hard limit.
        default = min(self.config.default_max_length, int(st.get("max_seq_length") or 10**9))
        self.max_length = fit_max_length(
            self.model.config, self.tokenizer, self.config.max_length, default
        )
        self._head, self._tail = _single_layout(self.tokenizer)
        self._identity = {
            "class": "EmbeddingSimilarityReward",
            **resolved.identity,
            "pooling": self.pooling,
            "against": against,
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def model_adapter(self) -> OwnForwardAdapter:
        return OwnForwardAdapter(self.model, int(self.tokenizer.pad_token_id), self.readout)

    def readout(self, batch: Batch, out: Any) -> torch.Tensor:
        """The rows' sentence embeddings (b, H) from the encoder's output (:func:`pool`)."""
        return pool(out.last_hidden_state, batch.attention_mask, self.pooling)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return self.encode_texts([q.response for q in queries])

    def encode_texts(self, texts: Sequence[str]) -> list[EncodedRow]:
        """``[CLS] text [SEP]`` rows; a long text keeps its start (sentence-transformers' rule)."""
        budget = self.max_length - len(self._head) - len(self._tail)
        texts = escape_texts(self.tokenizer, texts)  # scored text writes no [SEP]
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        rows = []
        for t in ids:
            # No prompt: "left" and "right" both keep the text's first tokens; "error" raises.
            f = fit_pair([], list(t), budget, self.config.truncation)
            rows.append(
                EncodedRow(self._head + f.response + self._tail, None, 0, f.response_dropped)
            )
        return rows

    def embed_run(self, texts: Sequence[str], computed: set[str] | None = None) -> EngineRun:
        """One engine run embedding ``texts`` (cached, de-duplicated), with its statistics; the
        texts the model ran on (not found in the score cache) are added to ``computed``."""
        keys = [stable_hash(["text", t]) for t in texts]

        def encode(todo: list[str]) -> list[EncodedRow]:
            if computed is not None:
                computed.update(todo)
            return self.encode_texts(todo)

        return self.run_rows(list(texts), keys, encode)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings (n, d) of ``texts``."""
        return self.embed_run(texts).values

    def features(self, queries: Sequence[Query]) -> np.ndarray:
        """The sentence embedding (n, d) of each query's response."""
        return self.embed([q.response for q in text_queries(queries, self.name)])

    def _score(self, queries: Sequence[Query]) -> ScoreResult | np.ndarray:
        if self.against == "prompt":
            others = [[prompt_text(q.prompt)] for q in queries]
        else:
            others = [references_of(q) for q in queries]
        texts = list(dict.fromkeys([q.response for q in queries] + [t for o in others for t in o]))
        if not texts:
            return np.full(len(queries), np.nan)
        computed: set[str] = set()
        run = self.embed_run(texts, computed)
        emb = run.values
        where = {t: i for i, t in enumerate(texts)}
        out = np.full(len(queries), np.nan, dtype=np.float64)
        for i, (q, refs) in enumerate(zip(queries, others, strict=True)):
            if refs:
                r = emb[where[q.response]].astype(np.float64)
                out[i] = max(float(r @ emb[where[t]].astype(np.float64)) for t in refs)
        flags = dict(zip(texts, run.truncated, strict=True))
        truncated = np.array(
            [
                bool(flags[q.response] or any(flags[t] for t in refs))
                for q, refs in zip(queries, others, strict=True)
            ],
            dtype=bool,
        )
        groups = [[q.response, *refs] for q, refs in zip(queries, others, strict=True)]
        stats = {**query_cache_stats(run.stats, groups, computed), "queries": len(queries)}
        stats["truncated_rows"] = int(truncated.sum())
        return ScoreResult(out, stats=stats, truncated=truncated)


class BMASReward(Reward):
    """BMAS (docs/methods/B9-mixed-rewards.md) between response and reference tokens in the input-embedding table."""

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        config: EngineConfig | None = None,
        *,
        max_tokens: int | None = 4096,
    ) -> None:
        import transformers

        self.config = config or EngineConfig()
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.tokenizer = load_tokenizer(resolved.source)
        base, _ = load_pretrained(
            transformers.AutoModel, resolved.source, may_lack=pooler_weight, dtype=torch.float32
        )
        # Only the table is kept; the rest of the model is freed.
        self.table = base.get_input_embeddings().weight.detach().float().numpy().copy()
        del base
        self.max_tokens = max_tokens
        self._identity = {
            "class": "BMASReward",
            **resolved.identity,
            "table": "input_embeddings",
            "max_tokens": max_tokens,
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def token_embeddings(self, text: str) -> tuple[np.ndarray, bool]:
        """Rows of the input-embedding table for the text's tokens (no special tokens)."""
        text = escape_texts(self.tokenizer, [text])[0]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        cut = self.max_tokens is not None and len(ids) > self.max_tokens
        if cut:
            ids = ids[: self.max_tokens]
        return self.table[np.asarray(ids, dtype=np.int64)], cut

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        started = time.perf_counter()
        out = np.full(len(queries), np.nan, dtype=np.float64)
        memo: dict[str, tuple[np.ndarray, bool]] = {}
        truncated = np.zeros(len(queries), dtype=bool)
        for i, q in enumerate(queries):
            refs = references_of(q)
            if not refs:
                continue
            for t in [q.response, *refs]:
                if t not in memo:
                    memo[t] = self.token_embeddings(t)
            gen = memo[q.response][0]
            # a response without tokens (empty, invisible) matches nothing: 0, not the NaN of
            # bmas(), which a composite would drop (and rescale the rest) at the response's choice
            values = [bmas(gen, memo[r][0]) if len(gen) else 0.0 for r in refs if len(memo[r][0])]
            values = [v for v in values if not math.isnan(v)]
            out[i] = max(values) if values else math.nan
            truncated[i] = memo[q.response][1] or any(memo[r][1] for r in refs)
        stats = {
            "queries": len(queries),
            "texts": len(memo),
            "truncated_rows": int(truncated.sum()),
            "seconds": time.perf_counter() - started,
        }
        return ScoreResult(out, stats=stats, truncated=truncated)  # per row, for composites


def build_similarity(arg: str | None, **options: Any) -> EmbeddingSimilarityReward:
    """Registry factory for ``similarity:ENCODER`` (``minilm`` / ``default``: all-MiniLM-L6-v2)."""
    model = DEFAULT_ENCODER if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return EmbeddingSimilarityReward(model, config, **options)


def build_bmas(arg: str | None, **options: Any) -> BMASReward:
    """Registry factory for ``bmas:MODEL`` (``minilm`` / ``default``; ``smollm2`` as the card)."""
    model = DEFAULT_ENCODER if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return BMASReward(model, config, **options)

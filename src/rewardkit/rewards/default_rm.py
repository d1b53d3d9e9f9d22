"""The default reward model (``default``): the embedded all-MiniLM-L6-v2 encoder, frozen, with a
small trained head.

docs/methods/A1-bradley-terry.md — Bradley–Terry reward model, with the two-layer SiLU head of A14 ("BaseReward").
Features of a (prompt, response): the L2-normalised mean-pooled MiniLM embedding of the response
``e_r`` and its elementwise product with the embedding of the prompt's last user turn ``e_p``:
``φ = [e_r, e_p ⊙ e_r]``; the reward is ``head(φ) − offset`` (``offset`` centres the training
responses' rewards at 0, A1's post-hoc normalisation). The head (``head.safetensors`` +
``head.json``, under a megabyte) is produced by ``rewardkit train --config configs/default_rm.yaml``
and ships in ``rewardkit/resources/default_rm/``; ``default:DIR`` loads another trained head.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardkit.data.trained_on import read_trained_prompts
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.runner import EngineRun
from rewardkit.errors import SpecError
from rewardkit.models.heads import refuse_nonfinite
from rewardkit.registry import refuse_options
from rewardkit.types import Capability, Query, Reward, ScoreResult, text_queries

HEAD_FILE = "head.safetensors"
META_FILE = "head.json"


def prompt_feature_text(query: Query) -> str:
    """The text the prompt embedding reads: the last user turn (the request being answered)."""
    users = [m["content"] for m in query.prompt if m["role"] == "user"]
    if users:
        return str(users[-1])
    return str(query.prompt[-1]["content"]) if query.prompt else ""


class FeatureHead(nn.Module):
    """``Linear(d, 1)`` or the A14 head ``W₂ · SiLU(W₁ φ)``."""

    def __init__(self, in_dim: int, kind: str = "mlp", inner: int | None = None, out: int = 1):
        super().__init__()
        if kind == "linear":
            self.net: nn.Module = nn.Linear(in_dim, out)
        elif kind == "mlp":
            inner = inner or in_dim
            self.net = nn.Sequential(nn.Linear(in_dim, inner), nn.SiLU(), nn.Linear(inner, out))
        else:
            raise ValueError(f"head must be 'linear' or 'mlp', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Featurizer:
    """Frozen-encoder features ``[e_r, e_p ⊙ e_r]`` through the embedding reward's engine
    (batched under a token budget, de-duplicated, optionally cached)."""

    def __init__(self, encoder: str = "minilm", config: EngineConfig | None = None) -> None:
        from rewardkit.rewards.similarity import EmbeddingSimilarityReward

        self.encoder = EmbeddingSimilarityReward(encoder, config or EngineConfig(), pooling="mean")
        self.dim = 2 * int(self.encoder.model.config.hidden_size)

    def identity(self) -> dict[str, Any]:
        return {"encoder": self.encoder.identity(), "features": "response,prompt*response"}

    def run(self, queries: Sequence[Query]) -> EngineRun:
        """The (n, dim) features as ``values``, with per-query ``truncated`` flags (the response
        or the prompt was cut) and the encoder run's statistics, ``cache_hits``/``computed``
        counted over queries (:func:`~rewardkit.rewards.similarity.query_cache_stats`)."""
        from rewardkit.rewards.similarity import query_cache_stats

        prompts = [prompt_feature_text(q) for q in queries]
        texts = list(dict.fromkeys([q.response for q in queries] + prompts))
        computed: set[str] = set()
        run = self.encoder.embed_run(texts, computed)
        emb = run.values.astype(np.float32)
        where = {t: i for i, t in enumerate(texts)}
        r_idx = [where[q.response] for q in queries]
        p_idx = [where[p] for p in prompts]
        e_r, e_p = emb[r_idx], emb[p_idx]
        cut = run.truncated[r_idx] | run.truncated[p_idx]
        groups = [[q.response, p] for q, p in zip(queries, prompts, strict=True)]
        stats = {**query_cache_stats(run.stats, groups, computed), "queries": len(queries)}
        stats["truncated_rows"] = int(cut.sum())
        return EngineRun(np.concatenate([e_r, e_p * e_r], axis=1), cut, stats)

    def features(self, queries: Sequence[Query]) -> np.ndarray:
        """``[e_r, e_p ⊙ e_r]`` of each query, (n, dim) float32."""
        return self.run(queries).values


def default_head_dir() -> Path:
    return Path(str(resources.files("rewardkit") / "resources" / "default_rm"))


def load_head(directory: Path) -> tuple[FeatureHead, dict[str, Any]]:
    """A trained head and its metadata from ``directory``."""
    from safetensors.torch import load_file

    meta_path, weights = directory / META_FILE, directory / HEAD_FILE
    if not meta_path.is_file() or not weights.is_file():
        raise SpecError(
            f"{directory}: no trained head ({META_FILE} and {HEAD_FILE}); produce one with "
            "`rewardkit train --config configs/default_rm.yaml`"
        )
    meta = json.loads(meta_path.read_text())
    head = FeatureHead(
        int(meta["in_dim"]), meta["head"], meta.get("inner"), int(meta.get("out", 1))
    )
    head.load_state_dict(load_file(str(weights)))
    refuse_nonfinite(head, weights, "rewardkit train --config configs/default_rm.yaml")
    return head.eval(), meta


class DefaultReward(Reward):
    """The shipped default reward model (see the module docstring); its features are the
    frozen-encoder features its head reads."""

    capabilities = frozenset({Capability.MODEL_BACKED, Capability.FEATURES})

    def __init__(self, head_dir: str | None = None, config: EngineConfig | None = None) -> None:
        directory = Path(head_dir).expanduser() if head_dir else default_head_dir()
        self.head, self.meta = load_head(directory)
        self._trained = read_trained_prompts(directory)
        cfg = config or EngineConfig()
        if cfg.max_length is None:
            cfg = EngineConfig(**{**cfg.__dict__, "max_length": int(self.meta["max_length"])})
        self.featurizer = Featurizer(self.meta.get("encoder", "minilm"), cfg)
        self.max_length = self.featurizer.encoder.max_length
        self.offset = float(self.meta.get("offset", 0.0))
        from safetensors.torch import save as _save_bytes

        weights = _save_bytes({k: v.contiguous() for k, v in self.head.state_dict().items()})
        self._identity = {
            "class": "DefaultReward",
            "head_sha": hashlib.sha256(weights).hexdigest()[:32],
            "offset": self.offset,
            **self.featurizer.identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def trained_prompts(self) -> np.ndarray | None:
        """The prompts the head was trained on, where its run recorded them."""
        return self._trained

    def engine_variant(self, **changes: Any) -> DefaultReward:
        """A twin whose encoder is its engine variant (:meth:`Reward.engine_variant`)."""
        twin = copy.copy(self)
        twin.featurizer = copy.copy(self.featurizer)
        twin.featurizer.encoder = self.featurizer.encoder.engine_variant(**changes)
        return twin

    def features(self, queries: Sequence[Query]) -> np.ndarray:
        """The features the head reads (:meth:`Featurizer.features`)."""
        return self.featurizer.features(text_queries(queries, self.name))

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        run = self.featurizer.run(queries)
        with torch.no_grad():
            r = self.head(torch.from_numpy(run.values))[:, 0].double().numpy()
        return run.result(r - self.offset)


def build(arg: str | None, **options: Any) -> DefaultReward:
    """Registry factory for ``default`` (the shipped head) or ``default:DIR`` (another head)."""
    config = EngineConfig.from_options(options)
    if options:
        refuse_options(options, "default", [])
    return DefaultReward(arg or None, config)

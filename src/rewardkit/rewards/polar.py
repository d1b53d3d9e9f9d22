"""POLAR: a reward that reads a reference and a candidate (``polar:DIR``).

docs/methods/A9-polar.md — "Pre-Trained Policy Discriminators are General Reward Models".
``r(x, y_ref, y)`` is high when ``y`` looks like it came from the policy that wrote ``y_ref``.
rewardkit's scaled-down form reads frozen MiniLM embeddings of the prompt ``e_p``, the reference
``e_ref`` and the candidate ``e_y``: ``r = head([e_y, e_ref ⊙ e_y, |e_ref − e_y|, e_p ⊙ e_y])``
with the two-layer head of the ``default`` model. The reference comes from the record
(``Query.reference``: a text, or the first of a list); NaN without one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.models.heads import refuse_nonfinite
from rewardkit.registry import refuse_options
from rewardkit.rewards.default_rm import FeatureHead, prompt_feature_text
from rewardkit.rewards.pal import load_state, read_meta, write_meta, write_weights
from rewardkit.types import Query, Reward

WEIGHTS_FILE = "polar.safetensors"
META_FILE = "polar.json"


def polar_features(e_prompt: np.ndarray, e_ref: np.ndarray, e_cand: np.ndarray) -> np.ndarray:
    """``[e_y, e_ref ⊙ e_y, |e_ref − e_y|, e_p ⊙ e_y]`` row by row → (n, 4d) float32."""
    return np.concatenate(
        [e_cand, e_ref * e_cand, np.abs(e_ref - e_cand), e_prompt * e_cand], axis=1
    ).astype(np.float32)


def reference_text(q: Query) -> str | None:
    """The reference a query carries: a text, or the first text of a list; None otherwise (a
    blank text is no reference: it used to be scored as one)."""
    ref = q.reference
    if isinstance(ref, list | tuple) and ref:
        ref = ref[0]
    return ref if isinstance(ref, str) and ref.strip() else None


class PolarEncoder:
    """Frozen sentence embeddings (the embedded MiniLM by default) of prompts and texts."""

    def __init__(self, encoder: str = "minilm", config: EngineConfig | None = None) -> None:
        from rewardkit.rewards.similarity import EmbeddingSimilarityReward

        self.encoder = EmbeddingSimilarityReward(encoder, config or EngineConfig(), pooling="mean")
        self.dim = 4 * int(self.encoder.model.config.hidden_size)

    def features(
        self, prompts: Sequence[str], refs: Sequence[str], cands: Sequence[str]
    ) -> np.ndarray:
        """Features of (prompt, reference, candidate) triples."""
        texts = list(dict.fromkeys([*prompts, *refs, *cands]))
        emb = self.encoder.embed(texts).astype(np.float32) if texts else np.zeros((0, 1))
        at = {t: i for i, t in enumerate(texts)}

        def rows(xs: Sequence[str]) -> np.ndarray:
            return emb[[at[t] for t in xs]]

        return polar_features(rows(prompts), rows(refs), rows(cands))


def save_polar(directory: str | Path, head: FeatureHead, meta: dict[str, Any]) -> Path:
    """Write ``polar.safetensors`` and ``polar.json``, each atomically (standard JSON)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_weights(out / WEIGHTS_FILE, head.state_dict(), WEIGHTS_FILE)
    write_meta(out / META_FILE, meta)
    return out


def load_polar(directory: str | Path) -> tuple[FeatureHead, dict[str, Any]]:
    """A POLAR head and its metadata from ``directory``."""
    d = Path(directory).expanduser()
    if not (d / META_FILE).is_file() or not (d / WEIGHTS_FILE).is_file():
        raise SpecError(
            f"{d}: not a POLAR model ({META_FILE} and {WEIGHTS_FILE}); train one with "
            "`rewardkit polar pretrain`"
        )
    fields = {"in_dim": int, "inner": int, "max_length": int}
    meta = read_meta(d / META_FILE, fields, "rewardkit polar pretrain")
    head = FeatureHead(meta["in_dim"], "mlp", meta["inner"])
    load_state(head, d / WEIGHTS_FILE)
    refuse_nonfinite(head, d / WEIGHTS_FILE, "rewardkit polar pretrain")
    return head.eval(), meta


class PolarReward(Reward):
    """Scores each response against the query's reference (see module doc)."""

    def __init__(self, directory: str, config: EngineConfig | None = None) -> None:
        self.head, self.meta = load_polar(directory)
        cfg = config or EngineConfig()
        if cfg.max_length is None:
            cfg = EngineConfig(**{**cfg.__dict__, "max_length": int(self.meta["max_length"])})
        self.encoder = PolarEncoder(self.meta.get("encoder", "minilm"), cfg)
        weights = (Path(directory).expanduser() / WEIGHTS_FILE).read_bytes()
        self._identity = {
            "class": "PolarReward",
            "weights_sha": hashlib.sha256(weights).hexdigest()[:32],
            "encoder": self.encoder.encoder.identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.full(len(queries), np.nan)
        keep = [i for i, q in enumerate(queries) if reference_text(q) is not None]
        if keep:
            qs = [queries[i] for i in keep]
            x = self.encoder.features(
                [prompt_feature_text(q) for q in qs],
                [str(reference_text(q)) for q in qs],
                [str(q.response) for q in qs],
            )
            with torch.no_grad():
                out[keep] = self.head(torch.from_numpy(x))[:, 0].double().numpy()
        return out


def build(arg: str | None, **options: Any) -> PolarReward:
    """Registry factory for ``polar:DIR`` (engine options accepted)."""
    if not arg:
        raise SpecError(
            "polar reward needs a model directory: polar:DIR (`rewardkit polar pretrain`)"
        )
    config = EngineConfig.from_options(options)
    if options:
        refuse_options(options, "polar", [])
    return PolarReward(arg, config)

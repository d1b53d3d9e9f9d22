"""ReMoDetect continual preference tuning of a frozen-feature reward head
(docs/methods/F8-remodetect.md).

Starting from a trained head (the shipped ``default`` one unless told), fine-tune on detection
examples (``meta["origin"]`` per response: ``llm`` / ``mixed`` / ``human``) with Bradley–Terry
on the induced pairs ``llm ≻ mixed``, ``mixed ≻ human`` and ``llm ≻ human``, plus a replay term
``λ · mean((r_θ(x) − r_0(x))²)`` over the responses of a replay buffer (ordinary preference data),
which keeps the tuned reward close to the initial one where detection data says nothing
([design]: the paper's replay form is not pinned). Writes a head that ``default:DIR`` loads.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.errors import DataError, SpecError
from rewardkit.evaluate.detect import check_origin
from rewardkit.outputs import atomic_json
from rewardkit.rewards.pal import write_meta, write_weights
from rewardkit.train.common import check_finite_loss
from rewardkit.train.finite import check_trained
from rewardkit.train.losses import bt_loss
from rewardkit.train.method_runs import check_settings, run_directory

#: Which origin beats which in the tuning pairs.
RANK = {"llm": 2, "mixed": 1, "human": 0}


@dataclass
class DetectTuneConfig:
    """Continual tuning settings (small steps from the base head, as a continual update)."""

    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 64
    replay_weight: float = 1.0
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_settings(self, "DetectTuneConfig", counts=("steps", "batch_size"), rates=("lr",))
        check_settings(self, "DetectTuneConfig", nonnegative=("replay_weight",))


def origin_pairs(examples: list[Any], where: str | None = None) -> tuple[list[Any], np.ndarray]:
    """Queries of every response and the (better, worse) index pairs that the origins induce
    (``where``: the data file, named in errors)."""
    queries: list[Any] = []
    pairs: list[tuple[int, int]] = []
    for ex in examples:
        origin = check_origin(ex, where)
        base = len(queries)
        queries.extend(ex.queries())
        for i, oi in enumerate(origin):
            for j, oj in enumerate(origin):
                if RANK[oi] > RANK[oj]:
                    pairs.append((base + i, base + j))
    if not pairs:
        raise DataError("detection tuning needs examples with responses of different origins")
    return queries, np.asarray(pairs, dtype=np.int64)


def tune_head(
    head: torch.nn.Module,
    x: torch.Tensor,
    pairs: np.ndarray,
    x_replay: torch.Tensor | None,
    cfg: DetectTuneConfig,
) -> tuple[torch.nn.Module, list[float]]:
    """A tuned copy of ``head`` and the loss per step (BT on ``pairs`` + replay)."""
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    tuned = copy.deepcopy(head).train()
    with torch.no_grad():
        r0 = head(x_replay)[:, 0] if x_replay is not None and len(x_replay) else None
    opt = torch.optim.Adam(tuned.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    p = torch.from_numpy(pairs)
    history: list[float] = []
    for step in tqdm(range(cfg.steps), desc="tune detector", disable=not cfg.progress):
        idx = torch.randint(0, len(p), (min(cfg.batch_size, len(p)),), generator=gen)
        b = p[idx]
        loss = bt_loss(tuned(x[b[:, 0]])[:, 0], tuned(x[b[:, 1]])[:, 0])
        if r0 is not None and cfg.replay_weight:
            j = torch.randint(0, len(r0), (min(cfg.batch_size, len(r0)),), generator=gen)
            loss = loss + cfg.replay_weight * ((tuned(x_replay[j])[:, 0] - r0[j]) ** 2).mean()
        history.append(float(loss.detach()))
        check_finite_loss(history[-1], step + 1, "the detection tuning loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    check_trained(tuned, "tuned head")
    return tuned.eval(), history


def tune_detector(
    examples: list[Any],
    output_dir: str | Path,
    base: str | None = None,
    replay: list[Any] | None = None,
    cfg: DetectTuneConfig | None = None,
    cache_dir: str | None = None,
    where: str | None = None,
) -> dict[str, Any]:
    """Tune the head in ``base`` (None: the shipped default) on detection ``examples`` with
    ``replay`` examples' responses as the buffer; write ``head.safetensors`` + ``head.json``.
    ``cache_dir``: the engine's score cache for the features (reruns and later scoring reuse it);
    ``where``: the data file, named in errors. A base head with NaN or ±inf weights is refused,
    and a run whose loss diverges saves nothing. ``output_dir`` may not be the tuned head's own
    directory; it is locked for the run (a second run into it is refused) and every file is
    replaced atomically."""
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.default_rm import (
        HEAD_FILE,
        META_FILE,
        Featurizer,
        default_head_dir,
        load_head,
    )

    cfg = cfg or DetectTuneConfig()
    head_dir = Path(base).expanduser() if base else default_head_dir()
    out = Path(output_dir).expanduser()
    if out.resolve() == head_dir.resolve():  # without --base: the shipped default head
        raise SpecError(
            f"{out}: the output directory is the head being tuned ({base or 'the shipped default'}"
            "); give another output directory"
        )
    head, meta = load_head(head_dir)
    queries, pairs = origin_pairs(examples, where)
    with run_directory(out, "tuned detector"):  # a second run into it is refused
        feat = Featurizer(
            meta.get("encoder", "minilm"),
            EngineConfig(
                max_length=int(meta["max_length"]), progress=cfg.progress, cache_dir=cache_dir
            ),
        )
        x = torch.from_numpy(feat.features(queries))
        x_rep = None
        if replay:
            x_rep = torch.from_numpy(feat.features([q for ex in replay for q in ex.queries()]))
        tuned, history = tune_head(head, x, pairs, x_rep, cfg)
        new_meta = {
            **meta,
            "remodetect": {
                "base": base or "default",
                "n_pairs": len(pairs),
                "n_replay": 0 if x_rep is None else len(x_rep),
                "final_loss": float(np.mean(history[-max(1, len(history) // 10) :])),
                "config": asdict(cfg),
            },
        }
        write_weights(out / HEAD_FILE, tuned.state_dict(), HEAD_FILE)
        write_meta(out / META_FILE, new_meta)
        atomic_json(out / "loss_history.json", history)
    return new_meta["remodetect"]

"""Frozen-encoder training: features are computed once with the frozen backbone, then only a
small head trains on them (how the shipped ``default`` reward model is made).

docs/methods/A1-bradley-terry.md — Bradley–Terry reward model; A14 — two-layer reward head. The loss is the same pure
function as the full trainer's (:func:`rewardkit.train.objectives.compute`); the data order is a
seeded permutation per epoch, so a rerun reproduces the head bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.train.common import (
    TrainResult,
    check_finite_loss,
    load_examples,
    save_errors,
    write_json,
)
from rewardkit.train.config import TrainConfig
from rewardkit.train.steps import epoch_steps
from rewardkit.types import Example


def _pair_tensors(examples: list[Any], offset: int) -> tuple[list[int], list[int], list[bool]]:
    from rewardkit.train.pairs import mined_pairs

    a, b, tie = [], [], []
    at = offset
    for ex in examples:
        for c, r, t in mined_pairs(ex):
            a.append(at + c)
            b.append(at + r)
            tie.append(t)
        at += len(ex.responses)
    return a, b, tie


def _n_pairs(ex: Any) -> int:
    """How many pairs :func:`_pair_tensors` makes of ``ex``."""
    return len(ex.responses) - 1 if ex.is_tie else len(ex.chosen) * len(ex.rejected)


def pair_margins(
    examples: list[Any], margin_column: str | None, kind: str = "margin", required: bool = True
) -> list[float]:
    """The per-pair margins in the order of :func:`_pair_tensors`: the margin measured on each
    pair (:func:`~rewardkit.train.pairs.example_margins`; 0 for a pair without one, for ties
    and without a margin column). ``required``: False for eval data."""
    from rewardkit.train.pairs import example_margins, item_pairs

    out: list[float] = []
    for ex in examples:
        margins = example_margins(ex, margin_column, kind, required) if margin_column else {}
        out += [p[3] for p in item_pairs(ex, margins, 1.0)[0]]
    return out


def pair_labels(examples: list[Any]) -> tuple[list[float], list[float]]:
    """Each pair's weight and label smoothing α (NaN: the config's) from its example's curated
    ``meta.weight`` / ``meta.label_confidence`` (:func:`rewardkit.train.collate.meta_labels`),
    in the order of :func:`_pair_tensors`."""
    from rewardkit.train.collate import meta_labels

    weights: list[float] = []
    alphas: list[float] = []
    for ex in examples:
        w, alpha = meta_labels(ex)
        n_pairs = _n_pairs(ex)
        weights += [w] * n_pairs
        alphas += [math.nan if alpha is None else alpha] * n_pairs
    return weights, alphas


def featurize(
    featurizer: Any,
    examples: list[Any],
    margin_column: str | None = None,
    kind: str = "margin",
    meta: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Features of every response, and the pair index tensors over them; ``meta``: the pairs
    carry their examples' curated weights and label smoothing (training data, not eval data)."""
    margins = pair_margins(examples, margin_column, kind, required=meta)
    queries = [q for ex in examples for q in ex.queries()]
    x = torch.from_numpy(featurizer.features(queries))
    a, b, tie = _pair_tensors(examples, 0)
    n = len(a)
    weights, alphas = pair_labels(examples) if meta else ([1.0] * n, [math.nan] * n)
    batch = {
        "pair_a": torch.tensor(a, dtype=torch.long),
        "pair_b": torch.tensor(b, dtype=torch.long),
        "pair_tie": torch.tensor(tie, dtype=torch.bool),
        "pair_margin": torch.tensor(margins, dtype=torch.float32).reshape(n),
        "pair_weight": torch.tensor(weights, dtype=torch.float32).reshape(n),
    }
    if meta and not all(math.isnan(v) for v in alphas):
        batch["pair_smoothing"] = torch.tensor(alphas, dtype=torch.float32).reshape(n)
    return x, batch


def frozen_refusal(cfg: TrainConfig) -> str | None:
    """Why a frozen-head run cannot honour ``cfg`` (a field it would otherwise ignore)."""
    if cfg.objective not in ("bt", "tie", "crome"):
        return (
            f"train config: freeze_backbone supports objective bt, tie or crome, not "
            f"{cfg.objective!r}"
        )
    if cfg.save_steps or cfg.resume:
        return (
            "train config: freeze_backbone trains only the head, on features computed once "
            "(seconds per epoch), and keeps no intermediate checkpoints: set save_steps: 0 and "
            "drop resume (a rerun reuses the cached features when cache_dir is set)"
        )
    if cfg.vote_file:
        return (
            "train config: vote_file is not supported with freeze_backbone (full fine-tunes only)"
        )
    if cfg.grad_accum != 1:
        return (
            "train config: freeze_backbone steps on whole batches (grad_accum 1); raise "
            "batch_size instead"
        )
    if cfg.lora_r:
        return "train config: lora_r has no effect with freeze_backbone (the backbone is frozen)"
    return None


def centre(head: Any, x: torch.Tensor) -> float:
    """The ``offset`` saved in ``head.json``: the mean head output over the training features
    (``default:DIR`` scores ``head(φ) − offset``)."""
    with torch.no_grad():
        return float(head(x).mean())


def check_items(cfg: TrainConfig, feat: Any, train_ex: list[Any], eval_ex: list[Any]) -> None:
    """The full trainer's label checks and warnings (:func:`rewardkit.train.collate.build_items`:
    no preference, all-zero scaled margins or weights, ties and identical pairs counted) on the
    head's data, its responses encoded as the frozen encoder reads them."""
    from rewardkit.train.collate import build_items
    from rewardkit.train.labels import check_pairs_differ

    encode = feat.encoder.encode
    where = f"train data {cfg.data!r}"
    check_pairs_differ(build_items(train_ex, encode, cfg, where), cfg.objective, where)
    if eval_ex:
        where = f"eval data {cfg.eval_data!r}" if cfg.eval_data else "the eval_fraction hold-out"
        build_items(eval_ex, encode, cfg, where, use_votes=False)


def head_schedule(cfg: TrainConfig, opt: Any, total: int) -> Any:
    """The learning-rate schedule ``cfg.scheduler`` with ``warmup_ratio`` of ``total`` steps,
    as the full trainer builds it (transformers' ``get_scheduler``)."""
    from transformers import get_scheduler

    warmup = math.ceil(total * cfg.warmup_ratio)
    return get_scheduler(cfg.scheduler, opt, num_warmup_steps=warmup, num_training_steps=total)


def step_or_diverge(opt: Any, lr: float, step: int) -> None:
    """``opt.step()``; an Adam step size past float32 (lr 1e38: lr / (1 − β₁)) is a
    :class:`~rewardkit.errors.TrainingDiverged`, not torch's overflow traceback."""
    try:
        opt.step()
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        from rewardkit.errors import TrainingDiverged

        raise TrainingDiverged(
            f"the head's update at step {step} overflowed float32 (lr {lr:g}): training "
            "diverged (try a lower learning rate); nothing was saved"
        ) from None


def train_frozen_head(cfg: TrainConfig) -> TrainResult:
    """Train a :class:`~rewardkit.rewards.default_rm.FeatureHead` on frozen features and write
    ``head.safetensors`` + ``head.json`` (+ metrics, history, plot) to ``cfg.output_dir``,
    holding the folder all along (:func:`~rewardkit.train.runstate.output_lock`)."""
    from rewardkit.train.runstate import output_lock

    with output_lock(cfg.output_dir):
        return _train_frozen_head(cfg)


def _train_frozen_head(cfg: TrainConfig) -> TrainResult:
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from rewardkit.data.trained_on import write_trained_prompts
    from rewardkit.models.loading import set_threads
    from rewardkit.rewards.default_rm import HEAD_FILE, META_FILE, FeatureHead, Featurizer
    from rewardkit.train.objectives import compute
    from rewardkit.train.pairs import group_key
    from rewardkit.train.trainer import pair_metrics

    refusal = frozen_refusal(cfg)
    if refusal:
        raise SpecError(refusal)
    from rewardkit.train.runstate import claim_output_dir

    claim_output_dir(cfg, clear=False)
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_ex, eval_ex = load_examples(cfg)
    if not eval_ex and cfg.eval_fraction > 0:  # whole prompts (holdout_by), as a fine-tune
        from rewardkit.train.common import holdout_indices

        by_prompt = cfg.holdout_by == "prompt"
        keys = [group_key(ex) if by_prompt else i for i, ex in enumerate(train_ex)]
        where = f"train data {cfg.data!r}"
        held = set(holdout_indices(keys, cfg.eval_fraction, cfg.seed, where, cfg.holdout_by))
        eval_ex = [ex for i, ex in enumerate(train_ex) if i in held]
        train_ex = [ex for i, ex in enumerate(train_ex) if i not in held]
    t0 = time.perf_counter()
    feat = Featurizer(
        cfg.model,
        EngineConfig(
            max_length=cfg.max_length,
            truncation=cfg.truncation,
            threads=cfg.threads,
            progress=cfg.progress,
            cache_dir=cfg.cache_dir,
        ),
    )
    check_items(cfg, feat, train_ex, eval_ex)
    meta = bool(getattr(cfg, "use_meta_labels", True))  # curated weight and label smoothing
    x, pairs = featurize(feat, train_ex, cfg.margin_column, cfg.margin_kind, meta=meta)
    xe, pairs_e = (
        featurize(feat, eval_ex, cfg.margin_column, cfg.margin_kind) if eval_ex else (None, None)
    )
    t_feat = time.perf_counter() - t0
    n_pairs = int(pairs["pair_a"].numel())
    total = epoch_steps(cfg, n_pairs, f"train data {cfg.data!r}")  # refused: under half a step
    claim_output_dir(cfg)  # data and features ready: --overwrite deletes the earlier run now
    head = FeatureHead(feat.dim, cfg.head, cfg.head_inner)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = head_schedule(cfg, opt, total)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, Any]] = []
    step, order = 0, torch.empty(0, dtype=torch.long)
    losses: list[float] = []
    right, judged = 0, 0  # strict pairs ordered correctly in the logging window (train accuracy)

    def evaluate() -> dict[str, float]:
        """Metrics of the reward the head would be saved as now: ``head − offset``, as
        ``default:DIR`` scores it (the offset centres the training rewards)."""
        head.eval()
        with torch.no_grad():
            r = head(xe) - centre(head, x)
            res = compute(cfg, r, pairs_e)
        head.train()
        m = pair_metrics(res.r_better.numpy(), res.r_worse.numpy(), res.rewards.numpy())
        m["loss"] = float(res.loss)
        return {f"eval_{k}": v for k, v in m.items()}

    bar = tqdm(total=total, desc="train head", disable=not cfg.progress)
    while step < total:
        if order.numel() == 0:
            order = torch.randperm(n_pairs, generator=gen)
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        sub = {k: v[idx] for k, v in pairs.items()}
        need = torch.cat([sub["pair_a"], sub["pair_b"]]).unique()
        remap = torch.full((x.shape[0],), -1, dtype=torch.long)
        remap[need] = torch.arange(need.numel())
        sub["pair_a"], sub["pair_b"] = remap[sub["pair_a"]], remap[sub["pair_b"]]
        res = compute(cfg, head(x[need]), sub)
        check_finite_loss(res.loss, step + 1)  # a NaN head is no success
        opt.zero_grad()
        res.loss.backward()
        step_or_diverge(opt, cfg.lr, step + 1)
        sched.step()
        step += 1
        losses.append(float(res.loss.detach()))
        right += int((res.r_better > res.r_worse).sum())
        judged += int(res.r_better.numel())
        bar.update(1)
        if step % max(1, cfg.logging_steps) == 0 or step == total:
            entry = {"step": step, "loss": float(np.mean(losses)), "lr": sched.get_last_lr()[0]}
            if judged:
                entry["accuracy"] = right / judged
            losses.clear()
            right, judged = 0, 0
            if xe is not None and (
                (cfg.eval_steps and step % cfg.eval_steps == 0) or step == total
            ):
                entry.update(evaluate())
            history.append(entry)
    bar.close()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    offset = centre(head, x)
    metrics = evaluate() if xe is not None else {}
    meta = {
        "encoder": cfg.model,
        "encoder_identity": feat.encoder.identity(),
        "features": "response,prompt*response",
        "in_dim": feat.dim,
        "head": cfg.head,
        "inner": cfg.head_inner,
        "out": 1,
        "max_length": cfg.max_length,
        "offset": offset,
        "objective": cfg.objective,
        "data": cfg.data,
        "n_train_pairs": n_pairs,
        "steps": total,
        "feature_seconds": round(t_feat, 1),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "metrics": metrics,
        "config": cfg.to_dict(),
    }
    counts = {"train": pair_counts(train_ex, pairs)}
    if pairs_e is not None:
        counts["eval"] = pair_counts(eval_ex, pairs_e, train_ex)
    train_meta = {
        "objective": cfg.objective,
        "config": cfg.to_dict(),
        "load_with": f"default:{Path(out).resolve()}",  # from any folder
        "data": counts,
    }
    try:  # metrics.json last: a save that fails (a full disk) leaves no finished-looking head
        with save_errors("the trained head", out):
            sd = {k: v.contiguous() for k, v in head.state_dict().items()}
            save_file(sd, str(out / HEAD_FILE))
            write_json(out / META_FILE, meta)
            write_trained_prompts(out, [group_key(ex) for ex in train_ex])
            write_json(out / "rewardkit_train.json", train_meta, indent=2)
            write_json(out / "log_history.json", history)
            if cfg.plot:
                from rewardkit.train.plot import plot_history

                plot_history(history, out / "training.png")
            write_json(out / "metrics.json", metrics)
    except BaseException:
        (out / "metrics.json").unlink(missing_ok=True)
        raise
    return TrainResult(out, metrics, history, counts)


def pair_counts(
    examples: Sequence[Example], pairs: dict[str, torch.Tensor], trained: Sequence[Example] = ()
) -> dict[str, int]:
    """What a frozen-head run trained or evaluated on, counted as a fine-tune counts it
    (:func:`rewardkit.train.collate.data_counts`): examples, distinct prompts, strict preference
    pairs and tie pairs; for eval data with ``trained``, how many of its prompts it shares."""
    from rewardkit.train.pairs import group_key

    ties = int(pairs["pair_tie"].sum())
    keys = {group_key(ex) for ex in examples}
    out = {
        "examples": len(examples),
        "prompts": len(keys),
        "pairs": int(pairs["pair_a"].numel()) - ties,
        "tie_pairs": ties,
    }
    if trained:
        out["prompts_in_train"] = len(keys & {group_key(ex) for ex in trained})
    return out

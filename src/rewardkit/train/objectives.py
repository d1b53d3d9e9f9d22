"""Which loss each objective computes from a batch's model outputs (the losses live in
:mod:`rewardkit.train.losses`; this module only routes tensors to them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.train import losses as L
from rewardkit.train.labels import MASK


@dataclass
class Outcome:
    """The loss and, for metrics, the scalar rewards of the batch's preference pairs."""

    loss: torch.Tensor
    r_better: torch.Tensor
    r_worse: torch.Tensor
    rewards: torch.Tensor  # scalar reward per sequence


def scalar_reward(cfg: Any, out: torch.Tensor) -> torch.Tensor:
    """The one reward per sequence an objective ranks by."""
    if cfg.objective == "gated":
        k = len(cfg.attributes)
        return L.gated_reward(out[:, :k], out[:, k : 2 * k])
    return out[:, 0].float()


def num_outputs(cfg: Any) -> int:
    """Head outputs an objective needs."""
    if cfg.objective in ("regression", "bt+regression"):
        return len(cfg.attributes)
    if cfg.objective == "gated":
        return 2 * len(cfg.attributes)  # k objective scores, then k gate logits
    return 1


def loss_terms(cfg: Any, batch: dict[str, torch.Tensor]) -> int:
    """How many terms the batch's loss is the mean of (strict pairs for the BT objectives, all
    pairs for tie/crome, 2 verdicts per pair for generative, ranked lists for listwise, rated targets
    for regression, tagged steps for prm): the weight of the batch in an eval loss that equals
    the mean over the whole eval set however it is batched."""
    obj = cfg.objective
    if obj == "prm":
        return int((batch["step_labels"] >= 0).sum())
    if obj == "regression":
        return int((batch["targets"] != MASK).sum())
    if obj == "listwise":  # ranked lists only (an unranked list adds no term)
        return int((L.ranked_positions(batch["order"], batch["n_ranked"]) > 0).sum())
    if obj == "generative":
        return 2 * int((~batch["pair_tie"]).sum())
    if obj in ("tie", "crome"):
        return int(batch["pair_a"].numel())
    return int((~batch["pair_tie"]).sum())


def _pairs(batch: dict[str, torch.Tensor], r: torch.Tensor, untied: bool = True):
    a, b = batch["pair_a"], batch["pair_b"]
    keep = ~batch["pair_tie"] if untied else torch.ones_like(batch["pair_tie"])
    return r[a][keep], r[b][keep], batch["pair_margin"][keep], batch["pair_weight"][keep]


def pair_smoothing(cfg: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor | float:
    """Label smoothing α of the strict pairs: per pair from curated ``label_confidence``
    (docs/curation.md), the config's ``label_smoothing`` where a pair has none (NaN)."""
    per_pair = batch.get("pair_smoothing")
    if per_pair is None:
        return cfg.label_smoothing
    s = per_pair[~batch["pair_tie"]]
    return torch.where(torch.isnan(s), torch.full_like(s, cfg.label_smoothing), s)


def compute(
    cfg: Any,
    out: torch.Tensor,
    batch: dict[str, torch.Tensor],
    progress: float = 0.0,
    verdict_ids: tuple[int, int] = (-1, -1),
) -> Outcome:
    """The objective's loss on one batch. ``progress`` (0..1) drives the A7 curriculum;
    ``verdict_ids`` are the (Yes, No) token ids of the generative objective."""
    obj = cfg.objective
    if obj == "prm":  # out: token logits (b, w, 2); loss at the step tags only
        labels = batch["step_labels"]
        loss = L.step_ce(out, labels)
        p_right = torch.softmax(out.detach().float(), dim=-1)[..., 1][labels >= 0]
        empty = p_right[:0]
        return Outcome(loss, empty, empty, p_right)
    if obj == "generative":
        # Rows of the judging prompt; the verdict is Yes for a pair's better, No for its worse.
        logits = out[:, 3:]
        strict = ~batch["pair_tie"]  # a tie has no Yes side and no No side
        a, b = batch["pair_a"][strict], batch["pair_b"][strict]
        idx = torch.cat([a, b])
        target = torch.cat([torch.full_like(a, verdict_ids[0]), torch.full_like(b, verdict_ids[1])])
        # a batch of ties only has no verdict to learn (the mean of no terms would be NaN)
        loss = L.verdict_ce(logits[idx], target) if idx.numel() else logits.sum() * 0.0
        r = out[:, 0]
        return Outcome(loss, r[a], r[b], r)
    if obj == "crm":
        ra, rb = out[:, 0].float(), out[:, 1].float()
        ca, wa, _, _ = _pairs(batch, ra)
        cb, wb, margin, weight = _pairs(batch, rb)
        alpha = pair_smoothing(cfg, batch)
        keep = L.crm_keep_ratio(progress, cfg.crm_noise_rate, cfg.crm_warmup)
        sel_a = L.peer_select(ca - wa, keep)  # A's clean pairs train B
        sel_b = L.peer_select(cb - wb, keep)  # B's clean pairs train A

        def _alpha(sel: torch.Tensor) -> torch.Tensor | float:
            return alpha[sel] if isinstance(alpha, torch.Tensor) else alpha

        loss = L.bt_loss(cb[sel_a], wb[sel_a], margin[sel_a], _alpha(sel_a), weight[sel_a])
        loss = loss + L.bt_loss(ca[sel_b], wa[sel_b], margin[sel_b], _alpha(sel_b), weight[sel_b])
        return Outcome(loss, ca, wa, ra)
    r = scalar_reward(cfg, out)
    if obj == "listwise":
        scores = torch.where(batch["order"] >= 0, r[batch["order"].clamp(min=0)], 0.0)
        # order already holds global indices best-first; gather is the identity order here.
        k = batch["order"].shape[1]
        local = torch.arange(k).expand_as(batch["order"]).masked_fill(batch["order"] < 0, -1)
        loss = L.plackett_luce_loss(scores, local, batch["n_ranked"])
        c, w, _, _ = _pairs(batch, r)
        return Outcome(loss, c, w, r)
    if obj == "regression":
        loss = L.masked_mse(out, batch["targets"])
        c, w, _, _ = _pairs(batch, r)
        return Outcome(loss, c, w, r)
    if obj == "tie":
        a, b = batch["pair_a"], batch["pair_b"]
        loss = L.btt_loss(r[a] - r[b], batch["pair_tie"], cfg.tie_k, batch["pair_weight"])
        c, w, _, _ = _pairs(batch, r)
        return Outcome(loss, c, w, r)
    if obj == "crome":  # docs/methods/A8-crome.md: strict pairs BT, tie pairs target ½
        a, b = batch["pair_a"], batch["pair_b"]
        p = torch.where(batch["pair_tie"], 0.5, 1.0)
        loss = L.soft_bt_loss(r[a] - r[b], p, batch["pair_weight"])
        c, w, _, _ = _pairs(batch, r)
        return Outcome(loss, c, w, r)
    # bt, bt+regression, gated: a BT term on the (scalar or gated) reward.
    c, w, margin, weight = _pairs(batch, r)
    alpha = pair_smoothing(cfg, batch)
    if getattr(cfg, "margin_kind", "margin") == "scaled":  # docs/methods/A3-scaled-bt.md
        loss = L.bt_loss(c, w, 0.0, alpha, weight * margin)
    else:
        loss = L.bt_loss(c, w, margin, alpha, weight)
    if cfg.center_coef:
        loss = loss + cfg.center_coef * L.center_penalty(c, w)
    if obj == "bt+regression":
        loss = cfg.bt_weight * loss + cfg.reg_weight * L.masked_mse(out, batch["targets"])
    elif obj == "gated" and "targets" in batch:
        k = len(cfg.attributes)
        if bool((batch["targets"] != MASK).any()):
            loss = loss + cfg.reg_weight * L.masked_mse(out[:, :k], batch["targets"])
    return Outcome(loss, c, w, r)

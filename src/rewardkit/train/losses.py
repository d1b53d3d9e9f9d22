"""Reward-model training objectives as pure functions of reward tensors.

Each function cites its method card in ``docs/methods/``; the trainer only gathers
rewards from the model and calls these. Every loss returns a scalar (``reduction="mean"``) or a
per-item tensor (``reduction="none"``) and is computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# The gated reward is read by the scorer too (a trained gated head): its formula lives there.
from rewardkit.models.heads import gated_reward  # noqa: F401

Tensor = torch.Tensor


def _same_shape(**operands: object) -> None:
    """ValueError unless every tensor operand has the first one's shape (a Python number or a
    0-d tensor is a scalar and may broadcast). Rewards of shape (n,) against (n, 1) would
    otherwise broadcast to an (n, n) matrix of every chosen against every rejected, silently.
    TypeError for an operand that is neither (a list fails later; a numpy (n, 1) margin
    broadcast to (n, n) unchecked)."""
    odd = [k for k, v in operands.items() if not isinstance(v, Tensor | int | float | None)]
    if odd:
        got = ", ".join(f"{k} {type(operands[k]).__name__}" for k in odd)
        raise TypeError(f"per-pair operands must be torch tensors or numbers; got {got}")
    shapes = {k: tuple(v.shape) for k, v in operands.items() if isinstance(v, Tensor) and v.ndim}
    if len(set(shapes.values())) > 1:
        said = ", ".join(f"{k} {list(v)}" for k, v in shapes.items())
        raise ValueError(f"per-pair operands must have one shape (one value per pair); got {said}")


def _reduce(values: Tensor, weight: Tensor | None, reduction: str) -> Tensor:
    if weight is not None:
        values = values * weight
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean() if values.numel() else values.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def bt_loss(
    r_chosen: Tensor,
    r_rejected: Tensor,
    margin: Tensor | float = 0.0,
    label_smoothing: Tensor | float = 0.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """docs/methods/A1-bradley-terry.md — Bradley–Terry reward model (with optional margin), with the label smoothing
    of E1 — "Secrets of RLHF Part II" (conservative targets).

    ``L = −(1−α) log σ(Δ − m) − α log σ(−(Δ − m))`` with ``Δ = r_c − r_r``; α = 0 is plain BT.
    A tensor α is per pair (curated ``label_confidence`` C gives α = 1 − C, card E4) and may
    be ½, the neutral loss (log 2 at Δ = m); a number α is in [0, ½).
    """
    if isinstance(label_smoothing, Tensor):
        bad = ~((label_smoothing >= 0) & (label_smoothing <= 0.5))
        if bool(bad.any()):
            got = label_smoothing[bad].tolist()[:5]
            raise ValueError(f"per-pair label_smoothing must be in [0, 0.5], got {got}")
    elif not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    _same_shape(
        r_chosen=r_chosen,
        r_rejected=r_rejected,
        margin=margin,
        label_smoothing=label_smoothing,
        weight=weight,
    )
    z = r_chosen.float() - r_rejected.float() - margin
    loss = -F.logsigmoid(z)
    if isinstance(label_smoothing, Tensor) or label_smoothing:
        a = torch.as_tensor(label_smoothing, dtype=z.dtype, device=z.device)
        loss = (1.0 - a) * loss - a * F.logsigmoid(-z)
    return _reduce(loss, weight, reduction)


def soft_bt_loss(
    delta: Tensor, p_target: Tensor | float, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """docs/methods/A8-crome.md — Bradley–Terry with a soft target (Crome).

    ``L = −p log σ(Δ) − (1 − p) log σ(−Δ)``: ``p = 1`` is plain BT on a strict pair, ``p = ½``
    the neutral (tie) loss ``−½ log σ(Δ) − ½ log σ(−Δ)``, smallest (log 2) at Δ = 0.
    """
    _same_shape(delta=delta, p_target=p_target, weight=weight)
    d = delta.float()
    p = torch.as_tensor(p_target, dtype=d.dtype)
    bad = ~((p >= 0) & (p <= 1))  # outside [0, 1] the loss has no minimum (p = 2: −∞ as Δ grows)
    if bool(bad.any()):
        raise ValueError(f"p_target must be a probability in [0, 1], got {p[bad].tolist()[:5]}")
    return _reduce(-p * F.logsigmoid(d) - (1.0 - p) * F.logsigmoid(-d), weight, reduction)


def center_penalty(r_chosen: Tensor, r_rejected: Tensor) -> Tensor:
    """Reward centering (Eisenstein et al. 2023, as in TRL's ``center_rewards_coefficient``):
    ``mean((r_c + r_r)²)``; the trainer adds ``coefficient × center_penalty``. 0 for no pairs
    (a batch of ties only: its mean was NaN and stopped the run as diverged)."""
    _same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    return _reduce((r_chosen.float() + r_rejected.float()) ** 2, None, "mean")


def scaled_bt_loss(
    r_a: Tensor, r_b: Tensor, strength: Tensor, kind: str = "scaled", reduction: str = "mean"
) -> Tensor:
    """docs/methods/A3-scaled-bt.md — Scaled Bradley–Terry (HelpSteer2-Preference).

    ``strength < 0``: response a preferred; ``> 0`` (or 0): b preferred; ``m = |strength|``.
    ``kind``: ``"regular"`` −log σ(Δ), ``"margin"`` −log σ(Δ − m), ``"scaled"`` −m·log σ(Δ),
    where Δ is the preferred minus the other reward.
    """
    _same_shape(r_a=r_a, r_b=r_b, strength=strength)
    s = strength.float()
    delta = torch.where(s < 0, r_a.float() - r_b.float(), r_b.float() - r_a.float())
    m = s.abs()
    if kind == "regular":
        loss = -F.logsigmoid(delta)
    elif kind == "margin":
        loss = -F.logsigmoid(delta - m)
    elif kind == "scaled":
        loss = -m * F.logsigmoid(delta)
    else:
        raise ValueError(f"kind must be 'regular', 'margin' or 'scaled', got {kind!r}")
    return _reduce(loss, None, reduction)


def btt_loss(
    delta: Tensor,
    tied: Tensor,
    k: float = 5.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """docs/methods/A13-uncertainty-tie-bt.md — tie-aware BT (Rao–Kupper, "EditReward").

    Non-tied (Δ = r_preferred − r_other): ``−log σ(Δ − log k)``; tied:
    ``−log σ(Δ − log k) − log σ(−Δ − log k) − log(k² − 1)``, which is smallest at Δ = 0, so a
    tie pulls the two rewards together.
    """
    if not (math.isfinite(k) and k > 1.0):
        raise ValueError(f"the tie parameter k must be a finite number > 1, got {k}")
    _same_shape(delta=delta, tied=tied, weight=weight)
    d = delta.float()
    lk = math.log(k)
    win = -F.logsigmoid(d - lk)
    tie = win - F.logsigmoid(-d - lk) - math.log(k * k - 1.0)
    return _reduce(torch.where(tied.bool(), tie, win), weight, reduction)


def gaussian_bt_loss(
    mu_c: Tensor,
    logsig_c: Tensor,
    mu_r: Tensor,
    logsig_r: Tensor,
    n_samples: int = 1000,
    margin: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """docs/methods/A13-uncertainty-tie-bt.md — uncertainty-aware BT: ``−E_ε[log σ(μ_z + σ_z ε − margin)]`` with
    ``μ_z = μ_c − μ_r``, ``σ_z = sqrt(σ_c² + σ_r²)``, ``σ = exp(logsig)``, Monte-Carlo estimate
    (the mean over draws and pairs; 0 for no pairs, as :func:`bt_loss`). ``σ_z`` is computed as
    ``exp(½ logaddexp(2 logsig_c, 2 logsig_r))``: σ² overflows float32 from logsig ≈ 44."""
    _same_shape(mu_c=mu_c, logsig_c=logsig_c, mu_r=mu_r, logsig_r=logsig_r)
    if n_samples < 1:
        raise ValueError(f"n_samples must be ≥ 1 (Monte-Carlo draws); got {n_samples}")
    mu_z = (mu_c - mu_r).float()
    if mu_z.numel() == 0:
        return mu_z.sum() * 0.0
    sig_z = torch.exp(0.5 * torch.logaddexp(2 * logsig_c.float(), 2 * logsig_r.float()))
    eps = torch.randn(
        (n_samples, *mu_z.shape), generator=generator, device=mu_z.device, dtype=mu_z.dtype
    )
    return -F.logsigmoid(mu_z + sig_z * eps - margin).mean()


def plackett_luce_loss(scores: Tensor, order: Tensor, n_ranked: Tensor | None = None) -> Tensor:
    """Listwise Plackett–Luce negative log-likelihood on full or partial rankings ``[design]``
    (a listwise generalisation of docs/methods/A1-bradley-terry.md; rewardkit's choice, documented in docs/design.md).

    ``scores``: (G, K) rewards; ``order``: (G, K) response indices best-first, padded with −1;
    ``n_ranked``: (G,) how many leading positions are ranked (top-k partial ranking; the rest
    only count as "below"). ``NLL = Σ_{t<n} [logsumexp(s_{o_t..o_end}) − s_{o_t}]``, averaged
    over the ranked groups (n > 0; an unranked list adds nothing, as a tie adds nothing to BT;
    0 when none is ranked). With K = 2, n = 1 this is the BT loss. Rewards (2, 1, 0) ranked
    best-first give log(1 + e⁻¹ + e⁻²) + log(1 + e⁻¹) = 0.720868.
    """
    g, k = order.shape
    valid = order >= 0
    idx = order.clamp(min=0)
    s = torch.gather(scores.float(), 1, idx)
    s = s.masked_fill(~valid, float("-inf"))
    # logsumexp over the suffix t..K-1, computed by flipping.
    suffix = torch.logcumsumexp(s.flip(1), dim=1).flip(1)
    n = ranked_positions(order, n_ranked)
    pos = torch.arange(k, device=scores.device).expand(g, k)
    use = pos < n.unsqueeze(1)
    terms = torch.where(use, suffix - s, torch.zeros_like(s)).sum(1)
    ranked = n > 0
    return terms[ranked].mean() if bool(ranked.any()) else terms.sum() * 0.0


def ranked_positions(order: Tensor, n_ranked: Tensor | None = None) -> Tensor:
    """(G,) how many leading positions of each list :func:`plackett_luce_loss` scores: the
    ranked ones, at most one fewer than the list's responses. A list with 0 adds no term."""
    n_valid = (order >= 0).sum(1)
    return n_valid - 1 if n_ranked is None else torch.minimum(n_ranked, n_valid - 1)


def ranking_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """docs/methods/A4-more.md — MORE per-task ranking loss: ``−Σ_{i,j: s_j>s_i} log σ(r_j − r_i) / #pairs``
    over every ordered pair of a group with different labels; labels < 0 are padding (a
    padded position's reward, NaN or any, never reaches the loss). Both (groups, K)."""
    _same_shape(scores=scores, labels=labels)
    if scores.ndim != 2:
        raise ValueError(f"scores and labels must be (groups, K), got shape {list(scores.shape)}")
    r = scores.float()
    lab = labels.float()
    ok = (lab >= 0).unsqueeze(2) & (lab >= 0).unsqueeze(1)
    better = (lab.unsqueeze(1) > lab.unsqueeze(2)) & ok  # [g, i, j]: s_j > s_i
    diff = r.unsqueeze(1) - r.unsqueeze(2)  # r_j − r_i
    n = better.sum()
    if n == 0:
        return r.sum() * 0.0
    return -torch.where(better, F.logsigmoid(diff), torch.zeros_like(diff)).sum() / n


def masked_mse(pred: Tensor, target: Tensor, mask_value: float = -100.0) -> Tensor:
    """docs/methods/A2-multi-attribute-regression.md — Multi-attribute regression RM: ``Σ m_a (ŝ_a − s_a)² / Σ m_a``; targets equal
    to ``mask_value`` are left out."""
    _same_shape(pred=pred, target=target)
    mask = (target != mask_value).float()
    err = (pred.float() - torch.where(mask.bool(), target.float(), pred.detach().float())) ** 2
    denom = mask.sum()
    return (err * mask).sum() / denom.clamp(min=1.0)


HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER2_WEIGHTS_340B = (0.3, 0.74, 0.46, 0.47, -0.33)


def scalarize(attr_scores: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """docs/methods/A2-multi-attribute-regression.md — ``r = w · ŝ`` over the attribute axis."""
    a = np.asarray(attr_scores, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if a.shape[-1] != w.shape[0]:
        raise ValueError(f"{a.shape[-1]} attributes but {w.shape[0]} weights")
    return a @ w


def min_norm_weights(grads: Sequence[np.ndarray], normalize: str = "l2") -> np.ndarray:
    """docs/methods/A4-more.md — MGDA min-norm weights λ on the simplex minimising ``||Σ λ_t g_t||²``
    (Frank–Wolfe; the two-task closed form clipped to [0.001, 0.999]). NaN weights when a
    gradient is not finite."""
    vs = [np.asarray(g, dtype=np.float64).ravel() for g in grads]
    if not vs:
        raise ValueError("min_norm_weights needs at least one task gradient, got none")
    if len({v.size for v in vs}) > 1:
        raise ValueError(f"task gradients must have one size, got sizes {[v.size for v in vs]}")
    if not all(np.isfinite(v).all() for v in vs):
        return np.full(len(vs), np.nan)
    if normalize == "l2":
        vs = [v / (np.linalg.norm(v) or 1.0) for v in vs]
    elif normalize != "none":
        raise ValueError(f"normalize must be 'l2' or 'none', got {normalize!r}")
    t = len(vs)
    if t == 1:
        return np.ones(1)
    gram = np.array([[a @ b for b in vs] for a in vs])

    def two(v11: float, v12: float, v22: float) -> float:
        if v12 >= v11:
            return 0.999
        if v12 >= v22:
            return 0.001
        return float((v22 - v12) / (v11 + v22 - 2 * v12))

    if t == 2:
        gam = two(gram[0, 0], gram[0, 1], gram[1, 1])
        return np.array([gam, 1.0 - gam])
    lam = np.full(t, 1.0 / t)
    for _ in range(250):
        grad_dir = gram @ lam
        i = int(np.argmin(grad_dir))
        v1v1 = float(lam @ gram @ lam)
        v1v2 = float(lam @ gram[:, i])
        v2v2 = float(gram[i, i])
        gam = two(v1v1, v1v2, v2v2)
        new = gam * lam
        new[i] += 1.0 - gam
        if np.abs(new - lam).sum() < 1e-6:
            lam = new
            break
        lam = new
    return lam


def verdict_ce(logits: Tensor, target_ids: Tensor, reduction: str = "mean") -> Tensor:
    """docs/methods/B3-yes-token-reward.md — Generative "yes-token" reward, training side: cross-entropy of the next-token
    logits (N, V) at the verdict position against the Yes/No token ids (N,)."""
    return F.cross_entropy(logits.float(), target_ids.long(), reduction=reduction)


def peer_select(margins_self: Tensor, keep_ratio: float) -> Tensor:
    """docs/methods/A7-collaborative-rm.md — Collaborative Reward Modeling peer review: a boolean mask of the
    ``ceil(keep_ratio · n)`` pairs with the largest margin (smallest BT loss) under this model;
    the *peer* is updated on them. A NaN margin (no reward) is never kept (topk ranks NaN
    first: such a pair displaced a clean one)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    n = margins_self.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=margins_self.device)
    keep = max(1, math.ceil(keep_ratio * n - 1e-9))
    m = margins_self.detach().float()
    nan = torch.isnan(m)
    idx = torch.topk(torch.where(nan, float("-inf"), m), keep).indices
    mask = torch.zeros(n, dtype=torch.bool, device=margins_self.device)
    mask[idx] = True
    return mask & ~nan


def crm_keep_ratio(progress: float, noise_rate: float, warmup: float = 1.0) -> float:
    """docs/methods/A7-collaborative-rm.md — the curriculum of the kept fraction: from 1 down to ``1 − τ`` linearly over
    the first ``warmup`` fraction of training ``[design]``."""
    ramp = min(1.0, max(0.0, progress / warmup)) if warmup > 0 else 1.0
    return 1.0 - noise_rate * ramp


def pairwise_accuracy(r_chosen: Tensor, r_rejected: Tensor) -> float:
    """docs/methods/A1-bradley-terry.md — strict ``r_c > r_r``; ties count 0 (RewardBench 1 rule).
    A pair with a NaN reward is left out, as the evaluation leaves it out (it counted as a
    miss); NaN when no pair has both rewards."""
    _same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    ok = ~(torch.isnan(r_chosen) | torch.isnan(r_rejected))
    if not bool(ok.any()):
        return float("nan")
    return float((r_chosen[ok] > r_rejected[ok]).float().mean())


def pairwise_ece(r_chosen: np.ndarray, r_rejected: np.ndarray, n_bins: int = 10) -> float:
    """docs/methods/D7-calibration.md — pairwise ECE with both orderings: each pair contributes (σ(Δ), 1) and
    (1 − σ(Δ), 0)."""
    d = np.asarray(r_chosen, dtype=np.float64) - np.asarray(r_rejected, dtype=np.float64)
    p = 1.0 / (1.0 + np.exp(-d))
    probs = np.concatenate([p, 1.0 - p])
    ys = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    from rewardkit.evaluate.calibration import calibration_error

    return calibration_error(ys, probs, n_bins)["ece"]


def step_ce(logits: Tensor, labels: Tensor, ignore_index: int = -100) -> Tensor:
    """docs/methods/B4-orm-vs-prm.md — PRM step loss: cross-entropy of a 2-label token classifier
    at the step tags only (label 1 = right step, 0 = wrong; every other position ``ignore_index``).
    Logits (…, 2), labels (…); the mean over tagged positions (0 when there are none). Logits
    (0, 2) at a right step and (2, 0) at a wrong one give log(1 + e⁻²) = 0.126928 each; (2, 0)
    at a right step gives 2 + log(1 + e⁻²) = 2.126928."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    target = labels.reshape(-1).long()
    if not bool((target != ignore_index).any()):
        return flat.sum() * 0.0
    return F.cross_entropy(flat, target, ignore_index=ignore_index)


def simcse_loss(h1: Tensor, h2: Tensor, temperature: float = 0.05) -> Tensor:
    """docs/methods/A6-contrastive-metarm.md — SimCSE-style InfoNCE over two views (n, d) of
    the same n inputs: row i of ``h1`` against every row of ``h2`` by cosine similarity over
    ``temperature``, its own row the positive and the other rows the negatives (mean
    cross-entropy). 0 for n = 1 (no negative), and for n = 0. Views [[1, 0], [0, 1]] and
    [[1, 1], [0, 1]] at temperature 0.5 give 0.330085."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    _same_shape(h1=h1, h2=h2)
    if h1.ndim != 2:
        raise ValueError(f"views must be (n, d) matrices, got shape {list(h1.shape)}")
    if h1.shape[0] == 0:
        return h1.float().sum() * 0.0
    z1 = F.normalize(h1.float(), dim=-1)
    z2 = F.normalize(h2.float(), dim=-1)
    logits = z1 @ z2.T / temperature
    return F.cross_entropy(logits, torch.arange(h1.shape[0], device=h1.device))


def metarm_difference_loss(rewards: Tensor) -> Tensor:
    """docs/methods/A6-contrastive-metarm.md — MetaRM's difference loss on s prompts with n
    responses each sampled from the shifted policy, rewards (s, n), NaN where a prompt has fewer
    responses: ``J = (2/s) Σ_x Σ_{i<j} σ(|r_i − r_j|)`` over the pairs of present responses.
    Rewards [[1, 0, 3]] give 2·(σ(1) + σ(2) + σ(3)) = 5.128860; 0 for s = 0."""
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be (prompts, responses), got shape {list(rewards.shape)}")
    r = rewards.float()
    valid = ~torch.isnan(r)
    r = torch.where(valid, r, torch.zeros_like(r))  # no NaN reaches the gradient
    upper = torch.ones(r.shape[1], r.shape[1], dtype=torch.bool, device=r.device).triu(1)
    pairs = valid.unsqueeze(2) & valid.unsqueeze(1) & upper  # [s, i, j]: i < j, both present
    term = torch.sigmoid((r.unsqueeze(2) - r.unsqueeze(1)).abs())
    total = torch.where(pairs, term, torch.zeros_like(term)).sum()
    return 2.0 * total / r.shape[0] if r.shape[0] else total

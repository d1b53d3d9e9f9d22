"""AlignDistil's teacher distribution and distillation loss, as pure functions of logits for
trainers (``docs/methods/B13-aligndistil.md``).

At each response position the DPO model's logits ``z_dpo`` and a reverse DPO model's logits
``z_rev`` (trained on swapped preferences) give the teacher::

    w_t  = β₂ · Σ_v |softmax(z_dpo)_v − softmax(z_rev)_v| + 10⁻³       (token-adaptive weight)
    z*_t = z_dpo + w_t · (z_dpo − z_rev)                                 (logit extrapolation)
    q_t  = softmax(z*_t / T)

and the student ``π_θ`` minimises ``Σ_t (β / w_t) · KL(π_θ(·|t) ‖ q_t)`` (reverse KL over the
vocabulary), divided by the response length when ``len_norm``. Card example: vocab of 2,
``z_dpo = (2, 0)``, ``z_rev = (0, 1)``, β₂ = 1 → π_dpo = (0.880797, 0.119203), π_rev =
(0.268941, 0.731059), L1 = 1.223711, w = 1.224711, ``z* = (4.449423, −1.224711)``,
q = (0.996578, 0.003422).

The KL is computed from log-probabilities throughout (``log q = log_softmax(z*/T)``): with the
default β₂ = 15, ``w_t`` reaches ~30 and ``z*`` spans hundreds of logits, so ``softmax`` then
``log`` would underflow (log q clamped at −69 where it is ~−300) and shrink loss and gradient.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
W_FLOOR = 1e-3


def _work_dtype(*xs: Tensor) -> torch.dtype:
    """float64 when any input is float64, else float32 (half precision is promoted)."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def aligndistil_teacher_log(
    z_dpo: Tensor, z_rev: Tensor, beta2: float = 15.0, temperature: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(log q, z*, w): the teacher's log-probabilities (…, V), its logits and the per-position
    weight (…); ``log q = log_softmax(z*/T)``, exact where ``softmax`` underflows."""
    dtype = _work_dtype(z_dpo, z_rev)
    z_dpo, z_rev = z_dpo.to(dtype), z_rev.to(dtype)
    if z_dpo.shape != z_rev.shape:
        raise ValueError(f"DPO logits {tuple(z_dpo.shape)} and reverse {tuple(z_rev.shape)} differ")
    l1 = (torch.softmax(z_dpo, dim=-1) - torch.softmax(z_rev, dim=-1)).abs().sum(dim=-1)
    w = float(beta2) * l1 + W_FLOOR
    z_star = z_dpo + w.unsqueeze(-1) * (z_dpo - z_rev)
    return torch.log_softmax(z_star / float(temperature), dim=-1), z_star, w


def aligndistil_teacher(
    z_dpo: Tensor, z_rev: Tensor, beta2: float = 15.0, temperature: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(q, z*, w): the teacher distribution (…, V), its logits and the per-position weight (…)."""
    log_q, z_star, w = aligndistil_teacher_log(z_dpo, z_rev, beta2, temperature)
    return log_q.exp(), z_star, w


def aligndistil_loss(
    student_logits: Tensor,
    dpo_logits: Tensor,
    rev_logits: Tensor,
    mask: Tensor,
    beta: float = 0.1,
    beta2: float = 15.0,
    temperature: float = 1.0,
    len_norm: bool = True,
) -> Tensor:
    """Mean over sequences of ``Σ_t (β / w_t) KL(π_θ ‖ q_t)`` on the positions where ``mask``
    is set (logits (b, T, V), mask (b, T)); the teacher is not differentiated."""
    with torch.no_grad():
        log_q, _, w = aligndistil_teacher_log(dpo_logits, rev_logits, beta2, temperature)
    logp = torch.log_softmax(student_logits.to(_work_dtype(student_logits)), dim=-1)
    kl = (logp.exp() * (logp - log_q.to(logp.dtype))).sum(dim=-1)
    m = mask.to(logp.dtype)
    per_seq = (float(beta) / w * kl * m).sum(dim=-1)
    if len_norm:
        per_seq = per_seq / m.sum(dim=-1).clamp(min=1.0)
    return per_seq.mean()

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

Checked inputs: β > 0, β₂ ≥ 0 and T > 0 finite (a SpecError: T ≤ 0 or NaN made the teacher NaN
or its inverse); logits of one shape and a mask of their shape without the vocabulary (a
DataError: a wrong mask was broadcast). A vocabulary entry both teacher models rule out (``−inf``
in both, a masked or padded token) is a token the teacher never writes; NaN, ``+inf``, a position
with every entry ``−inf``, or ``−inf`` in the reverse model alone (``z*`` would be ``+inf``) is a
DataError naming the tensor. Positions outside the mask are not read, so padding may hold
anything. A student ``−inf`` entry adds nothing to the KL (``0 · log 0 = 0``).
"""

from __future__ import annotations

import math

import torch

from rewardkit.errors import DataError, SpecError

Tensor = torch.Tensor
W_FLOOR = 1e-3


def check_options(beta: float, beta2: float, temperature: float) -> None:
    """SpecError unless β > 0, β₂ ≥ 0 and T > 0 are finite numbers (card B13)."""
    for name, value, low in (("beta", beta, 0.0), ("temperature", temperature, 0.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"aligndistil: {name} must be a number, got {value!r}")
        if not (math.isfinite(value) and value > low):
            raise SpecError(f"aligndistil: {name} must be a finite number > 0, got {value}")
    if isinstance(beta2, bool) or not isinstance(beta2, int | float):
        raise SpecError(f"aligndistil: beta2 must be a number, got {beta2!r}")
    if not (math.isfinite(beta2) and beta2 >= 0):
        raise SpecError(f"aligndistil: beta2 must be a finite number >= 0, got {beta2}")


def _first_bad(bad: Tensor) -> str:
    """The index of the first True entry of ``bad`` and how many there are."""
    at = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
    return f"at index {at} ({int(bad.sum())} such entries)"


def check_logits(z: Tensor, name: str) -> None:
    """DataError for NaN or ``+inf`` logits, or a position whose every logit is ``−inf``."""
    bad = torch.isnan(z) | torch.isposinf(z)
    if bool(bad.any()):
        raise DataError(f"aligndistil: {name} logits hold NaN or +inf {_first_bad(bad)}")
    dead = torch.isneginf(z).all(dim=-1)
    if bool(dead.any()):
        raise DataError(
            f"aligndistil: {name} logits are -inf for every token at position "
            f"{tuple(int(i) for i in torch.nonzero(dead)[0].tolist())}"
        )


def _teacher_inputs(z_dpo: Tensor, z_rev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Both teachers' logits in the working dtype, checked, and where both rule a token out."""
    dtype = _work_dtype(z_dpo, z_rev)
    z_dpo, z_rev = z_dpo.to(dtype), z_rev.to(dtype)
    if z_dpo.shape != z_rev.shape:
        raise DataError(
            f"aligndistil: DPO logits {tuple(z_dpo.shape)} and reverse {tuple(z_rev.shape)} differ"
        )
    check_logits(z_dpo, "DPO")
    check_logits(z_rev, "reverse DPO")
    out_dpo, out_rev = torch.isneginf(z_dpo), torch.isneginf(z_rev)
    lone = out_rev & ~out_dpo
    if bool(lone.any()):
        raise DataError(
            "aligndistil: the reverse DPO model rules out (-inf) a token the DPO model allows "
            f"{_first_bad(lone)}: the extrapolated teacher logit would be +inf"
        )
    return z_dpo, z_rev, out_dpo & out_rev


def _work_dtype(*xs: Tensor) -> torch.dtype:
    """float64 when any input is float64, else float32 (half precision is promoted)."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def aligndistil_teacher_log(
    z_dpo: Tensor, z_rev: Tensor, beta2: float = 15.0, temperature: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(log q, z*, w): the teacher's log-probabilities (…, V), its logits and the per-position
    weight (…); ``log q = log_softmax(z*/T)``, exact where ``softmax`` underflows. A token both
    models rule out (``−inf``) stays out: ``z* = −inf``, ``log q = −inf``."""
    check_options(1.0, beta2, temperature)
    z_dpo, z_rev, both_out = _teacher_inputs(z_dpo, z_rev)
    l1 = (torch.softmax(z_dpo, dim=-1) - torch.softmax(z_rev, dim=-1)).abs().sum(dim=-1)
    w = float(beta2) * l1 + W_FLOOR
    gap = torch.where(both_out, torch.zeros_like(z_dpo), z_dpo - z_rev)
    z_star = z_dpo + w.unsqueeze(-1) * gap
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
    is set (logits (b, T, V), mask (b, T)); the teacher is not differentiated. Positions outside
    the mask are not read; see the module doc for what the logits may hold."""
    check_options(beta, beta2, temperature)
    if student_logits.shape != dpo_logits.shape:
        raise DataError(
            f"aligndistil: student logits {tuple(student_logits.shape)} and DPO logits "
            f"{tuple(dpo_logits.shape)} differ"
        )
    if tuple(mask.shape) != tuple(student_logits.shape[:-1]):
        raise DataError(
            f"aligndistil: mask {tuple(mask.shape)} must be the logits' shape without the "
            f"vocabulary, {tuple(student_logits.shape[:-1])}"
        )
    used = (mask != 0).unsqueeze(-1)
    with torch.no_grad():
        log_q, _, w = aligndistil_teacher_log(
            dpo_logits.masked_fill(~used, 0.0),
            rev_logits.masked_fill(~used, 0.0),
            beta2,
            temperature,
        )
    student = student_logits.to(_work_dtype(student_logits)).masked_fill(~used, 0.0)
    check_logits(student.detach(), "student")
    logp = torch.log_softmax(student, dim=-1)
    p = logp.exp()
    log_q = log_q.to(logp.dtype)
    stray = (p > 0) & torch.isneginf(log_q)
    if bool(stray.any()):
        raise DataError(
            "aligndistil: the student gives probability to a token the teacher rules out "
            f"{_first_bad(stray)}: the KL would be infinite"
        )
    kl = (p * torch.where(p > 0, logp - log_q, torch.zeros_like(logp))).sum(dim=-1)
    m = mask.to(logp.dtype)
    per_seq = (float(beta) / w * kl * m).sum(dim=-1)
    if len_norm:
        per_seq = per_seq / m.sum(dim=-1).clamp(min=1.0)
    return per_seq.mean()

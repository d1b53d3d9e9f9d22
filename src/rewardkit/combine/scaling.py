"""Reward scaling: docs/methods/C6-dynamic-beta.md (MM-RLHF dynamic β) and C7 (GRPO-S difficulty scaling, DR-IRL).

- C6 — Dynamic reward scaling of DPO β ("MM-RLHF"): ``β_i = β₀ · (1 + w · (1 − e^{−k δ_i}))`` with
  ``δ_i = r(x, y_w) − r(x, y_l)`` the reward margin of pair i (functional form ``[recalled]``,
  ``k`` ``[design]`` 0.5). Worked (β₀=0.1, w=0.5, k=0.5): δ = 0, 1, 2, 5 → 0.1, 0.119673,
  0.131606, 0.145896. The released code's form ``β·(1 + w·ls_factor)`` is :func:`ls_factor_beta`.
  Both clamp β ≥ 1e-3 as the released trainer does.
- C7 — Difficulty-scaled GRPO ("GRPO-S", DR-IRL; all ``[design]``):
  ``r'_i = r_i · (1 + λ_d h_data(x) + λ_m h_model(x))``, ``h_data = 1 − max_j cos(E(x), E(x_j^demo))``,
  ``h_model = clip((r_demo(x) − mean_g r) / (|r_demo(x)| + ε), 0, 1)``; then C1 normalization.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.combine.normalize import (
    HUGE,
    as_array,
    as_groups,
    as_rewards,
    check_finite,
    check_in_range,
    group_normalize,
    group_stats,
    huge_exponents,
    per_row,
)

BETA_MIN = 1e-3


def dynamic_beta(delta: Any, beta0: float = 0.1, w: float = 0.5, k: float = 0.5) -> np.ndarray:
    """Card C6 — ``β₀ · (1 + w · (1 − exp(−k δ)))``, clamped to ≥ 1e-3 (NaN δ → β₀).

    ``β₀ > 0``, ``w ≥ 0`` and ``k > 0`` (finite): a negative ``k`` or ``w`` would give the pairs
    the reward model separates most confidently the *smallest* β, the opposite of the method."""
    for name, v, low in (("beta0", beta0, 0.0), ("k", k, 0.0)):
        if not (is_real(v) and np.isfinite(v) and v > low):
            raise ValueError(f"dynamic_beta: {name} must be a finite number > 0; got {v!r}")
    if not (is_real(w) and np.isfinite(w) and w >= 0):
        raise ValueError(f"dynamic_beta: w must be a finite number ≥ 0; got {w!r}")
    d = as_array(delta, "delta")
    check_finite(d, "delta")  # an infinite margin is a broken reward, not "most confident"
    with np.errstate(over="ignore"):  # a margin far below 0: 1 − e^{−kδ} → −inf, β → the clamp
        g = -np.expm1(-k * np.nan_to_num(d, nan=0.0))
        beta = beta0 * (1.0 + (w * g if w else np.zeros_like(g)))  # w = 0: β₀, not 0·inf = NaN
    return np.maximum(beta, BETA_MIN)


def ls_factor_beta(ls_factor: Any, beta: float = 0.1, w: float = 0.1) -> np.ndarray:
    """Card C6, released code (MM-RLHF ``dpo_trainer.py``): ``max(β · (1 + w · ls_factor), 1e-3)``.

    ``ls_factor`` is a per-pair value from the data; NaN (absent) means 1.0 as in that code.
    ``β > 0`` and ``w`` finite, as in :func:`dynamic_beta` (a NaN β gave every pair β NaN, an
    infinite ``w`` β inf).
    """
    if not (is_real(beta) and np.isfinite(beta) and beta > 0):
        raise ValueError(f"ls_factor_beta: beta must be a finite number > 0; got {beta!r}")
    if not (is_real(w) and np.isfinite(w)):
        raise ValueError(f"ls_factor_beta: w must be a finite number; got {w!r}")
    f = as_array(ls_factor, "ls_factor")
    check_finite(f, "ls_factor")  # nan_to_num would turn ±inf into ±1.8e308, silently
    f = np.where(np.isnan(f), 1.0, f)
    with np.errstate(over="ignore"):
        return check_in_range(np.maximum(beta * (1.0 + w * f), BETA_MIN), "beta")


def data_hardness(prompt_emb: Any, demo_emb: Any) -> np.ndarray:
    """Card C7 ``h_data = 1 − max_j cos(E(x), E(x_j^demo))`` for (n, d) prompts and (m, d) demos
    (finite; a ValueError names the first row holding a NaN or ±inf)."""
    P = as_array(prompt_emb, "prompt_emb")
    D = as_array(demo_emb, "demo_emb")
    if P.ndim != 2 or D.ndim != 2 or P.shape[1] != D.shape[1] or not len(D):
        raise ValueError(
            f"need (n, d) prompt and (m ≥ 1, d) demonstration embeddings; got {P.shape}, {D.shape}"
        )
    for name, E in (("prompt_emb", P), ("demo_emb", D)):
        bad = np.flatnonzero(~np.isfinite(E).all(axis=1))
        if len(bad):  # one NaN demonstration made every prompt's h_data NaN: every reward NaN
            raise ValueError(
                f"{name}[{int(bad[0])}] holds a NaN or infinite value ({len(bad)} row(s)); "
                "an embedding must be finite"
            )
    return 1.0 - (_unit_rows(P) @ _unit_rows(D).T).max(axis=1)


def _unit_rows(E: np.ndarray) -> np.ndarray:
    """Each row of ``E`` over its length (a zero row stays 0: cosine 0 with every row), the
    row first divided by its largest magnitude: the squares of a 1e200 entry overflowed, the
    length was inf and the cosine 0 (``h_data`` 1 for a prompt equal to a demonstration)."""
    top = np.abs(E).max(axis=1, keepdims=True) if E.size else np.ones((len(E), 1))
    E = E / np.where(top > 0, top, 1.0)
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)


def model_responsiveness(
    rewards: Any,
    r_demo: Any,
    group_ids: Any = None,
    *,
    group_size: int | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """Card C7 ``h_model = clip((r_demo − mean_g r) / (|r_demo| + ε), 0, 1)`` per element.

    ``ε ≥ 0`` (finite). With ``|r_demo| + ε = 0`` the ratio is the clip's limit: 1 when the
    group's mean is below ``r_demo``, else 0 (``0/0`` gave NaN, and NaN made the reward NaN).
    A NaN ``r_demo`` or an all-NaN group gives NaN ("unknown": no term in
    :func:`difficulty_scale`)."""
    if not (is_real(eps) and np.isfinite(eps) and eps >= 0):
        raise ValueError(f"model_responsiveness: eps must be a finite number ≥ 0; got {eps!r}")
    r = as_rewards(rewards)
    groups = as_groups(len(r), group_ids, group_size)
    demo = per_row(r_demo, len(r), "r_demo")
    # rewards past 2^500 (their sums overflow) are averaged at their group's power-of-two
    # scale, and the ratio is taken at the scale of its largest term (exact): 1.7e308 rewards
    # gave a NaN mean and h_model 1 where it is 0
    e = huge_exponents(r, groups)
    st = group_stats(r if e is None else np.ldexp(r, -e), groups)
    mean = st.mean if e is None else np.ldexp(st.mean, e)
    top = np.fmax(np.fmax(np.abs(demo), np.abs(mean)), eps)
    s = np.where(top > HUGE, np.frexp(top)[1], 0)
    num = np.ldexp(demo, -s) - np.ldexp(mean, -s)
    den = np.abs(np.ldexp(demo, -s)) + np.ldexp(eps, -s)
    out = np.where(num > 0, 1.0, 0.0)
    np.divide(num, den, out=out, where=den > 0)
    return np.where(np.isnan(num), np.nan, np.clip(out, 0.0, 1.0))


def difficulty_scale(
    rewards: Any, h_data: Any, h_model: Any, lam_d: float = 0.5, lam_m: float = 0.5
) -> np.ndarray:
    """Card C7 — ``r · (1 + λ_d h_data + λ_m h_model)`` (h's broadcast against the rewards).

    ``λ_d, λ_m`` and the h's are ≥ 0 (finite), so the factor is ≥ 1: a negative one flipped
    the sign of every reward it scaled, a NaN λ made every reward NaN. A NaN h (unknown) adds
    nothing, as a NaN aspect in card C10; a NaN reward stays NaN."""
    for name, lam in (("lam_d", lam_d), ("lam_m", lam_m)):
        if not (is_real(lam) and np.isfinite(lam) and lam >= 0):
            raise ValueError(f"difficulty_scale: {name} must be a finite number ≥ 0; got {lam!r}")
    r = as_rewards(rewards)
    terms = []
    for name, h in (("h_data", h_data), ("h_model", h_model)):
        v = per_row(h, len(r), name)
        neg = np.flatnonzero(v < 0)
        if len(neg):
            raise ValueError(
                f"{name}[{int(neg[0])}] = {v[neg[0]]}: a hardness term must be ≥ 0 (NaN: unknown)"
            )
        terms.append(np.nan_to_num(v))
    with np.errstate(over="ignore"):
        return check_in_range(r * (1.0 + lam_d * terms[0] + lam_m * terms[1]), "scaled rewards")


def grpo_s_advantages(
    rewards: Any,
    group_ids: Any,
    h_data: Any,
    h_model: Any,
    lam_d: float = 0.5,
    lam_m: float = 0.5,
    **norm: Any,
) -> np.ndarray:
    """Card C7 — difficulty-scaled rewards, then C1 group normalization (``**norm`` options)."""
    return group_normalize(
        difficulty_scale(rewards, h_data, h_model, lam_d, lam_m), group_ids, **norm
    )

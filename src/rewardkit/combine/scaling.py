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

from rewardkit.combine.normalize import (
    as_array,
    as_groups,
    as_rewards,
    check_finite,
    group_normalize,
    group_stats,
    per_row,
)

BETA_MIN = 1e-3


def dynamic_beta(delta: Any, beta0: float = 0.1, w: float = 0.5, k: float = 0.5) -> np.ndarray:
    """Card C6 — ``β₀ · (1 + w · (1 − exp(−k δ)))``, clamped to ≥ 1e-3 (NaN δ → β₀).

    ``β₀ > 0``, ``w ≥ 0`` and ``k > 0`` (finite): a negative ``k`` or ``w`` would give the pairs
    the reward model separates most confidently the *smallest* β, the opposite of the method."""
    for name, v, low in (("beta0", beta0, 0.0), ("k", k, 0.0)):
        if not (np.isfinite(v) and v > low):
            raise ValueError(f"dynamic_beta: {name} must be a finite number > 0; got {v!r}")
    if not (np.isfinite(w) and w >= 0):
        raise ValueError(f"dynamic_beta: w must be a finite number ≥ 0; got {w!r}")
    d = as_array(delta, "delta")
    check_finite(d, "delta")  # an infinite margin is a broken reward, not "most confident"
    beta = beta0 * (1.0 + w * (-np.expm1(-k * np.nan_to_num(d, nan=0.0))))
    return np.maximum(beta, BETA_MIN)


def ls_factor_beta(ls_factor: Any, beta: float = 0.1, w: float = 0.1) -> np.ndarray:
    """Card C6, released code (MM-RLHF ``dpo_trainer.py``): ``max(β · (1 + w · ls_factor), 1e-3)``.

    ``ls_factor`` is a per-pair value from the data; NaN (absent) means 1.0 as in that code.
    """
    f = np.asarray(ls_factor, dtype=np.float64)
    check_finite(f, "ls_factor")  # nan_to_num would turn ±inf into ±1.8e308, silently
    f = np.where(np.isnan(f), 1.0, f)
    return np.maximum(beta * (1.0 + w * f), BETA_MIN)


def data_hardness(prompt_emb: Any, demo_emb: Any) -> np.ndarray:
    """Card C7 ``h_data = 1 − max_j cos(E(x), E(x_j^demo))`` for (n, d) prompts and (m, d) demos."""
    P = np.asarray(prompt_emb, dtype=np.float64)
    D = np.asarray(demo_emb, dtype=np.float64)
    if P.ndim != 2 or D.ndim != 2 or P.shape[1] != D.shape[1] or not len(D):
        raise ValueError(
            f"need (n, d) prompt and (m ≥ 1, d) demonstration embeddings; got {P.shape}, {D.shape}"
        )
    Pn = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    Dn = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    return 1.0 - (Pn @ Dn.T).max(axis=1)


def model_responsiveness(
    rewards: Any,
    r_demo: Any,
    group_ids: Any = None,
    *,
    group_size: int | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """Card C7 ``h_model = clip((r_demo − mean_g r) / (|r_demo| + ε), 0, 1)`` per element."""
    r = as_rewards(rewards)
    st = group_stats(r, as_groups(len(r), group_ids, group_size))
    demo = per_row(r_demo, len(r), "r_demo")
    return np.clip((demo - st.mean) / (np.abs(demo) + eps), 0.0, 1.0)


def difficulty_scale(
    rewards: Any, h_data: Any, h_model: Any, lam_d: float = 0.5, lam_m: float = 0.5
) -> np.ndarray:
    """Card C7 — ``r · (1 + λ_d h_data + λ_m h_model)`` (h's broadcast against the rewards)."""
    r = as_rewards(rewards)
    hd = per_row(h_data, len(r), "h_data")
    hm = per_row(h_model, len(r), "h_model")
    return r * (1.0 + lam_d * hd + lam_m * hm)


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

"""The KL distance of an RL run from its initial policy, in the monitor
(docs/methods/D9-overoptimization.md): the trainer's per-step KL estimate checked, and Gao's RL
fit ``R(d) = d(α − β log d)`` of the recentred gold gain against ``d = sqrt(KL)`` read from a
monitor history (a live :attr:`RewardMonitor.history` or a log read back)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from rewardkit.evaluate.bestofn import MIN_FIT_POINTS, fit_gao_rl


def check_kl(kl: Any) -> float | None:
    """``kl`` as a float: a finite number ≥ 0 (a 0-d array or tensor holding one is taken);
    None stays None; anything else a ValueError naming the argument."""
    if kl is None:
        return None
    v = kl.item() if getattr(kl, "ndim", None) == 0 and hasattr(kl, "item") else kl
    ok = isinstance(v, Real) and not isinstance(v, bool | np.bool_)
    if not (ok and math.isfinite(v) and v >= 0):
        shown = " ".join(repr(kl).split())[:80]
        raise ValueError(
            f"kl must be a finite number ≥ 0 (the step's KL estimate to the initial policy; "
            f"clip a Monte-Carlo estimate that came out negative at 0); got {shown}"
        )
    return float(v)


def _num(h: Mapping[str, Any], key: str) -> float:
    """A record's number at ``key``; NaN where it is missing, null or not a number."""
    v = h.get(key)
    return float(v) if isinstance(v, Real) and not isinstance(v, bool) else math.nan


def _finite(h: Mapping[str, Any], key: str) -> bool:
    return math.isfinite(_num(h, key))


def kl_logged(history: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any step of ``history`` logged a KL (a finite ``d``)."""
    return any(_finite(h, "d") for h in history)


def rl_fit(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """docs/methods/D9-overoptimization.md — the steps that logged both ``d`` and a gold mean,
    their gold and proxy gains recentred on the step closest to the initial policy (the least
    d; normally step 0, KL = 0: "recenter each RM so the initial policy's mean is 0"), and
    :func:`~rewardkit.evaluate.bestofn.fit_gao_rl` of the gold gain against d. ``past_peak``:
    the latest step's d is beyond the fitted argmax d* (None without a finite d*).
    ``{"steps": 0}`` when no step has both."""
    pts = [h for h in history if _finite(h, "d") and _num(h, "d") >= 0 and _finite(h, "gold/mean")]
    if not pts:
        return {"steps": 0}
    base = min(range(len(pts)), key=lambda i: pts[i]["d"])
    d = [float(h["d"]) for h in pts]
    gold = [_num(h, "gold/mean") - _num(pts[base], "gold/mean") for h in pts]
    proxy = [_num(h, "reward/mean") - _num(pts[base], "reward/mean") for h in pts]
    fit = fit_gao_rl(d, gold)
    peak = fit["d_star"]
    return {
        "steps": len(pts),
        "fit_points": int(np.unique([x for x in d if x > 0]).size),
        "base_step": pts[base]["step"],
        "base_d": d[base],
        "step": [h["step"] for h in pts],
        "d": d,
        "gold_gain": gold,
        "proxy_gain": proxy,
        **fit,
        "d_latest": d[-1],
        "past_peak": bool(d[-1] > peak) if math.isfinite(peak) else None,
    }


def fit_summary(fit: Mapping[str, Any]) -> str | None:
    """One line of :func:`rl_fit` for ``python -m rewardkit.monitor``; None when no step
    logged both KL and a gold reward."""
    if not fit.get("steps"):
        return None
    head = "RL Gao fit, gold gain vs d = sqrt(KL), R(d) = d(α − β log d)"
    if math.isnan(fit["alpha"]):
        return (
            f"{head}: needs gold and kl on steps with at least {MIN_FIT_POINTS} distinct d > 0; "
            f"this log has {fit['fit_points']}"
        )
    where = f"recentred on step {fit['base_step']} (d = {fit['base_d']:.4g})"
    peak = fit["d_star"]
    if fit["past_peak"] is None:
        verdict = "no fitted peak (d* = inf): gold still rises with d"
    elif fit["past_peak"]:
        verdict = "the run has gone past d*: gold is past its fitted peak (overoptimization)"
    else:
        verdict = "the run has not reached d* yet"
    return (
        f"{head} over {fit['steps']} steps, {where}: α = {fit['alpha']:.4g}, "
        f"β = {fit['beta']:.4g}, d* = {peak:.4g}; latest d = {fit['d_latest']:.4g}: {verdict}"
    )

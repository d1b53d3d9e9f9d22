"""docs/methods/C2-beta-normalization.md — Beta-normalization of binary rewards ("BNPO: Beta Normalization Policy Optimization").

Per batch (``compute_bnpo_outcome_advantage`` of ``changyi7231/BNPO``):

1. ``r ← (r − r_min) / (r_max − r_min)`` (bounded rewards mapped to [0, 1]).
2. per prompt ``p = mean`` of its group. A 1-member group has no baseline: by default
   (``singleton="zero"``, ``[design]``, as C1) its advantage is 0 and it is left out of step 3;
   ``singleton="reference"`` reproduces the reference code (``p = 0``, kept in the moments; with
   α > 1 that makes ``1/f(0)`` hit the 1e6 clamp, so a lone ``r = 1`` gets advantage 1e6);
3. across prompts ``m = mean(p)``, ``v = var(p)`` (ddof=1; with < 2 prompts ``m=0, v=1``);
4. ``a = (m(1−m)/v − 1)·m``, ``b = (m(1−m)/v − 1)·(1−m)``, ``α = max(1, 1 + a/3)``,
   ``β = max(1, 1 + b/3)``; ``[design]`` guard: ``v ≤ 1e-8`` → ``α = β = 1``;
5. ``A_i = (r_i − p) / f_Beta(p; α, β)`` with ``1/f`` clamped to ``[0, 1e6]``.

Several rewards (accuracy + format): :func:`bnpo_advantages_multi` averages the per-component
advantages (the paper's advantage decomposition). :class:`BNPONormalizer` keeps the Beta parameters
across steps ("updated as training goes"): an exponential moving average of ``(m, v)``, with
``momentum=0`` reproducing the per-batch reference exactly. A batch with fewer than 2 usable
prompts (all NaN, all singletons) has no moments: it leaves the running ``(m, v)`` and ``steps`` as
they are and is normalized with them. NaN rewards are left out of ``p`` and get a NaN advantage. Worked example (card): groups ``[1,1,1,0]``, ``[1,0,0,0]`` → α=β=7/6,
advantages ``±0.238869`` / ``∓0.716606``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rewardkit.combine.aggregate import aggregate
from rewardkit.combine.checks import is_real, state_choice, state_field, state_number
from rewardkit.combine.multi import as_reward_matrix
from rewardkit.combine.normalize import as_groups, as_rewards, group_stats, huge_exponent

#: Upper clamp of ``1 / f_Beta(p)`` (reference code).
INV_PDF_MAX = 1e6
#: ``[design]`` guard: below this variance of the prompt means the Beta fit is undefined.
VAR_FLOOR = 1e-8


class BetaParams(NamedTuple):
    """The fitted normalization parameters and the moments they came from."""

    alpha: float
    beta: float
    m: float
    v: float


def beta_pdf(p: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Beta density ``p^(α−1) (1−p)^(β−1) / B(α, β)`` (numpy + math.lgamma; no scipy)."""
    p = np.asarray(p, dtype=np.float64)
    log_b = math.lgamma(alpha) + math.lgamma(beta) - math.lgamma(alpha + beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = (alpha - 1) * np.log(p) + (beta - 1) * np.log1p(-p) - log_b
        f = np.exp(log_f)
    # α = 1 (β = 1) makes the p = 0 (p = 1) term 0·log 0 = 1 in the density.
    if alpha == 1:
        f = np.where(p == 0, np.exp(-log_b), f)
    if beta == 1:
        f = np.where(p == 1, np.exp(-log_b), f)
    return f


def beta_params(m: float, v: float) -> BetaParams:
    """Card C2 step 4: method-of-moments ``a, b`` then ``α = max(1, 1 + a/3)``, ``β = max(1, 1 + b/3)``."""
    if not (np.isfinite(v) and v > VAR_FLOOR) or not np.isfinite(m):
        return BetaParams(1.0, 1.0, float(m), float(v))
    c = m * (1 - m) / v - 1
    return BetaParams(max(1.0, 1 + c * m / 3), max(1.0, 1 + c * (1 - m) / 3), float(m), float(v))


SINGLETONS = ("zero", "reference")


def _prompt_means(r01: np.ndarray, group_ids: Any, group_size: int | None, singleton: str):
    """Per-element p, the p of each group for the moments, and the singleton mask."""
    if singleton not in SINGLETONS:
        raise ValueError(f"singleton must be one of {SINGLETONS}; got {singleton!r}")
    groups = as_groups(len(r01), group_ids, group_size)
    st = group_stats(r01, groups, ddof=0)
    single = st.n == 1
    p = np.where(single, 0.0, st.mean)  # reference code: a singleton's p is 0
    p = np.where(st.n == 0, np.nan, p)
    # one p per group (first element of each group) for the batch moments
    first = np.full(groups.count, -1, dtype=np.int64)
    first[groups.index[::-1]] = np.arange(len(r01))[::-1]
    keep = ~np.isnan(p[first])
    if singleton == "zero":
        keep &= ~single[first]
    return p, p[first][keep], single if singleton == "zero" else np.zeros_like(single)


def batch_moments(p_groups: np.ndarray) -> tuple[float, float]:
    """Card C2 step 3: mean and sample variance (ddof=1) of the prompt means; ``(0, 1)`` with < 2."""
    if len(p_groups) < 2:
        return 0.0, 1.0
    return float(p_groups.mean()), float(p_groups.var(ddof=1))


def _check_bounds(r_min: Any, r_max: Any) -> None:
    """BNPO's reward bounds: finite numbers with ``r_max > r_min`` (an infinite bound mapped
    every reward to 0 or NaN)."""
    try:
        ok = math.isfinite(r_min) and math.isfinite(r_max)
    except TypeError:
        ok = False
    if not ok or isinstance(r_min, bool) or isinstance(r_max, bool):
        raise ValueError(
            f"BNPO needs finite reward bounds r_min, r_max; got r_min={r_min!r}, r_max={r_max!r}"
        )
    if not r_max > r_min:
        raise ValueError(f"BNPO needs r_max > r_min; got r_min={r_min}, r_max={r_max}")


def _to_unit(rewards: Any, r_min: float, r_max: float) -> np.ndarray:
    _check_bounds(r_min, r_max)
    r = as_rewards(rewards)
    outside = np.flatnonzero((r < r_min) | (r > r_max))  # NaN compares False: allowed
    if len(outside):
        i = int(outside[0])
        raise ValueError(
            f"rewards[{i}] = {r[i]} lies outside [r_min, r_max] = [{r_min}, {r_max}] "
            f"({len(outside)} value(s)); BNPO's Beta model needs rewards in that range: pass the "
            "reward's real bounds"
        )
    # at the power-of-two scale of the bounds (exact): r_max − r_min cannot overflow
    e = huge_exponent([r_min, r_max])
    lo, hi = math.ldexp(r_min, -e), math.ldexp(r_max, -e)
    return (np.ldexp(r, -e) - lo) / (hi - lo)


def _advantages(r01: np.ndarray, p: np.ndarray, params: BetaParams, zero: np.ndarray) -> np.ndarray:
    f = beta_pdf(p, params.alpha, params.beta)
    with np.errstate(divide="ignore"):
        inv = np.clip(np.where(f > 0, 1.0 / f, np.inf), 0.0, INV_PDF_MAX)
    out = (r01 - p) * inv
    out[zero & ~np.isnan(r01)] = 0.0
    return out


def bnpo_advantages(
    rewards: Any,
    group_ids: Any = None,
    *,
    group_size: int | None = None,
    r_min: float = 0.0,
    r_max: float = 1.0,
    singleton: str = "zero",
) -> np.ndarray:
    """Card C2 — BNPO advantages with the Beta parameters fitted on this batch alone."""
    r01 = _to_unit(rewards, r_min, r_max)
    p, p_groups, zero = _prompt_means(r01, group_ids, group_size, singleton)
    return _advantages(r01, p, beta_params(*batch_moments(p_groups)), zero)


def bnpo_advantages_multi(
    rewards: Any,
    group_ids: Any = None,
    *,
    group_size: int | None = None,
    r_min: Any = 0.0,
    r_max: Any = 1.0,
    singleton: str = "zero",
) -> np.ndarray:
    """Card C2 — advantage decomposition: the mean over the k columns of per-column BNPO advantages.

    ``rewards`` is (n, k); ``r_min``/``r_max`` are scalars or one value per column. A NaN
    component is left out of its row's mean (card C5's NaN-aware ``mean``); a row where no
    component applies is NaN.
    """
    R = as_reward_matrix(rewards)
    lo, hi = _per_column(r_min, R.shape[1], "r_min"), _per_column(r_max, R.shape[1], "r_max")
    cols = [
        bnpo_advantages(
            R[:, j],
            group_ids,
            group_size=group_size,
            r_min=lo[j],
            r_max=hi[j],
            singleton=singleton,
        )
        for j in range(R.shape[1])
    ]
    return aggregate(np.column_stack(cols), "mean").values


def _per_column(bound: Any, k: int, name: str) -> list[Any]:
    """A bound given once or one per column of the k rewards (ValueError naming it otherwise);
    each value is checked by :func:`_check_bounds`."""
    v = np.asarray(bound, dtype=object)
    if v.ndim == 0:
        return [bound] * k
    if v.shape != (k,):
        raise ValueError(
            f"BNPO {name} must be one number or one per reward column ({k}); got shape {v.shape}"
        )
    return [x.item() if isinstance(x, np.generic) else x for x in v.tolist()]


@dataclass
class BNPONormalizer:
    """Card C2 with Beta parameters carried across training steps.

    Each :meth:`__call__` fits ``(m, v)`` on the batch and blends them into a running estimate,
    ``m ← μ·m + (1−μ)·m_batch`` (same for v; the first batch initialises them), then normalizes the
    batch with the running ``α, β``. ``momentum=0`` is the per-batch reference exactly on every
    batch with ≥ 2 usable prompts; one with fewer (nothing to fit) leaves the state unchanged.
    """

    momentum: float = 0.9
    r_min: float = 0.0
    r_max: float = 1.0
    singleton: str = "zero"
    m: float | None = None
    v: float | None = None
    steps: int = 0

    def __post_init__(self) -> None:
        if not is_real(self.momentum):
            raise ValueError(f"momentum must be a number in [0, 1); got {self.momentum!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum}")
        _check_bounds(self.r_min, self.r_max)
        if self.singleton not in SINGLETONS:
            raise ValueError(f"singleton must be one of {SINGLETONS}; got {self.singleton!r}")

    @property
    def params(self) -> BetaParams:
        """The current ``α, β`` (``α = β = 1`` before the first batch)."""
        if self.m is None or self.v is None:
            return BetaParams(1.0, 1.0, math.nan, math.nan)
        return beta_params(self.m, self.v)

    def __call__(self, rewards: Any, group_ids: Any = None, *, group_size: int | None = None):
        r01 = _to_unit(rewards, self.r_min, self.r_max)
        p, p_groups, zero = _prompt_means(r01, group_ids, group_size, self.singleton)
        if len(p_groups) >= 2:  # fewer usable prompts carry no moments: the state stays as it is
            m_b, v_b = batch_moments(p_groups)
            if self.m is None or self.v is None:
                self.m, self.v = m_b, v_b
            else:
                mu = self.momentum
                self.m = mu * self.m + (1 - mu) * m_b
                self.v = mu * self.v + (1 - mu) * v_b
            self.steps += 1
        return _advantages(r01, p, self.params, zero)

    def state_dict(self) -> dict[str, Any]:
        """The settings and the running moments: what :meth:`load_state_dict` needs to go on
        exactly as this object would."""
        return {
            "momentum": self.momentum,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "singleton": self.singleton,
            "m": self.m,
            "v": self.v,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the settings and moments of :meth:`state_dict` (as :class:`RunningWhitener`
        does); a state saved before the bounds and ``singleton`` were saved keeps this
        object's. The constructor's checks apply, and ``m`` ∈ [0, 1], ``v`` ≥ 0 (finite, both
        or neither null), ``steps`` ≥ 0: a ValueError naming the field leaves this object as
        it was (a NaN ``m`` froze α = β = 1 for good)."""
        field = lambda key: state_field(state, key, "BNPONormalizer")  # noqa: E731
        checked = BNPONormalizer(
            momentum=state_number(field("momentum"), "momentum", low=0.0),
            r_min=state_number(state.get("r_min", self.r_min), "r_min"),
            r_max=state_number(state.get("r_max", self.r_max), "r_max"),
            singleton=state_choice(state.get("singleton", self.singleton), "singleton", SINGLETONS),
        )
        m, v = field("m"), field("v")
        if (m is None) != (v is None):
            raise ValueError(
                f"restored m and v must both be set or both null; got m={m!r}, v={v!r}"
            )
        if m is not None:
            m, v = state_number(m, "m", low=0.0, high=1.0), state_number(v, "v", low=0.0)
        steps = state_number(field("steps"), "steps", low=0.0)
        if not steps.is_integer():
            raise ValueError(f"restored steps must be a whole number; got {steps!r}")
        checked.m, checked.v, checked.steps = m, v, int(steps)
        self.__dict__.update(checked.__dict__)

"""Running statistics across training steps: per-source whitening and clipping.

:class:`RunningWhitener` keeps a running mean and variance per reward source (exact streaming
moments, Chan et al.'s parallel update, so the order of batches does not change the result) and
whitens ``(r − mean_s) / (std_s + ε)``, optionally clipped to ``[−clip, clip]`` — the "reward
normalization" of PPO trainers (OpenRLHF ``--normalize_reward``, TRL's PPO ``whiten_rewards``), kept
per source so a 0/1 verifier and a logit-scale RM each get their own scale. ``decay`` < 1 turns
the moments into exponentially weighted ones for non-stationary rewards.

NaN rewards are skipped by the statistics and stay NaN. Pure ``state_dict``/``load_state_dict``:
restoring mid-stream gives exactly the uninterrupted result. The moments are held at the
power-of-two scale of :func:`rewardkit.combine.normalize.huge_exponents` (exact): past 2^500
(1e150) and below 2^-500 (1e-150) their squares would overflow or underflow, so rewards from
1e-300 to 1e300 whiten as ``r·2^k`` does for any ``k``, where squares of 1e-170 went to 0 (std 0,
every whitened reward ±inf with ``eps=0``) and rewards from 1e155 up were refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.combine.checks import (
    by_source,
    is_real,
    source_keys,
    state_bool,
    state_field,
    state_mapping,
    state_number,
)
from rewardkit.combine.normalize import Groups, as_array, as_rewards, check_finite, huge_exponents

_FIELDS = ("eps", "clip", "center", "decay", "update_first", "ddof")


def clip_rewards(rewards: Any, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Clip rewards to ``[low, high]`` (either side optional); NaN stays NaN. ±inf rewards and
    NaN bounds are a ValueError (a clipped inf would look like an ordinary reward at the bound)."""
    for name, b in (("low", low), ("high", high)):
        if b is not None and math.isnan(b):
            raise ValueError(f"clip bound {name} is NaN; pass a number or None (no bound)")
    if low is not None and high is not None and low > high:
        raise ValueError(f"clip range is empty: low={low} > high={high}")
    r = as_array(rewards, "rewards")
    check_finite(r, "rewards")
    return np.clip(r, -np.inf if low is None else low, np.inf if high is None else high)


def scale_exponent(values: Any) -> int:
    """The power-of-two scale of the finite ``values`` as one group
    (:func:`~rewardkit.combine.normalize.huge_exponents`): 0 for ordinary values, else the binary
    exponent ``e`` of the largest magnitude, so that ``v·2^−e`` (exact) lies in [−1, 1]."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    e = huge_exponents(a, Groups(np.zeros(len(a), dtype=np.int64), 1))
    return 0 if e is None else int(e[0])


#: The binary exponents a restored :class:`Moments` scale may have (float64 spans 2^±1074).
MAX_EXP = 1100


@dataclass
class Moments:
    """Streaming count, mean and sum of squared deviations (M2) of one source, held at the
    power-of-two scale ``2^exp``: the mean is ``mean_s·2^exp``, M2 ``m2_s·4^exp`` (exact), so
    the squares of rewards of 1e300 or 1e-300 neither overflow nor vanish."""

    count: float = 0.0
    mean_s: float = 0.0
    m2_s: float = 0.0
    exp: int = 0

    @property
    def mean(self) -> float:
        return math.ldexp(self.mean_s, self.exp)

    @property
    def m2(self) -> float:
        """M2 in the rewards' squared units (inf or 0 where float64 cannot hold it)."""
        return _ldexp(self.m2_s, 2 * self.exp)

    def at(self, e: int) -> tuple[float, float]:
        """``(mean, M2)`` at the scale ``2^e`` (exact unless negligible there)."""
        return math.ldexp(self.mean_s, self.exp - e), _ldexp(self.m2_s, 2 * (self.exp - e))

    def scaled_std(self, ddof: int = 1) -> tuple[float, int]:
        """``(s, e)`` with std ``s·2^e`` (1.0 with fewer than ``ddof + 1`` values)."""
        if self.count <= ddof:
            return 1.0, 0
        return math.sqrt(self.m2_s / (self.count - ddof)), self.exp

    def std(self, ddof: int = 1) -> float:
        s, e = self.scaled_std(ddof)
        return _ldexp(s, e)

    def updated(self, x: np.ndarray, decay: float = 1.0) -> Moments:
        """These moments with the non-NaN values of ``x`` folded in (a new object), at the scale
        of the larger of the two (the other's share, below float64's resolution, is dropped)."""
        x = x[~np.isnan(x)]
        if not len(x):
            return self
        count = self.count * decay if decay < 1.0 else self.count
        e = scale_exponent(np.append(x, [self.mean, self.std(ddof=0) if count else 0.0]))
        mean_a, m2_a = self.at(e)
        m2_a = m2_a * decay if decay < 1.0 else m2_a
        xs = np.ldexp(x, -e)
        n_b = float(len(x))
        mean_b = float(xs.mean())
        m2_b = float(((xs - mean_b) ** 2).sum())
        total = count + n_b
        delta = mean_b - mean_a
        mean = mean_a + delta * n_b / total
        m2 = m2_a + (m2_b + delta * delta * count * n_b / total)
        return Moments(total, mean, m2, e)

    def as_list(self) -> list[float]:
        """``[count, mean, m2]`` (``[count, mean_s, m2_s, exp]`` at a scale other than 1)."""
        head = [self.count, self.mean_s, self.m2_s]
        return head if self.exp == 0 else [*head, self.exp]

    @classmethod
    def from_list(cls, v: Any, where: str) -> Moments:
        """:meth:`as_list` read back, each field held to its range (ValueError naming
        ``where`` and the field)."""
        if not isinstance(v, list | tuple) or len(v) not in (3, 4):
            raise ValueError(
                f"restored {where} must be [count, mean, m2] or [count, mean, m2, exp]; got {v!r}"
            )
        low = {"count": 0.0, "mean": -math.inf, "m2": 0.0, "exp": -MAX_EXP}
        count, mean, m2, *e = (
            state_number(x, f"{where}.{f}", low=low[f], high=MAX_EXP if f == "exp" else math.inf)
            for x, f in zip(v, low, strict=False)
        )
        if e and not e[0].is_integer():
            raise ValueError(f"restored {where}.exp must be a whole number; got {v[3]!r}")
        exp = int(e[0]) if e else 0
        if math.isinf(_ldexp(mean, exp)):
            raise ValueError(f"restored {where}: mean·2^exp is past float64's range; got {v!r}")
        return cls(count, mean, m2, exp)


def _ldexp(x: float, e: int) -> float:
    """``x·2^e``; inf past float64's range (``math.ldexp`` raises there)."""
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(math.inf, x)


@dataclass
class RunningWhitener:
    """Per-source running whitening ``(r − mean_s)/(std_s + ε)`` with optional clipping.

    ``center=False`` only divides by the std (keeps the sign of the raw reward). ``update_first``
    (default) folds the batch into the statistics before whitening it, as OpenRLHF does.
    """

    eps: float = 1e-8
    clip: float | None = None
    center: bool = True
    decay: float = 1.0
    update_first: bool = True
    ddof: int = 1
    moments: dict[str, Moments] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("eps", "decay", "clip"):
            v = getattr(self, key)
            if not (is_real(v) or (key == "clip" and v is None)):
                raise ValueError(f"{key} must be a number; got {v!r}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1]; got {self.decay}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be > 0; got {self.clip}")
        state_number(self.eps, "eps", low=0.0)
        if self.ddof not in (0, 1) or isinstance(self.ddof, bool):
            raise ValueError(f"ddof must be 0 or 1; got {self.ddof!r}")

    def _sources(self, n: int, source_ids: Any) -> np.ndarray:
        if source_ids is None:
            return np.full(n, "default")
        return source_keys(source_ids, n)

    def update(self, rewards: Any, source_ids: Any = None) -> None:
        r = as_rewards(rewards)
        ids = self._sources(len(r), source_ids)
        for s, idx in by_source(ids):
            x = r[idx]
            if not np.isnan(x).all():  # a source where nothing applied gets no statistics
                self.moments[s] = self.moments.get(s, Moments()).updated(x, self.decay)

    def whiten(self, rewards: Any, source_ids: Any = None) -> np.ndarray:
        r = as_rewards(rewards)
        ids = self._sources(len(r), source_ids)
        out = np.array(r, copy=True)
        for s, sel in by_source(ids):
            if np.isnan(r[sel]).all():
                continue  # nothing to whiten: these rewards stay NaN
            m = self.moments.get(s)
            if m is None or m.count == 0:
                raise ValueError(f"no running statistics for source {s!r}; call update first")
            out[sel] = _whitened(r[sel], m, self.ddof, self.eps, self.center)
        return out if self.clip is None else clip_rewards(out, -self.clip, self.clip)

    def __call__(self, rewards: Any, source_ids: Any = None) -> np.ndarray:
        if self.update_first:
            self.update(rewards, source_ids)
            return self.whiten(rewards, source_ids)
        r = as_rewards(rewards)
        ids = self._sources(len(r), source_ids)
        fresh = [s for s in np.unique(ids) if str(s) not in self.moments]
        if fresh:  # nothing to whiten with yet: seed those sources with this batch
            keep = np.isin(ids, fresh)
            self.update(r[keep], ids[keep])
        out = self.whiten(r, ids)
        if not fresh:
            self.update(r, ids)
        else:
            rest = ~np.isin(ids, fresh)
            self.update(r[rest], ids[rest])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "moments": {s: m.as_list() for s, m in self.moments.items()},
            "eps": self.eps,
            "clip": self.clip,
            "center": self.center,
            "decay": self.decay,
            "update_first": self.update_first,
            "ddof": self.ddof,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the settings and moments of :meth:`state_dict`, held to the constructor's checks
        (ValueError naming the field; this object is left as it was)."""
        kw = {key: state_field(state, key, "RunningWhitener") for key in _FIELDS}
        for key in ("center", "update_first"):
            kw[key] = state_bool(kw[key], key)
        checked = RunningWhitener(**kw)  # the constructor's checks
        moments = {
            str(s): Moments.from_list(v, f"moments[{s!r}]")
            for s, v in state_mapping(
                state_field(state, "moments", "RunningWhitener"), "moments"
            ).items()
        }
        for key in _FIELDS:
            setattr(self, key, getattr(checked, key))
        self.moments = moments


def _whitened(r: np.ndarray, m: Moments, ddof: int, eps: float, center: bool) -> np.ndarray:
    """``(r − mean)/(std + ε)`` (``r/(std + ε)`` without ``center``): the numerator at the scale
    of ``r`` and the mean, the denominator at that of the std and ε, the ratio scaled back
    (exact powers of two: ``r − mean`` cannot overflow, a std of 1e-170 is not 0). A std of 0
    with ``eps=0`` divides by 1 (only centred, as :func:`~rewardkit.combine.aggregate.zscore`
    and a source with too few values): ``0/0`` made every applying reward NaN, a new value inf."""
    e = scale_exponent(np.append(r, m.mean))
    num = np.ldexp(r, -e) - (m.at(e)[0] if center else 0.0)
    s, e_s = m.scaled_std(ddof)
    if s == 0 and eps == 0:
        s, e_s = 1.0, 0
    # at the binary exponent of the larger of std and ε (the smaller may vanish beside it)
    tops = [e_s + math.frexp(s)[1]] if s > 0 else []
    f = max(tops + ([math.frexp(eps)[1]] if eps > 0 else []), default=0)
    den = math.ldexp(s, e_s - f) + math.ldexp(eps, -f)
    return np.ldexp(num / den, e - f)

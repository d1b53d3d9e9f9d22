"""Running statistics across training steps: per-source whitening and clipping.

:class:`RunningWhitener` keeps a running mean and variance per reward source (exact streaming
moments, Chan et al.'s parallel update, so the order of batches does not change the result) and
whitens ``(r − mean_s) / (std_s + ε)``, optionally clipped to ``[−clip, clip]`` — the "reward
normalization" of PPO trainers (OpenRLHF ``--normalize_reward``, TRL's PPO ``whiten_rewards``), kept
per source so a 0/1 verifier and a logit-scale RM each get their own scale. ``decay`` < 1 turns
the moments into exponentially weighted ones for non-stationary rewards.

NaN rewards are skipped by the statistics and stay NaN. Pure ``state_dict``/``load_state_dict``:
restoring mid-stream gives exactly the uninterrupted result. Rewards past 2^500 are summed at a
power-of-two scale (exact); a batch whose statistics float64 cannot hold (squared deviations past
1.8e308, rewards around 1e155 and beyond) is a ``ValueError`` that leaves every statistic as it
was, where it made them NaN for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rewardkit.combine.checks import source_keys, state_bool, state_field, state_number
from rewardkit.combine.normalize import as_array, as_rewards, check_finite, huge_exponent

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


@dataclass
class Moments:
    """Streaming count, mean and sum of squared deviations (M2) of one source."""

    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def updated(self, x: np.ndarray, decay: float = 1.0, source: str = "default") -> Moments:
        """These moments with the non-NaN values of ``x`` folded in (a new object); a
        ``ValueError`` naming ``source`` when the result would not be finite."""
        x = x[~np.isnan(x)]
        if not len(x):
            return self
        count, m2 = (self.count * decay, self.m2 * decay) if decay < 1.0 else (self.count, self.m2)
        e = huge_exponent(x)  # summed at a power-of-two scale: exact, no overflow on the way
        xs = np.ldexp(x, -e)
        n_b = float(len(x))
        mean_s = float(xs.mean())
        with np.errstate(over="ignore"):
            m2_b = float(np.ldexp(((xs - mean_s) ** 2).sum(), 2 * e))
            mean_b = math.ldexp(mean_s, e)
            total = count + n_b
            delta = mean_b - self.mean
            mean = self.mean + delta * n_b / total
            m2 += m2_b + delta * delta * count * n_b / total
        if not (math.isfinite(mean) and math.isfinite(m2)):
            raise ValueError(
                f"running statistics of source {source!r} would pass float64's range (rewards "
                f"up to {float(np.abs(x).max()):.3g}: their squared deviations overflow); scale "
                "the rewards down (the statistics are left as they were)"
            )
        return replace(self, count=total, mean=mean, m2=m2)

    def std(self, ddof: int = 1) -> float:
        return float(np.sqrt(self.m2 / (self.count - ddof))) if self.count > ddof else 1.0


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
        new = {}  # every source's update first: a refused batch changes no statistic
        for s in map(str, np.unique(ids)):
            x = r[ids == s]
            if not np.isnan(x).all():  # a source where nothing applied gets no statistics
                new[s] = self.moments.get(s, Moments()).updated(x, self.decay, s)
        self.moments.update(new)

    def whiten(self, rewards: Any, source_ids: Any = None) -> np.ndarray:
        r = as_rewards(rewards)
        ids = self._sources(len(r), source_ids)
        out = np.array(r, copy=True)
        for s in np.unique(ids):
            sel = ids == s
            if np.isnan(r[sel]).all():
                continue  # nothing to whiten: these rewards stay NaN
            m = self.moments.get(str(s))
            if m is None or m.count == 0:
                raise ValueError(f"no running statistics for source {str(s)!r}; call update first")
            std = m.std(self.ddof)
            # at the power-of-two scale of the largest of them: (x − mean) cannot overflow
            e = huge_exponent([*r[sel], m.mean, std])
            x = np.ldexp(r[sel], -e) - (math.ldexp(m.mean, -e) if self.center else 0.0)
            out[sel] = x / (math.ldexp(std, -e) + math.ldexp(self.eps, -e))
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
            "moments": {s: [m.count, m.mean, m.m2] for s, m in self.moments.items()},
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
        moments = {}
        for s, v in dict(state_field(state, "moments", "RunningWhitener")).items():
            if len(v) != 3:
                raise ValueError(f"restored moments[{s!r}] must be [count, mean, m2]; got {v!r}")
            count, mean, m2 = (
                state_number(x, f"moments[{s!r}].{f}", low=0.0 if f != "mean" else -math.inf)
                for x, f in zip(v, ("count", "mean", "m2"), strict=True)
            )
            moments[str(s)] = Moments(count, mean, m2)
        for key in _FIELDS:
            setattr(self, key, getattr(checked, key))
        self.moments = moments

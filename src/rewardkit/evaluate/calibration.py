"""Calibration of pairwise preference probabilities (docs/methods/D7-calibration.md — "On Diversified
Preferences of LLM Alignment"): ECE / ACE / MCE with documented binning, Brier score,
reliability-diagram data, and post-hoc temperature scaling (Platt scaling with one parameter).

Binning: ``n_bins`` uniform bins on [0, 1]; a probability ``p`` falls in bin
``searchsorted(edges[1:-1], p, side="left")``, so a value on an inner edge goes to the lower bin
(MORE ``calibration_error``). ``ECE = Σ_b |Σ_{i∈b} p_i − Σ_{i∈b} y_i| / N``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardkit.combine.transform import sigmoid


def bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each probability: uniform edges, inner edges belong to the lower bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(p, dtype=np.float64), side="left")


def outcomes_and_probabilities(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """``(y, p)`` as flat float arrays, checked: one length, outcomes 0 or 1 and probabilities
    in [0, 1] (NaN passes: it makes the result NaN). Anything else is a ValueError naming the
    first bad value (p = 1.5 and y = 2 gave an ECE of 0.5)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob differ in length: {y.size} vs {p.size}")
    for name, arr, bad in (
        ("y_true", y, ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))),
        ("y_prob", p, ~np.isnan(p) & ~((p >= 0.0) & (p <= 1.0))),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            want = "0 or 1" if name == "y_true" else "a probability in [0, 1]"
            raise ValueError(f"{name}[{i}] = {float(arr[i])!r}: expected {want}")
    return y, p


def calibration_error(y_true, y_prob, n_bins: int = 10) -> dict[str, float]:
    """docs/methods/D7-calibration.md — ``{"ece", "ace", "mce"}`` of probabilities ``y_prob`` for outcomes
    ``y_true`` (0/1). ACE: mean over non-empty bins of |mean p − mean y|; MCE: their max.
    NaN (all three) when there is no pair or a value is NaN."""
    y, p = outcomes_and_probabilities(y_true, y_prob)
    if p.size == 0:
        return {"ece": math.nan, "ace": math.nan, "mce": math.nan}
    b = bin_index(p, n_bins)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y, minlength=n_bins)
    cnt = np.bincount(b, minlength=n_bins)
    ece = float(np.abs(sum_p - sum_y).sum() / p.size)
    nz = cnt > 0
    gaps = np.abs(sum_p[nz] - sum_y[nz]) / cnt[nz]
    return {"ece": ece, "ace": float(gaps.mean()), "mce": float(gaps.max())}


def brier_score(y_true, y_prob) -> float:
    """Mean squared error of the probabilities: ``mean((p − y)²)``; NaN when empty."""
    y, p = outcomes_and_probabilities(y_true, y_prob)
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def reliability_diagram(y_true, y_prob, n_bins: int = 10) -> dict[str, list]:
    """Per bin: edges, count, mean predicted probability and observed frequency (None when
    the bin is empty) — the data of a reliability diagram."""
    y, p = outcomes_and_probabilities(y_true, y_prob)
    b = bin_index(p, n_bins)
    cnt = np.bincount(b, minlength=n_bins)
    mp = np.bincount(b, weights=p, minlength=n_bins)
    my = np.bincount(b, weights=y, minlength=n_bins)
    return {
        "edges": np.linspace(0, 1, n_bins + 1).tolist(),
        "count": cnt.tolist(),
        "mean_p": [float(mp[i] / cnt[i]) if cnt[i] else None for i in range(n_bins)],
        "freq": [float(my[i] / cnt[i]) if cnt[i] else None for i in range(n_bins)],
    }


def pair_nll(logits, y, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of outcomes ``y`` under ``σ(logit / T)``."""
    with np.errstate(over="ignore"):  # a margin of 1e308 at T = 1e-4 is inf: σ = 1, no NaN
        z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(y, dtype=np.float64)
    # −[y log σ(z) + (1−y) log σ(−z)], with log σ(z) = −softplus(−z); a term whose weight is 0
    # is left out, so an infinite margin (a reward that scores +inf) on the right side costs 0
    # rather than 0·inf = NaN
    with np.errstate(invalid="ignore"):
        pos = np.where(y != 0, y * np.logaddexp(0, -z), 0.0)
        neg = np.where(y != 1, (1 - y) * np.logaddexp(0, z), 0.0)
    return float(np.mean(pos + neg))


#: A fitted temperature at least this large flattens every probability to ~0.5: the scores
#: carry no signal about the labels (the search ran into its upper bound).
NO_SIGNAL_TEMPERATURE = 1e5


def temperature_has_signal(t: float) -> bool:
    """False for a degenerate fitted temperature (:data:`NO_SIGNAL_TEMPERATURE` or more, or not
    finite), which reports should print as "no signal" rather than as a number."""
    return math.isfinite(t) and t < NO_SIGNAL_TEMPERATURE


#: The lower end of the temperature search. A fit there means the margins separate the labels
#: perfectly (every pair on the right side of 0): the NLL keeps falling as T → 0, so the number
#: is the search bound, not an estimate, and reports print "separated (T → 0)".
MIN_TEMPERATURE = 1e-4

#: Fewer distinct examples than this: reports print "too few examples" instead of ECE / ACE /
#: MCE / Brier / T (report.json keeps the numbers, with ``"too_few": true``). With 10 bins, a
#: handful of pairs gives an ECE that says nothing about the reward (3 pairs: ECE 0.26).
MIN_CALIBRATION_EXAMPLES = 10


def temperature_label(t: float) -> str | None:
    """None for a usable fitted temperature; else what reports print instead of the number:
    ``"no signal"`` (at :data:`NO_SIGNAL_TEMPERATURE` or not finite) or ``"separated (T → 0)"``
    (within 1% of :data:`MIN_TEMPERATURE`)."""
    if not temperature_has_signal(t):
        return "no signal"
    if t <= MIN_TEMPERATURE * 1.01:
        return "separated (T → 0)"
    return None


def applied_temperature_text(cal: dict) -> str | None:
    """What reports print for a saved temperature (``--temperature FILE``) in a calibration
    block: ``"T=1.04: ECE 0.092, Brier 0.234"``, or why it was not applied; None without one."""
    a = cal.get("applied")
    if not isinstance(a, dict):
        return None
    t = f"T={float(a['temperature']):.4g}"
    if a.get("skipped"):
        return f"{t} not applied: {a['skipped']}"
    return f"{t}: ECE {float(a['ece']):.3f}, Brier {float(a['brier']):.3f}"


def calibration_too_few(cal: dict) -> bool:
    """Whether a report's calibration block rests on too few examples to print (its
    ``too_few``; a report.json written before that key: fewer than two ordered pairs per
    :data:`MIN_CALIBRATION_EXAMPLES`, which no run of that many examples gives)."""
    few = cal.get("too_few")
    if isinstance(few, bool):
        return few
    n = cal.get("n_pairs")
    return isinstance(n, int | float) and n < 2 * MIN_CALIBRATION_EXAMPLES


def reported_ece(cal: dict | None) -> float | None:
    """The ECE (10 bins) a report may print for a calibration block, None when there is none or
    it rests on too few examples (:func:`calibration_too_few`)."""
    if not isinstance(cal, dict) or calibration_too_few(cal):
        return None
    ece = cal.get("ece")
    ok = isinstance(ece, int | float) and not isinstance(ece, bool) and math.isfinite(ece)
    return float(ece) if ok else None


def fit_temperature(logits, y, *, bounds: tuple[float, float] = (MIN_TEMPERATURE, 1e6)) -> float:
    """docs/methods/D7-calibration.md [design] — the temperature T > 0 minimising :func:`pair_nll` (golden-section
    search on log T within ``bounds``; deterministic). 1.0 when there is no data; the upper
    bound ("no signal") when every margin is 0 (a constant reward); NaN when a logit or an
    outcome is NaN (the NLL is NaN at every T: the search ran to its upper bound and read as
    "no signal")."""
    z = np.asarray(logits, dtype=np.float64)
    if z.size == 0:
        return 1.0
    if np.isnan(z).any() or np.isnan(np.asarray(y, dtype=np.float64)).any():
        return math.nan
    if not np.any(z != 0):  # a constant reward: every T fits alike; no signal, not T = 1
        return float(bounds[1])
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = pair_nll(z, y, math.exp(a)), pair_nll(z, y, math.exp(b))
    for _ in range(200):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - g) * (hi - lo)
            fa = pair_nll(z, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = pair_nll(z, y, math.exp(b))
        if hi - lo < 1e-10:
            break
    return float(math.exp((lo + hi) / 2))


@dataclass(frozen=True)
class TemperatureScaling:
    """A fitted temperature: ``P(a ≻ b) = σ((r_a − r_b) / T)`` (for a judge: σ(logit(p) / T)).

    Save it with :meth:`save` after an evaluation; :meth:`apply` turns reward margins into
    calibrated probabilities anywhere (``rewardkit eval --temperature FILE`` reports ECE with it).
    """

    temperature: float
    reward: str = ""
    fingerprint: str = ""
    n_pairs: int = 0

    def apply(self, margins) -> np.ndarray:
        """Calibrated probabilities of margins (logits)."""
        return sigmoid(np.asarray(margins, dtype=np.float64) / self.temperature)

    def save(self, path: str | Path, what: str = "temperature file") -> Path:
        """Write the temperature as JSON (atomically: the file appears only once complete). A
        temperature that :meth:`load` would refuse (not finite, not > 0) is a ValueError; an
        output that cannot be written is an :class:`~rewardkit.outputs.OutputError` naming it."""
        from rewardkit.outputs import atomic_text

        t = float(self.temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"{what} {path}: fitted temperature {t} is not a finite number > 0")
        text = json.dumps(self.__dict__, indent=1, sort_keys=True, allow_nan=False) + "\n"
        p = Path(path)
        with atomic_text(p, what=what) as fh:
            fh.write(text)
        return p

    @classmethod
    def load(cls, path: str | Path) -> TemperatureScaling:
        """Read a temperature written by :meth:`save`."""
        from rewardkit.data.readers import read_config_file

        raw = read_config_file(path, "temperature file")
        value = raw.get("temperature") if isinstance(raw, dict) else None
        n_pairs = raw.get("n_pairs", 0) if isinstance(raw, dict) else 0
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (value, n_pairs)):
            raise ValueError(
                f"{path}: expected a temperature file written by --save-temperature "
                '({"temperature": a number > 0, "n_pairs": an integer, ...})'
            )
        t = float(value)
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"{path}: temperature must be > 0 and finite, got {t}")
        name, fingerprint = (str(raw.get(k, "")) for k in ("reward", "fingerprint"))
        return cls(t, name, fingerprint, int(n_pairs))


def pair_logits(scores: np.ndarray, chosen: list[int], probabilities: bool = False):
    """docs/methods/D7-calibration.md — the ordered pairs of one example: for every chosen ``c`` and rejected
    ``r`` both ``(logit of c ≻ r, 1)`` and ``(logit of r ≻ c, 0)``. Logits are score margins,
    or for a pairwise judge (``probabilities``) ``logit(P)`` of its probability score.
    Returns ``(logits, y)``; empty when a score is NaN or a margin is undefined (+inf vs +inf:
    it fed NaN logits to the temperature fit)."""
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).any():
        return np.zeros(0), np.zeros(0)
    cs = set(chosen)
    rej = [i for i in range(s.size) if i not in cs]
    zs, ys = [], []
    for c in chosen:
        for r in rej:
            if probabilities:
                p = float(np.clip(s[c], 1e-6, 1 - 1e-6))
                z = math.log(p / (1 - p))
            else:
                # ±1e308 apart: the margin is ±inf (σ = 1 or 0); inf − inf has none (NaN)
                with np.errstate(over="ignore", invalid="ignore"):
                    z = float(s[c] - s[r])
            if math.isnan(z):
                return np.zeros(0), np.zeros(0)
            zs += [z, -z]
            ys += [1.0, 0.0]
    return np.asarray(zs), np.asarray(ys)


def calibration_report(
    logits, y, groups, *, seed: int = 0, bins: tuple[int, ...] = (5, 10, 20)
) -> dict[str, object]:
    """ECE (5/10/20 bins), ACE, MCE, Brier and the reliability diagram (10 bins) at T = 1; the
    temperature fitted on a seeded half of the examples (``groups``) and ECE / Brier on the
    other half before and after it; and the temperature fitted on all pairs (the one to save).
    ``n_examples`` counts the groups; ``too_few`` marks fewer than
    :data:`MIN_CALIBRATION_EXAMPLES` of them."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    g = np.asarray(groups)
    p = sigmoid(z)
    uniq = np.unique(g)
    out: dict[str, object] = {
        "n_pairs": int(z.size),
        "n_examples": int(uniq.size),
        "too_few": bool(uniq.size < MIN_CALIBRATION_EXAMPLES),
    }
    for nb in bins:
        out[f"ece_{nb}"] = calibration_error(y, p, nb)["ece"]
    out.update({k: v for k, v in calibration_error(y, p, 10).items() if k != "ece"})
    out["ece"] = out.get("ece_10", math.nan)
    out["brier"] = brier_score(y, p)
    out["reliability"] = reliability_diagram(y, p, 10)
    out["temperature"] = fit_temperature(z, y)
    if uniq.size >= 4:
        rng = np.random.default_rng(seed)
        fit_groups = set(rng.permutation(uniq)[: uniq.size // 2].tolist())
        fit = np.array([x in fit_groups for x in g])
        t = fit_temperature(z[fit], y[fit])
        zt, yt = z[~fit], y[~fit]
        out["heldout"] = {
            "temperature": t,
            "n_pairs": int(zt.size),
            "ece_before": calibration_error(yt, sigmoid(zt), 10)["ece"],
            "ece_after": calibration_error(yt, sigmoid(zt / t), 10)["ece"],
            "brier_before": brier_score(yt, sigmoid(zt)),
            "brier_after": brier_score(yt, sigmoid(zt / t)),
        }
    return out

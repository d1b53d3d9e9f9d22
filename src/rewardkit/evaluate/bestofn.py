"""Best-of-N curves and overoptimization (docs/methods/D8-best-of-n-eval.md — best-of-N evaluation; D9 —
overoptimization / reward-hacking measurement, Gao et al. 2210.10760).

For a pool of M candidates with proxy rewards and a gold signal, the expected gold value of the
best-of-N pick (N ≤ M, drawn without replacement, highest proxy wins; in the curves a proxy tie is a
uniform pick among the tied, :func:`expected_bon` ``ties="random"``) is the
unbiased estimator ``Σ_{i=1}^{M} g_(i) · C(i−1, N−1) / C(M, N)`` with candidates sorted by proxy
ascending. ``KL(π_BoN ‖ π) = log N − (N−1)/N``; ``d = sqrt(KL)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np

from rewardkit.evaluate.bootstrap import check_bootstrap_args, percentile_ci
from rewardkit.evaluate.stats import pearson, spearman


def _check_n(n: int) -> int:
    """``n`` as an int: a whole number >= 1 (not a bool), else a ValueError (``bon_kl(2.5)``
    gave a KL for no best-of-N)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)


def bon_kl(n: int) -> float:
    """docs/methods/D8-best-of-n-eval.md — analytic KL of best-of-n: ``log n − (n − 1)/n``."""
    n = _check_n(n)
    return math.log(n) - (n - 1) / n


def _weights(m: int, n: int) -> np.ndarray:
    """``C(i−1, n−1)/C(m, n)`` for i = 1..m (the chance that the i-th smallest is the max)."""
    total = math.comb(m, n)
    return np.array([math.comb(i - 1, n - 1) / total for i in range(1, m + 1)])


def expected_bon(
    proxy: Sequence[float], gold: Sequence[float], n: int, ties: str = "first"
) -> float:
    """docs/methods/D8-best-of-n-eval.md — expected gold value of the best-of-``n`` pick by
    ``proxy`` from one pool. Ties in proxy: ``"first"``, the lower index wins (what
    ``rewardkit bon`` picks); ``"random"``, a uniform pick among the tied (the 1/m tie credit
    of RewardBench 2), computed exactly by giving every member of a proxy tie its group's mean
    gold. NaN if any value is NaN or ``n`` > pool size; ``proxy`` and ``gold`` of different
    lengths, or ``n`` not an integer >= 1, are ValueErrors."""
    if ties not in ("first", "random"):
        raise ValueError(f"ties must be 'first' or 'random', got {ties!r}")
    n = _check_n(n)
    r = np.asarray(proxy, dtype=np.float64).ravel()
    g = np.asarray(gold, dtype=np.float64).ravel()
    if r.shape != g.shape:
        raise ValueError(f"proxy and gold differ in length: {r.size} vs {g.size}")
    m = r.size
    if n > m or np.isnan(r).any() or np.isnan(g).any():
        return math.nan
    if ties == "random":
        g = tie_group_means(r, g)
    order = np.lexsort((-np.arange(m), r))  # ascending proxy; among ties the lowest index last
    w = _weights(m, n)
    picked = w > 0  # a candidate never picked adds nothing (its inf gold gave 0·inf = NaN)
    return float(w[picked] @ g[order][picked])


def tie_group_means(proxy: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """``gold`` with every value replaced by the mean gold of the candidates that share its
    proxy score: given which members of a tie a draw holds, a uniform pick among them is
    uniform over the whole group, so its expected gold is the group mean."""
    _, inv = np.unique(proxy, return_inverse=True)
    sums = np.bincount(inv, weights=gold)
    return (sums / np.bincount(inv))[inv]


def powers_of_two(m: int) -> list[int]:
    """1, 2, 4, … up to ``m``, plus ``m`` itself."""
    ns, n = [], 1
    while n < m:
        ns.append(n)
        n *= 2
    return [*ns, m] if m >= 1 else []


def bon_curve(
    pools: Sequence[tuple[Sequence[float], Sequence[float]]], ns: Sequence[int] | None = None
) -> dict[str, list]:
    """Mean over pools of the expected gold of best-of-N by the proxy (proxy ties: a uniform pick
    among the tied, so a constant reward scores the pool mean at every N instead of whatever
    sits first in the pool), the expected proxy of the
    pick (recentered: minus the pool's mean proxy), the oracle (best-of-N by gold) and KL / d,
    for each N (pools smaller than N are left out of that point; ``n_pools`` says how many).
    Default N: 1, 2, 4, … up to the pool size that at least half of the pools reach (so the
    curve's tail is not a handful of large pools)."""
    pools = [(np.asarray(r, float), np.asarray(g, float)) for r, g in pools]
    pools = [(r, g) for r, g in pools if r.size and not (np.isnan(r).any() or np.isnan(g).any())]
    if not pools:
        empty: dict[str, list] = {k: [] for k in ("n", "kl", "d", "gold", "proxy", "oracle")}
        return {**empty, "n_pools": [], "gold_base": []}
    if ns is None:  # up to the largest N that at least half of the pools reach
        sizes = sorted((r.size for r, _ in pools), reverse=True)
        ns = powers_of_two(sizes[(len(sizes) - 1) // 2])
    keys = ("n", "kl", "d", "gold", "proxy", "oracle", "n_pools", "gold_base")
    out: dict[str, list] = {k: [] for k in keys}
    for n in ns:
        use = [(r, g) for r, g in pools if r.size >= n]
        if not use:
            continue
        out["n"].append(int(n))
        out["kl"].append(bon_kl(n))
        out["d"].append(math.sqrt(bon_kl(n)))
        out["gold"].append(float(np.mean([expected_bon(r, g, n, "random") for r, g in use])))
        out["proxy"].append(float(np.mean([expected_bon(r, r - r.mean(), n) for r, _ in use])))
        out["oracle"].append(float(np.mean([expected_bon(g, g, n) for _, g in use])))
        out["n_pools"].append(len(use))
        # gold@1 over this point's own pools: the gain at N compares like with like
        out["gold_base"].append(float(np.mean([g.mean() for _, g in use])))
    return out


def bon_gain(
    pools: Sequence[tuple[Sequence[float], Sequence[float]]], n: int
) -> dict[str, float | int]:
    """docs/methods/D8-best-of-n-eval.md — ``gold@n − gold@1`` with both ends on the same pools:
    those that reach ``n`` candidates (the curve drops smaller pools at larger N, so its own
    ends can stand on different pools). ``{"gain", "gold_1", "gold_n", "n", "n_pools"}``."""
    arr = [(np.asarray(r, float), np.asarray(g, float)) for r, g in pools]
    use = [(r, g) for r, g in arr if r.size >= max(n, 1) and not np.isnan(r).any()]
    use = [(r, g) for r, g in use if not np.isnan(g).any()]
    if not use:
        return {"gain": math.nan, "gold_1": math.nan, "gold_n": math.nan, "n": n, "n_pools": 0}
    g1 = float(np.mean([expected_bon(r, g, 1, "random") for r, g in use]))
    gn = float(np.mean([expected_bon(r, g, n, "random") for r, g in use]))
    return {"gain": gn - g1, "gold_1": g1, "gold_n": gn, "n": n, "n_pools": len(use)}


#: Distinct d > 0 a Gao fit needs: more points than its two parameters. With one, least
#: squares returns the minimum-norm solution (N = 1, 2 gave α = 0.19, β = −0.08, "never
#: peaks"); with two, an exact interpolation that no residual checks.
MIN_FIT_POINTS = 3

#: Gao's two forms (docs/methods/D9-overoptimization.md): ``R(d) = α·f(d) − β·g(d)``.
GAO_KINDS = ("bon", "rl")


def _gao_design(d: np.ndarray, kind: str) -> np.ndarray:
    """Columns of ``R(d) = α·c₀ − β·c₁``: best-of-N ``d(α − βd)``, RL ``d(α − β log d)``."""
    with np.errstate(over="ignore"):  # d² past float64: inf, refused by least_squares
        return np.stack([d, -(d**2) if kind == "bon" else -d * np.log(d)], axis=1)


def _gao_peak(alpha: float, beta: float, kind: str) -> float:
    """The argmax d* of the fitted curve: best-of-N ``max(0, α/(2β))`` (0: gold falls from the
    start), RL ``exp(α/β − 1)``; inf (no peak) unless β > 0."""
    if not beta > 0:
        return math.inf
    if kind == "bon":
        return max(0.0, alpha / (2 * beta))
    z = alpha / beta - 1
    return math.exp(z) if z < 709.0 else math.inf  # past that exp overflows: no finite peak


def _exponent(a: np.ndarray) -> int:
    """The power of two that brings the largest magnitude of ``a`` into [0.5, 1) (0 for zeros)."""
    m = float(np.max(np.abs(a))) if a.size else 0.0
    return math.frexp(m)[1] if m > 0 else 0


def least_squares(design: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Coefficients minimising ``‖design·c − y‖²`` (``np.linalg.lstsq``), each column and ``y``
    scaled by a power of two first (exact; the solution scales back), so LAPACK sees no
    overflow (d = 1e200 crashed it with "SVD did not converge"). None where the design or
    ``y`` is not finite (d² past the float64 range)."""
    if not (np.isfinite(design).all() and np.isfinite(y).all()):
        return None
    cols = np.array([_exponent(c) for c in design.T])
    ey = _exponent(y)
    coef, *_ = np.linalg.lstsq(np.ldexp(design, -cols), np.ldexp(y, -ey), rcond=None)
    return np.ldexp(coef, ey - cols)


def fit_gao(d: Sequence[float], R: Sequence[float], kind: str = "bon") -> dict[str, float]:
    """docs/methods/D9-overoptimization.md — least-squares fit of Gao's form to the recentred
    gold gain ``R`` against ``d = sqrt(KL)``: ``kind="bon"`` ``R(d) = d(α − βd)``, argmax
    ``d* = max(0, α/(2β))``; ``kind="rl"`` ``R(d) = d(α − β log d)``, ``d* = exp(α/β − 1)``;
    ``d*`` = inf (no peak) unless β > 0. Only points with both values finite and d > 0 count
    (both forms vanish at d = 0, so such a point cannot move the fit; a negative d is no
    distance). ``{"alpha", "beta", "d_star"}``, all NaN with fewer than
    :data:`MIN_FIT_POINTS` distinct d > 0."""
    if kind not in GAO_KINDS:
        raise ValueError(f"kind must be one of {GAO_KINDS}, got {kind!r}")
    x = np.asarray(d, dtype=np.float64).ravel()
    y = np.asarray(R, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"d and R differ in length: {x.size} vs {y.size}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    coef = least_squares(_gao_design(x, kind), y) if np.unique(x).size >= MIN_FIT_POINTS else None
    if coef is None:
        return {"alpha": math.nan, "beta": math.nan, "d_star": math.nan}
    alpha, beta = float(coef[0]), float(coef[1])
    return {"alpha": alpha, "beta": beta, "d_star": _gao_peak(alpha, beta, kind)}


def fit_gao_bon(d: Sequence[float], gain: Sequence[float]) -> dict[str, float]:
    """:func:`fit_gao` of best-of-N, ``R(d) = d(α − βd)`` (docs/methods/D9-overoptimization.md)."""
    return fit_gao(d, gain, "bon")


def fit_gao_rl(d: Sequence[float], gain: Sequence[float]) -> dict[str, float]:
    """:func:`fit_gao` of RL, ``R(d) = d(α − β log d)``, ``d* = exp(α/β − 1)``
    (docs/methods/D9-overoptimization.md)."""
    return fit_gao(d, gain, "rl")


def overoptimization(
    curve: dict[str, list], pools: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None
) -> dict[str, object]:
    """docs/methods/D9-overoptimization.md — gold and proxy gains over best-of-1 (on each point's
    own pools, ``gold_base``) versus ``d = sqrt(KL)``, the Gao fit
    of the gold gain, and whether gold peaks before the largest N while proxy keeps rising
    (strictly: a flat proxy, e.g. a constant reward, is not overoptimized).

    With the curve's ``pools``, the peak and ``overoptimized`` are read on the pools that reach
    the largest N, the same pools at every N (``peak_pools`` counts them): the curve's own
    points stand on fewer pools as N grows, and a drop made by leaving pools out is no drop."""
    if not curve["n"]:
        return {}
    gold = np.asarray(curve["gold"])
    proxy = np.asarray(curve["proxy"])
    peak_gold, peak_proxy, peak_pools = gold, proxy, curve["n_pools"][-1]
    if pools is not None:
        reach = [(r, g) for r, g in pools if len(r) >= curve["n"][-1]]
        same = bon_curve(reach, ns=curve["n"])
        if same["n"] == curve["n"]:
            peak_gold, peak_proxy = np.asarray(same["gold"]), np.asarray(same["proxy"])
            peak_pools = same["n_pools"][-1]
    # each point's gain over best-of-1 on the same pools (the curve leaves pools smaller than N
    # out of N's point: gold@1 over every pool mixed pool sets, and could flip the sign)
    base = np.asarray(curve.get("gold_base") or [gold[0]] * len(gold))
    g_gain = (gold - base).tolist()
    p_gain = (proxy - proxy[0]).tolist()
    peak = int(np.argmax(peak_gold))
    return {
        "d": curve["d"],
        "gold_gain": g_gain,
        "proxy_gain": p_gain,
        "fit": fit_gao_bon(curve["d"], g_gain),
        "gold_peak_n": curve["n"][peak],
        "peak_pools": int(peak_pools),
        "overoptimized": bool(
            peak < len(peak_gold) - 1
            and peak_gold[-1] < peak_gold[peak]
            and peak_proxy[-1] > peak_proxy[peak]
        ),
    }


def _number(v: object) -> bool:
    """A finite real number (not a bool, not text)."""
    return isinstance(v, Real) and not isinstance(v, bool | np.bool_) and math.isfinite(v)


def correlation_cis(
    x: np.ndarray, y: np.ndarray, *, n_boot: int, alpha: float, seed: int
) -> dict[str, object]:
    """docs/methods/D8-best-of-n-eval.md — percentile bootstrap CIs of Pearson and Spearman:
    the (x, y) pairs resampled with replacement (one seeded draw for both), a resample where a
    correlation is undefined (a constant side) skipped, and ``ci_resamples`` says how many of
    ``n_boot`` each interval kept (``(nan, nan)`` when none)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    out: dict[str, object] = {"ci_resamples": {}}
    for name, stat in (("pearson", pearson), ("spearman", spearman)):
        reps = np.array([stat(x[i], y[i]) for i in idx])
        out[f"{name}_ci"] = list(percentile_ci(reps, alpha))
        out["ci_resamples"][name] = int(np.isfinite(reps).sum())  # type: ignore[index]
    return out


def benchmark_correlation(
    bench: Mapping[object, object],
    downstream: Mapping[object, object],
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """docs/methods/D8-best-of-n-eval.md — Pearson and Spearman between per-reward benchmark
    scores and a per-reward downstream metric (e.g. best-of-N gain), over the rewards with a
    finite number in both (n ≥ 3 required; names in both whose value is NaN, inf or not a
    number are listed in ``left_out``), with seeded percentile bootstrap CIs at level
    ``1 − alpha`` (:func:`correlation_cis`). A constant side has no correlation: NaN, and a
    ``note`` says which side."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or not _number(alpha):
        raise ValueError(f"n_boot must be a whole number and alpha a number: {n_boot!r}, {alpha!r}")
    check_bootstrap_args(n_boot, alpha)
    both = sorted((k for k in bench if k in downstream), key=str)
    names = [k for k in both if _number(bench[k]) and _number(downstream[k])]
    out: dict = {
        "n": len(names),
        "rewards": names,
        "left_out": [k for k in both if k not in set(names)],
        "n_boot": int(n_boot),
        "ci_level": 1 - alpha,
    }
    if len(names) < 3:
        none = {"pearson_ci": None, "spearman_ci": None, "ci_resamples": None}
        note = "needs at least 3 rewards with both numbers"
        return {**out, "pearson": None, "spearman": None, **none, "note": note}
    x = np.array([bench[k] for k in names], dtype=np.float64)
    y = np.array([downstream[k] for k in names], dtype=np.float64)
    out |= {"pearson": pearson(x, y), "spearman": spearman(x, y)}
    out |= correlation_cis(x, y, n_boot=int(n_boot), alpha=alpha, seed=seed)
    flat = [
        side for side, v in (("benchmark scores", x), ("downstream values", y)) if np.all(v == v[0])
    ]
    if flat:
        out["note"] = f"the {' and the '.join(flat)} are the same for every reward: no correlation"
    return out

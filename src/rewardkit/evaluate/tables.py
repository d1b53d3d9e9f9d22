"""One pure function per analysis of an :class:`EvalResult`, each giving its report
:class:`~rewardkit.evaluate.rows.Table` (or None when the result has no data for it).

:data:`TABLES` is their order in ``report.md`` and ``report.html``; the renderers lay every
table out the same way. The numbers come from :mod:`.analyses`; here they are only formatted."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rewardkit.evaluate.augmented import augmentation_table
from rewardkit.evaluate.calibration import temperature_has_signal
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rows import Table, fmt, fmt_ci

#: Length strata of the length-bias analysis, in table order.
STRATA = ("chosen shorter", "matched", "chosen longer")


def _per_reward(result: EvalResult, key: str) -> list[tuple[str, Any]]:
    """``(reward name, analysis)`` for every reward that has analysis ``key``."""
    return [(r.name, r.analyses[key]) for r in result.rewards if key in r.analyses]


def _run_level(result: EvalResult) -> dict[str, Any]:
    return result.extra.get("analyses", {})


def _temperature(t: float) -> str:
    return fmt(t, nd=4) if temperature_has_signal(t) else "no signal"


def leaderboard(result: EvalResult) -> Table | None:
    """The rewards sorted by score, with their headline analyses (more than one reward)."""
    if len(result.rewards) < 2:
        return None
    ranked = sorted(result.rewards, key=lambda r: -(r.score if math.isfinite(r.score) else -1))
    rows = [
        [
            str(i + 1),
            r.name,
            fmt_ci(r.score, r.ci),
            fmt(r.analyses.get("calibration", {}).get("ece")),
            fmt(r.analyses.get("length_bias", {}).get("spearman")),
            fmt(r.analyses.get("best_of_n", {}).get("gain")),
        ]
        for i, r in enumerate(ranked)
    ]
    return Table(
        "Leaderboard",
        ["#", "reward", "score [95% CI]", "ECE", "length ρ", "BoN gain"],
        rows,
        "Sorted by score. ECE: 10 uniform bins. length ρ: Spearman of reward with length.",
    )


def augmentations(result: EvalResult) -> Table | None:
    """Sensitivity and invariance on augmented pairs (docs/methods/A8-crome.md)."""
    named = _per_reward(result, "augmentations")
    return augmentation_table(named) if named else None


def calibration(result: EvalResult) -> Table | None:
    """ECE at three bin counts, ACE, MCE, Brier and the fitted temperature
    (docs/methods/D7-calibration.md)."""
    cal = _per_reward(result, "calibration")
    if not cal:
        return None
    rows = [
        [
            n,
            fmt(c["n_pairs"]),
            fmt(c["ece_5"]),
            fmt(c["ece_10"]),
            fmt(c["ece_20"]),
            fmt(c["ace"]),
            fmt(c["mce"]),
            fmt(c["brier"]),
            _temperature(float(c["temperature"])),
            (
                f"{fmt(c['heldout']['ece_before'])} → {fmt(c['heldout']['ece_after'])}"
                if "heldout" in c
                else "–"
            ),
        ]
        for n, c in cal
    ]
    return Table(
        "Calibration (docs/methods/D7-calibration.md)",
        [
            "reward",
            "pairs",
            "ECE 5",
            "ECE 10",
            "ECE 20",
            "ACE",
            "MCE",
            "Brier",
            "T (all)",
            "held-out ECE before → after",
        ],
        rows,
        "P(chosen ≻ rejected) = σ(r_c − r_r) (judges: their probability); both orders of every "
        "chosen/rejected pair. Bins: uniform on [0, 1], an inner edge goes to the lower bin. "
        "T: temperature fitted by NLL (no signal: the fit ran off to flat 0.5 "
        "probabilities); held-out: fitted on a seeded half of the examples, "
        "measured on the other half.",
    )


def length_bias(result: EvalResult) -> Table:
    """Correlation of every reward with response length and its accuracy per length stratum
    (always shown: ``–`` where lengths are undefined)."""
    rows = []
    for r in result.rewards:
        lb = r.analyses.get("length_bias", {})
        strata = [lb.get("strata", {}).get(s) or {} for s in STRATA]
        rows.append(
            [r.name, fmt(lb.get("pearson")), fmt(lb.get("spearman"))]
            + [f"{fmt(s.get('accuracy'), True)} (n={s.get('n', 0)})" for s in strata]
        )
    return Table(
        "Length bias",
        ["reward", "Pearson(len)", "Spearman(len)", *(f"acc: {s}" for s in STRATA)],
        rows,
        "Length in characters; matched = lengths within ±10% of the longer.",
    )


def length_degenerate(result: EvalResult) -> Table | None:
    """Subsets that 'the longer response wins' solves (or fails) almost always."""
    deg = _run_level(result).get("length_degenerate_subsets", {})
    if not deg:
        return None
    flagged = [(s, d) for s, d in deg.items() if d.get("flag")]
    rows = [
        [s, fmt(d["length_accuracy"], True), fmt(d["n_pairs"]), str(d["flag"])] for s, d in flagged
    ]
    return Table(
        "Subsets the length baseline solves",
        ["subset", "accuracy of 'longer wins'", "pairs", "flag"],
        rows or [["(none)", "–", "–", "–"]],
        "Flagged when 'longer wins' is ≥ 90% or ≤ 10% accurate: the subset measures length.",
    )


def rm_bench(result: EvalResult) -> Table | None:
    """RM-Bench hard / normal / easy per domain and in total."""
    rb = _per_reward(result, "rm_bench")
    if not rb:
        return None
    rows = []
    for n, m in rb:
        for d, v in m["domains"].items():
            levels = [fmt(v[k], True) for k in ("hard", "normal", "easy", "avg")]
            rows.append([n, d, fmt(v["n"]), *levels])
        t = m["total"]
        rows.append([n, "total", "", *(fmt(t[k], True) for k in ("hard", "normal", "easy", "avg"))])
    return Table(
        "RM-Bench",
        ["reward", "domain", "n", "hard", "normal", "easy", "avg"],
        rows,
        "Hard: upper-right triangle of the chosen-style × rejected-style matrix; "
        "normal: diagonal; easy: lower-left; total: mean over domains.",
    )


def accuracy_with_ties(result: EvalResult) -> Table | None:
    """Tie-calibrated accuracy on human-labelled ties (docs/methods/D6-multimodal-benchmarks.md)."""
    tie = _per_reward(result, "accuracy_with_ties")
    if not tie:
        return None
    rows = [
        [
            n,
            fmt(t["with_ties"], True),
            fmt(t["epsilon"], nd=4),
            fmt(t["without_ties"], True),
            fmt(t["n"]),
            fmt(t["n_ties"]),
        ]
        for n, t in tie
    ]
    return Table(
        "Accuracy with ties (docs/methods/D6-multimodal-benchmarks.md)",
        ["reward", "with ties", "best ε", "without ties", "n", "human ties"],
        rows,
        "Tie-calibrated accuracy: the model calls a tie when |margin| ≤ ε, best ε.",
    )


def acc_plus(result: EvalResult) -> Table | None:
    """MM-RLHF ACC and ACC+ (docs/methods/D6-multimodal-benchmarks.md)."""
    accp = _per_reward(result, "acc_plus")
    if not accp:
        return None
    rows = [
        [n, fmt(a["acc"], True), fmt(a["acc_plus"], True), fmt(a["n_items"]), fmt(a["n_groups"])]
        for n, a in accp
    ]
    return Table(
        "MM-RLHF ACC / ACC+ (docs/methods/D6-multimodal-benchmarks.md)",
        ["reward", "ACC", "ACC+", "items", "ids"],
        rows,
        "ACC: items correct; ACC+: ids whose every item is correct.",
    )


def languages(result: EvalResult) -> Table | None:
    """Score per language and its gap to English (docs/methods/D3-m-rewardbench.md)."""
    lang = _per_reward(result, "languages")
    if not lang:
        return None
    rows = []
    for n, L in lang:
        for k, v in L["languages"].items():
            gap = fmt(L["gap_to_english"].get(k), True) if L["english"] else "–"
            rows.append([n, k, fmt(v["n"]), fmt(v["score"], True), gap])
    return Table(
        "Per language (docs/methods/D3-m-rewardbench.md)",
        ["reward", "language", "n", "score", "gap to English"],
        rows,
        "Language score: mean of its count-weighted section scores.",
    )


def ratings(result: EvalResult) -> Table | None:
    """Correlations of every reward with every rated attribute of the responses."""
    rat = _per_reward(result, "ratings")
    if not rat:
        return None
    rows = [
        [n, a, fmt(c["n"]), fmt(c["pearson"]), fmt(c["spearman"]), fmt(c["kendall"])]
        for n, cs in rat
        for a, c in cs.items()
    ]
    return Table(
        "Ratings correlations",
        ["reward", "attribute", "n", "Pearson", "Spearman", "Kendall τ-b"],
        rows,
    )


def best_of_n(result: EvalResult) -> Table | None:
    """Best-of-N gold curve and the overoptimization fit (docs/methods/D8-best-of-n-eval.md,
    docs/methods/D9-overoptimization.md)."""
    bon = [r for r in result.rewards if "best_of_n" in r.analyses]
    if not bon:
        return None
    rows = []
    for r in bon:
        b, o = r.analyses["best_of_n"], r.analyses.get("overoptimization", {})
        fit = o.get("fit", {})
        rows.append(
            [
                r.name,
                fmt(b["n"][-1]),
                fmt(b["gold"][0]),
                fmt(b["gold"][-1]),
                fmt(b["oracle"][-1]),
                fmt(b["gain"]),
                fmt(fit.get("alpha")),
                fmt(fit.get("beta")),
                fmt(fit.get("d_star")),
                fmt(o.get("gold_peak_n")),
                fmt(o.get("overoptimized")),
            ]
        )
    return Table(
        "Best-of-N and overoptimization (docs/methods/D8-best-of-n-eval.md, "
        "docs/methods/D9-overoptimization.md)",
        [
            "reward",
            "N",
            "gold@1",
            "gold@N",
            "oracle@N",
            "gain",
            "Gao α",
            "Gao β",
            "d*",
            "gold peaks at N",
            "overoptimized",
        ],
        rows,
        "Expected gold of the best-of-N pick (unbiased estimator over each pool); "
        "KL = log N − (N−1)/N, d = sqrt(KL); Gao fit R(d) = d(α − βd).",
    )


def bon_correlation(result: EvalResult) -> Table | None:
    """Correlation of benchmark accuracy with best-of-N gain across the run's rewards."""
    bc = _run_level(result).get("bon_correlation")
    if not bc:
        return None
    return Table(
        "Accuracy ↔ best-of-N gain",
        ["rewards", "Pearson", "Spearman"],
        [[str(bc["n"]), fmt(bc.get("pearson")), fmt(bc.get("spearman"))]],
        bc.get("note", "Across the rewards of this run."),
    )


def probing(result: EvalResult) -> Table | None:
    """Linear-probe accuracy per rated dimension (docs/methods/D5-probing.md)."""
    prb = [(n, p) for n, p in _per_reward(result, "probing") if p.get("n")]
    if not prb:
        return None
    rows = [
        [
            n,
            d,
            fmt(v["classes"]),
            fmt(v["accuracy"], True),
            fmt(v["majority"], True),
            fmt(v["n_test"]),
        ]
        for n, pr in prb
        for d, v in pr["dimensions"].items()
    ]
    return Table(
        "Representation probing (docs/methods/D5-probing.md)",
        ["reward", "dimension", "classes", "probe accuracy", "majority baseline", "test n"],
        rows,
        "Bias-free linear probe on the last-token hidden state; seeded 70/30 split.",
    )


def position_bias(result: EvalResult) -> Table | None:
    """How often a pairwise judge's verdict flips with the order of the pair."""
    pos = [(r.name, r.position_bias) for r in result.rewards if r.position_bias is not None]
    if not pos:
        return None
    return Table(
        "Position bias",
        ["reward", "verdict flips when the order flips"],
        [[n, fmt(b, True) + "%"] for n, b in pos],
        "Pairwise judges, both orders.",
    )


def comparisons(result: EvalResult) -> Table | None:
    """Paired bootstrap and McNemar test for every compared pair of rewards."""
    comps = _run_level(result).get("comparisons", [])
    if not comps:
        return None
    rows = [
        [
            c["a"],
            c["b"],
            fmt_ci(c["bootstrap"]["diff"], c["bootstrap"]["ci"]),
            fmt(c["bootstrap"]["p_value"]),
            f"{c['mcnemar']['b']} / {c['mcnemar']['c']}",
            fmt(c["mcnemar"]["p_value"], nd=4),
            fmt(c["significant"]),
        ]
        for c in comps
    ]
    return Table(
        "Paired comparisons",
        [
            "A",
            "B",
            "acc A − B [95% CI]",
            "bootstrap p",
            "McNemar b / c",
            "McNemar p",
            "significant",
        ],
        rows,
        "Paired bootstrap over examples (difference in points); McNemar exact on "
        "examples where both outcomes are 0/1. Significant: the CI excludes 0.",
    )


def robustness(result: EvalResult) -> Table | None:
    """Whether scores stay the same under two token budgets and a shuffled order."""
    rob = _run_level(result).get("robustness")
    if not rob:
        return None
    rows = [
        [
            n,
            str(v["budgets"]),
            fmt(v["identical"]),
            ", ".join(f"{k}: {d['max_abs_diff']:.2g}" for k, d in v["runs"].items()),
        ]
        for n, v in rob.items()
    ]
    return Table(
        "Robustness",
        ["reward", "budgets", "identical", "max |Δ| per run"],
        rows,
        "Same scores under two token budgets and a shuffled order (cache bypassed).",
    )


#: Every analysis table, in report order.
TABLES: tuple[Callable[[EvalResult], Table | None], ...] = (
    leaderboard,
    augmentations,
    calibration,
    length_bias,
    length_degenerate,
    rm_bench,
    accuracy_with_ties,
    acc_plus,
    languages,
    ratings,
    best_of_n,
    bon_correlation,
    probing,
    position_bias,
    comparisons,
    robustness,
)


def analysis_tables(result: EvalResult) -> list[Table]:
    """The table of every analysis the result has data for, in :data:`TABLES` order."""
    return [t for t in (table(result) for table in TABLES) if t is not None]

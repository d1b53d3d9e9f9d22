"""One pure function per analysis of an :class:`EvalResult`, each giving its report
:class:`~rewardkit.evaluate.rows.Table` (or None when the result has no data for it).

:data:`TABLES` is their order in ``report.md`` and ``report.html``; the renderers lay every
table out the same way. The numbers come from :mod:`.analyses`; here they are only formatted."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rewardkit.evaluate.augmented import augmentation_table
from rewardkit.evaluate.calibration import (
    MIN_CALIBRATION_EXAMPLES,
    applied_temperature_text,
    calibration_too_few,
    reported_ece,
    temperature_label,
)
from rewardkit.evaluate.context_use import context_use_table
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rows import (
    AUROC_NOTE,
    MIN_CI_N,
    Table,
    auroc_cells,
    ci_outcomes,
    few_points_note,
    fmt,
    mcnemar_cells,
    p_text,
    score_ci_text,
    sign_cell,
    value_ci,
)
from rewardkit.evaluate.underspec import underspecification_table

#: Length strata of the length-bias analysis, in table order.
STRATA = ("chosen shorter", "matched", "chosen longer")


def _per_reward(result: EvalResult, key: str) -> list[tuple[str, Any]]:
    """``(reward name, analysis)`` for every reward that has analysis ``key``."""
    return [(r.name, r.analyses[key]) for r in result.rewards if key in r.analyses]


def _per_reward_table(
    result: EvalResult,
    key: str,
    title: str,
    columns: list[str],
    rows_of: Callable[[str, Any], list[list[str]]],
    note: str = "",
) -> Table | None:
    """The table of per-reward analysis ``key``: ``rows_of(reward name, analysis)`` gives each
    reward's rows; None when no reward has a row."""
    rows = [row for name, a in _per_reward(result, key) for row in rows_of(name, a)]
    return Table(title, columns, rows, note) if rows else None


def _run_level(result: EvalResult) -> dict[str, Any]:
    return result.extra.get("analyses", {})


def _temperature(t: float) -> str:
    return temperature_label(t) or fmt(t, nd=4)


def leaderboard(result: EvalResult) -> Table | None:
    """The rewards sorted by score, with their headline analyses (more than one reward)."""
    if len(result.rewards) < 2:
        return None
    ranked = sorted(result.rewards, key=lambda r: -(r.score if math.isfinite(r.score) else -1))
    rows = [
        [
            str(i + 1),
            r.name,
            score_ci_text(r.score, r.ci, ci_outcomes(r)),
            fmt(reported_ece(r.analyses.get("calibration"))),
            fmt(r.analyses.get("length_bias", {}).get("spearman")),
            fmt(r.analyses.get("best_of_n", {}).get("gain")),
        ]
        for i, r in enumerate(ranked)
    ]
    return Table(
        "Leaderboard",
        ["#", "reward", "score [95% CI]", "ECE", "length ρ", "BoN gain"],
        rows,
        "Sorted by score. ECE: 10 uniform bins. length ρ: Spearman of reward with length."
        + _length_few(result),
    )


def _length_few(result: EvalResult) -> str:
    """Why a length correlation is ``–``: the rewards with too few scored responses."""
    counts = [r.analyses.get("length_bias", {}).get("n") for r in result.rewards]
    return few_points_note(counts, "responses with a finite score")


def augmentations(result: EvalResult) -> Table | None:
    """Sensitivity and invariance on augmented pairs (docs/methods/A8-crome.md)."""
    named = _per_reward(result, "augmentations")
    return augmentation_table(named) if named else None


def _calibration_rows(name: str, c: dict[str, Any]) -> list[list[str]]:
    keys = ("n_pairs", "ece_5", "ece_10", "ece_20", "ace", "mce", "brier")
    if calibration_too_few(c):
        few = f"too few examples (n={c.get('n_examples', '?')}, < {MIN_CALIBRATION_EXAMPLES})"
        return [[name, fmt(c["n_pairs"]), few, *("–" for _ in keys[2:]), "–", "–"]]
    h = c.get("heldout")
    heldout = f"{fmt(h['ece_before'])} → {fmt(h['ece_after'])}" if h is not None else "–"
    return [[name, *(fmt(c[k]) for k in keys), _temperature(float(c["temperature"])), heldout]]


_CALIBRATION_COLUMNS = ["reward", "pairs", "ECE 5", "ECE 10", "ECE 20", "ACE", "MCE", "Brier"]
_CALIBRATION_COLUMNS += ["T (all)", "held-out ECE before → after"]


def calibration(result: EvalResult) -> Table | None:
    """ECE at three bin counts, ACE, MCE, Brier and the fitted temperature
    (docs/methods/D7-calibration.md). A reward with no scored pair, beside rewards that have
    one, gets a row saying so (rather than no row)."""
    table = _per_reward_table(
        result,
        "calibration",
        "Calibration (docs/methods/D7-calibration.md)",
        _CALIBRATION_COLUMNS,
        _calibration_rows,
        "P(chosen ≻ rejected) = σ(r_c − r_r) (judges: their probability); both orders of every "
        "chosen/rejected pair. Bins: uniform on [0, 1], an inner edge goes to the lower bin. "
        "T: temperature fitted by NLL (no signal: the fit ran off to flat 0.5 "
        "probabilities; separated: every margin on the right side, T runs to 0); held-out: "
        "fitted on a seeded half of the examples, measured on the other half. Fewer than "
        f"{MIN_CALIBRATION_EXAMPLES} examples: no figure is printed (report.json keeps them).",
    )
    if table is None:
        return None
    missing = [r.name for r in result.rewards if "calibration" not in r.analyses]
    blank = ["–"] * (len(table.columns) - 3)
    table = table._replace(
        rows=[*table.rows, *([n, "0", "no pair scored", *blank] for n in missing)]
    )
    saved = {n: applied_temperature_text(c) for n, c in _per_reward(result, "calibration")}
    if not any(saved.values()):
        return table
    rows = [[*row, saved.get(row[0]) or "–"] for row in table.rows]
    return table._replace(columns=[*table.columns, "saved temperature (--temperature)"], rows=rows)


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
        "Length in characters; matched = lengths within ±10% of the longer." + _length_few(result),
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


_LEVELS = ("hard", "normal", "easy", "avg")


def _rm_bench_rows(name: str, m: dict[str, Any]) -> list[list[str]]:
    rows = [
        [name, d, fmt(v["n"]), *(fmt(v[k], True) for k in _LEVELS)] for d, v in m["domains"].items()
    ]
    return [*rows, [name, "total", "", *(fmt(m["total"][k], True) for k in _LEVELS)]]


def rm_bench(result: EvalResult) -> Table | None:
    """RM-Bench hard / normal / easy per domain and in total."""
    return _per_reward_table(
        result,
        "rm_bench",
        "RM-Bench",
        ["reward", "domain", "n", "hard", "normal", "easy", "avg"],
        _rm_bench_rows,
        "Hard: upper-right triangle of the chosen-style × rejected-style matrix; "
        "normal: diagonal; easy: lower-left; total: mean over domains.",
    )


def accuracy_with_ties(result: EvalResult) -> Table | None:
    """Tie-calibrated accuracy on human-labelled ties (docs/methods/D6-multimodal-benchmarks.md)."""
    return _per_reward_table(
        result,
        "accuracy_with_ties",
        "Accuracy with ties (docs/methods/D6-multimodal-benchmarks.md)",
        ["reward", "with ties", "best ε", "without ties", "n", "human ties"],
        lambda name, t: [
            [
                name,
                fmt(t["with_ties"], True),
                fmt(t["epsilon"], nd=4),
                fmt(t["without_ties"], True),
                fmt(t["n"]),
                fmt(t["n_ties"]),
            ]
        ],
        "Tie-calibrated accuracy: the model calls a tie when |margin| ≤ ε, best ε.",
    )


def acc_plus(result: EvalResult) -> Table | None:
    """MM-RLHF ACC and ACC+ (docs/methods/D6-multimodal-benchmarks.md)."""
    return _per_reward_table(
        result,
        "acc_plus",
        "MM-RLHF ACC / ACC+ (docs/methods/D6-multimodal-benchmarks.md)",
        ["reward", "ACC", "ACC+", "items", "ids"],
        lambda name, a: [
            [
                name,
                fmt(a["acc"], True),
                fmt(a["acc_plus"], True),
                fmt(a["n_items"]),
                fmt(a["n_groups"]),
            ]
        ],
        "ACC: items correct; ACC+: ids whose every item is correct.",
    )


def _language_rows(name: str, L: dict[str, Any]) -> list[list[str]]:
    rows = []
    for k, v in L["languages"].items():
        gap = fmt(L["gap_to_english"].get(k), True) if L["english"] else "–"
        rows.append([name, k, fmt(v["n"]), fmt(v["score"], True), gap])
    return rows


def languages(result: EvalResult) -> Table | None:
    """Score per language and its gap to English (docs/methods/D3-m-rewardbench.md)."""
    return _per_reward_table(
        result,
        "languages",
        "Per language (docs/methods/D3-m-rewardbench.md)",
        ["reward", "language", "n", "score", "gap to English"],
        _language_rows,
        "Language score: mean of its count-weighted section scores.",
    )


def ratings(result: EvalResult) -> Table | None:
    """Correlations of every reward with every rated attribute of the responses; AUROC columns
    when an attribute is a 0/1 label (unpaired preference data)."""
    attrs = [c for _, cs in _per_reward(result, "ratings") for c in cs.values()]
    labels = any("auroc" in c for c in attrs)  # columns, row cells and note say AUROC
    note = few_points_note([c.get("n") for c in attrs], "rated responses")
    columns = ["reward", "attribute", "n", "Pearson", "Spearman", "Kendall τ-b"]
    columns += ["AUROC", "AUROC within prompt (pairs)"] if labels else []
    cells = ("n", "pearson", "spearman", "kendall")
    return _per_reward_table(result, "ratings", "Ratings correlations", columns, lambda name, cs: [
        [name, a, *(fmt(c[k]) for k in cells), *(auroc_cells(c) if labels else [])]
        for a, c in cs.items()
    ], (note + (AUROC_NOTE if labels else "")).strip())  # fmt: skip


def _gain_cell(b: dict[str, Any]) -> str:
    pools = b.get("gain_pools")
    if pools is None or pools == b["n_pools"][0]:
        return fmt(b["gain"])
    return f"{fmt(b['gain'])} ({pools} pools)"


_BON_COLUMNS = ["reward", "N", "gold@1", "gold@N", "oracle@N", "gain", "Gao α", "Gao β", "d*"]
_BON_COLUMNS += ["gold peaks at N", "overoptimized"]


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
                _gain_cell(b),
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
        _BON_COLUMNS,
        rows,
        "Expected gold of the best-of-N pick (unbiased estimator over each pool; a reward tie "
        "is a uniform pick among the tied); gold@1 and gold@N over the pools that reach each "
        "N; gain = gold@N − gold@1 on the pools that reach N (their count beside it when "
        "smaller pools are left out); "
        "KL = log N − (N−1)/N, d = sqrt(KL); Gao fit R(d) = d(α − βd).",
    )


def bon_correlation(result: EvalResult) -> Table | None:
    """Correlation of benchmark accuracy with best-of-N gain across the run's rewards."""
    bc = _run_level(result).get("bon_correlation")
    if not bc:
        return None
    return Table(
        "Accuracy ↔ best-of-N gain",
        ["rewards", "Pearson [95% CI]", "Spearman [95% CI]"],
        [
            [str(bc["n"])]
            + [value_ci(bc.get(k), bc.get(f"{k}_ci")) for k in ("pearson", "spearman")]
        ],
        bc.get(
            "note",
            "Across the rewards of this run; bootstrap CIs over the rewards "
            "(docs/methods/D8-best-of-n-eval.md).",
        ),
    )


def probing(result: EvalResult) -> Table | None:
    """Linear-probe accuracy per rated dimension (docs/methods/D5-probing.md)."""
    return _per_reward_table(
        result,
        "probing",
        "Representation probing (docs/methods/D5-probing.md)",
        ["reward", "dimension", "classes", "probe accuracy", "majority baseline", "test n"],
        lambda name, pr: [
            [
                name,
                d,
                fmt(v["classes"]),
                fmt(v["accuracy"], True),
                fmt(v["majority"], True),
                fmt(v["n_test"]),
            ]
            for d, v in pr["dimensions"].items()
            if pr.get("n")
        ],
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


def _comparison_cells(result: EvalResult, c: dict[str, Any], n_boot: int | None) -> list[str]:
    """The Score difference with its CI, and the bootstrap p; the difference alone and no p
    when either Score's CI rests on fewer than :data:`~.rows.MIN_CI_N` outcomes (as the score
    table shows them: a bootstrap that cannot vary is no test)."""
    by_name = {r.name: r for r in result.rewards}
    counts = [ci_outcomes(by_name.get(c[k])) for k in ("a", "b")]
    few = min((n for n in counts if n is not None), default=None)
    b = c["bootstrap"]
    p = "–" if few is not None and few < MIN_CI_N else p_text(b["p_value"], n_boot, nd=3)
    return [score_ci_text(b["diff"], b["ci"], few), p]


def comparisons(result: EvalResult) -> Table | None:
    """The paired comparison of every compared pair of rewards: the Score difference with its
    paired, stratified bootstrap CI; the exact tests on per-example outcomes."""
    comps = _run_level(result).get("comparisons", [])
    if not comps:
        return None
    of_score = all(c["bootstrap"].get("of") == "score" for c in comps)
    n_boot = result.settings.get("n_boot")
    n_boot = n_boot if isinstance(n_boot, int) and n_boot > 0 else None
    rows = [
        [
            c["a"],
            c["b"],
            *_comparison_cells(result, c, n_boot),
            sign_cell(c),
            *mcnemar_cells(c),
            fmt(c["significant"]),
        ]
        for c in comps
    ]
    return Table(
        "Paired comparisons",
        [
            "A",
            "B",
            f"{'Score' if of_score else 'acc'} A − B [95% CI]",
            "bootstrap p",
            "per-example outcomes: A / B higher (sign test p)",
            "per-example McNemar b / c",
            "McNemar p",
            "significant",
        ],
        rows,
        (
            "Score A − B: the difference of the Scores in the table, with a paired bootstrap "
            "stratified by subset (the same examples drawn for both rewards within each subset, "
            "both Scores recomputed with the table's weights). "
            if of_score
            else "acc A − B: paired bootstrap of the per-example outcome average (older report). "
        )
        + "The exact tests are on per-example outcomes, which weigh subsets and sections "
        "otherwise than the Score: the exact sign test on the paired differences (McNemar's "
        "test on 0/1 outcomes, ½ tie credit included), and McNemar exact on examples where "
        "both outcomes are 0/1. Significant: the CI excludes 0 and the sign test has p < α, "
        "with more examples going the way of the difference.",
    )


def robustness(result: EvalResult) -> Table | None:
    """Whether scores stay the same under two token budgets and a shuffled order."""
    rob = _run_level(result).get("robustness")
    if not rob:
        return None
    rows = [
        [
            n,
            "–" if v["budgets"] is None else ", ".join(map(str, v["budgets"])),  # a rule: none
            fmt(v["identical"])
            + (f" (within {v['atol']:g})" if v.get("within_atol") and not v["identical"] else ""),
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
    context_use_table,
    acc_plus,
    languages,
    ratings,
    best_of_n,
    bon_correlation,
    underspecification_table,
    probing,
    position_bias,
    comparisons,
    robustness,
)


def analysis_tables(result: EvalResult) -> list[Table]:
    """The table of every analysis the result has data for, in :data:`TABLES` order."""
    return [t for t in (table(result) for table in TABLES) if t is not None]

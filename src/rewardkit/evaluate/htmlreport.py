"""``report.html``: one self-contained page (tables + matplotlib PNGs embedded as base64, no
scripts, no external resources) and the Markdown of the analyses for ``report.md``."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

from rewardkit.evaluate.augmented import augmentation_table
from rewardkit.evaluate.calibration import temperature_has_signal
from rewardkit.evaluate.result import EvalResult


def _temperature(t: float) -> str:
    return _f(t, nd=4) if temperature_has_signal(t) else "no signal"


def _f(x: Any, pct: bool = False, nd: int = 3) -> str:
    if x is None or isinstance(x, str) or (isinstance(x, float) and not math.isfinite(x)):
        return "–" if x is None or isinstance(x, float) else str(x)
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{100 * x:.1f}" if pct else f"{x:.{nd}f}"


def _ci(score: float, ci: Sequence[float]) -> str:
    return f"{_f(score, True)} [{_f(ci[0], True)}, {_f(ci[1], True)}]"


def analysis_tables(result: EvalResult) -> list[tuple[str, list[str], list[list[str]], str]]:
    """``(title, header, rows, note)`` of every analysis table the result has data for."""
    R = result.rewards
    A = result.extra.get("analyses", {})
    out = []
    if len(R) > 1:
        rows = sorted(R, key=lambda r: -(r.score if math.isfinite(r.score) else -1))
        out.append(
            (
                "Leaderboard",
                ["#", "reward", "score [95% CI]", "ECE", "length ρ", "BoN gain"],
                [
                    [
                        str(i + 1),
                        r.name,
                        _ci(r.score, r.ci),
                        _f(r.analyses.get("calibration", {}).get("ece")),
                        _f(r.analyses.get("length_bias", {}).get("spearman")),
                        _f(r.analyses.get("best_of_n", {}).get("gain")),
                    ]
                    for i, r in enumerate(rows)
                ],
                "Sorted by score. ECE: 10 uniform bins. length ρ: Spearman of reward with length.",
            )
        )
    aug = [(r.name, r.analyses["augmentations"]) for r in R if "augmentations" in r.analyses]
    if aug:
        out.append(augmentation_table(aug))
    cal = [(r.name, r.analyses["calibration"]) for r in R if "calibration" in r.analyses]
    if cal:
        out.append(
            (
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
                [
                    [
                        n,
                        _f(c["n_pairs"]),
                        _f(c["ece_5"]),
                        _f(c["ece_10"]),
                        _f(c["ece_20"]),
                        _f(c["ace"]),
                        _f(c["mce"]),
                        _f(c["brier"]),
                        _temperature(float(c["temperature"])),
                        (
                            f"{_f(c['heldout']['ece_before'])} → {_f(c['heldout']['ece_after'])}"
                            if "heldout" in c
                            else "–"
                        ),
                    ]
                    for n, c in cal
                ],
                "P(chosen ≻ rejected) = σ(r_c − r_r) (judges: their probability); both orders of every "
                "chosen/rejected pair. Bins: uniform on [0, 1], an inner edge goes to the lower bin. "
                "T: temperature fitted by NLL (no signal: the fit ran off to flat 0.5 "
                "probabilities); held-out: fitted on a seeded half of the examples, "
                "measured on the other half.",
            )
        )
    out.append(
        (
            "Length bias",
            [
                "reward",
                "Pearson(len)",
                "Spearman(len)",
                "acc: chosen shorter",
                "acc: matched",
                "acc: chosen longer",
            ],
            [
                [
                    r.name,
                    _f(r.analyses.get("length_bias", {}).get("pearson")),
                    _f(r.analyses.get("length_bias", {}).get("spearman")),
                ]
                + [
                    f"{_f((r.analyses.get('length_bias', {}).get('strata', {}).get(s) or {}).get('accuracy'), True)}"
                    f" (n={(r.analyses.get('length_bias', {}).get('strata', {}).get(s) or {}).get('n', 0)})"
                    for s in ("chosen shorter", "matched", "chosen longer")
                ]
                for r in R
            ],
            "Length in characters; matched = lengths within ±10% of the longer.",
        )
    )
    deg = A.get("length_degenerate_subsets", {})
    flagged = [(s, d) for s, d in deg.items() if d.get("flag")]
    if deg:
        out.append(
            (
                "Subsets the length baseline solves",
                ["subset", "accuracy of 'longer wins'", "pairs", "flag"],
                [
                    [s, _f(d["length_accuracy"], True), _f(d["n_pairs"]), d["flag"]]
                    for s, d in flagged
                ]
                or [["(none)", "–", "–", "–"]],
                "Flagged when 'longer wins' is ≥ 90% or ≤ 10% accurate: the subset measures length.",
            )
        )
    rb = [(r.name, r.analyses["rm_bench"]) for r in R if "rm_bench" in r.analyses]
    if rb:
        rows = []
        for n, m in rb:
            for d, v in m["domains"].items():
                rows.append(
                    [
                        n,
                        d,
                        _f(v["n"]),
                        _f(v["hard"], True),
                        _f(v["normal"], True),
                        _f(v["easy"], True),
                        _f(v["avg"], True),
                    ]
                )
            t = m["total"]
            rows.append(
                [
                    n,
                    "total",
                    "",
                    _f(t["hard"], True),
                    _f(t["normal"], True),
                    _f(t["easy"], True),
                    _f(t["avg"], True),
                ]
            )
        out.append(
            (
                "RM-Bench",
                ["reward", "domain", "n", "hard", "normal", "easy", "avg"],
                rows,
                "Hard: upper-right triangle of the chosen-style × rejected-style matrix; "
                "normal: diagonal; easy: lower-left; total: mean over domains.",
            )
        )
    tie = [
        (r.name, r.analyses["accuracy_with_ties"]) for r in R if "accuracy_with_ties" in r.analyses
    ]
    if tie:
        out.append(
            (
                "Accuracy with ties (docs/methods/D6-multimodal-benchmarks.md)",
                ["reward", "with ties", "best ε", "without ties", "n", "human ties"],
                [
                    [
                        n,
                        _f(t["with_ties"], True),
                        _f(t["epsilon"], nd=4),
                        _f(t["without_ties"], True),
                        _f(t["n"]),
                        _f(t["n_ties"]),
                    ]
                    for n, t in tie
                ],
                "Tie-calibrated accuracy: the model calls a tie when |margin| ≤ ε, best ε.",
            )
        )
    accp = [(r.name, r.analyses["acc_plus"]) for r in R if "acc_plus" in r.analyses]
    if accp:
        out.append(
            (
                "MM-RLHF ACC / ACC+ (docs/methods/D6-multimodal-benchmarks.md)",
                ["reward", "ACC", "ACC+", "items", "ids"],
                [
                    [
                        n,
                        _f(a["acc"], True),
                        _f(a["acc_plus"], True),
                        _f(a["n_items"]),
                        _f(a["n_groups"]),
                    ]
                    for n, a in accp
                ],
                "ACC: items correct; ACC+: ids whose every item is correct.",
            )
        )
    lang = [(r.name, r.analyses["languages"]) for r in R if "languages" in r.analyses]
    if lang:
        rows = []
        for n, L in lang:
            for k, v in L["languages"].items():
                rows.append(
                    [
                        n,
                        k,
                        _f(v["n"]),
                        _f(v["score"], True),
                        _f(L["gap_to_english"].get(k), True) if L["english"] else "–",
                    ]
                )
        out.append(
            (
                "Per language (docs/methods/D3-m-rewardbench.md)",
                ["reward", "language", "n", "score", "gap to English"],
                rows,
                "Language score: mean of its count-weighted section scores.",
            )
        )
    rat = [(r.name, r.analyses["ratings"]) for r in R if "ratings" in r.analyses]
    if rat:
        out.append(
            (
                "Ratings correlations",
                ["reward", "attribute", "n", "Pearson", "Spearman", "Kendall τ-b"],
                [
                    [n, a, _f(c["n"]), _f(c["pearson"]), _f(c["spearman"]), _f(c["kendall"])]
                    for n, cs in rat
                    for a, c in cs.items()
                ],
                "",
            )
        )
    bon = [
        (r.name, r.analyses["best_of_n"], r.analyses.get("overoptimization", {}))
        for r in R
        if "best_of_n" in r.analyses
    ]
    if bon:
        out.append(
            (
                "Best-of-N and overoptimization (docs/methods/D8-best-of-n-eval.md, docs/methods/D9-overoptimization.md)",
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
                [
                    [
                        n,
                        _f(b["n"][-1]),
                        _f(b["gold"][0]),
                        _f(b["gold"][-1]),
                        _f(b["oracle"][-1]),
                        _f(b["gain"]),
                        _f(o.get("fit", {}).get("alpha")),
                        _f(o.get("fit", {}).get("beta")),
                        _f(o.get("fit", {}).get("d_star")),
                        _f(o.get("gold_peak_n")),
                        _f(o.get("overoptimized")),
                    ]
                    for n, b, o in bon
                ],
                "Expected gold of the best-of-N pick (unbiased estimator over each pool); "
                "KL = log N − (N−1)/N, d = sqrt(KL); Gao fit R(d) = d(α − βd).",
            )
        )
    bc = A.get("bon_correlation")
    if bc:
        out.append(
            (
                "Accuracy ↔ best-of-N gain",
                ["rewards", "Pearson", "Spearman"],
                [[str(bc["n"]), _f(bc.get("pearson")), _f(bc.get("spearman"))]],
                bc.get("note", "Across the rewards of this run."),
            )
        )
    prb = [(r.name, r.analyses["probing"]) for r in R if r.analyses.get("probing", {}).get("n")]
    if prb:
        out.append(
            (
                "Representation probing (docs/methods/D5-probing.md)",
                ["reward", "dimension", "classes", "probe accuracy", "majority baseline", "test n"],
                [
                    [
                        n,
                        d,
                        _f(v["classes"]),
                        _f(v["accuracy"], True),
                        _f(v["majority"], True),
                        _f(v["n_test"]),
                    ]
                    for n, pr in prb
                    for d, v in pr["dimensions"].items()
                ],
                "Bias-free linear probe on the last-token hidden state; seeded 70/30 split.",
            )
        )
    pos = [(r.name, r.position_bias) for r in R if r.position_bias is not None]
    if pos:
        out.append(
            (
                "Position bias",
                ["reward", "verdict flips when the order flips"],
                [[n, _f(b, True) + "%"] for n, b in pos],
                "Pairwise judges, both orders.",
            )
        )
    comps = A.get("comparisons", [])
    if comps:
        out.append(
            (
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
                [
                    [
                        c["a"],
                        c["b"],
                        _ci(c["bootstrap"]["diff"], c["bootstrap"]["ci"]),
                        _f(c["bootstrap"]["p_value"]),
                        f"{c['mcnemar']['b']} / {c['mcnemar']['c']}",
                        _f(c["mcnemar"]["p_value"], nd=4),
                        _f(c["significant"]),
                    ]
                    for c in comps
                ],
                "Paired bootstrap over examples (difference in points); McNemar exact on "
                "examples where both outcomes are 0/1. Significant: the CI excludes 0.",
            )
        )
    rob = A.get("robustness")
    if rob:
        out.append(
            (
                "Robustness",
                ["reward", "budgets", "identical", "max |Δ| per run"],
                [
                    [
                        n,
                        str(v["budgets"]),
                        _f(v["identical"]),
                        ", ".join(f"{k}: {d['max_abs_diff']:.2g}" for k, d in v["runs"].items()),
                    ]
                    for n, v in rob.items()
                ],
                "Same scores under two token budgets and a shuffled order (cache bypassed).",
            )
        )
    return out


def analyses_markdown(result: EvalResult) -> str:
    """The analysis tables as Markdown (appended to ``report.md``)."""
    lines = []
    for title, header, rows, note in analysis_tables(result):
        lines += [
            "",
            f"## {title}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        if note:
            lines += ["", note]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.sec td{font-weight:bold;background:#f4f4f4}p.note{font-size:12px;color:#555;max-width:900px}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], bold_rows=()) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="sec"' if i in bold_rows else ""
        body.append(
            f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(result: EvalResult, title: str = "rewardkit evaluation") -> str:
    """The whole report as one HTML page; every figure is an ``<img>`` with a data URI."""
    from rewardkit.evaluate.plots import all_figures
    from rewardkit.evaluate.report import report_notes, summary_rows

    rows = summary_rows(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">benchmark <b>{html.escape(str(result.settings["benchmark"]))}</b>, '
        f"{result.dataset['n_examples']} examples, created {html.escape(result.created_at)}</p>",
        _table(
            ["", "n", *result.names],
            [[("" if r.bold else "\u00a0\u00a0") + r.label, str(r.n), *r.cells] for r in rows],
            bold_rows={i for i, r in enumerate(rows) if r.bold},
        ),
        "<ul>"
        + "".join(f'<li class="note">{html.escape(n)}</li>' for n in report_notes(result))
        + "</ul>",
    ]
    for key, fig_title, png in all_figures(result):
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<h2>{html.escape(fig_title)}</h2><img class="plot" id="plot-{key}" '
            f'alt="{html.escape(fig_title)}" src="data:image/png;base64,{data}">'
        )
    for t, header, trows, note in analysis_tables(result):
        parts.append(f"<h2>{html.escape(t)}</h2>" + _table(header, trows))
        if note:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def summary_lines(result: EvalResult) -> list[str]:
    """A few lines per reward for the terminal: RM-Bench hard/normal/easy, ECE, length
    correlation, best-of-N gain; then significant paired differences."""
    lines = []
    for r in result.rewards:
        a = r.analyses
        parts = []
        if "rm_bench" in a:
            t = a["rm_bench"]["total"]
            parts.append(
                f"RM-Bench hard {_f(t['hard'], True)} / normal {_f(t['normal'], True)} / "
                f"easy {_f(t['easy'], True)}"
            )
        if "calibration" in a:
            parts.append(f"ECE {_f(a['calibration']['ece'])}")
        if "length_bias" in a:
            parts.append(f"Spearman(len) {_f(a['length_bias']['spearman'])}")
        if "accuracy_with_ties" in a:
            parts.append(f"acc with ties {_f(a['accuracy_with_ties']['with_ties'], True)}")
        if "best_of_n" in a:
            b = a["best_of_n"]
            parts.append(f"BoN gold@{b['n'][-1]} {_f(b['gold'][-1])} (gain {_f(b['gain'])})")
        if parts:
            lines.append(f"{r.name}: " + "; ".join(parts))
    for c in result.extra.get("analyses", {}).get("comparisons", []):
        if c["significant"]:
            b = c["bootstrap"]
            lines.append(
                f"{c['a']} vs {c['b']}: {_ci(b['diff'], b['ci'])} points, significant "
                f"(McNemar p={_f(c['mcnemar']['p_value'], nd=4)})"
            )
    return lines

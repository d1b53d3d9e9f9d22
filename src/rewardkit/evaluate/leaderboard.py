"""Leaderboards across saved runs: ``rewardkit report DIR…`` merges several ``report.json``
files (no rescoring) into one table, with the accuracy↔best-of-N-gain correlation (docs/methods/D8-best-of-n-eval.md)
across every reward that has both numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardkit.evaluate.bestofn import benchmark_correlation
from rewardkit.evaluate.calibration import reported_ece
from rewardkit.evaluate.htmlreport import html_table
from rewardkit.evaluate.report import markdown_grid
from rewardkit.evaluate.result import EvalResult, RewardResult, jsonable, report_path
from rewardkit.evaluate.rows import MIN_CI_N, ci_n, few_points_note, valid_outcomes, value_ci
from rewardkit.evaluate.safetext import html_text, md_inline, visible

#: The data column of a run whose report.json records no data identity (made before it did).
UNKNOWN_DATA = "unknown"


def distinct_runs(dirs: Sequence[Path], warn: Callable[[str], Any]) -> list[Path]:
    """``dirs`` with each run once; ``warn`` is called with a line for each run named again
    (``out/a out/a``, ``out/a`` and ``out/a/report.json``, a glob overlapping another
    argument): listed twice, a run was counted twice in the accuracy↔best-of-N correlation (two
    rewards read as four points, Pearson 1.000)."""
    seen: dict[Path, Path] = {}
    for d in dirs:
        key = report_path(d).resolve()
        if key in seen:
            warn(f"{d} is the run {seen[key]} given again: it counts once")
        else:
            seen[key] = d
    return list(seen.values())


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """One distinct label per run directory: its name, lengthened by parent folders where two
    runs share it (``A/run``, ``B/run``, not ``run`` twice), and numbered where one run is given
    twice."""
    paths = [Path(d).resolve() for d in run_dirs]
    distinct = list(dict.fromkeys(paths))
    depth = dict.fromkeys(distinct, 1)

    def label(p: Path) -> str:
        return "/".join(p.parts[-depth[p] :]).lstrip("/") or str(p)

    while True:
        labels = {p: label(p) for p in distinct}
        grow = [
            p
            for p in distinct
            if depth[p] < len(p.parts) and list(labels.values()).count(labels[p]) > 1
        ]
        if not grow:
            break
        for p in grow:
            depth[p] += 1
    seen: dict[Path, int] = {}
    out = []
    for p in paths:
        seen[p] = seen.get(p, 0) + 1
        out.append(labels[p] if seen[p] == 1 else f"{labels[p]} #{seen[p]}")
    return out


def score_ci_outcomes(r: RewardResult) -> int | None:
    """How many outcomes the Score's CI rests on, by report.md's rule (:func:`.rows.ci_n`:
    the bootstrap resamples within subsets, so a Score whose scored subsets each hold fewer
    than :data:`~.rows.MIN_CI_N` has no CI); None when the report keeps no examples."""
    return min(valid_outcomes(r), ci_n(r)) if r.examples else None


def data_label(res: EvalResult) -> str:
    """The data a run scored, short: ``path#hash8`` from ``settings["data"]``, or
    :data:`UNKNOWN_DATA` for a report that does not record it."""
    data = res.settings.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
        return UNKNOWN_DATA
    return f"{data.get('path')}#{data['hash'][:8]}"


def _content(label: str) -> str:
    """The content-hash part of a :func:`data_label` (one file copied elsewhere is the same)."""
    return label.rpartition("#")[2]


def data_warnings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per benchmark whose merged runs used different (or unknown) data: their
    scores are not on the same examples, so their ranks do not compare."""
    lines = []
    for bench in dict.fromkeys(str(x["benchmark"]) for x in rows):
        # shown as text: a run label with a newline must not split the warning line
        runs = {visible(x["run"]): visible(x["data"]) for x in rows if str(x["benchmark"]) == bench}
        known = {d for d in runs.values() if d != UNKNOWN_DATA}
        unknown = [r for r, d in runs.items() if d == UNKNOWN_DATA]
        if len(runs) < 2 or (len({_content(d) for d in known}) <= 1 and not unknown):
            continue
        distinct = len({_content(d) for d in known}) > 1
        parts = [f"different data ({', '.join(sorted(known))})"] if distinct else []
        if unknown:
            parts.append(
                f"data unknown for {', '.join(unknown)} (a report.json made before rewardkit "
                "recorded it; the same data cannot be told)"
            )
        lines.append(
            f"benchmark {bench}: runs {', '.join(runs)}: {'; '.join(parts)}; rows are grouped "
            "by data and rank only within a group"
        )
    return lines


def leaderboard(runs: Sequence[tuple[str, EvalResult]]) -> dict[str, Any]:
    """Rows (one per run × reward column, sorted by score within each benchmark and data) and
    the accuracy↔best-of-N-gain correlation over rows that have a best-of-N curve;
    ``data_warnings`` names benchmarks whose runs used different or unknown data."""
    rows = []
    for label, res in runs:
        for r in res.rewards:
            rows.append(
                {
                    "run": label,
                    "benchmark": res.settings.get("benchmark"),
                    "data": data_label(res),
                    "reward": r.name,
                    "fingerprint": r.fingerprint,
                    "score": r.score,
                    "ci": list(r.ci),
                    "ci_outcomes": score_ci_outcomes(r),
                    "n": r.n_scored,
                    "ece": reported_ece(r.analyses.get("calibration")),
                    "length_spearman": r.analyses.get("length_bias", {}).get("spearman"),
                    "length_n": r.analyses.get("length_bias", {}).get("n"),
                    "bon_gain": r.analyses.get("best_of_n", {}).get("gain"),
                    "position_bias": r.position_bias,
                }
            )
    rows.sort(
        key=lambda x: (
            str(x["benchmark"]),
            _content(x["data"]),
            -(x["score"] if math.isfinite(x["score"]) else -9),
        )
    )
    key = point_keys(rows)
    gains = {k: x["bon_gain"] for k, x in zip(key, rows, strict=True) if x["bon_gain"] is not None}
    scores = {k: x["score"] for k, x in zip(key, rows, strict=True)}
    return {
        "rows": rows,
        "bon_correlation": benchmark_correlation(scores, gains),
        "data_warnings": data_warnings(rows),
    }


def point_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One distinct name per row for the correlation, ``run/reward``, numbered (``#2``) where
    two rows share it: run ``a`` reward ``b/rm`` and run ``a/b`` reward ``rm`` (or one run's
    two columns of one name) were one key, and one reward silently left the correlation."""
    used: set[str] = set()
    out = []
    for x in rows:
        base = key = f"{x['run']}/{x['reward']}"
        i = 1
        while key in used:  # also past a reward that is itself named "… #2"
            i += 1
            key = f"{base} #{i}"
        used.add(key)
        out.append(key)
    return out


def correlation_text(bc: dict[str, Any]) -> str:
    """The leaderboard's accuracy↔best-of-N-gain line: each correlation with its bootstrap CI
    (docs/methods/D8-best-of-n-eval.md), how many resamples the CI kept when some had a
    constant side, and the note (fewer than 3 rewards, a constant side)."""
    cells = [
        f"{name.title()} {value_ci(bc.get(name), bc.get(f'{name}_ci'))}"
        for name in ("pearson", "spearman")
    ]
    text = f"Accuracy ↔ best-of-N gain over {bc['n']} rewards: {', '.join(cells)}"
    kept, n_boot = bc.get("ci_resamples"), bc.get("n_boot")
    if isinstance(kept, dict) and any("[" in c for c in cells):
        level = f"{100 * bc.get('ci_level', 0.95):g}%"
        text += f" ({level} bootstrap CIs over the rewards, {n_boot} resamples"
        short = {k: v for k, v in kept.items() if v < n_boot}
        text += (
            f"; {min(short.values())} kept: the others drew one value on a side, no correlation)"
            if short
            else ")"
        )
    return text + (f" ({bc['note']})" if bc.get("note") else "")


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _pct(x: Any) -> str:
    """A fraction in percent with one decimal (``66.7``), as report.md prints scores; ``–``
    when undefined. leaderboard.json keeps the fraction."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "–"
    return f"{100 * x:.1f}"


def _table_rows(board: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "benchmark",
        "data",
        "run",
        "reward",
        "score (%)",
        "95% CI",
        "n",
        "ECE",
        "length ρ",
        "BoN gain",
        "position bias",
    ]
    rows = [
        [
            str(x["benchmark"]),
            x["data"],
            x["run"],
            x["reward"],
            _pct(x["score"]),
            _ci_cell(x["score"], x["ci"], x["ci_outcomes"]),
            str(x["n"]),
            _fmt(x["ece"]),
            _fmt(x["length_spearman"]),
            _fmt(x["bon_gain"]),
            _pct_sign(x["position_bias"]),
        ]
        for x in board["rows"]
    ]
    return header, rows


def _ci_cell(score: Any, ci: list[Any], outcomes: int | None) -> str:
    """``[lo, hi]``; one ``–`` when the Score or either bound is undefined (None/NaN, as the
    eval report's score cells, :func:`.rows.format_cell`) or the Score's CI rests on fewer than
    :data:`~.rows.MIN_CI_N` outcomes by report.md's rule (:func:`score_ci_outcomes`)."""
    if isinstance(outcomes, int) and outcomes < MIN_CI_N:
        return "–"
    if any(_pct(x) == "–" for x in (score, *ci)):
        return "–"
    return f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _pct_sign(x: Any) -> str:
    """A rate as the report's position-bias table prints it (``25.0%``)."""
    cell = _pct(x)
    return cell if cell == "–" else f"{cell}%"


def write_leaderboard(
    board: dict[str, Any], out_dir: str | Path, with_html: bool = True
) -> dict[str, Path]:
    """Write ``leaderboard.json``, ``leaderboard.md`` and (``with_html``) ``leaderboard.html``
    into ``out_dir``; without ``with_html`` an older ``leaderboard.html`` there is removed (it
    would disagree with the new files), as ``rewardkit report --no-html`` does with
    ``report.html``."""
    from rewardkit.outputs import atomic_text, check_dir_target, output_error

    out = check_dir_target(out_dir, "--out")
    header, rows = _table_rows(board)
    bc = board["bon_correlation"]
    corr = correlation_text(bc)
    few = few_points_note(
        [x.get("length_n") for x in board["rows"]], "responses with a finite score"
    )
    corr += f". length ρ{few}" if few else ""
    warn = [f"Warning: {line}." for line in board.get("data_warnings", [])]
    md = ["# rewardkit leaderboard", "", *markdown_grid(header, rows), "", md_inline(corr), ""]
    md += [line for w in warn for line in (md_inline(w), "")]
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>rewardkit '
        f"leaderboard</title><style>table{{border-collapse:collapse}}td,th{{border:1px solid "
        f"#ccc;padding:3px 7px}}</style></head><body><h1>rewardkit leaderboard</h1>"
        f"{html_table(header, rows)}"
        f"<p>{html_text(corr)}</p>"
        + "".join(f"<p><b>{html_text(w)}</b></p>" for w in warn)
        + "</body></html>\n"
    )
    paths = {
        "json": out / "leaderboard.json",
        "markdown": out / "leaderboard.md",
        "html": out / "leaderboard.html",
    }
    if not with_html:
        stale = paths.pop("html")
    texts = {
        "json": json.dumps(jsonable(board), indent=1, sort_keys=True, allow_nan=False) + "\n",
        "markdown": "\n".join(md),
        "html": page,
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error("--out", out, exc) from None
    if not with_html:
        try:
            stale.unlink(missing_ok=True)
        except OSError as exc:
            raise output_error("leaderboard file", stale, exc) from None
    for key, path in paths.items():
        with atomic_text(path, what=path.name) as fh:
            fh.write(texts[key])
    return paths

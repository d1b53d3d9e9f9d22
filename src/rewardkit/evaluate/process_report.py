"""``rewardkit eval`` on step-labelled data: ProcessBench-style scores of process reward models
(:mod:`rewardkit.evaluate.processbench`), printed and written as report.json / report.md /
report.html (``docs/prm-and-token-rewards.md``)."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import CapabilityError, DataError
from rewardkit.evaluate.processbench import evaluate_steps, is_prmbench
from rewardkit.evaluate.safetext import html_text, md_inline, md_plain, md_text, plot_label
from rewardkit.results import failed_rows
from rewardkit.types import Capability, Example, Query, Reward, ScoreResult

#: ``schema`` of a process report's ``report.json`` (older ones have none, only ``kind``).
PROCESS_SCHEMA = "rewardkit.processbench/1"


def is_process_report(raw: dict[str, Any]) -> bool:
    """Whether a ``report.json`` object is a process (ProcessBench-style) report: this schema,
    or an older file without one whose ``kind`` says so."""
    schema = raw.get("schema")
    return schema == PROCESS_SCHEMA or (schema is None and raw.get("kind") == "processbench")


def check_process_report(raw: dict[str, Any]) -> dict[str, Any]:
    """A process report read back for ``rewardkit report``: ``raw`` once every field its
    report.md prints has a printable shape (a KeyError, TypeError or ValueError naming what is
    damaged otherwise)."""
    if not isinstance(raw.get("dataset"), dict) or not isinstance(raw.get("rewards"), list):
        raise ValueError("a process report needs a 'dataset' object and a 'rewards' list")
    table_lines(raw)
    return raw


def is_step_data(examples: Sequence[Example]) -> bool:
    """Whether every example is a step-labelled solution (``format="steps"``)."""
    return bool(examples) and all(ex.meta.get("format") == "steps" for ex in examples)


def process_eval(
    examples: Sequence[Example],
    rewards: Sequence[Reward],
    *,
    dev_fraction: float = 0.5,
    seed: int = 0,
) -> dict[str, Any]:
    """Score every solution's given steps with each PRM and fit / apply the first-error
    threshold (:func:`~rewardkit.evaluate.processbench.evaluate_steps`)."""
    if not is_step_data(examples):
        raise DataError("process evaluation needs step-labelled data (format 'steps')")
    for r in rewards:
        if not r.can(Capability.STEPS):
            raise CapabilityError(
                f"reward {r.name!r} gives no per-step scores (no Capability.STEPS); step-labelled "
                "data is evaluated with a process reward model such as prm:PATH"
            )
    check_unique_ids(examples)
    queries = [
        Query(ex.prompt, ex.responses[0], meta={"steps": list(ex.meta["steps"])}) for ex in examples
    ]
    labels = [int(ex.meta["first_error"]) for ex in examples]
    subsets = [ex.subset or "(none)" for ex in examples]
    prmbench = all(is_prmbench(ex.meta) for ex in examples)
    step_labels = [list(ex.meta["step_labels"]) for ex in examples] if prmbench else None
    out: dict[str, Any] = {
        "schema": PROCESS_SCHEMA,
        "kind": "processbench",
        "dataset": {
            "n": len(examples),
            "n_error": sum(y >= 0 for y in labels),
            "n_correct": sum(y < 0 for y in labels),
        },
        "rewards": [],
    }
    counts = [len(ex.meta["steps"]) for ex in examples]
    for r in rewards:
        t0 = time.perf_counter()
        res = r.score_full(queries)
        assert res.steps is not None
        complete, first = scored_solutions(res, counts, [ex.id for ex in examples])
        metrics = evaluate_steps(
            res.steps,
            labels,
            dev_fraction=dev_fraction,
            seed=seed,
            subsets=subsets,
            complete=complete,
            step_labels=step_labels,
        )
        out["rewards"].append(
            {
                "name": r.name,
                "fingerprint": r.fingerprint(),
                **metrics,
                **({"first_excluded": first} if first else {}),
                "truncated_rows": int(np.sum(res.truncated)) if res.truncated is not None else 0,
                "run": {"seconds": time.perf_counter() - t0},
            }
        )
    return out


def scored_solutions(
    res: ScoreResult, counts: Sequence[int], ids: Sequence[str]
) -> tuple[np.ndarray, str | None]:
    """((n,) whether every step of each solution has a score, the first solution without:
    ``"ID: why"``, the reward's own error for a row it failed, else how many steps it scored).
    """
    steps = np.asarray(res.steps, dtype=np.float64).reshape(len(counts), -1)
    need = np.asarray(counts, dtype=np.int64)
    complete = ((~np.isnan(steps)).sum(axis=1) >= need) & (need > 0)
    if complete.all():
        return complete, None
    i = int(np.flatnonzero(~complete)[0])
    why = failed_rows(res.stats, res.scores).get(i)
    if why is None:
        why = f"{int((~np.isnan(steps[i])).sum())} of its {counts[i]} steps scored"
    return complete, f"{ids[i]}: {why}"


def nothing_evaluated(result: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The rewards (once each) that left no solution to evaluate, every one failed or cut
    short, with the first one's reason; ``eval`` exits 1 for them."""
    found: dict[str, str | None] = {}
    for r in result["rewards"]:
        if result["dataset"]["n"] and r.get("n_excluded", 0) >= result["dataset"]["n"]:
            found.setdefault(r["name"], r.get("first_excluded"))
    return list(found.items())


def excluded_lines(result: dict[str, Any]) -> list[str]:
    """One line per reward that left solutions out (not every step scored), with the first."""
    n = result["dataset"]["n"]
    return [
        f"{r['name']}: {r['n_excluded']:,} of {n:,} solutions excluded, not every step scored "
        f"(first: {' '.join(str(r.get('first_excluded', '')).split())[:300]})"
        for r in result["rewards"]
        if r.get("n_excluded")
    ]


def check_unique_ids(examples: Sequence[Example]) -> None:
    """Refuse solutions that share an id: each would be counted twice in the scores."""
    seen: dict[str, int] = {}
    dupes: list[str] = []
    for ex in examples:
        seen[ex.id] = seen.get(ex.id, 0) + 1
        if seen[ex.id] == 2:
            dupes.append(ex.id)
    if dupes:
        shown = ", ".join(repr(d) for d in dupes[:5]) + (" …" if len(dupes) > 5 else "")
        raise DataError(
            f"{len(dupes)} solution id(s) occur more than once ({shown}); each solution would "
            "be scored and counted twice — remove the duplicates or give them distinct ids"
        )


def _f(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def table_lines(result: dict[str, Any]) -> list[str]:
    """A Markdown table: per reward, τ and the test-split accuracies and F1 (in %)."""
    d = result["dataset"]
    lines = [
        f"ProcessBench-style evaluation: {d['n']} solutions ({d['n_error']} with a wrong step, "
        f"{d['n_correct']} without); threshold fitted on a dev split, scores on the rest; "
        "solutions not every step of which has a score are excluded.",
        "",
        "| reward | τ | acc. erroneous | acc. correct | F1 | dev F1 | excluded |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rewards"]:
        t = r["test"]
        tau = f"{r['threshold']:.4f}" + ("" if r.get("threshold_fitted", True) else " (fixed)")
        lines.append(
            f"| {md_text(r['name'])} | {tau} | {_f(t['acc_error'])} | "
            f"{_f(t['acc_correct'])} | {_f(t['f1'])} | {_f(r['dev']['f1'])} | "
            f"{int(r.get('n_excluded', 0)):,} |"
        )
    return lines + official_lines(result) + prmbench_lines(result)


def official_lines(result: dict[str, Any]) -> list[str]:
    """ProcessBench's own protocol: τ = 0.5, every solution, F1 per subset and their mean."""
    rows = [r for r in result["rewards"] if "official" in r]
    if not rows:
        return []
    names = sorted({n for r in rows for n in r["official"]["subsets"]})
    lines = [
        "",
        "ProcessBench protocol (τ = 0.5, every fully scored solution): F1 per subset "
        "(acc. erroneous / acc. correct) and the mean F1.",
        "",
        "| " + " | ".join(["reward", *map(md_text, names), "mean F1"]) + " |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for r in rows:
        o = r["official"]
        cells = [
            f"{_f(o['subsets'][n]['f1'])} ({_f(o['subsets'][n]['acc_error'])} / "
            f"{_f(o['subsets'][n]['acc_correct'])})"
            if n in o["subsets"]
            else "—"
            for n in names
        ]
        lines.append("| " + " | ".join([md_text(r["name"]), *cells, _f(o["average_f1"])]) + " |")
    return lines


def prmbench_lines(result: dict[str, Any]) -> list[str]:
    """PRMBench's own headline, PRMScore (step F1 and negative F1 at 0.5, every fully scored
    solution), overall and per class; none when the data is not PRMBench."""
    rows = [r for r in result["rewards"] if "prmbench" in r]
    if not rows:
        return []
    names = sorted({n for r in rows for n in r["prmbench"]["subsets"]})
    lines = [
        "",
        "PRMBench protocol (a step is valid when its score is above 0.5; every fully scored "
        "solution): PRMScore = (F1 + negative F1) / 2, overall (every class but correct) and "
        "per class; a share with no denominator is PRMBench's −1 (−100).",
        "",
        "| " + " | ".join(["reward", "PRMScore", *map(md_text, names)]) + " |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for r in rows:
        p = r["prmbench"]
        cells = [_f(p["subsets"][n]["prm_score"]) if n in p["subsets"] else "—" for n in names]
        lines.append("| " + " | ".join([md_text(r["name"]), _f(p["prm_score"]), *cells]) + " |")
    return lines


def _figure(result: dict[str, Any]) -> bytes | None:
    from rewardkit.evaluate.plots import figure_png, load_pyplot

    rows = result["rewards"]
    if not rows:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    keys = [("acc_error", "erroneous"), ("acc_correct", "correct"), ("f1", "F1")]
    w = 0.8 / len(keys)
    for j, (k, label) in enumerate(keys):
        vals = [np.nan_to_num(r["test"][k]) * 100 for r in rows]
        ax.bar([i + j * w for i in range(len(rows))], vals, w, label=label)
    ax.set_xticks([i + 0.4 - w / 2 for i in range(len(rows))])
    ax.set_xticklabels([plot_label(str(r["name"])[-30:]) for r in rows], fontsize=7)
    ax.set_ylabel("% (test split)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title("first-error prediction")
    return figure_png(fig)


def _html_table(lines: list[str]) -> str:
    """A Markdown table (header, rule, rows) as an HTML table: cells split at unescaped ``|``,
    their Markdown escapes undone, then escaped for HTML."""

    def cells(line: str, tag: str) -> str:
        parts = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        return "".join(f"<{tag}>{html_text(md_plain(c.strip()))}</{tag}>" for c in parts)

    rows = "".join(f"<tr>{cells(line, 'td')}</tr>" for line in lines[2:])
    return f"<table border=1><tr>{cells(lines[0], 'th')}</tr>{rows}</table>"


def write_process_reports(
    result: dict[str, Any], out: Path, html_report: bool = True, write_json: bool = True
) -> dict[str, Path]:
    """report.json (unless ``write_json`` is False: ``rewardkit report`` rebuilds the others
    from it), report.md and (``html_report``) report.html in ``out``. Everything is rendered
    first; then the older files are removed, so an earlier run's report never stands beside
    this one's, not even after a kill or a failed write between two files (a report.md of 16
    solutions beside a report.json of 8), nor report.html beside a ``--no-html`` run's."""
    from rewardkit.outputs import atomic_text, finite_json, output_error

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md"}
    plain = finite_json(json.loads(json.dumps(result, default=float)))  # NaN/inf → null
    notes = ["", *map(md_inline, excluded_lines(result))] if excluded_lines(result) else []
    texts = {
        "json": json.dumps(plain, indent=1, sort_keys=True, allow_nan=False),
        "md": "\n".join(["# Process reward evaluation", "", *table_lines(result), *notes]) + "\n",
    }
    if not write_json:
        del paths["json"], texts["json"]
    if html_report:
        png = _figure(result)
        main = table_lines(result)[: 4 + len(result["rewards"])]
        img = (
            f'<img alt="first-error prediction" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            if png
            else ""
        )
        official = official_lines(result)
        extra = f"<p>{html.escape(official[1])}</p>{_html_table(official[3:])}" if official else ""
        prm = prmbench_lines(result)
        extra += f"<p>{html.escape(prm[1])}</p>{_html_table(prm[3:])}" if prm else ""
        paths["html"] = out / "report.html"
        texts["html"] = (
            "<!doctype html><meta charset='utf-8'><title>Process reward evaluation</title>"
            f"<h1>Process reward evaluation</h1><p>{html.escape(main[0])}</p>"
            f"{_html_table(main[2:])}{img}{extra}\n"
        )
    # an older run's report must never stand beside this one's (see above)
    for path in dict.fromkeys([*paths.values(), out / "report.html"]):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise output_error("report file", path, exc) from None
    for key, path in paths.items():
        with atomic_text(path, what=path.name) as fh:
            fh.write(texts[key])
    return paths

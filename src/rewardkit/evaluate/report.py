"""Reports of an :class:`EvalResult`: Markdown (``report.md``), JSON (``report.json``), terminal."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from rewardkit.evaluate.result import EvalResult, GroupScore, RewardResult
from rewardkit.types import failed_items, failure_note


@dataclass
class _Row:
    label: str
    n: int
    cells: list[str]
    bold: bool


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def format_cell(score: float, ci: tuple[float, float]) -> str:
    """``71.4 [58.2, 83.1]``: a score and its CI in percent; ``–`` when undefined."""
    if score is None or math.isnan(score):
        return "–"
    lo, hi = ci
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return _pct(score)
    return f"{_pct(score)} [{_pct(lo)}, {_pct(hi)}]"


def _cell(g: GroupScore | None) -> str:
    return "–" if g is None else format_cell(g.score, g.ci)


def summary_rows(result: EvalResult) -> list[_Row]:
    """Sections (bold) with their subsets beneath, then the final Score row."""
    ds = result.dataset
    subsets = ds["subsets"]
    rows: list[_Row] = []
    for sec in ds["section_order"]:
        members = [s for s in ds["subset_order"] if subsets[s]["section"] == sec]
        n_sec = sum(subsets[s]["n_evaluable"] for s in members)
        rows.append(
            _Row(sec, n_sec, [_cell(r.sections.get(sec)) for r in result.rewards], bold=True)
        )
        if members == [sec]:
            continue  # a section that is one subset of the same name: no sub-row
        for sub in members:
            rows.append(
                _Row(
                    sub,
                    subsets[sub]["n_evaluable"],
                    [_cell(r.subsets.get(sub)) for r in result.rewards],
                    bold=False,
                )
            )
    rows.append(
        _Row(
            "Score",
            ds["n_evaluable"],
            [format_cell(r.score, r.ci) for r in result.rewards],
            bold=True,
        )
    )
    return rows


def report_notes(result: EvalResult) -> list[str]:
    st, ds = result.settings, result.dataset
    conf = round(100 * (1 - st["alpha"]))
    notes = [
        f"Rule: {st['benchmark_rule']} (benchmark `{st['benchmark']}`).",
        "Section weights: "
        + (
            f"published RewardBench v1 example counts ({st['weights_source']})."
            if st["weighting"] == "published"
            else "number of evaluable examples in each subset."
        ),
        f"Ties (`{st['ties']}`): {st['tie_rule']}.",
        f"Cells: score in percent with its {conf}% CI ({st['ci_method']}; "
        f"n_boot={st['n_boot']}, seed={st['seed']}); n = evaluable examples.",
    ]
    notes += [str(n) for n in st.get("notes", [])]
    dropped = ds.get("load_skipped") or {}
    if dropped.get("n"):
        notes.append(
            f"Dropped {dropped['n']} malformed record(s) at load time (--on-error skip); "
            f"first: {dropped['first']}"
        )
    if ds.get("n_empty_responses"):
        notes.append(
            f"{ds['n_empty_responses']} example(s) have an empty response; it was scored like "
            "any other response (an empty reply is a reply)."
        )
    if ds["n_skipped"]:
        parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(ds["skipped"].items()))
        notes.append(f"Skipped {ds['n_skipped']} of {ds['n_examples']} examples ({parts}).")
    elif not dropped.get("n"):
        notes.append(f"No example skipped ({ds['n_examples']} examples).")
    for r in result.rewards:
        if r.n_nan:
            notes.append(f"`{r.name}`: {r.n_nan} examples with a NaN score excluded.")
        if r.n_truncated:
            notes.append(f"`{r.name}`: {r.n_truncated} rows truncated to the reward's max length.")
        usage = usage_note(r.name, r.stats)
        if usage:
            notes.append(usage)
        else:
            failed = failure_line(r)
            if failed:
                notes.append(failed)
        if r.position_bias is not None:
            notes.append(
                f"`{r.name}` (pairwise judge, both orders averaged): the verdict flipped with the "
                f"order on {100 * r.position_bias:.1f}% of pairs (position bias)."
            )
    return notes


def failure_line(r: RewardResult) -> str | None:
    """One line on the responses of ``r`` that failed alone (NaN, excluded), naming the first
    one's example and error; None when none failed (endpoint rewards say it in their usage line)."""
    failed, errors = failed_items(r.stats)
    if not failed:
        return None
    first = None
    if errors:
        index, error = errors[0]
        ends = np.cumsum([len(ex.scores) for ex in r.examples])
        k = int(np.searchsorted(ends, index, side="right"))
        where = f"example {r.examples[k].id}" if k < len(r.examples) else f"item {index}"
        first = f"{where}: {error}"
    n = sum(len(ex.scores) for ex in r.examples)
    return f"`{r.name}`: " + failure_note(failed, n, "responses", first) + " (excluded)."


def usage_note(name: str, stats: dict | None) -> str | None:
    """One line on what an endpoint reward's answers cost: token usage, cost, failed and
    unparsed answers — the same whether the answers came now or from the cache (per-call
    request and retry counts stay in report.json's ``run``). None without HTTP counters."""
    if not stats or "usage" not in stats:
        return None
    usage = stats.get("usage") or {}
    line = (
        f"`{name}`: answers used {usage.get('prompt_tokens', 0)} prompt + "
        f"{usage.get('completion_tokens', 0)} completion tokens"
    )
    if stats.get("cost") is not None:
        line += f" (cost {stats['cost']:.6g})"
    return line + f"; {stats.get('failed', 0)} failed, {stats.get('unparsed', 0)} unparsed."


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(result: EvalResult) -> str:
    """A RewardBench-style Markdown table: one column per reward (length baseline included),
    sections in bold with their subsets beneath, a final Score row, and notes."""
    header = ["", "n", *(f"`{_md_escape(n)}`" for n in result.names)]
    lines = [
        "# rewardkit evaluation",
        "",
        "| " + " | ".join(header) + " |",
        "|:--|--:|" + "--:|" * len(result.names),
    ]
    for row in summary_rows(result):
        label = (
            f"**{_md_escape(row.label)}**" if row.bold else f"&nbsp;&nbsp;{_md_escape(row.label)}"
        )
        cells = [f"**{c}**" if row.bold and c != "–" else c for c in row.cells]
        lines.append("| " + " | ".join([label, str(row.n), *cells]) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"- {n}" for n in report_notes(result)]
    return "\n".join(lines) + "\n"


def write_reports(
    result: EvalResult, out_dir: str | Path, *, html: bool = True, json: bool = True
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (the table, then the analyses) and, with ``html``,
    the self-contained ``report.html`` into ``out_dir`` (created if needed). ``json=False``
    keeps an existing ``report.json`` (``rewardkit report`` rebuilds the others from it)."""
    from rewardkit.evaluate.htmlreport import analyses_markdown, to_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if json:
        paths["json"] = result.to_json(out / "report.json")
    md_path = out / "report.md"
    md = to_markdown(result)
    if result.extra.get("analyses") or any(r.analyses for r in result.rewards):
        md += analyses_markdown(result)
    md_path.write_text(md, encoding="utf-8")
    paths["markdown"] = md_path
    if html:
        html_path = out / "report.html"
        html_path.write_text(to_html(result), encoding="utf-8")
        paths["html"] = html_path
    return paths


def plain_table(result: EvalResult) -> str:
    """The report table as aligned plain text (no colour, no dependencies)."""
    header = ["", "n", *result.names]
    body = [[("" if r.bold else "  ") + r.label, str(r.n), *r.cells] for r in summary_rows(result)]
    widths = [max(len(row[j]) for row in [header, *body]) for j in range(len(header))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "-" * len(fmt(header))
    lines = [fmt(header), rule, *(fmt(r) for r in body[:-1]), rule, fmt(body[-1])]
    lines += ["", *(f"* {n}" for n in report_notes(result))]
    return "\n".join(lines) + "\n"


def print_table(
    result: EvalResult, file: TextIO | None = None, *, use_rich: bool | None = None
) -> None:
    """Print the report table: with ``rich`` on a terminal (when installed and ``use_rich`` is not
    False), else as plain text, which never wraps cells in logs or pipes."""
    stream = file if file is not None else sys.stdout
    explicit = use_rich
    if use_rich is None:
        isatty = getattr(stream, "isatty", None)
        use_rich = bool(isatty and isatty())
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            if explicit:
                raise
        else:
            table = Table(title="rewardkit evaluation")
            table.add_column("")
            table.add_column("n", justify="right")
            for name in result.names:
                table.add_column(name, justify="right")
            rows = summary_rows(result)
            for i, row in enumerate(rows):
                style = "bold" if row.bold else None
                label = row.label if row.bold else "  " + row.label
                table.add_row(
                    label, str(row.n), *row.cells, style=style, end_section=i == len(rows) - 2
                )
            console = Console(file=stream)
            console.print(table)
            for note in report_notes(result):
                console.print(f"• {note}", markup=False, highlight=False)
            return
    stream.write(plain_table(result))

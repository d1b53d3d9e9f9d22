"""Reports of an :class:`EvalResult`: Markdown (``report.md``), JSON (``report.json``), terminal,
and :func:`write_reports`, which writes them with ``report.html`` (:mod:`.htmlreport`). The
values shown come from the row model (:mod:`.rows`, :mod:`.tables`); here they are laid out."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from rewardkit.evaluate.calibration import applied_temperature_text, reported_ece
from rewardkit.evaluate.context_use import context_use_text
from rewardkit.evaluate.htmlreport import to_html
from rewardkit.evaluate.lengthbias import MIN_CORRELATION_N
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rows import Table, fmt, fmt_ci, report_notes, summary_rows
from rewardkit.evaluate.safetext import code_span, md_inline, md_text, visible
from rewardkit.evaluate.tables import analysis_tables


def to_markdown(result: EvalResult) -> str:
    """A RewardBench-style Markdown table: one column per reward (length baseline included),
    sections in bold with their subsets beneath, a final Score row, and notes. Names from the
    data are written as text (:mod:`.safetext`): they cannot break the table or add markup."""
    header = ["", "n", *(code_span(n).replace("|", "\\|") for n in result.names)]
    lines = [
        "# rewardkit evaluation",
        "",
        "| " + " | ".join(header) + " |",
        "|:--|--:|" + "--:|" * len(result.names),
    ]
    for row in summary_rows(result):
        label = f"**{md_text(row.label)}**" if row.bold else f"&nbsp;&nbsp;{md_text(row.label)}"
        cells = [f"**{c}**" if row.bold and c != "–" else c for c in row.cells]
        lines.append("| " + " | ".join([label, str(row.n), *cells]) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"- {md_inline(n)}" for n in report_notes(result)]
    return "\n".join(lines) + "\n"


def markdown_grid(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a plain Markdown table; every cell is text (:func:`.safetext.md_text`:
    ``|``, newlines, HTML and link syntax escaped)."""
    lines = ["| " + " | ".join(md_text(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]


def table_markdown(table: Table) -> str:
    """One analysis as a ``##`` heading, its Markdown table and (when it has one) its note."""
    lines = [f"## {table.title}", "", *markdown_grid(table.columns, table.rows)]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def analyses_markdown(result: EvalResult) -> str:
    """The analysis tables as Markdown (appended to ``report.md``)."""
    body = "\n\n".join(table_markdown(t) for t in analysis_tables(result))
    return ("\n" + body if body else "") + "\n"


def summary_lines(result: EvalResult) -> list[str]:
    """A few lines per reward for the terminal: RM-Bench hard/normal/easy, ECE, length
    correlation, best-of-N gain; then significant paired differences."""
    lines = []
    robust = result.extra.get("analyses", {}).get("robustness") or {}
    for r in result.rewards:
        a = r.analyses
        parts = []
        if "rm_bench" in a:
            t = a["rm_bench"]["total"]
            parts.append(
                f"RM-Bench hard {fmt(t['hard'], True)} / normal {fmt(t['normal'], True)} / "
                f"easy {fmt(t['easy'], True)}"
            )
        if reported_ece(a.get("calibration")) is not None:
            parts.append(f"ECE {fmt(a['calibration']['ece'])}")
        if saved := applied_temperature_text(a.get("calibration") or {}):
            parts.append(f"saved {saved}")
        if "length_bias" in a:
            lb, few = a["length_bias"], ""
            if isinstance(lb.get("n"), int) and lb["n"] < MIN_CORRELATION_N:
                few = f" (n={lb['n']}: fewer than {MIN_CORRELATION_N} points)"
            parts.append(f"Spearman(len) {fmt(lb['spearman'])}{few}")
        if a.get("ratings"):
            shown = [
                f"{visible(k)} {fmt(v['spearman'])}" for k, v in list(a["ratings"].items())[:5]
            ]
            parts.append("Spearman with ratings: " + ", ".join(shown))
            labels = [
                f"{visible(k)} {fmt(v['auroc'])} (within prompt {fmt(v.get('auroc_within_prompt'))})"
                for k, v in a["ratings"].items()
                if "auroc" in v
            ]
            if labels:
                parts.append("AUROC: " + ", ".join(labels[:5]))
        if "accuracy_with_ties" in a:
            parts.append(f"acc with ties {fmt(a['accuracy_with_ties']['with_ties'], True)}")
        if "context_use" in a:
            parts.append(context_use_text(a["context_use"]))
        if "best_of_n" in a:
            b = a["best_of_n"]
            parts.append(f"BoN gold@{b['n'][-1]} {fmt(b['gold'][-1])} ({_gain_text(b)})")
            if "weighted_vote" in b:  # docs/methods/B4-orm-vs-prm.md
                v = b["weighted_vote"]
                parts.append(
                    f"weighted vote {fmt(v['weighted_vote'])} (majority {fmt(v['majority_vote'])}, "
                    f"best-of-N {fmt(v['best_of_n'])}; {v['pools']} pools)"
                )
        if r.name in robust:  # --robustness: asked for on the command line, so said there
            parts.append(robustness_text(robust[r.name]))
        if parts:
            lines.append(f"{visible(r.name)}: " + "; ".join(parts))
    for c in result.extra.get("analyses", {}).get("comparisons", []):
        if c["significant"]:
            b = c["bootstrap"]
            what = "Score " if b.get("of") == "score" else ""
            lines.append(
                f"{visible(c['a'])} vs {visible(c['b'])}: {what}{fmt_ci(b['diff'], b['ci'])} points, significant "
                f"(per-example outcomes: {_test_p(c)})"
            )
    return lines


def robustness_text(v: dict) -> str:
    """``--robustness``'s finding for one reward, as the summary line gives it: identical,
    within its tolerance (the largest difference), or not."""
    runs = "token budgets " + "/".join(map(str, v["budgets"])) + " and " if v["budgets"] else ""
    what = f"{runs}a shuffled order"
    worst = max((d["max_abs_diff"] for d in v["runs"].values()), default=0.0)
    if v["identical"]:
        return f"robustness: identical under {what}"
    if v.get("within_atol"):
        return f"robustness: within {v['atol']:g} under {what} (max |Δ| {worst:.2g})"
    return f"robustness: scores CHANGE under {what} (max |Δ| {worst:.2g} > {v['atol']:g})"


def _gain_text(b: dict) -> str:
    """``gain +0.056``, naming the pools it is on when some pools stop short of the largest N."""
    pools = b.get("gain_pools")
    text = f"gain {fmt(b['gain'])}"
    if pools is None or pools == b["n_pools"][0]:
        return text
    return f"{text} on the {pools} pool(s) reaching N={b['n'][-1]}"


def _test_p(c: dict) -> str:
    """The exact test behind a "significant" comparison: the sign test (older reports: McNemar)."""
    if isinstance(c.get("sign_test"), dict):
        return f"sign test p={fmt(c['sign_test']['p_value'], nd=4)}"
    return f"McNemar p={fmt(c['mcnemar']['p_value'], nd=4)}"


def write_reports(
    result: EvalResult, out_dir: str | Path, *, html: bool = True, json: bool = True
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` (the table, then the analyses) and, with ``html``,
    the self-contained ``report.html`` into ``out_dir`` (created if needed). ``json=False``
    keeps an existing ``report.json`` (``rewardkit report`` rebuilds the others from it)."""
    from rewardkit.outputs import atomic_text, check_dir_target, output_error

    out = check_dir_target(out_dir, "report directory")
    # render everything first: no file is half-written. report.json (every score) renders
    # first; a view that fails to render (a plot) is reported after the others are written,
    # never at the cost of the run's scores
    texts: dict[str, tuple[Path, str]] = {}
    if json:
        texts["json"] = (out / "report.json", result.json_text())
    failed: list[str] = []

    def render(key: str, name: str, make: Callable[[], str]) -> None:
        try:
            texts[key] = (out / name, make())
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            if not texts:
                raise
            failed.append(f"{name} ({type(exc).__name__}: {exc})")

    def markdown() -> str:
        md = to_markdown(result)
        if result.extra.get("analyses") or any(r.analyses for r in result.rewards):
            md += analyses_markdown(result)
        return md

    render("markdown", "report.md", markdown)
    if html:
        render("html", "report.html", lambda: to_html(result))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error("report directory", out, exc) from None
    # an older run's report must never stand beside this one's: a --no-html run kept the last
    # run's report.html, and a write that failed (a full disk) left the old file in its place
    for name in (
        ("report.json", "report.md", "report.html") if json else ("report.md", "report.html")
    ):
        try:
            (out / name).unlink(missing_ok=True)
        except OSError as exc:
            raise output_error("report file", out / name, exc) from None
    paths: dict[str, Path] = {}
    for key, (path, text) in texts.items():
        with atomic_text(path, what=path.name) as fh:
            fh.write(text)
        paths[key] = path
    if failed:
        written = ", ".join(str(p) for p in paths.values())
        raise ValueError(f"could not make {'; '.join(failed)}; wrote {written}")
    return paths


def plain_table(result: EvalResult) -> str:
    """The report table as aligned plain text (no colour, no dependencies)."""
    header = ["", "n", *map(visible, result.names)]
    body = [
        [("" if r.bold else "  ") + visible(r.label), str(r.n), *r.cells]
        for r in summary_rows(result)
    ]
    widths = [max(len(row[j]) for row in [header, *body]) for j in range(len(header))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "-" * len(fmt(header))
    lines = [fmt(header), rule, *(fmt(r) for r in body[:-1]), rule, fmt(body[-1])]
    lines += ["", *(f"* {visible(n)}" for n in report_notes(result))]
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
            from rich.text import Text
        except ImportError:
            if explicit:
                raise
        else:
            table = Table(title="rewardkit evaluation")
            table.add_column("")
            table.add_column("n", justify="right")
            for name in result.names:  # Text: a name such as "[/bold]" is no rich markup
                table.add_column(Text(visible(name)), justify="right")
            rows = summary_rows(result)
            for i, row in enumerate(rows):
                style = "bold" if row.bold else None
                label = visible(row.label) if row.bold else "  " + visible(row.label)
                table.add_row(
                    Text(label),
                    str(row.n),
                    *(Text(c) for c in row.cells),
                    style=style,
                    end_section=i == len(rows) - 2,
                )
            console = Console(file=stream)
            console.print(table)
            for note in report_notes(result):
                console.print(f"• {visible(note)}", markup=False, highlight=False)
            return
    stream.write(plain_table(result))

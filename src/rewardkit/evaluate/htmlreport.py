"""``report.html``: one self-contained page (tables + matplotlib PNGs embedded as base64, no
scripts, no external resources), rendered from the row model of :mod:`.rows` and the tables
of :mod:`.tables`; the figures come from :mod:`.plots`."""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence

from rewardkit.evaluate.plots import all_figures
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rows import Table, report_notes, summary_rows
from rewardkit.evaluate.safetext import html_text
from rewardkit.evaluate.tables import analysis_tables

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.sec td{font-weight:bold;background:#f4f4f4}p.note{font-size:12px;color:#555;max-width:900px}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}"""


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], bold_rows: Collection[int] = ()
) -> str:
    """An HTML table; rows whose index is in ``bold_rows`` get the section style. Every cell is
    text (:func:`.safetext.html_text`: escaped, control and bidi characters made visible)."""
    h = "".join(f"<th>{html_text(c)}</th>" for c in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="sec"' if i in bold_rows else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def table_html(table: Table) -> str:
    """One analysis as a heading, its table and (when it has one) its note."""
    out = f"<h2>{html_text(table.title)}</h2>" + html_table(table.columns, table.rows)
    if table.note:
        out += f'\n<p class="note">{html_text(table.note)}</p>'
    return out


def to_html(result: EvalResult, title: str = "rewardkit evaluation") -> str:
    """The whole report as one HTML page; every figure is an ``<img>`` with a data URI."""
    rows = summary_rows(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html_text(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html_text(title)}</h1>",
        f'<p class="note">benchmark <b>{html_text(str(result.settings["benchmark"]))}</b>, '
        f"{result.dataset['n_examples']} examples, created {html_text(result.created_at)}</p>",
        html_table(
            ["", "n", *result.names],
            [[("" if r.bold else "\u00a0\u00a0") + r.label, str(r.n), *r.cells] for r in rows],
            bold_rows={i for i, r in enumerate(rows) if r.bold},
        ),
        "<ul>"
        + "".join(f'<li class="note">{html_text(n)}</li>' for n in report_notes(result))
        + "</ul>",
    ]
    for key, fig_title, png in all_figures(result):
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<h2>{html_text(fig_title)}</h2><img class="plot" id="plot-{key}" '
            f'alt="{html_text(fig_title)}" src="data:image/png;base64,{data}">'
        )
    parts += [table_html(t) for t in analysis_tables(result)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

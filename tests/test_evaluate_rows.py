"""The report row model: every analysis gives a table of well-formed rows, and the Markdown and
HTML renderers lay out any table (escaping included) without knowing which analysis it is."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from _rich_eval import TableReward, rich_result
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.htmlreport import table_html, to_html
from rewardkit.evaluate.report import analyses_markdown, table_markdown
from rewardkit.evaluate.result import load_report
from rewardkit.evaluate.rows import SummaryRow, Table, summary_rows
from rewardkit.evaluate.tables import TABLES, analysis_tables
from rewardkit.types import Example, user


@pytest.fixture(scope="module")
def rich():
    return rich_result()


def test_every_analysis_produces_rows(rich) -> None:
    for make in TABLES:
        table = make(rich)
        assert isinstance(table, Table), make.__name__
        assert table.title and table.columns and table.rows, make.__name__
        for row in table.rows:
            assert len(row) == len(table.columns), (make.__name__, row)
            assert all(isinstance(c, str) for c in row), (make.__name__, row)
    assert [t.title for t in analysis_tables(rich)] == [make(rich).title for make in TABLES]


def test_rows_carry_the_analysis_numbers(rich) -> None:
    by_title = {t.title.split(" (")[0]: t for t in analysis_tables(rich)}
    pos = by_title["Position bias"].rows
    assert pos == [["proxy", "0.0%"], ["anti", "25.0%"], ["rule:length", "50.0%"]]  # 0.25 * k
    rm = by_title["RM-Bench"].rows
    # chat row of proxy: [[1,1,1],[0,1,1],[0,0,1]] → hard 100, normal 100, easy 0
    assert rm[0] == ["proxy", "chat", "1", "100.0", "100.0", "0.0", "66.7"]
    accp = by_title["MM-RLHF ACC / ACC+"].rows
    assert accp[0] == ["proxy", "66.7", "50.0", "3", "2"]
    lb = by_title["Leaderboard"].rows
    assert [r[0] for r in lb] == ["1", "2", "3"] and {r[1] for r in lb} == set(rich.names)


def test_results_without_analyses_give_only_the_tables_they_support() -> None:
    exs = [Example(f"e{i}", [user("q")], [f"y{i}", f"no {i}"], [0], subset="s") for i in range(6)]
    table = {**{f"y{i}": 1.0 for i in range(6)}, **{f"no {i}": 0.0 for i in range(6)}}
    res = evaluate(exs, [TableReward(table, "r")], n_boot=10, analyses=False)
    titles = [t.title for t in analysis_tables(res)]
    assert titles == ["Leaderboard", "Length bias"]  # two columns (with rule:length)
    assert all(row[1:3] == ["–", "–"] for row in analysis_tables(res)[1].rows)
    assert [r.label for r in summary_rows(res)] == ["s", "Score"]
    assert isinstance(summary_rows(res)[0], SummaryRow)


def test_renderers_are_total_and_escape() -> None:
    t = Table("T <1>", ["a|b", "c"], [["x|y", "<b>&"], ["", "–"]], "note <i>")
    assert table_markdown(t) == (
        "## T <1>\n\n| a\\|b | c |\n|---|---|\n| x\\|y | &lt;b&gt;&amp; |\n|  | – |\n\nnote <i>"
    )
    assert table_html(t) == (
        "<h2>T &lt;1&gt;</h2><table><thead><tr><th>a|b</th><th>c</th></tr></thead><tbody>"
        "<tr><td>x|y</td><td>&lt;b&gt;&amp;</td></tr><tr><td></td><td>–</td></tr></tbody>"
        '</table>\n<p class="note">note &lt;i&gt;</p>'
    )
    bare = Table("Empty", ["a"], [])
    assert table_markdown(bare) == "## Empty\n\n| a |\n|---|"
    assert "<p" not in table_html(bare) and "<tbody></tbody>" in table_html(bare)


def test_reports_show_every_table(rich) -> None:
    md, page = analyses_markdown(rich), to_html(rich)
    for t in analysis_tables(rich):
        assert f"## {t.title}\n" in md
        assert f"<h2>{html.escape(t.title)}</h2><table>" in page
        assert html.escape(t.rows[-1][0]) in page


def test_report_from_json_with_undefined_length_correlation(tmp_path: Path) -> None:
    """Equal lengths give a NaN Spearman, written as null: ``rewardkit report`` redraws it."""
    exs = [Example(f"e{i}", [user("q")], [f"a{i}", f"b{i}"], [0], subset="s") for i in range(6)]
    table = {**{f"a{i}": 1.0 for i in range(6)}, **{f"b{i}": float(i % 2) for i in range(6)}}
    res = evaluate(exs, [TableReward(table, "r")], n_boot=10)
    res.write_reports(tmp_path / "a")
    back = load_report(tmp_path / "a" / "report.json")
    assert back["r"].analyses["length_bias"]["spearman"] is None
    paths = back.write_reports(tmp_path / "b")
    assert 'id="plot-length"' in paths["html"].read_text(encoding="utf-8")

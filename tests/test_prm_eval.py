"""``rewardkit eval`` with process reward models: ProcessBench-style F1 on step-labelled data
(equal to the hand-checked formula on the reward's own step scores), a clear refusal for rewards
without steps, and best-of-N curves for min / last / prod aggregation beside an ORM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.processbench import evaluate_steps
from rewardkit.registry import load_reward
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.types import Query

runner = CliRunner()


def _records(n=16):
    out = []
    for i in range(n):
        first = -1 if i % 2 == 0 else i % 3
        steps = [f"step {j} adds {i + j} to {j}" for j in range(3)]
        labels = [1 if first < 0 or j < first else -1 for j in range(3)]
        out.append({"id": f"s{i}", "problem": f"problem {i}", "steps": steps, "labels": labels})
    return out


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    recs = _records()
    texts = [QWEN_SYSTEM] + [r["problem"] + " " + " ".join(r["steps"]) for r in recs]
    texts += ["What is 1 + 1 ? The answer is 2 3 4 A B C Step so"]
    tok = word_tokenizer(texts)
    return tiny_llama_dir(tmp_path_factory.mktemp("prm"), tok, "token-cls", seed=5)


def test_eval_processbench_cli(tmp_path, prm_dir):
    data = tmp_path / "steps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["eval", "--data", str(data), "--reward", f"prm:{prm_dir}", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "acc. erroneous" in res.output and "F1" in res.output
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.html").read_text().count("<img") == 1
    got = report["rewards"][0]
    # The same numbers from the reward's own step scores through the pure functions.
    ex = load(data)
    qs = [Query(e.prompt, e.responses[0], meta={"steps": e.meta["steps"]}) for e in ex]
    steps = load_reward(f"prm:{prm_dir}").score_full(qs).steps
    expect = evaluate_steps(steps, [e.meta["first_error"] for e in ex], seed=0)
    assert got["threshold"] == pytest.approx(expect["threshold"])
    assert got["test"] == pytest.approx(expect["test"], nan_ok=True)
    assert report["dataset"] == {"n": 16, "n_error": 8, "n_correct": 8}


def test_eval_processbench_refuses_rewards_without_steps(tmp_path):
    data = tmp_path / "steps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _records(4)))
    res = runner.invoke(
        app, ["eval", "--data", str(data), "--reward", "rule:length", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "no per-step scores" in res.output and "prm:PATH" in res.output


def _bon_rows():
    rows = []
    for i in range(6):
        resp = [
            f"Step 1 : {i} + {k} = {i + k} .\nStep 2 : The answer is {i + k} ." for k in range(4)
        ]
        rows.append(
            {
                "idx": i,
                "question": f"What is {i} + 1 ?",
                "response": resp,
                "score": [k == 1 for k in range(4)],
                "pred_score": [[0.1 * k] for k in range(4)],
                "gt": str(i + 1),
            }
        )
    return rows


def test_best_of_n_prm_aggregates_vs_orm(tmp_path, prm_dir):
    data = tmp_path / "bon.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _bon_rows()))
    ex = load(data)
    assert ex[0].meta["format"] == "math-bon"
    orm = tiny_llama_dir(
        tmp_path / "orm",
        word_tokenizer(["x"] + [t for r in _bon_rows() for t in r["response"]]),
        "seq-cls",
    )
    rewards = [load_reward(f"prm:{prm_dir}?aggregate={a}") for a in ("min", "last", "prod")]
    rewards.append(load_reward(f"classifier:{orm}"))
    result = evaluate(ex, rewards, n_boot=20)
    curves = {r.name: r.analyses["best_of_n"] for r in result.rewards}
    for agg in ("min", "last", "prod"):
        c = curves[f"prm:{prm_dir}?aggregate={agg}"]
        assert c["n"] == [1, 2, 4] and len(c["gold"]) == 3
        assert c["gold"][0] == pytest.approx(0.25)  # best-of-1 is a random pick: 1 in 4 right
    assert f"classifier:{orm}" in curves
    paths = result.write_reports(tmp_path / "report", html=True)
    page = paths["html"].read_text()
    assert "Best-of-N" in page and "aggregate=prod" in page


def test_best_of_n_on_shared_qwen_pools(tmp_path, prm_dir, shared_data):
    ex = load(shared_data / "qwen25_math_rm_bon" / "math_cot_100.jsonl", limit=3)
    r = load_reward(f"prm:{prm_dir}?aggregate=min&max_length=256&cut=prefix")
    res = r.score_full([q for e in ex for q in e.queries()])
    n_steps = np.sum(~np.isnan(res.steps), axis=1)
    assert res.steps.shape[0] == 24 and (n_steps >= 1).all()
    np.testing.assert_allclose(res.scores, np.nanmin(res.steps, axis=1), atol=1e-7)


def test_eval_on_built_gsm8k_steps(tmp_path, prm_dir, shared_data):
    from rewardkit.curate.steplabel import gsm8k_records
    from rewardkit.evaluate.process_report import process_eval

    path = shared_data / "gsm8k" / "example_model_solutions.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()[1300:1310]]
    recs = [r for r in gsm8k_records(rows) if r["confident"]]
    data = tmp_path / "pb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    ex = load(data)
    result = process_eval(ex, [load_reward(f"prm:{prm_dir}?max_length=256")], seed=1)
    got = result["rewards"][0]
    assert result["dataset"]["n_error"] > 0 and result["dataset"]["n_correct"] > 0
    for side in ("dev", "test"):
        s = got[side]
        assert 0.0 <= s["acc_error"] <= 1.0 and 0.0 <= s["acc_correct"] <= 1.0
        assert s["n_error"] + s["n_correct"] > 0

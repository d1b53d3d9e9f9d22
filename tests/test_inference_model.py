"""``rewardkit bon`` with the real embedded policy (SmolLM2-135M-Instruct): 2 prompts × n=2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.errors import DataError
from rewardkit.inference.run import BonConfig, PromptItem, run_bon

pytestmark = pytest.mark.slow


def test_bon_cli_real_policy_seeded_and_resumable(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(
        json.dumps({"question": "What is 2 + 2?", "answer": "#### 4"})
        + "\n"
        + json.dumps({"question": "What is 3 + 5?", "answer": "#### 8"})
        + "\n"
    )
    out, pairs = tmp_path / "bon.jsonl", tmp_path / "pairs.jsonl"
    args = [
        "bon",
        "--data",
        str(data),
        "--out",
        str(out),
        "-r",
        "rule:length",
        "--n",
        "2",
        "--max-new-tokens",
        "4",
        "--threads",
        "1",
        "--seed",
        "3",
        "--no-cache",
        "--no-progress",
        "--pairs-out",
        str(pairs),
        "--device",
        "cpu",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["generated"] == 2 and summary["pairs"] == len(pairs.read_text().splitlines())
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["reference"] for r in rows] == ["#### 4", "#### 8"]
    for r in rows:
        texts = [c["text"] for c in r["candidates"]]
        assert len(texts) == 2 and all(isinstance(t, str) and t for t in texts)
        assert [c["score"] for c in r["candidates"]] == [float(len(t)) for t in texts]
        assert r["best_response"] == texts[r["best"]]
        assert r["candidates"][r["best"]]["score"] == max(len(t) for t in texts)

    from rewardkit.inference.generate import GenerationConfig, Policy

    policy = Policy("smollm2", GenerationConfig(max_new_tokens=4, seed=3, threads=1, device="cpu"))
    # seeded per prompt: the same prompt gives the same candidates again
    assert policy.sample(rows[1]["prompt"], 2) == [c["text"] for c in rows[1]["candidates"]]

    def must_not_sample(prompt, n):
        raise AssertionError("finished prompts are skipped on rerun")

    from rewardkit import load_reward

    reward = load_reward("rule:length")
    items = [PromptItem(r["id"], r["prompt"], r["reference"]) for r in rows]
    cfg = BonConfig(2, policy.identity, policy.config.identity(), reward.fingerprint())
    assert run_bon(items, must_not_sample, reward, out, cfg, progress=False)["skipped_done"] == 2
    with pytest.raises(DataError, match="other settings"):
        run_bon(items, must_not_sample, reward, out, BonConfig(3, policy.identity), progress=False)

"""``eval --ray``: a reward spec scored by a Ray Data pool of 2 local CPU actors gives the
single-process report, rows in order, resumes from the score cache (cache hits reported as a
value from the actors), and refuses what it cannot spread, saying why."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'rewardkit[ray]')")
pytest.importorskip("ray.data", reason="ray[data] is not installed")

from rewardkit.errors import CapabilityError, SpecError
from rewardkit.evaluate import evaluate
from rewardkit.ray_reward import RayReward
from rewardkit.registry import load_reward
from rewardkit.results import ScoreResult, concat_results, merge_stats
from rewardkit.types import Example, Query, user
from train_helpers import tiny_bert


def _examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        k = 2 + i % 3  # pairs and best-of-3/4 rows
        responses = [f"answer {i}.{j} " + "word " * ((i * 7 + j * 3) % 9) for j in range(k)]
        out.append(
            Example(
                id=f"e{i}",
                prompt=[user(f"question {i}?")],
                responses=responses,
                chosen=[i % k],
                subset=("alpha", "beta")[i % 2],
            )
        )
    return out


def _report(result) -> dict:
    d = result.to_dict()
    d.pop("run")  # wall time and per-call stats
    return d


def _scores(report: dict) -> np.ndarray:
    return np.array(
        [s for r in report["rewards"] for e in r["examples"] for s in e["scores"]], dtype=float
    )


def _without_scores(report: dict) -> str:
    text = json.dumps(report, sort_keys=True)
    for r in report["rewards"]:
        for e in r["examples"]:
            for s in e["scores"]:
                text = text.replace(json.dumps(s), "S", 1)
    return text


def test_merge_stats_sums_counters_known_everywhere():
    parts = [
        {"queries": 3, "cache_hits": 1, "layout": "padded", "seconds": 0.5, "x_per_second": 9.0},
        {"queries": 4, "cache_hits": 0, "layout": "padded", "seconds": 0.25, "only_here": 1},
        {},  # an empty batch reports nothing and is ignored
    ]
    assert merge_stats(parts) == {
        "queries": 7,
        "cache_hits": 1,
        "layout": "padded",
        "seconds": 0.75,
    }
    nested = merge_stats([{"usage": {"prompt_tokens": 2}}, {"usage": {"prompt_tokens": 5}}])
    assert nested == {"usage": {"prompt_tokens": 7}}


def test_concat_results_joins_batches_in_order():
    a = ScoreResult(np.array([1.0, 2.0]), components={"c": [0, 1]}, steps=np.ones((2, 1)))
    b = ScoreResult(np.array([3.0]), components={"c": [2]}, steps=np.ones((1, 3)), truncated=[True])
    joined = concat_results([a, b])
    assert joined.scores.tolist() == [1.0, 2.0, 3.0]
    assert joined.components["c"].tolist() == [0, 1, 2]
    assert joined.truncated.tolist() == [False, False, True]
    assert joined.steps.shape == (3, 3) and np.isnan(joined.steps[0, 1])


def test_ray_eval_report_equals_single_process(local_ray):
    examples = _examples(30)
    spec = "rule:length?unit=words"
    single = _report(evaluate(examples, [load_reward(spec)], n_boot=50))
    on_ray = RayReward(spec, actors=2, chunk_rows=7)  # 75 responses in 11 chunks
    assert on_ray.name == load_reward(spec).name
    assert on_ray.fingerprint() == load_reward(spec).fingerprint()
    assert _report(evaluate(examples, [on_ray], n_boot=50)) == single


def test_ray_refuses_pairwise_judges_and_bad_specs(local_ray):
    with pytest.raises(CapabilityError, match=r"judges pairs of responses.*without --ray"):
        RayReward("judge-pairwise:openai://127.0.0.1:9/v1?model=stub")
    with pytest.raises(SpecError):
        RayReward("no-such-kind:x")
    # chunks of rows would each be standardised on their own: other scores than one process
    zscored = {"ensemble": ["rule:length", "rule:f1"], "normalize": "zscore"}
    with pytest.raises(CapabilityError, match=r"against the rest of its call.*without --ray"):
        RayReward(zscored)


@pytest.mark.slow  # about a minute here: every Ray actor imports torch and builds the model
@pytest.mark.heavy  # make test-heavy (CI): a long integration run
def test_model_reward_on_ray_matches_and_resumes_from_the_cache(local_ray, tmp_path):
    """An engine-backed reward (a tiny random BERT classifier): the report equals the
    single-process one within 1e-5, and a second run takes every row from the score cache,
    counted by the actors and returned as a value."""
    model = tiny_bert(tmp_path / "rm")
    spec = f"classifier:{model}"
    examples = _examples(12)
    engine = {"progress": False, "threads": 1}
    single = _report(evaluate(examples, [load_reward(spec, engine_defaults=engine)], n_boot=20))
    cached = {**engine, "cache_dir": str(tmp_path / "cache")}
    first = evaluate(examples, [RayReward(spec, engine_defaults=cached, chunk_rows=8)], n_boot=20)
    again = evaluate(examples, [RayReward(spec, engine_defaults=cached, chunk_rows=8)], n_boot=20)
    n = sum(len(ex.responses) for ex in examples)
    assert first.rewards[0].stats["cache_hits"] == 0
    assert first.rewards[0].stats["queries"] == n
    assert again.rewards[0].stats["cache_hits"] == n and again.rewards[0].stats["computed"] == 0
    for run in (first, again):
        report = _report(run)
        np.testing.assert_allclose(_scores(report), _scores(single), atol=1e-5)
        assert report["rewards"][0]["fingerprint"] == single["rewards"][0]["fingerprint"]
    assert _without_scores(_report(again)) == _without_scores(_report(first))
    # (score --ray's cache hits, summed over its actors: tests/test_scoring_ray.py)


def test_cli_eval_ray(local_ray, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    data = tmp_path / "pairs.jsonl"
    with data.open("w") as fh:
        for ex in _examples(10):
            if len(ex.responses) == 2:
                row = {"prompt": f"question {ex.id}", "chosen": ex.responses[ex.chosen[0]]}
                row["rejected"] = ex.responses[1 - ex.chosen[0]]
                fh.write(json.dumps(row) + "\n")
    args = ["eval", "-r", "rule:length?unit=words", "--data", str(data), "--no-html"]
    args += ["--n-boot", "20", "--no-cache", "--no-progress"]
    one = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "one")])
    many = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ray"), "--ray"])
    assert one.exit_code == 0 and many.exit_code == 0, one.output + many.output
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "ray")]
    for r in reports:
        r.pop("run")
    assert reports[0] == reports[1]
    refused = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--ray", "--probe"])
    assert refused.exit_code != 0 and "--probe" in refused.output
    assert "without --ray" in refused.output and not (tmp_path / "x" / "report.json").exists()


def test_queries_keep_their_fields_through_ray(local_ray):
    """Queries are shipped whole (prompt, response, reference, meta): a reference-based rule
    scores the same on Ray."""
    queries = [
        Query([user("2+2?")], r, reference="4") for r in ("4", "The answer is 4.", "5", "four")
    ]
    spec = "rule:exact_match"
    np.testing.assert_array_equal(
        RayReward(spec, chunk_rows=3).score(queries), load_reward(spec).score(queries)
    )


def test_ray_reward_pickles_as_its_spec(local_ray):
    """A RayReward holds a spec, not a model or Ray's handle: it pickles (small), and the copy
    scores the same on the same cluster."""
    import pickle

    queries = [Query([user("2+2?")], r, reference="4") for r in ("4", "5", "four")]
    reward = RayReward("rule:exact_match", chunk_rows=2)
    blob = pickle.dumps(reward)
    assert len(blob) < 4096
    copy = pickle.loads(blob)
    assert (copy.name, copy.fingerprint()) == (reward.name, reward.fingerprint())
    np.testing.assert_array_equal(copy.score(queries), reward.score(queries))

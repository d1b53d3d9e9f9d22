"""Domain-knowledge reward (docs/methods/A15-domain-knowledge-rm.md): the worked example, the
built-in features, the linear BT fit, data efficiency against a classifier head on planted data,
and ``domain:DIR`` / ``rewardkit domain fit``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardkit.rewards.domain import (
    DomainReward,
    arithmetic,
    aspect_coverage,
    length_fit,
    redundancy,
    reference_steps,
    sentiment_faithfulness,
)
from rewardkit.train.domain import fit_domain, fit_linear_bt
from rewardkit.types import Capability, Example, Query, user


def _meta_feature(key):
    return lambda q: q.meta[key]


def test_card_worked_example():
    feats = {"coverage": _meta_feature("cov"), "faithfulness": _meta_feature("faith")}
    r = DomainReward(feats, [2.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    p = [user("summarise")]
    a = Query(p, "a", meta={"cov": 0.8, "faith": 0.6})
    b = Query(p, "b", meta={"cov": 0.5, "faith": 0.9})
    res = r.score_full([a, b])
    assert res.scores.tolist() == pytest.approx([2.2, 1.9])
    assert res.components["coverage"].tolist() == pytest.approx([1.6, 1.0])
    d = float(res.scores[0] - res.scores[1])
    assert 1 / (1 + math.exp(-d)) == pytest.approx(0.574443, abs=1e-6)
    assert r.can(Capability.COMPONENTS)


def test_builtin_features():
    p = [user("The battery life is great and the screen is bright, but the speaker is bad.")]
    q = Query(p, "Great battery and bright screen; bad speaker.", reference="short summary here")
    # aspects: battery life great screen bright speaker; the summary drops "life"
    assert aspect_coverage(q) == pytest.approx(5 / 6)
    assert sentiment_faithfulness(q) == 1.0  # both balanced: great vs bad
    assert sentiment_faithfulness(Query(p, "Terrible, bad, awful.")) == 0.5
    assert redundancy(Query(p, "a b c a b c")) == pytest.approx(1 / 4)
    assert length_fit(q) == pytest.approx(-math.log(8 / 4))  # (1 + 7 words) / (1 + 3 words)
    assert math.isnan(length_fit(Query(p, "x")))
    assert arithmetic(Query(p, "3 + 4 = 7 and 2 * 5 = 11")) == 0.5
    ref = "16 - 3 - 4 = 9 eggs; 9 * 2 = 18"  # numbers {16, 3, 4, 9, 2, 18}
    assert reference_steps(Query(p, "She sells 9 eggs for 18 dollars.", reference=ref)) == 2 / 6
    assert math.isnan(reference_steps(Query(p, "9")))
    assert math.isnan(arithmetic(Query(p, "no equations")))


def test_linear_bt_fit_recovers_weights_and_objective_falls():
    rng = np.random.default_rng(0)
    true_w = np.array([2.0, -1.0, 0.0])
    d = rng.normal(size=(4000, 3))
    y = rng.random(4000) < 1 / (1 + np.exp(-d @ true_w))
    diff = np.where(y[:, None], d, -d)  # rows: chosen − rejected
    w, hist = fit_linear_bt(diff, l2=1e-4)
    assert hist[0] < math.log(2) and hist[-1] <= hist[0] and hist[-1] < 0.5
    assert np.allclose(w, true_w, atol=0.15)


def _math_pairs(n, offset=0):
    """Two solutions per problem, same words and length; only the arithmetic differs."""
    exs = []
    for i in range(offset, offset + n):
        a, b = 3 + i % 17, 4 + (7 * i) % 13
        good = f"She buys {a} boxes of {b} pens, so {a} * {b} = {a * b} pens in all."
        bad = f"She buys {a} boxes of {b} pens, so {a} * {b} = {a * b + 1 + i % 3} pens in all."
        q = f"Ann buys {a} boxes with {b} pens each. How many pens?"
        order = [good, bad] if i % 2 else [bad, good]
        exs.append(Example(f"m{i}", [user(q)], order, [order.index(good)]))
    return exs


def test_domain_features_beat_a_classifier_head_with_few_pairs():
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.default_rm import Featurizer
    from rewardkit.rewards.domain import FEATURES
    from rewardkit.train.domain import pair_queries

    train, test = _math_pairs(20), _math_pairs(60, offset=500)
    reward, summary = fit_domain(train, FEATURES)
    assert summary["weights"]["arithmetic"] == max(summary["weights"].values())
    q_test, p_test = pair_queries(test)
    s = reward.score(q_test)
    domain_acc = float(np.mean(s[p_test[:, 0]] > s[p_test[:, 1]]))
    # Baseline: a linear BT head on frozen MiniLM features (what freeze_backbone trains).
    feat = Featurizer("minilm", EngineConfig(max_length=64, progress=False))
    q_tr, p_tr = pair_queries(train)
    x_tr, x_te = feat.features(q_tr), feat.features(q_test)
    w, _ = fit_linear_bt(x_tr[p_tr[:, 0]] - x_tr[p_tr[:, 1]], l2=1e-2)
    head_acc = float(np.mean((x_te[p_test[:, 0]] - x_te[p_test[:, 1]]) @ w > 0))
    assert domain_acc > 0.95 and head_acc < 0.75 and domain_acc - head_acc > 0.25


def test_domain_save_load_and_cli(tmp_path):
    from typer.testing import CliRunner

    from rewardkit import load_reward
    from rewardkit.cli import app
    from rewardkit.data.writer import write_jsonl
    from rewardkit.errors import SpecError

    write_jsonl(_math_pairs(30), tmp_path / "train.jsonl")
    r = CliRunner().invoke(
        app,
        ["domain", "fit", "--data", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "m")],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.split("\nsaved to")[0])
    assert out["train_accuracy"] == 1.0 and (tmp_path / "m" / "weights.png").stat().st_size > 0
    reward = load_reward(f"domain:{tmp_path / 'm'}")
    q = _math_pairs(1, offset=900)[0].queries()
    res = reward.score_full(q)
    good = _math_pairs(1, offset=900)[0].chosen[0]
    assert res.scores[good] > res.scores[1 - good] and "arithmetic" in res.components
    r = CliRunner().invoke(
        app,
        [
            "domain",
            "fit",
            "--data",
            str(tmp_path / "train.jsonl"),
            "--out",
            str(tmp_path / "x"),
            "--features",
            "coverage,vibes",
        ],
    )
    assert r.exit_code == 2 and "unknown features" in r.output
    with pytest.raises(SpecError, match=r"no domain\.json"):
        load_reward(f"domain:{tmp_path}")
    with pytest.raises(SpecError, match="custom features"):
        DomainReward({"c": _meta_feature("c")}, [1.0], [0.0], [1.0]).save(tmp_path / "y")


def test_fit_linear_bt_with_l2_zero_and_a_constant_feature():
    from rewardkit.train.domain import fit_linear_bt

    # the second feature is 0 in every pair: with l2 = 0 the Hessian is singular
    w, _ = fit_linear_bt(np.array([[1.0, 0.0], [-0.5, 0.0], [0.8, 0.0]]), l2=0.0)
    assert np.isfinite(w).all() and w[1] == 0.0 and w[0] > 0

"""POLAR (docs/methods/A9-polar.md): the feature layout, policy triples, pre-training that tells
planted policies apart, fine-tuning with a reference, ``polar:DIR`` and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardkit.errors import DataError
from rewardkit.rewards.polar import polar_features
from rewardkit.train.polar import (
    PolarConfig,
    Triple,
    fit_polar,
    policy_triples,
    preference_triples,
    triple_accuracy,
    triple_features,
)
from rewardkit.types import Example, user


def test_card_worked_example():
    f = polar_features(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]]), np.array([[1.0, 0.0]]))
    # [e_y, e_ref ⊙ e_y, |e_ref − e_y|, e_p ⊙ e_y]
    assert f[0].tolist() == pytest.approx([1.0, 0.0, 0.6, 0.0, 0.4, 0.8, 1.0, 0.0])


TOPICS = [
    "tea",
    "rivers",
    "chess",
    "owls",
    "bread",
    "comets",
    "jazz",
    "maps",
    "kites",
    "snow",
    "bees",
    "glass",
    "clocks",
    "salt",
    "wool",
    "pearls",
    "ferns",
    "tides",
    "lamps",
    "cedar",
]
STYLES = {
    "formal": "Regarding {t}: it is a well documented subject, and I trust this is of assistance.",
    "casual": "oh {t}? lol yeah {t} is kinda cool tbh, no idea honestly haha",
    "listy": "- {t}: point one\n- {t}: point two\n- {t}: point three",
}


def _samples(topics):
    return [
        {"prompt_id": t, "prompt": f"Tell me about {t}.", "policy": p, "response": s.format(t=t)}
        for t in topics
        for p, s in STYLES.items()
    ]


def test_policy_triples():
    tr = policy_triples(_samples(TOPICS[:4]), per_sample=2, seed=0)
    assert len(tr) == 4 * 3 * 2
    for t in tr:
        pol = next(p for p, s in STYLES.items() if t.better == s.format(t=t.prompt[14:-1]))
        topic = t.prompt[14:-1]
        assert t.reference != STYLES[pol].format(t=topic)  # another prompt's answer
        assert t.reference in {STYLES[pol].format(t=o) for o in TOPICS[:4]}  # same policy
        assert t.worse != t.better and topic in t.worse
    with pytest.raises(DataError, match="two policies"):
        policy_triples([s for s in _samples(TOPICS[:3]) if s["policy"] == "formal"])


def test_pretraining_tells_policies_apart_on_held_out_prompts():
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.polar import PolarEncoder

    enc = PolarEncoder("minilm", EngineConfig(max_length=64, progress=False))
    train = policy_triples(_samples(TOPICS[:12]), per_sample=2, seed=0)
    test = policy_triples(_samples(TOPICS[12:]), per_sample=2, seed=1)
    fb, fw = triple_features(enc, train)
    head, hist = fit_polar(fb, fw, PolarConfig(steps=150, inner=64, lr=3e-3))
    assert np.mean(hist[-10:]) < 0.3 * np.mean(hist[:10])  # the objective falls
    tb, tw = triple_features(enc, test)
    acc = triple_accuracy(head, tb, tw).mean()
    # Baseline: plain cosine of reference and candidate embeddings.
    d = 384
    cos_b = tb[:, d : 2 * d].sum(1)  # e_ref ⊙ e_y summed = cos (unit vectors)
    cos_w = tw[:, d : 2 * d].sum(1)
    base = float(np.mean((cos_b > cos_w).numpy()))
    assert acc > 0.95 and acc >= base


def test_finetune_reward_and_cli(tmp_path):
    from typer.testing import CliRunner

    from rewardkit import load_reward
    from rewardkit.cli import app
    from rewardkit.data.writer import write_jsonl
    from rewardkit.types import Query

    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(s) for s in _samples(TOPICS[:8])) + "\n")
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "polar",
            "pretrain",
            "--data",
            str(samples),
            "--out",
            str(tmp_path / "pre"),
            "--steps",
            "60",
        ],
    )
    assert r.exit_code == 0, r.output
    # Fine-tuning pairs: the answer in the reference's manner beats the other one.
    pairs = [
        Example(
            f"f{t}",
            [user(f"Tell me about {t}.")],
            [STYLES["formal"].format(t=t), STYLES["casual"].format(t=t)],
            [0],
            reference=STYLES["formal"].format(t=TOPICS[(i + 1) % 8]),
        )
        for i, t in enumerate(TOPICS[:8])
    ]
    write_jsonl(pairs, tmp_path / "ft.jsonl")
    assert len(preference_triples(pairs)) == 8
    r = runner.invoke(
        app,
        [
            "polar",
            "finetune",
            str(tmp_path / "pre"),
            "--data",
            str(tmp_path / "ft.jsonl"),
            "--out",
            str(tmp_path / "ft"),
            "--steps",
            "40",
        ],
    )
    assert r.exit_code == 0, r.output
    assert [s["stage"] for s in json.loads(r.output.split("\nsaved to")[0])["stages"]] == [
        "pretrain",
        "finetune",
    ]
    reward = load_reward(f"polar:{tmp_path / 'ft'}")
    p = [user("Tell me about tides.")]
    ref = STYLES["formal"].format(t="lamps")
    s = reward.score(
        [
            Query(p, STYLES["formal"].format(t="tides"), reference=ref),
            Query(p, STYLES["casual"].format(t="tides"), reference=ref),
            Query(p, "no reference here"),
        ]
    )
    assert s[0] > s[1] and np.isnan(s[2])
    r = runner.invoke(
        app,
        [
            "polar",
            "finetune",
            str(tmp_path / "pre"),
            "--data",
            str(tmp_path / "samples.jsonl"),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2


def test_mtbench_policies(shared_data):
    from rewardkit.train.polar import mtbench_samples

    rows = mtbench_samples(shared_data / "mt_bench")
    assert len({r["policy"] for r in rows}) == 32 and len({r["prompt_id"] for r in rows}) == 80
    tr = policy_triples(rows[:200], seed=0)
    assert all(isinstance(t, Triple) for t in tr)

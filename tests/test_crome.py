"""Crome (docs/methods/A8-crome.md): the tie loss, the rule rewrites, the augmentation step, the
``crome`` objective, and a planted spurious attribute that fools the plain model but not Crome."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardkit.curate.crome import (
    FILLER,
    GeneratorRewriter,
    RuleRewriter,
    crome_augment,
    factual_error,
    formatting,
    missing_step,
    toggle_filler,
)
from rewardkit.errors import DataError
from rewardkit.evaluate.augmented import augmentation_report, augmentation_table
from rewardkit.train.losses import bt_loss, soft_bt_loss
from rewardkit.types import Example, user


def test_card_worked_example():
    # Δ = 0 → log 2; Δ = 2 → ½(0.126928 + 2.126928) = 1.126928; p = 1 is plain BT.
    assert float(soft_bt_loss(torch.tensor([0.0]), 0.5)) == pytest.approx(0.693147, abs=1e-6)
    assert float(soft_bt_loss(torch.tensor([2.0]), 0.5)) == pytest.approx(1.126928, abs=1e-6)
    d = torch.tensor([0.3, -1.0])
    assert torch.allclose(soft_bt_loss(d, 1.0), bt_loss(d, torch.zeros(2)))


def test_rule_rewrites():
    assert factual_error("So she has 3 + 4 = 7 apples.") == "So she has 3 + 4 = 8 apples."
    assert factual_error("It costs 2.50 dollars.") == "It costs 3.50 dollars."
    assert factual_error("The sky is blue.") == "The sky is not blue."
    assert factual_error("Hello there.") is None
    assert missing_step("First a. Then b. Finally c.") == "First a. Finally c."
    assert missing_step("step 1\nstep 2\nstep 3") == "step 1\nstep 3"
    assert missing_step("One sentence only") is None
    assert toggle_filler("Yes.") == "Yes. " + FILLER and toggle_filler("Yes. " + FILLER) == "Yes."
    assert formatting("A is one. B is two.") == "- A is one.\n- B is two."
    assert formatting("- A is one.\n- B is two.") == "A is one. B is two."


class _EchoGenerator:
    """A deterministic stand-in generator with the Policy interface (sample(prompt, n))."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def sample(self, prompt, n):
        self.asked.append(prompt[-1]["content"])
        return ["REWRITTEN"] * n


def test_augment_records_attribute_and_kind():
    exs = [
        Example("a", [user("How many apples?")], ["She has 3 + 4 = 7 apples. Done.", "8"], [0]),
        Example("b", [user("What colour is the sky?")], ["The sky is blue. Mostly.", "red"], [0]),
    ]
    rw = RuleRewriter([r for ex in exs for r in ex.responses], seed=0)
    aug = crome_augment(exs, rw)
    kinds = {(ex.meta["augmentation"], ex.meta["attribute"]) for ex in aug}
    assert ("causal", "factual_error") in kinds and ("neutral", "length") in kinds
    assert ("neutral", "irrelevant") in kinds
    for ex in aug:
        assert ex.subset == f"crome/{ex.meta['augmentation']}/{ex.meta['attribute']}"
        assert ex.is_tie == (ex.meta["augmentation"] == "neutral")
        assert ex.responses[0] != ex.responses[1]
    irr = [ex for ex in aug if ex.meta["attribute"] == "irrelevant"]
    assert all(
        ex.prompt != next(e for e in exs if e.id == ex.meta["source_id"]).prompt for ex in irr
    )
    gen = _EchoGenerator()
    out = crome_augment(exs[:1], GeneratorRewriter(gen), ["missing_step"], ["tone"], False)
    assert [ex.responses[1] for ex in out] == ["REWRITTEN", "REWRITTEN"]
    assert "leaving out one important step" in gen.asked[0] and "How many apples?" in gen.asked[0]
    with pytest.raises(DataError, match="unknown Crome attributes"):
        crome_augment(exs, rw, ["sarcasm"])


def test_augmentation_report_numbers():
    rep = augmentation_report(
        ["causal", "causal", "neutral", "neutral"], ["f", "f", "length", "length"], [2, 1, 0.1, -3]
    )
    assert rep["epsilon"] == pytest.approx(0.1)  # ties at |m| ≤ 0.1 are best here
    assert rep["attributes"]["causal/f"]["sensitivity"] == 1.0
    assert rep["attributes"]["neutral/length"]["invariance"] == 0.5
    assert rep["attributes"]["neutral/length"]["changed_wins"] == 0.5
    assert rep["attributes"]["neutral/length"]["ratio"] == pytest.approx(1.55 / 1.5)
    _title, header, rows, _ = augmentation_table([("r", rep)])
    assert header == ["attribute", "r"] and rows[0][0] == "causal/f"


TOPICS = [
    "cats",
    "dogs",
    "volcanoes",
    "bread",
    "jazz",
    "chess",
    "rivers",
    "glaciers",
    "tomatoes",
    "violins",
    "bees",
    "comets",
    "deserts",
    "coffee",
    "trains",
    "tulips",
    "sharks",
    "castles",
    "rainbows",
    "cheese",
    "kites",
    "owls",
    "bridges",
    "pianos",
    "whales",
    "mushrooms",
    "robots",
    "lighthouses",
    "penguins",
    "honey",
    "maps",
    "candles",
    "forests",
    "tea",
    "bicycles",
    "snow",
    "diamonds",
    "clocks",
    "frogs",
    "islands",
]


def _answer(topic: str) -> str:
    return f"{topic.capitalize()} are a fascinating subject. People study {topic} closely."


def _planted(tmp_path):
    """Train pairs: the on-topic answer always carries the filler, the off-topic one never."""
    from rewardkit.data.writer import write_jsonl

    rng = np.random.default_rng(0)
    train_t, test_t = TOPICS[:28], TOPICS[28:]
    train = []
    for i, t in enumerate(train_t):
        for k in range(3):
            other = train_t[(i + 1 + k + int(rng.integers(5))) % len(train_t)]
            train.append(
                Example(
                    f"{t}{k}",
                    [user(f"Tell me about {t}.")],
                    [toggle_filler(_answer(t)), _answer(other)],
                    [0],
                )
            )
    pool = [_answer(t) for t in train_t]
    aug = crome_augment(train, RuleRewriter(pool), ["ignored_instruction"], ["length"], True)
    write_jsonl(train, tmp_path / "orig.jsonl")
    write_jsonl(aug, tmp_path / "aug.jsonl")
    # Held out: the spurious attribute now sits on the wrong answer, and pure neutral pairs.
    flipped = [
        Example(
            f"x{t}",
            [user(f"Tell me about {t}.")],
            [_answer(t), toggle_filler(_answer(test_t[(i + 1) % len(test_t)]))],
            [0],
        )
        for i, t in enumerate(test_t)
    ]
    neutral = crome_augment(
        [Example(f"n{t}", [user(f"Tell me about {t}.")], [_answer(t), "x"], [0]) for t in test_t],
        RuleRewriter([_answer(t) for t in test_t]),
        ["ignored_instruction"],
        ["length"],
        False,
    )
    return flipped, neutral


def _train(tmp_path, name, data, objective):
    from rewardkit.train import TrainConfig, train

    cfg = TrainConfig(
        model="minilm",
        freeze_backbone=True,
        head="mlp",
        head_inner=64,
        objective=objective,
        data=data,
        max_length=64,
        lr=3e-3,
        batch_size=32,
        epochs=30,
        output_dir=str(tmp_path / name),
        plot=False,
        progress=False,
        logging_steps=5,
    )
    return train(cfg)


def test_crome_invariant_to_planted_spurious_attribute(tmp_path):
    from rewardkit import load_reward
    from rewardkit.evaluate.run import evaluate

    flipped, held = _planted(tmp_path)
    plain = _train(tmp_path, "plain", str(tmp_path / "orig.jsonl"), "bt")
    crome = _train(
        tmp_path, "crome", f"{tmp_path / 'orig.jsonl'},{tmp_path / 'aug.jsonl'}", "crome"
    )
    losses = [h["loss"] for h in crome.history]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:2])  # the objective falls
    r_plain = load_reward(f"default:{plain.output_dir}")
    r_crome = load_reward(f"default:{crome.output_dir}")
    res = evaluate(flipped + held, [r_plain, r_crome], n_boot=50, include_length_baseline=False)
    a_plain = res.rewards[0].analyses["augmentations"]["attributes"]
    a_crome = res.rewards[1].analyses["augmentations"]["attributes"]
    # The plain model is fooled by the filler: it prefers the padded copy of the same answer.
    assert a_plain["neutral/length"]["changed_wins"] > 0.9
    assert a_plain["neutral/length"]["ratio"] > 2  # filler moves it more than relevance does
    assert a_crome["neutral/length"]["ratio"] < 1
    d_plain = abs(a_plain["neutral/length"]["mean_margin"])
    assert abs(a_crome["neutral/length"]["mean_margin"]) < 0.35 * d_plain
    # ... and so it loses the pairs where the filler sits on the off-topic answer.
    acc = {r.name: r.score for r in res.rewards}
    assert acc[r_crome.name] >= 0.9 and acc[r_crome.name] - acc[r_plain.name] >= 0.3
    assert a_crome["causal/ignored_instruction"]["accuracy"] >= 0.9


def test_curate_crome_cli(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app
    from rewardkit.data import load
    from rewardkit.data.writer import write_jsonl

    exs = [
        Example("a", [user("How many apples?")], ["She has 3 + 4 = 7 apples. Done.", "8"], [0]),
        Example("b", [user("Sky colour?")], ["The sky is blue. Mostly on clear days.", "red"], [0]),
    ]
    write_jsonl(exs, tmp_path / "in.jsonl")
    r = CliRunner().invoke(
        app,
        [
            "curate",
            "crome",
            "--data",
            str(tmp_path / "in.jsonl"),
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["augmented"]["causal/factual_error"] == 2
    back = load(str(tmp_path / "o.jsonl"))
    assert len(back) == summary["written"] and back[-1].meta["augmentation"] == "neutral"
    r = CliRunner().invoke(
        app,
        [
            "curate",
            "crome",
            "--data",
            str(tmp_path / "in.jsonl"),
            "--out",
            str(tmp_path / "p"),
            "--causal",
            "sarcasm",
        ],
    )
    assert r.exit_code == 2 and "unknown Crome attributes" in r.output

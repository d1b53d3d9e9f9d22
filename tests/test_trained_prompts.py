"""Training runs record the prompts they trained on; an evaluation on data holding them says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tests.train_helpers import tiny_cfg, toy_pairs

from rewardkit.data.trained_on import (
    TRAINED_PROMPTS_FILE,
    key_hashes,
    read_trained_prompts,
    trained_count,
    write_trained_prompts,
)
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward
from rewardkit.train.pairs import group_key
from rewardkit.types import Example, user


def _with_prompts(exs: list[Example], tag: str) -> list[Example]:
    """``exs`` with a distinct prompt each (toy_pairs repeats a few questions)."""
    return [
        Example(f"{tag}{i}", [user(f"{tag} question number {i}?")], ex.responses, ex.chosen)
        for i, ex in enumerate(exs)
    ]


def test_records_round_trip_and_count_normalized_copies(tmp_path):
    exs = _with_prompts(toy_pairs(6), "q")
    assert write_trained_prompts(tmp_path, [group_key(ex) for ex in exs]) is not None
    hashes = read_trained_prompts(tmp_path)
    assert hashes is not None and hashes.dtype == np.uint64 and hashes.size == 6
    # a copy differing in case and spacing is the same prompt; another prompt is not
    copy = Example("c", [user("  Q QUESTION   number 3? ")], ["a", "b"], [0])
    other = Example("o", [user("q question number 33?")], ["a", "b"], [0])
    assert trained_count([group_key(copy), group_key(other)], hashes) == 1
    assert write_trained_prompts(tmp_path / "none", []) is None  # nothing to record: no file
    assert key_hashes(["", "ab" * 8]).tolist() == [int("ab" * 8, 16)]


@pytest.mark.parametrize("content", [b"not numpy", b""], ids=["garbage", "empty"])
def test_unreadable_record_is_warned_and_ignored(tmp_path, content):
    (tmp_path / TRAINED_PROMPTS_FILE).write_bytes(content)
    with pytest.warns(UserWarning, match="not a training-prompt record"):
        assert read_trained_prompts(tmp_path) is None
    np.save(tmp_path / TRAINED_PROMPTS_FILE, np.array([1.5, 2.5]))
    with pytest.warns(UserWarning, match="1-D uint64"):
        assert read_trained_prompts(tmp_path) is None


def test_frozen_head_records_its_training_prompts_not_its_holdout(tmp_path):
    from rewardkit.data import write_jsonl
    from rewardkit.train import TrainConfig, train

    exs = _with_prompts(toy_pairs(20), "f")
    data = tmp_path / "train.jsonl"
    write_jsonl(exs, data)
    cfg = TrainConfig(
        model="minilm", freeze_backbone=True, head="linear", data=str(data), max_length=32,
        batch_size=8, epochs=1, eval_fraction=0.2, output_dir=str(tmp_path / "head"),
        plot=False, progress=False, threads=1,
    )  # fmt: skip
    res = train(cfg)
    hashes = read_trained_prompts(res.output_dir)
    assert hashes is not None and hashes.size == 16  # 20 rows, 4 held out
    reward = load_reward(f"default:{res.output_dir}")
    assert reward.trained_prompts() is not None
    keys = [group_key(ex) for ex in exs]
    assert trained_count(keys, hashes) == 16
    with pytest.warns(UserWarning, match=r"training data holds the prompts of 16 of these 20"):
        result = evaluate(exs, reward, n_boot=10, analyses=False, include_length_baseline=False)
    assert result.settings["trained_prompts"] == {reward.name: 16}
    assert any("not held-out" in n for n in result.settings["notes"])


def test_fine_tune_records_its_training_prompts(bert_dir, tmp_path):
    from rewardkit.train.run import train_model

    exs = _with_prompts(toy_pairs(12), "t")
    cfg = tiny_cfg(bert_dir, tmp_path / "o", max_steps=2, eval_fraction=0.0)
    res = train_model(cfg, examples=(exs, []))
    hashes = read_trained_prompts(res.output_dir)
    assert hashes is not None and hashes.size == 12
    reward = load_reward(f"classifier:{res.output_dir}")
    assert np.array_equal(reward.trained_prompts(), hashes)
    fresh = _with_prompts(toy_pairs(4), "fresh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note on prompts the model never saw
        result = evaluate(fresh, reward, n_boot=10, analyses=False, include_length_baseline=False)
    assert result.settings["trained_prompts"] == {reward.name: 0}
    assert "notes" not in result.settings or not any(
        "held-out" in n for n in result.settings["notes"]
    )


def test_shipped_default_names_its_training_file(shared_data):
    """The shipped head was trained on HH-RLHF helpful-base test pairs: an evaluation there says
    so; one on other data does not."""
    from rewardkit.data import load

    reward = load_reward("default")
    hashes = reward.trained_prompts()
    assert hashes is not None and hashes.size == 2354
    base = load(shared_data / "hh_rlhf" / "helpful-base" / "test.jsonl.gz", limit=50)
    online = load(shared_data / "hh_rlhf" / "helpful-online", limit=200)
    assert trained_count([group_key(ex) for ex in base], hashes) == 50
    assert trained_count([group_key(ex) for ex in online], hashes) == 0


def test_composites_answer_from_their_parts():
    """An ensemble (or hybrid, route) holding the shipped default answers with its record; one
    of rules alone has none."""
    ens = load_reward({"ensemble": ["default", "rule:length"]})
    assert ens.trained_prompts() is not None and ens.trained_prompts().size == 2354
    assert load_reward({"ensemble": ["rule:length", "rule:format"]}).trained_prompts() is None

"""Model rewards, round 41: a PRM row whose every step truncation cut under ``cut=prefix`` is a
failed row (it was NaN read as "does not apply": ``weighted`` then scored the padded response the
maximum); ``density-ratio`` with ``weak=default`` is the documented default weak side (it looked
for a Hub model named "default"), a missing strong or weak folder is named by its option, and
``strong=`` as an option says the strong model is the spec's argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers

from family_models import smollm_tokenizer
from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.errors import ModelNotFoundError, SpecError
from rewardkit.registry import load_reward
from rewardkit.results import failed_rows
from rewardkit.rewards.density_ratio import DensityRatioReward
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.types import Query, user
from train_helpers import tiny_llama_config

WORDS = [
    QWEN_SYSTEM,
    "Tom has 3 apples and buys 4 more . How many apples ?",
    "3 + 4 = 7 8 apples . so wrong The answer is \\boxed{7}",
]
Q = [user("Tom has 3 apples and buys 4 more . How many apples ?")]
HONEST = "3 + 4 = 7 apples .\n\nThe answer is \\boxed{7} ."
#: a first step of 80 words: at max_length=64 the model sees none of the 3 steps
PADDED = ("so 7 apples . " * 20) + "\n\n3 + 4 = 8 wrong .\n\nThe answer is \\boxed{7} ."
#: one short step, then PADDED: the model sees the first step only
PART = "3 + 4 = 7 apples .\n\n" + PADDED


@pytest.fixture(scope="module")
def prm(tmp_path_factory) -> str:
    path = tiny_llama_dir(tmp_path_factory.mktemp("prm"), word_tokenizer(WORDS), "token-cls", 1)
    return f"prm:{path}?max_length=64&progress=false&cut=prefix"


def _queries(*responses: str) -> list[Query]:
    return [Query(Q, r, reference="7") for r in responses]


# -- 1. cut=prefix: a row with no step seen fails -----------------------------------------------
def test_prefix_row_with_every_step_cut_fails_alone(prm):
    res = load_reward(prm).score_full(_queries(HONEST, PADDED, PART))
    rows = failed_rows(res.stats, res.scores)
    assert list(rows) == [1]  # was: {} (NaN, not failed)
    assert "cut all 3 of its steps, so none was scored (cut=prefix" in rows[1]
    assert math.isnan(res.scores[1]) and np.isfinite(res.scores[[0, 2]]).all()
    assert res.stats["steps_cut_rows"] == 2  # PART is cut too, but scored on its prefix
    assert np.isnan(res.steps[1]).all() and np.isfinite(res.steps[2, 0])


def test_prefix_batch_where_no_row_has_a_step_seen(prm):
    res = load_reward(prm).score_full(_queries(PADDED, PADDED + " ."))
    assert res.stats["failed"] == 2 and np.isnan(res.scores).all()


@pytest.mark.parametrize("kind", ["weighted", "ensemble"])
def test_composite_marks_the_unscored_prefix_row_failed(prm, kind):
    spec = (
        {"weighted": {prm: 1.0, "rule:math": 1.0}}
        if kind == "weighted"
        else {"ensemble": [prm, "rule:math"]}
    )
    res = load_reward(spec).score_full(_queries(HONEST, PADDED, PART))
    # was: weighted 2.0 (the PRM dropped as "does not apply", rule:math rescaled to the maximum)
    assert math.isnan(res.scores[1]) and np.isfinite(res.scores[[0, 2]]).all()
    assert list(failed_rows(res.stats, res.scores)) == [1]


def test_verl_gives_the_unscored_prefix_row_failed(prm):
    from rewardkit.integrations.verl import compute_score_batch

    honest, padded = compute_score_batch(
        ["gsm8k"] * 2,
        [HONEST, PADDED],
        ["7", "7"],
        [{"question": Q[0]["content"]}] * 2,
        spec={"weighted": {prm: 1.0, "rule:math": 1.0}},
    )
    assert padded["failed"] == 1.0 and honest["failed"] == 0.0
    assert padded["score"] <= honest["score"]


# -- 2. density-ratio: weak=default, same paths, missing paths ------------------------------------
@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    tok = smollm_tokenizer()
    path = tmp_path_factory.mktemp("dr") / "lm"
    torch.manual_seed(0)
    cfg = tiny_llama_config(tok, max_position_embeddings=256, tie_word_embeddings=False)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


QS = [Query("Hi", "a"), Query("Hi", "b c d " * 5), Query("x", "")]


def test_weak_default_is_the_documented_default_weak_side(lm):
    base = load_reward(f"density-ratio:{lm}?progress=false")
    # "default" was looked up as a model: 8 s of Hub probing offline, then ModelNotFoundError
    got = load_reward(f"density-ratio:{lm}?weak=default&progress=false")
    assert got.identity() == base.identity()
    assert got.weak.identity()["template"]["plain"]  # the strong weights on plain text
    assert np.array_equal(got.score(QS), base.score(QS))
    assert np.abs(got.score(QS)).min() > 0
    for weak in ("DEFAULT", str(lm)):  # the same path as strong: the same default weak side
        assert load_reward(f"density-ratio:{lm}?weak={weak}").identity() == base.identity()
    assert DensityRatioReward(str(lm), "default").identity() == base.identity()


def test_missing_strong_or_weak_folder_is_named_by_its_option(lm, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelNotFoundError, match=rf"density-ratio: weak={missing}: .*no such"):
        load_reward(f"density-ratio:{lm}?weak={missing}")  # was: "model '…': no such …" alone
    with pytest.raises(ModelNotFoundError, match=r"density-ratio: strong model \(density-ratio"):
        load_reward(f"density-ratio:{missing}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"density-ratio: weak=.*empty: .*no tokenizer files"):
        load_reward(f"density-ratio:{lm}?weak={tmp_path / 'empty'}")


def test_strong_as_an_option_says_it_is_the_argument(lm):
    with pytest.raises(SpecError, match="the strong model is the spec's argument"):
        load_reward(f"density-ratio:default?strong={lm}")  # was: "got multiple values for …"

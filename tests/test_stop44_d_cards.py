"""Evaluation cards D1–D9 against the code: the worked numbers no other test pinned (D3's gap,
D4's mean of scenarios) and hostile inputs on the public scoring functions (empty subsets,
all-NaN rewards, one example, ties everywhere, huge values): NaN where nothing applies, a
clear error for input that is no score, never a silent number."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from _benchdata import write
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate import (
    best_of_k_score,
    best_of_k_scores,
    evaluate,
    mean_of_sections,
    pairwise_outcome,
    rewardbench1_scores,
    rewardbench2_score,
    section_scores,
    ties_components,
    ties_score,
)
from rewardkit.evaluate.bestofn import bon_kl, expected_bon
from rewardkit.evaluate.calibration import (
    brier_score,
    calibration_error,
    fit_temperature,
    pair_logits,
    temperature_label,
)
from rewardkit.evaluate.languages import per_language_scores
from rewardkit.evaluate.multimodal import mmrb2_outcome
from rewardkit.evaluate.probing import linear_probe, probe_dimensions
from rewardkit.evaluate.tieacc import _acc, accuracy_with_ties
from rewardkit.types import Example, user

NAN = float("nan")
CARD_TIES = [  # docs/methods/D2 worked Ties prompt
    ("ref:7", [3.0, 1.0, 0.5, 0.0], [0]),
    ("tied:7", [2.8, 2.0, 1.6, 1.5, 0.2], [0, 1, 2]),
]


def _eval(examples, table: dict[str, float], fake_reward):
    return evaluate(examples, [fake_reward(table)], n_boot=20, include_length_baseline=False)


# -- D3 / D4 worked numbers ------------------------------------------------------------------


def test_d3_gap_to_english_card_example() -> None:
    # English 4/5 = 0.80 and German 37/50 = 0.74 on one Chat subset → gap −0.06
    langs = ["en"] * 5 + ["de"] * 50
    outcomes = [1.0] * 4 + [0.0] + [1.0] * 37 + [0.0] * 13
    r = per_language_scores(langs, ["alpacaeval-easy"] * 55, ["Chat"] * 55, outcomes)
    assert r["languages"]["en"]["score"] == pytest.approx(0.80)
    assert r["languages"]["de"]["score"] == pytest.approx(0.74)
    assert r["gap_to_english"]["de"] == pytest.approx(-0.06, abs=1e-12)
    assert r["english"] == "en" and r["mean_non_english"] == pytest.approx(0.74)


def test_d3_english_labelled_two_ways_is_one_language() -> None:
    # RewardBench rows get "en" beside M-RewardBench's "eng_Latn": one English, never a gap of
    # English to English (and never an error that stops the evaluation)
    langs = ["en", "eng_Latn", "eng_Latn", "de", "de"]
    r = per_language_scores(langs, ["alpacaeval-easy"] * 5, ["Chat"] * 5, [1, 0, 1, 0, 1.0])
    assert set(r["languages"]) == {"en", "de"} and r["english"] == "en"
    assert r["languages"]["en"]["score"] == pytest.approx(2 / 3)
    assert r["languages"]["en"]["n"] == 3
    assert r["gap_to_english"] == {"de": pytest.approx(0.5 - 2 / 3)}


def test_d4_mean_of_scenarios_card_example(tmp_path: Path, fake_reward) -> None:
    # multi-hop: subsets of 4 (3 right) and 6 (4 right) pool to 0.7; citation 9/10 = 0.9
    rows, table = [], {}
    for subset, n, right in (("multi_hop_a", 4, 3), ("hop_b", 6, 4), ("citation", 10, 9)):
        for i in range(n):
            c, r = f"{subset}-c{i}", f"{subset}-r{i}"
            table[c], table[r] = (1.0, 0.0) if i < right else (0.0, 1.0)
            rows.append({"question": "q", "documents": ["d"], "chosen": c, "rejected": r,
                         "subset": subset})  # fmt: skip
    res = _eval(load(write(tmp_path, rows)), table, fake_reward)
    r = res.rewards[0]
    assert res.settings["benchmark"] == "rag-rewardbench"
    assert r.sections["multi-hop reasoning"].score == pytest.approx(0.7)
    assert r.sections["fine-grained citation"].score == pytest.approx(0.9)
    assert r.score == pytest.approx(0.8)


# -- D1 / D2 section rules ---------------------------------------------------------------------


def test_d1_accuracy_outside_unit_interval_is_an_error() -> None:
    for bad in (2.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="alpacaeval-easy"):
            rewardbench1_scores({"alpacaeval-easy": bad})
    out = rewardbench1_scores({"alpacaeval-easy": NAN, "hep-go": 0.5})  # NaN: left out
    assert out["sections"] == {"Reasoning": 0.5} and out["score"] == 0.5
    assert math.isnan(rewardbench1_scores({})["score"])


def test_section_rule_refuses_negative_weights_and_infinite_scores() -> None:
    with pytest.raises(ValueError, match="weight of subset 'a'"):
        section_scores({"a": 0.5, "b": 1.0}, {"a": -1, "b": 2}, {"a": "S", "b": "S"})
    with pytest.raises(ValueError, match="weight of section 'a'"):
        mean_of_sections({"a": 1.0, "b": 0.0}, {"a": -1.0, "b": 2.0})
    with pytest.raises(ValueError, match="section 'a' is infinite"):
        mean_of_sections({"a": math.inf, "b": 0.0})  # was 0.0: inf read as absent
    assert math.isnan(mean_of_sections({"a": NAN}))
    assert math.isnan(section_scores({"a": 0.5}, {"a": 0}, {"a": "S"})["S"])


def test_d2_rewardbench2_score_checks_domains_and_range() -> None:
    with pytest.raises(ValueError, match="not RewardBench 2 domains"):
        rewardbench2_score({"Mathx": 0.5})
    with pytest.raises(ValueError, match="'Math'"):
        rewardbench2_score({"Math": 3.0})
    assert rewardbench2_score({"Math": 0.5, "Ties": 1.01}) == pytest.approx(0.755)
    with pytest.raises(ValueError, match="'Ties'"):
        rewardbench2_score({"Ties": 1.02})


def test_d2_best_of_k_refuses_fractional_and_bool_indices() -> None:
    with pytest.raises(ValueError, match="integer"):
        best_of_k_scores(np.ones((2, 3)), chosen_idx=[0.5, 1.7])  # read as [0, 1] before
    with pytest.raises(ValueError, match="integer"):
        best_of_k_score([1.0, 2.0], chosen_idx=True)
    assert best_of_k_scores(np.array([[1.0, 2.0, 3.0]]), chosen_idx=np.array([2.0])) == [1.0]
    with pytest.raises(ValueError, match=r"\(2,\) and rejected scores \(3,\)"):
        pairwise_outcome([1, 2], [1, 2, 3])


def test_d2_ties_everywhere_and_best_of_k_ties() -> None:
    assert best_of_k_score([1.0, 1.0, 1.0, 1.0]) == 0.25  # chosen tied 4 ways: 1/m
    assert best_of_k_score([math.inf, math.inf, 0.0]) == 0.5
    comp = ties_components([("ref:1", [1.0, 1.0], [0]), ("tied:1", [1.0, 1.0, 1.0], [0, 1])])
    assert comp["score"] == 0.0 and comp["correctness_margin"] == 0.0  # 0/0 → 0
    # dcm = 0 with a positive margin: tanh(+inf) = 1, the 1.01 the card allows
    assert ties_score([("ref:1", [3.0, 1.0], [0]), ("tied:1", [2.0, 2.0, 1.0], [0, 1])]) == 1.01


def test_d2_ties_row_checks() -> None:
    with pytest.raises(ValueError, match="'tied:1' has 1 correct"):
        ties_score([("ref:1", [2.0, 1.0], [0]), ("tied:1", [2.0, 1.0], [0])])  # scored 0.6
    with pytest.raises(ValueError, match=r"correct indices \[-1\]"):
        ties_score([("ref:1", [2.0, 1.0, 0.0], [-1])])  # marked the last response correct
    with pytest.raises(ValueError, match=r"correct indices \[5\]"):
        ties_score([("ref:1", [2.0, 1.0], [5])])
    with pytest.raises(ValueError, match="duplicate Ties row id 'ref:1'"):
        ties_score([("ref:1", [NAN, 1.0], [0]), ("ref:1", [2.0, 1.0], [0])])
    assert math.isnan(ties_score([])) and math.isnan(ties_score([("ref:1", [NAN, 0], [0])]))


def test_d2_ties_huge_scores_score_as_their_scaled_copy() -> None:
    card = ties_score(CARD_TIES)
    assert card == pytest.approx(0.592757, abs=5e-7)
    big = [(i, [v * 1e307 for v in s], c) for i, s, c in CARD_TIES]  # differences past 1.8e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ties_score(big) == pytest.approx(card, abs=1e-12)
        rows = [("ref:1", [1e308, -1e308], [0]), ("tied:1", [1e308, -1e308, -1e308], [0, 1])]
        small = [("ref:1", [1.0, -1.0], [0]), ("tied:1", [1.0, -1.0, -1.0], [0, 1])]
        assert ties_score(rows) == ties_score(small) == pytest.approx(0.3 + 0.01 * math.tanh(-1))


def _rb2(ids_chosen: list[tuple[str, int]]) -> list[Example]:
    exs = [Example(f"f{i}", [user("p")], ["a", "b", "c", "d"], [0], subset="Factuality")
           for i in range(3)]  # fmt: skip
    for row_id, k in ids_chosen:
        exs.append(Example(row_id, [user("p")], ["a", "b", "c"], list(range(k)), subset="Ties"))
    return exs


def test_d2_ties_everywhere_end_to_end_and_short_tied_row(fake_reward) -> None:
    flat = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}
    r = _eval(_rb2([("ref:1", 1), ("tied:1", 2)]), flat, fake_reward).rewards[0]
    assert r.subsets["Factuality"].score == 0.25 and r.subsets["Ties"].score == 0.0
    assert r.score == 0.125
    with pytest.raises(DataError, match="'tied:1' has 1 chosen response"):
        _eval(_rb2([("ref:1", 1), ("tied:1", 1)]), flat, fake_reward)


def test_all_nan_reward_and_one_example_subsets(fake_reward) -> None:
    exs = [
        Example("e1", [user("p")], ["a", "b"], [0], subset="alpacaeval-easy"),
        Example("e2", [user("p")], ["c", "d"], [0], subset="hep-go"),
    ]
    r = _eval(exs, {k: NAN for k in "abcd"}, fake_reward).rewards[0]
    assert math.isnan(r.score) and r.subsets["hep-go"].n_nan == 1 and r.subsets["hep-go"].n == 0
    r = _eval(exs, {"a": math.inf, "b": math.inf, "c": 2.0, "d": 1.0}, fake_reward).rewards[0]
    assert r.subsets["alpacaeval-easy"].score == 0.5 and r.subsets["hep-go"].score == 1.0
    assert r.score == 0.75  # one example per subset: Chat ½ (inf = inf), Reasoning 1


# -- D5 probing ------------------------------------------------------------------------------


def test_d5_probe_refuses_non_finite_features_and_misaligned_labels() -> None:
    x = np.c_[np.r_[np.full(5, NAN), np.ones(5)], np.arange(10.0)]
    with pytest.raises(ValueError, match="row 0 holds NaN or inf"):
        linear_probe(x, [0, 1] * 5)  # scored 1.0 against a majority of 0.0
    with pytest.raises(ValueError, match="8 labels for 10 feature rows"):
        probe_dimensions(np.ones((10, 2)), {"a": [0, 1] * 4})
    for frac in (0.0, 1.0):
        with pytest.raises(ValueError, match="test_frac"):
            linear_probe(np.random.default_rng(0).normal(size=(10, 2)), [0, 1] * 5, test_frac=frac)


def test_d5_probe_on_huge_features_matches_the_scaled_copy() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    x = np.c_[(2 * y - 1) + 0.1 * rng.normal(size=60), rng.normal(size=60)]
    big = x * np.array([2.0**1020, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = linear_probe(big, y)
    assert got["accuracy"] == linear_probe(x, y)["accuracy"] == 1.0


# -- D6 accuracy with ties, MMRB2 ----------------------------------------------------------------


def test_d6_epsilon_minus_one_is_a_candidate() -> None:
    h, m = np.array([1.0, 1.0]), np.array([1.0, 2.0])
    t = accuracy_with_ties(h, m)
    assert t["with_ties"] == 1.0 and t["epsilon"] == -1.0
    # over ε ∈ {|m_i|} alone (EditReward's loop) the best is 0.5
    assert max(_acc(h, m, e) for e in (1.0, 2.0)) == 0.5


def test_d6_bad_labels_and_probabilities_are_errors() -> None:
    with pytest.raises(ValueError, match=r"1, -1 or 0 \(tie\), got 2.0 at index 0"):
        accuracy_with_ties([2, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        accuracy_with_ties([1, 1, 1], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got 3.0"):
        mmrb2_outcome(3.0, -2.0)  # read as right + wrong = 0.5
    assert accuracy_with_ties([NAN, 1], [1.0, 0.5])["n"] == 1
    assert math.isnan(accuracy_with_ties([], [])["with_ties"])


# -- D7 calibration ---------------------------------------------------------------------------


def test_d7_outcomes_and_probabilities_are_checked() -> None:
    with pytest.raises(ValueError, match=r"y_prob\[0\] = 1.5"):
        calibration_error([1, 0], [1.5, -0.5])
    with pytest.raises(ValueError, match=r"y_true\[0\] = 2.0"):
        calibration_error([2, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        brier_score([1, 0, 1], [0.5, 0.5])
    assert math.isnan(calibration_error([1, 0], [NAN, 0.5])["ece"])
    assert math.isnan(calibration_error([], [])["ece"]) and math.isnan(brier_score([], []))


def test_d7_nan_logits_give_no_temperature_and_infinite_margins_separate() -> None:
    assert math.isnan(fit_temperature([NAN, 1.0], [1.0, 0.0]))  # was 1e6, "no signal"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z, y = pair_logits(np.array([1e308, -1e308]), [0])
        assert z.tolist() == [math.inf, -math.inf] and y.tolist() == [1.0, 0.0]
        assert temperature_label(fit_temperature(z, y)) == "separated (T → 0)"
        z, y = pair_logits(np.array([math.inf, math.inf]), [0])  # +inf vs +inf: no margin
    assert z.size == 0 and y.size == 0


# -- D8 best-of-N ------------------------------------------------------------------------------


def test_d8_expected_bon_hostile_inputs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the first candidate is never the best of 2 (lowest proxy): its inf gold adds nothing
        assert expected_bon([0, 1, 2], [math.inf, 1, 2], 2) == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        expected_bon([0, 1, 2], [0, 1], 2)
    for n in (0, 1.5, True):
        with pytest.raises(ValueError, match="integer >= 1"):
            expected_bon([0, 1, 2], [0, 1, 2], n)
    with pytest.raises(ValueError, match="integer >= 1"):
        bon_kl(2.5)
    assert bon_kl(np.int64(4)) == pytest.approx(0.636294, abs=1e-6)
    assert math.isnan(expected_bon([], [], 1)) and math.isnan(expected_bon([1, NAN], [0, 1], 1))
    assert expected_bon([1, 1, 1], [0, 3, 0], 2, ties="random") == pytest.approx(1.0)

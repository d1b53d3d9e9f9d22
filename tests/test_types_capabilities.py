"""The reward-result convention: declared capabilities, ScoreResult values, checked outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.content import ImageContentError, image_part
from rewardkit.errors import CapabilityError
from rewardkit.types import (
    Capability,
    ListwiseResult,
    PairwiseResult,
    Query,
    Reward,
    ScoreResult,
    TokenScores,
    bt_probability,
    position_bias,
    user,
)


class Fixed(Reward):
    """Scores from a table keyed by the response text."""

    name = "fixed"

    def __init__(self, table: dict[str, float], truncated: set[str] | None = None) -> None:
        self.table = table
        self.truncated = truncated

    def _score(self, queries):
        scores = np.array([self.table[q.response] for q in queries])
        if self.truncated is None:
            return scores
        flags = np.array([q.response in self.truncated for q in queries])
        return ScoreResult(scores, stats={"queries": len(queries)}, truncated=flags)


class Parts(Reward):
    """Declares COMPONENTS; ``fill`` decides what it actually returns."""

    name = "parts"
    capabilities = frozenset({Capability.COMPONENTS})

    def __init__(self, fill: dict | None) -> None:
        self.fill = fill

    def _score(self, queries):
        n = len(queries)
        return ScoreResult(np.arange(n, dtype=np.float64), components=self.fill or {})


Q = [Query([user("q")], "a"), Query([user("q")], "bb")]


def test_score_is_score_full_scores_and_arrays_still_work():
    r = Fixed({"a": 1.0, "bb": 2.5})
    full = r.score_full(Q)
    assert full.scores.dtype == np.float32 and full.scores.tolist() == [1.0, 2.5]
    assert r.score(Q).tolist() == [1.0, 2.5]
    assert full.components == {} and full.members == {} and full.stats == {}
    assert full.truncated is None and full.steps is None and full.tokens is None
    assert r.score_full([]).scores.shape == (0,)


def test_score_full_carries_details_as_values_not_state():
    r = Fixed({"a": 1.0, "bb": 2.5}, truncated={"bb"})
    full = r.score_full(Q)
    assert full.stats == {"queries": 2} and full.truncated.tolist() == [False, True]
    assert not any(k.startswith("last_") for k in vars(r))


def test_declared_outputs_must_be_filled_and_undeclared_ones_must_not():
    ok = Parts({"x": [1.0, 2.0]}).score_full(Q)
    assert ok.components["x"].tolist() == [1.0, 2.0]
    with pytest.raises(CapabilityError, match=r"left empty ScoreResult\.components but declares"):
        Parts(None).score_full(Q)
    with pytest.raises(ValueError, match=r"components\['x'\] has shape \(3,\); expected \(2,\)"):
        Parts({"x": [1.0, 2.0, 3.0]}).score_full(Q)

    class Sneaky(Reward):
        def _score(self, queries):
            return ScoreResult(np.zeros(len(queries)), members={"m": np.zeros(len(queries))})

    with pytest.raises(CapabilityError, match=r"does not declare Capability\.MEMBERS"):
        Sneaky().score_full(Q)


def test_steps_and_tokens_shapes_are_checked():
    class Steps(Reward):
        capabilities = frozenset({Capability.STEPS, Capability.TOKENS})

        def __init__(self, rows: int) -> None:
            self.rows = rows

        def _score(self, queries):
            n = len(queries)
            steps = np.full((self.rows, 3), np.nan)
            values = np.zeros((self.rows, 2))
            offsets = np.full((self.rows, 2, 2), -1)
            return ScoreResult(np.zeros(n), steps=steps, tokens=TokenScores(values, offsets))

    full = Steps(2).score_full(Q)
    assert full.steps.shape == (2, 3) and full.steps.dtype == np.float32
    assert full.tokens.values.dtype == np.float32 and full.tokens.offsets.dtype == np.int64
    with pytest.raises(ValueError, match=r"steps has shape \(3, 3\); expected \(2, S\)"):
        Steps(3).score_full(Q)
    with pytest.raises(ValueError, match=r"offsets \(n, T, 2\)"):
        TokenScores(np.zeros((2, 2)), np.zeros((2, 3, 2)))


def test_wrong_score_shape_names_the_class():
    class Bad(Reward):
        def _score(self, queries):
            return np.zeros((len(queries), 2))

    with pytest.raises(ValueError, match=r"Bad.score returned shape \(2, 2\) for 2 queries"):
        Bad().score(Q)


def test_accepts_images_flag_is_refused_in_favour_of_the_capability():
    with pytest.raises(TypeError, match=r"Capability\.IMAGES"):

        class Old(Reward):
            accepts_images = True

            def _score(self, queries):
                return np.zeros(len(queries))

    image = [image_part(b"\x89PNG not really")]
    with pytest.raises(ImageContentError, match="reward 'fixed' reads text only"):
        Fixed({}).score([Query([user("q")], image)])


def test_bradley_terry_compare_many_default_pins_the_old_compare_numbers():
    r = Fixed({"aaa": 3.0, "a": 1.0, "nan": math.nan, "low": -800.0})
    res = r.compare_many(["p", [user("p")], "p"], ["aaa", "a", "low"], ["a", "nan", "a"])
    assert res.p[0] == pytest.approx(1 / (1 + math.exp(-2)))
    assert math.isnan(res.p[1]) and res.p[2] == 0.0
    assert res.p_forward is None and res.position_bias is None and not res.both_orders
    assert r.compare([user("p")], "aaa", "a") == pytest.approx(1 / (1 + math.exp(-2)))
    t = Fixed({"a": 1.0, "bb": 0.0}, truncated={"bb"}).compare_many(
        ["p", "p"], ["a", "a"], ["a", "bb"]
    )
    assert t.truncated.tolist() == [False, True] and t.stats == {"queries": 4}
    with pytest.raises(ValueError, match="1 prompts, 2 a's and 1 b's"):
        r.compare_many(["p"], ["a", "a"], ["a"])
    np.testing.assert_array_equal(bt_probability(np.array([0.0, -701.0])), [0.5, 0.0])


def test_optional_methods_refuse_clearly_without_the_capability():
    r = Fixed({"a": 1.0})
    assert not r.can(Capability.FEATURES) and not r.can(Capability.LISTWISE)
    with pytest.raises(CapabilityError, match="'fixed' exposes no features"):
        r.features(Q)
    with pytest.raises(CapabilityError, match="'fixed' does not rank lists natively"):
        r.rank_many(["p"], [["a", "bb"]])


def test_pairwise_result_position_bias_worked_example():
    # (0.8, 0.3) flips; (0.8, 0.6) does not; a 0.5 side is left out → 1/2.
    res = PairwiseResult(
        p=np.array([0.55, 0.7, 0.5]),
        p_forward=np.array([0.8, 0.8, 0.5]),
        p_reverse=np.array([0.3, 0.6, 0.9]),
    )
    assert res.both_orders and res.position_bias == 0.5
    assert res.flipped.tolist() == [True, False, False]
    assert position_bias([0.5], [0.5]) != position_bias([0.5], [0.5])  # NaN when none is left


def test_listwise_result_rankings_best_first_nan_last():
    res = ListwiseResult((np.array([0.1, np.nan, 0.9, 0.1]), np.array([2.0])))
    assert [r.tolist() for r in res.rankings()] == [[2, 0, 3, 1], [0]]


def test_model_backed_rewards_declare_it_on_the_class():
    from rewardkit.engine.runner import ModelBackedReward
    from rewardkit.multimodal.engine import MultimodalReward
    from rewardkit.rewards.judges.local import PairwiseJudge

    assert Capability.MODEL_BACKED in ModelBackedReward.capabilities
    assert {Capability.MODEL_BACKED, Capability.IMAGES} <= MultimodalReward.capabilities
    assert {Capability.MODEL_BACKED, Capability.PAIRWISE} <= PairwiseJudge.capabilities
    assert Fixed.capabilities == frozenset()

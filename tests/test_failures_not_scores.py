"""An item a reward failed alone (recorded in its stats, not raised) is never passed off as a
score: an ensemble does not re-weight it over its other members as if the failing one did not
apply, and the server answers it with a ``scoring_error`` and does not cache it (it served the
NaN or 0 as the reward, cached, across restarts with ``--cache-dir``)."""

from __future__ import annotations

import math

import httpx
import numpy as np

from rewardkit.errors import ItemFailed
from rewardkit.results import failed_items, failed_rows
from rewardkit.rewards.composite.ensemble import EnsembleReward
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.state import Route
from rewardkit.types import Query, Reward, ScoreResult, as_messages

SLOW_ANSWER = "\\boxed{(x+1)^{200000}}"  # math-verify cannot expand it within a second


class _Flaky(Reward):
    """Fails every query whose response says "fail" (NaN, or ``fail_score``), 1.0 elsewhere."""

    def __init__(self, fail_score: float = math.nan) -> None:
        self.name = "flaky"
        self.fail_score = fail_score

    def identity(self):
        return {"class": "flaky", "fail_score": repr(self.fail_score)}

    def _score(self, queries):
        bad = [i for i, q in enumerate(queries) if "fail" in q.response]
        scores = np.array([self.fail_score if i in bad else 1.0 for i in range(len(queries))])
        errors = [{"index": i, "error": "upstream answered 500"} for i in bad]
        return ScoreResult(scores, stats={"failed": len(bad), "errors": errors} if bad else {})


def _qs(*responses: str) -> list[Query]:
    return [Query(as_messages("q"), r) for r in responses]


def test_an_ensemble_row_fails_with_its_member_instead_of_scoring_what_the_rest_gave():
    ens = EnsembleReward([_Flaky(), "rule:length"], "mean")
    full = ens.score_full(_qs("fine", "please fail"))
    assert full.scores[0] == np.mean([1.0, 4.0])
    assert math.isnan(full.scores[1])  # was 11.0: the length alone, as if flaky did not apply
    assert failed_items(full.stats) == (1, [(1, "flaky: upstream answered 500")])


def test_a_member_that_scores_its_failure_keeps_its_number_but_the_row_is_failed():
    ens = EnsembleReward([_Flaky(fail_score=0.0), "rule:length"], "mean")
    full = ens.score_full(_qs("please fail"))
    assert full.scores.tolist() == [5.5]
    assert full.stats["errors"] == [
        {"index": 0, "error": "flaky: upstream answered 500", "score": 5.5}
    ]


def test_unlisted_failures_are_the_nan_rows():
    stats = {"failed": 2, "errors": [{"index": 0, "error": "boom"}]}
    assert failed_rows(stats, [np.nan, 1.0, np.nan]) == {
        0: "boom",
        2: "failed (the reward counted it without naming the item)",
    }
    assert failed_rows(stats) == {0: "boom"}


def test_a_route_answers_a_failed_item_with_its_error():
    rows = Route("default", "flaky", _Flaky()).score_batch(_qs("fine", "please fail"))
    assert float(rows[0][0]) == 1.0
    assert isinstance(rows[1], ItemFailed) and "500" in str(rows[1])


def test_the_server_neither_serves_nor_caches_a_math_timeout(tmp_path):
    config = ServeConfig(rewards={"default": "rule:math?timeout=1&fast=false"})
    item = {"prompt": "2+3?", "response": SLOW_ANSWER, "reference": "5"}
    good = {"prompt": "2+3?", "response": "\\boxed{5}", "reference": "5"}
    with BackgroundServer(create_app(config)) as srv:
        for _ in range(2):  # the second time too: nothing was cached
            r = httpx.post(srv.url + "/v1/rewards", json={"items": [item, good]}, timeout=60)
            bad, ok = r.json()["results"]
            assert bad["reward"] is None and bad["error"]["type"] == "scoring_error"
            assert "timed out" in bad["error"]["message"]
            assert ok["reward"] == 1.0
        body = {"query": ["2+3? " + SLOW_ANSWER], "prompts": ["2+3? "], "labels": ["5"]}
        logs = httpx.post(srv.url + "/get_reward", json=body, timeout=60).json()["extra_logs"]
        assert logs["rewardkit_failed"] == [1.0] and logs["rewardkit_cached"] == [0.0]


def test_a_zero_weight_members_failure_does_not_fail_the_row():
    # a judge kept at weight 0 as a logged component: its failure took a right answer's reward
    ens = EnsembleReward([_Flaky(), "rule:length"], "weighted", weights=[0.0, 1.0])
    full = ens.score_full(_qs("please fail"))
    assert full.scores.tolist() == [11.0] and failed_items(full.stats) == (0, [])
    assert full.stats["members"]["flaky"]["failed"] == 1  # still in the member's own stats


def test_a_hybrid_row_fails_with_its_model_part():
    from rewardkit.registry import load_reward
    from rewardkit.rewards.composite.hybrid import HybridReward

    hybrid = HybridReward({"*": load_reward("rule:length")}, model=_Flaky(), confidence=0.5)
    full = hybrid.score_full(_qs("fine", "please fail"))
    assert not math.isnan(full.scores[0])
    assert math.isnan(full.scores[1])  # was the rule's half alone, as if the model abstained
    assert failed_items(full.stats) == (1, [(1, "model: upstream answered 500")])
    scored = HybridReward(
        {"*": load_reward("rule:length")}, model=_Flaky(fail_score=0.0), confidence=0.5
    )
    again = scored.score_full(_qs("please fail"))
    assert not math.isnan(again.scores[0]) and again.stats["errors"][0]["score"] == again.scores[0]


class _WrongIsNegative(Reward):
    """A logit-judge-like reward: "fail" fails (NaN + recorded), "right" 2.0, anything else -2.0."""

    def __init__(self) -> None:
        self.name = "judge-like"

    def identity(self):
        return {"class": "judge-like"}

    def _score(self, queries):
        bad = [i for i, q in enumerate(queries) if "fail" in q.response]
        scores = np.array(
            [
                math.nan if i in bad else 2.0 if "right" in q.response else -2.0
                for i, q in enumerate(queries)
            ]
        )
        errors = [{"index": i, "error": "HTTP 400 maximum context length"} for i in bad]
        return ScoreResult(scores, stats={"failed": len(bad), "errors": errors} if bad else {})


def test_trainer_adapters_never_let_a_failure_beat_a_scored_response(caplog):
    from rewardkit.integrations import openrlhf, trl, verl

    reward = _WrongIsNegative()
    responses = ["right", "wrong", "please fail"]
    out = verl.compute_score_batch(["s"] * 3, responses, ["4"] * 3, spec=reward)
    # was 0.0 (nan_score) with applies 0, as "no reference": above the wrong answer's -2
    assert [r["score"] for r in out] == [2.0, -2.0, -2.0]
    assert [r["failed"] for r in out] == [0.0, 0.0, 1.0] and out[2]["applies"] == 0.0
    assert "1 of 3 items failed" in caplog.text and "maximum context length" in caplog.text
    assert (
        verl.compute_score_batch(["s"], ["please fail"], ["4"], spec=reward, failed_score=-9)[0][
            "score"
        ]
        == -9.0
    )
    rl = openrlhf.score_queries(["q " + r for r in responses], ["q "] * 3, None, spec=reward)
    assert [float(x) for x in rl["rewards"]] == [2.0, -2.0, -2.0]
    assert [float(x) for x in rl["extra_logs"]["rewardkit_failed"]] == [0.0, 0.0, 1.0]
    logged: dict[str, float] = {}
    fn = trl.reward_func(reward)
    got = fn(["q"] * 3, responses, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert got == [2.0, -2.0, -2.0]  # was None for the failure: TRL drops a None term
    assert logged["rewardkit/judge-like/failed"] == 1.0


def test_a_failure_the_reward_scored_keeps_its_score_in_the_adapters():
    # rule:math scores a timeout 0.0 and lists it failed: raised to the batch's lowest (1.0 in
    # a batch of right answers), a wrong answer that hung the verifier scored 1.0
    from rewardkit.integrations import trl, verl

    reward = _Flaky(fail_score=0.0)
    out = verl.compute_score_batch(["s"] * 2, ["fine", "please fail"], ["4"] * 2, spec=reward)
    assert [r["score"] for r in out] == [1.0, 0.0] and out[1]["failed"] == 1.0
    assert trl.reward_func(reward)(["q"] * 2, ["fine", "please fail"]) == [1.0, 0.0]


def test_a_model_failure_leaves_rows_the_rule_decides_alone():
    from rewardkit.registry import load_reward
    from rewardkit.rewards.composite.hybrid import HybridReward

    qs = [Query(as_messages("q"), "please fail", meta={"task": "m"}, reference="please fail")]
    hybrid = HybridReward({"m": load_reward("rule:exact_match")}, model=_Flaky(), confidence=1.0)
    full = hybrid.score_full(qs)
    assert full.scores.tolist() == [1.0] and failed_items(full.stats) == (0, [])

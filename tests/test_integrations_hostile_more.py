"""Hostile inputs to the trainer adapters, ``/get_reward`` and the client, second round
(probe /work/probes/integrations: p5, p6, p7, p12, p15, p19, p20, p21, r3_eos, r4_trl_join,
r5_zscore): a failure never scores above a scored wrong answer, a cut prompt or a batch-relative
reward scored alone is never scored as something else, and a malformed answer is refused."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import httpx
import numpy as np
import pytest

import rewardkit.integrations._common as common
import rewardkit.integrations.openrlhf as orl
import rewardkit.integrations.verl as vrl
from fault_proxy import FaultProxy
from rewardkit.client import AsyncRewardClient, RewardClient, RewardServerError
from rewardkit.data.openrlhf import EOS_MARKERS, split_query, strip_eos
from rewardkit.integrations.trl import reward_func as trl_reward_func
from rewardkit.registry import load_reward
from rewardkit.rewards.composite.ensemble import EnsembleReward
from rewardkit.rewards.composite.hybrid import HybridReward
from rewardkit.rewards.composite.route import RouteReward
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.openrlhf import OpenRLHFRequest, to_response, to_slots
from rewardkit.serve.protocol import ItemError, RewardResult
from rewardkit.serve.security import Limits
from rewardkit.types import Capability, Query, Reward, ScoreResult

P = "Q: 6*7?\nA:"
LONG = "Here are some worked examples.\n" * 8 + "Question: Tom has 42 apples. How many?\nA:"
ZSCORE = {"ensemble": ["rule:length", "rule:format"], "normalize": "zscore"}


class Judge(Reward):
    """Judge-like: +2 when the response says 42, −2.2 otherwise; fails past 200 characters."""

    name = "judge"

    def identity(self) -> dict:
        return {"class": "Judge"}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        scores, errors = [], []
        for i, q in enumerate(queries):
            if len(q.response) > 200:
                scores.append(math.nan)
                errors.append({"index": i, "error": "context length exceeded"})
            else:
                scores.append(2.0 if "42" in q.response else -2.2)
        stats = {"failed": len(errors), "errors": errors}
        return ScoreResult(np.array(scores), stats=stats)


QS = [P + " 42", P + " 41", P + " 41 " + "blah " * 100]


@pytest.fixture
def judge_env(monkeypatch):
    """The ``--remote_rm_url …/openrlhf.py`` entry point scoring with :class:`Judge`."""
    judge = Judge()
    monkeypatch.setattr(orl, "cached_reward", lambda spec=None: judge)
    monkeypatch.setattr(common, "_FIXED_WARNED", set())
    return monkeypatch


def _one_by_one(fn, queries, prompt=P) -> list[float]:
    return [float(fn([q], [prompt], [None])["rewards"][0]) for q in queries]


# -- 1. failed items in one-item calls -------------------------------------------------------
def test_openrlhf_entry_point_failed_score_from_environment(judge_env):
    judge_env.setenv("REWARDKIT_FAILED_SCORE", "-3")
    out = _one_by_one(orl.reward_func, QS)
    assert out == [2.0, pytest.approx(-2.2), -3.0]
    judge_env.setenv("REWARDKIT_NAN_SCORE", "-1.5")
    assert float(orl.reward_func([QS[2]], [P], [None])["rewards"][0]) == -3.0


@pytest.mark.parametrize("value", ["nan", "inf", "abc", "1e999"])
@pytest.mark.parametrize("name", ["REWARDKIT_FAILED_SCORE", "REWARDKIT_NAN_SCORE"])
def test_openrlhf_entry_point_refuses_a_non_finite_score(judge_env, name, value):
    judge_env.setenv(name, value)
    with pytest.raises(ValueError, match=f"\\${name} must be a finite number"):
        orl.reward_func([QS[0]], [P], [None])


def test_a_fixed_failed_score_in_a_one_item_call_is_warned_once(judge_env, caplog):
    with caplog.at_level(logging.WARNING, "rewardkit.integrations"):
        for _ in range(3):
            orl.reward_func([QS[2]], [P], [None])
    fixed = [r for r in caplog.records if "fixed score" in r.getMessage()]
    assert len(fixed) == 1 and "REWARDKIT_FAILED_SCORE" in fixed[0].getMessage()
    batch = orl.make_reward_func(Judge())(QS, [P] * 3, [None] * 3)["rewards"].tolist()
    assert batch[2] == pytest.approx(-2.2)  # the lowest of its call, no fixed score


def test_a_failed_items_components_get_its_failed_score():
    weighted = EnsembleReward([Judge(), "rule:length"], "weighted", weights=[1.0, 0.0])
    out = orl.make_reward_func(weighted, failed_score=-5.0)([QS[2]], [P], [None])
    logs = {k: float(v[0]) for k, v in out["extra_logs"].items()}
    assert logs["judge"] == -5.0 and logs["rewardkit_failed"] == 1.0


def test_served_failed_reward_flag_is_kept_apart_from_nan_reward():
    config = ServeConfig(
        rewards={"default": "rule:repetition"},
        limits=Limits(max_item_chars=400),
        nan_reward=0.0,
        failed_reward=-1.0,
    )
    with BackgroundServer(create_app(config)) as srv:
        body = {"query": [P + " ab" * 300], "prompts": [P]}
        out = httpx.post(srv.url + "/get_reward", json=body, timeout=60).json()
    assert out["rewards"] == [-1.0] and out["extra_logs"]["rewardkit_failed"] == [1.0]


def test_served_failed_item_defaults_to_the_lowest_reward_of_its_request():
    config = ServeConfig(rewards={"default": "rule:repetition"}, limits=Limits(max_item_chars=400))
    with BackgroundServer(create_app(config)) as srv:
        body = {"query": [P + " ab" * 50, P + " ab" * 300], "prompts": [P, P]}
        out = httpx.post(srv.url + "/get_reward", json=body, timeout=60).json()
    assert out["rewards"][1] == out["rewards"][0] < 0  # before: 0.0, above the scored item


def test_serve_config_refuses_a_non_finite_failed_reward():
    with pytest.raises(ValueError, match="failed_reward must be a finite number"):
        ServeConfig(failed_reward=math.inf)


# -- 2. OpenRLHF cuts long prompts from the left ---------------------------------------------
def test_a_cut_prompt_is_split_at_its_kept_end():
    query = LONG[-60:] + " I don't know."
    assert split_query(query, LONG)[1] == " I don't know."
    f = orl.make_reward_func("rule:gsm8k")
    assert float(f([query], [LONG], ["42"])["rewards"][0]) == 0.0  # before: 1.0 (prompt's 42)


@pytest.mark.parametrize("query", ["unrelated text that holds 42", LONG[-6:] + " 42", ""])
def test_a_query_without_its_prompt_fails_instead_of_scoring_the_whole_query(query):
    assert split_query(query, LONG)[1] is None
    out = orl.make_reward_func("rule:gsm8k", failed_score=-1.0)([query], [LONG], ["42"])
    assert out["rewards"].tolist() == [-1.0]
    assert out["extra_logs"]["rewardkit_failed"].tolist() == [1.0]


def test_without_a_prompt_the_whole_query_is_the_response():
    assert split_query("#### 42", None)[1] == "#### 42"
    assert split_query("#### 42", "")[1] == "#### 42"


def test_served_query_without_its_prompt_fails():
    slots = to_slots(OpenRLHFRequest(query=["unrelated 42", LONG + " 42"], prompts=[LONG] * 2))
    assert slots[0].error is not None and slots[0].error.type == "prompt_not_found"
    assert slots[1].error is None and slots[1].item.response == " 42"
    config = ServeConfig(rewards={"default": "rule:gsm8k"})
    with BackgroundServer(create_app(config)) as srv:
        body = {"query": ["unrelated 42"], "prompts": [LONG], "labels": ["42"]}
        out = httpx.post(srv.url + "/get_reward", json=body, timeout=60).json()
    assert out["rewards"] == [0.0] and out["extra_logs"]["rewardkit_failed"] == [1.0]


# -- 3. end-of-sequence markers --------------------------------------------------------------
@pytest.mark.parametrize(
    "marker",
    [
        "<｜end▁of▁sentence｜>",
        "<|endoftext|>",
        "<|im_end|>",
        "<|eot_id|>",
        "<|end_of_text|>",
        "</s>",
        "<end_of_turn>",
        "<|end|>",
        "<eos>",
        "<|return|>",
    ],
)
def test_every_common_end_marker_is_stripped_repeated_but_never_inside(marker):
    assert marker in EOS_MARKERS
    assert strip_eos(f"answer{marker}\n{marker} \n") == "answer"
    assert strip_eos(f"a {marker} b") == f"a {marker} b"
    good = "<think>6*7</think><answer>42</answer>"
    out = orl.make_reward_func("rule:format")([P + good + marker], [P], [None])
    assert out["rewards"].tolist() == [1.0]


# -- 4. TRL conversational completions -------------------------------------------------------
def test_trl_assistant_turns_never_merge_into_one_number():
    turns = [
        {"role": "assistant", "content": "#### 4"},
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": "2 attempts used"},
    ]
    f = trl_reward_func("rule:gsm8k")
    assert f(prompts=["q"], completions=[turns], reference=["42"]) != [1.0]
    assert common.as_response(turns) == "#### 4\n2 attempts used"


# -- 5. batch-relative rewards scored one item at a time -------------------------------------
def test_zscore_without_stats_is_batch_relative():
    assert EnsembleReward(ZSCORE["ensemble"], normalize="zscore").can(Capability.BATCH_RELATIVE)
    fixed = EnsembleReward(ZSCORE["ensemble"], normalize="zscore", stats=[[0, 1], [0, 1]])
    assert not fixed.can(Capability.BATCH_RELATIVE)
    assert not EnsembleReward(ZSCORE["ensemble"]).can(Capability.BATCH_RELATIVE)
    nested = EnsembleReward([ZSCORE, "rule:length"])
    assert nested.can(Capability.BATCH_RELATIVE)


def test_route_and_hybrid_are_batch_relative_when_a_part_is():
    zscore, plain = load_reward(ZSCORE), load_reward("rule:length")
    assert RouteReward({"a": zscore}, default=plain).can(Capability.BATCH_RELATIVE)
    assert RouteReward({"a": plain}, default=zscore).can(Capability.BATCH_RELATIVE)
    assert not RouteReward({"a": plain}).can(Capability.BATCH_RELATIVE)
    assert HybridReward({"*": plain}, model=zscore).can(Capability.BATCH_RELATIVE)
    assert HybridReward({"*": plain}, model=plain, aspects={"z": (zscore, 1.0)}).can(
        Capability.BATCH_RELATIVE
    )
    assert not HybridReward({"*": plain}, model=plain).can(Capability.BATCH_RELATIVE)
    with pytest.raises(ValueError, match=r"verl compute_score: .*one item"):
        vrl.compute_score("s", "ab", None, {}, spec={"route": {"s": ZSCORE}})


def test_per_item_adapters_refuse_a_batch_relative_reward_alone():
    with pytest.raises(ValueError, match=r"verl compute_score: .*one item.*stats="):
        vrl.compute_score("s", "ab", None, {}, spec=ZSCORE)
    f = orl.make_reward_func(ZSCORE)
    with pytest.raises(ValueError, match=r"openrlhf reward_func: .*one item.*stats="):
        f([P + " a"], [P], [None])
    batch = f([P + " a", P + " ab cd", P + " abc"], [P] * 3, [None] * 3)["rewards"]
    assert len(set(batch.tolist())) == 3
    assert len(vrl.compute_score_batch(["s"] * 2, ["a", "bb b"], [None] * 2, spec=ZSCORE)) == 2


# -- 6. /get_reward keys ---------------------------------------------------------------------
def test_every_get_reward_answer_has_the_same_extra_logs_keys():
    config = ServeConfig(
        rewards={"default": {"weighted": {"rule:gsm8k": 1.0, "rule:format": 0.5}}},
        limits=Limits(max_item_chars=300),
        failed_reward=-1.0,
    )
    with BackgroundServer(create_app(config)) as srv:
        answers = [
            httpx.post(
                srv.url + "/get_reward",
                json={"query": [P + response], "prompts": [P], "labels": ["42"]},
                timeout=60,
            ).json()
            for response in (" #### 42", " x" * 200)
        ]
    assert sorted(answers[0]["extra_logs"]) == sorted(answers[1]["extra_logs"])
    assert answers[1]["extra_logs"]["rule:gsm8k"] == [-1.0]


def test_to_response_fills_a_failed_items_components_and_names():
    ok = RewardResult(id=0, reward=1.0, components={"a": 1.0})
    bad = RewardResult(id=1, error=ItemError(type="x", message="m"))
    out = to_response([ok, bad], 0.0)
    assert out["rewards"] == [1.0, 1.0] and out["extra_logs"]["a"] == [1.0, 1.0]
    alone = to_response([bad], 0.0, failed_reward=-2.0, names=["a", "b"])
    assert alone["extra_logs"]["a"] == [-2.0] and alone["extra_logs"]["b"] == [-2.0]


# -- 7. verl's own keywords ------------------------------------------------------------------
def test_verl_own_keywords_pass_silently_and_the_warning_names_failed_score(monkeypatch):
    monkeypatch.setattr(vrl, "_WARNED", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = vrl.compute_score("openai/gsm8k", "#### 42", "42", {}, strict_box_verify=False,
                                spec="rule:gsm8k")  # fmt: skip
    assert out["score"] == 1.0
    with pytest.warns(UserWarning, match="failed_score="):
        vrl.compute_score("openai/gsm8k", "#### 42", "42", {}, spce="x", spec="rule:gsm8k")


# -- 8-10. the client ------------------------------------------------------------------------
ITEMS = [{"id": "a", "prompt": "p", "response": "r"}]


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"id": "a", "reward": 10**400}, "result 0: reward"),
        ({"id": "a", "error": False}, "result 0: error 'False'"),
        ({"id": "a", "error": ""}, "result 0: error ''"),
        ({"id": "a", "reward": 1.0, "error": 0}, "result 0: error '0'"),
    ],
)
def test_a_malformed_result_is_an_invalid_response(row, why):
    handler = lambda path, body: (200, {"results": [row]})  # noqa: E731
    with (
        FaultProxy(handler=handler) as proxy,
        RewardClient(proxy.url, retries=0) as rc,
        pytest.raises(RewardServerError, match="invalid_response") as err,
    ):
        rc.rewards(ITEMS)
    assert why in str(err.value)


def test_async_client_refuses_a_huge_integer_reward():
    import asyncio

    handler = lambda path, body: (200, {"rewards": [10**400], "extra_logs": {}})  # noqa: E731

    async def main() -> None:
        async with AsyncRewardClient(proxy.url, retries=0) as rc:
            await rc.get_reward(["q a"], ["q"])

    with (
        FaultProxy(handler=handler) as proxy,
        pytest.raises(RewardServerError, match="invalid_response"),
    ):
        asyncio.run(main())


def test_get_reward_reads_an_iterator_once_before_sending():
    sent: list = []

    def handler(path, body):
        sent.append(body)
        n = len(body["query"])
        return 200, {"rewards": [0.5] * n, "extra_logs": {}}

    with FaultProxy(handler=handler) as proxy, RewardClient(proxy.url, retries=0) as rc:
        out = rc.get_reward((q for q in ["q a", "q b"]), iter(["q", "q"]))
    assert out["rewards"] == [0.5, 0.5] and sent[0]["query"] == ["q a", "q b"]


def test_a_copy_of_a_cut_prompt_in_the_response_does_not_hide_what_came_before():
    """OpenRLHF cut the prompt from the left; the response then quotes the whole prompt. The
    first whole occurrence is the response's copy: cutting there hid the response's own text
    before it (combine38)."""
    prompt = "Solve the following long problem carefully. " * 6
    query = prompt[-80:] + " unsure #### 9 junk " + prompt + " #### 4"
    response = split_query(query, prompt)[1]
    assert response.startswith(" unsure #### 9 junk ") and response.endswith(" #### 4")
    # a prompt whose end repeats its start is still cut whole when the query opens with it
    rp = "0123456789abcdefXYZ0123456789abcdef"
    assert split_query(rp + " resp", rp)[1] == " resp"

"""verl compute_score and OpenRLHF reward_func adapters, driven the way those trainers call them.

Fast replays, without the peers installed: these tests load the adapter files by path as both do
(importlib ``spec_from_file_location``), bind config kwargs with ``functools.partial`` as verl's
``get_custom_reward_fn`` does, and replay the reward-manager loops as written down from verl 0.9.1
and OpenRLHF 0.11.2: verl's NaiveRewardManager (keyword call, ``result["score"]``, every key
appended to ``reward_extra_info``) and BatchRewardManager (``data_sources=, solution_strs=,
ground_truths=, extra_infos=``); OpenRLHF's ``reward_func(queries, prompts, labels)`` →
rewards/scores/extra_logs. The same contracts are proved with the peers' own code (verl's reward
loop and managers, OpenRLHF's remote-RM client against ``rewardkit serve``) in their own venvs by
``benchmarks/peer_contracts.py`` (``make peers``, tests/test_peer_contracts.py).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewardkit.integrations.openrlhf as orl
import rewardkit.integrations.verl as vrl
from rewardkit.data.openrlhf import split_query
from rewardkit.integrations._common import log_key

ROUTE = {"route": {"openai/gsm8k": "rule:gsm8k", "chat": "rule:length?unit=words"}}
WEIGHTED = {"weighted": {"rule:gsm8k": 1.0, "rule:length?unit=words": 0.1}}


def _load_by_path(module):
    spec = importlib.util.spec_from_file_location("custom_module", module.__file__)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_verl_naive_manager_loop_with_route_spec():
    compute_score = functools.partial(_load_by_path(vrl).compute_score, spec=ROUTE)
    batch = [
        ("openai/gsm8k", "so #### 4", "4", {"index": 0, "question": "2+2?"}),
        ("openai/gsm8k", "#### 5", "4", {"index": 1}),
        ("chat", "one two three", None, None),
        ("other", "x", None, {}),
    ]
    reward_extra_info = defaultdict(list)
    rewards = []
    for data_source, solution_str, ground_truth, extra_info in batch:
        score = compute_score(
            data_source=data_source,
            solution_str=solution_str,
            ground_truth=ground_truth,
            extra_info=extra_info,
        )
        assert isinstance(score, dict)
        rewards.append(score["score"])
        for key, value in score.items():
            reward_extra_info[key].append(value)
    assert rewards == [1.0, 0.0, 3.0, 0.0]  # no route for "other" → NaN → nan_score 0.0
    assert reward_extra_info["applies"] == [1.0, 1.0, 1.0, 0.0]
    assert all(len(v) == len(batch) for v in reward_extra_info.values())


def test_verl_components_and_batch_manager_call():
    fn = functools.partial(vrl.compute_score_batch, spec=WEIGHTED)
    out = fn(
        data_sources=np.array(["a", "a"], dtype=object),
        solution_strs=["#### 4", "I think #### 7"],
        ground_truths=["4", "4"],
        extra_infos=np.array([{"prompt": "2+2?"}, None], dtype=object),
    )
    # 1·1 + 0.1·2 words = 1.2; 1·0 + 0.1·4 words = 0.4; per-member keys for GDPO-style use
    assert [r["score"] for r in out] == pytest.approx([1.2, 0.4])
    assert set(out[0]) == {"score", "applies", "failed", "rule:gsm8k", "rule:length_unit_words"}
    assert out[1]["rule:length_unit_words"] == 4.0 and out[1]["rule:gsm8k"] == 0.0
    single = vrl.compute_score("a", "#### 4", "4", spec=WEIGHTED)
    assert single == out[0]


def test_verl_config_containers_become_plain_specs():
    from collections.abc import Mapping, Sequence

    class Cfg(Mapping):  # stands in for OmegaConf's DictConfig (a Mapping, not a dict)
        def __init__(self, d):
            self._d = d

        def __getitem__(self, k):
            return self._d[k]

        def __iter__(self):
            return iter(self._d)

        def __len__(self):
            return len(self._d)

    class ListCfg(Sequence):  # ListConfig stand-in
        def __init__(self, items):
            self._items = items

        def __getitem__(self, i):
            return self._items[i]

        def __len__(self):
            return len(self._items)

    spec = Cfg({"ensemble": ListCfg(["rule:length?unit=words", "rule:length?unit=chars"])})
    assert vrl.plain(spec) == {"ensemble": ["rule:length?unit=words", "rule:length?unit=chars"]}
    # mean of 2 words and 3 chars
    assert vrl.compute_score("d", "a b", None, spec=spec)["score"] == 2.5


def test_verl_spec_from_environment(monkeypatch):
    monkeypatch.setenv("REWARDKIT_SPEC", json.dumps({"weighted": {"rule:length?unit=chars": 2.0}}))
    assert vrl.compute_score("d", "abc", None)["score"] == 6.0
    monkeypatch.delenv("REWARDKIT_SPEC")
    with pytest.raises(Exception, match="REWARDKIT_SPEC"):
        vrl.compute_score("d", "abc", None)


@pytest.mark.parametrize("raw", ['{"weighted": {"rule:math": 1,}}', '{"a":' * 5000])
def test_verl_spec_from_environment_refuses_bad_json_naming_the_variable(monkeypatch, raw):
    from rewardkit.errors import SpecError

    monkeypatch.setenv("REWARDKIT_SPEC", raw)
    with pytest.raises(SpecError, match=r"\$REWARDKIT_SPEC: invalid JSON"):
        vrl.compute_score("d", "abc", None)


def test_verl_prompt_from_extra_info_is_messages_or_refused():
    spec = "rule:length?unit=chars"
    as_array = np.array([{"role": "user", "content": "What is 2+2?"}], dtype=object)
    q = vrl._query("d", "4", "4", {"prompt": as_array})  # parquet keeps message lists as arrays
    assert q.prompt == [{"role": "user", "content": "What is 2+2?"}]
    for odd in ({"role": "user", "content": "hi"}, ["just text"], [{"content": "no role"}], 5):
        with pytest.raises((TypeError, ValueError), match=r"extra_infos\[0\]\['prompt'\]"):
            vrl.compute_score("d", "abc", None, {"prompt": odd}, spec=spec)  # was its repr


def test_openrlhf_reward_func_contract(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("REWARDKIT_SPEC", json.dumps(WEIGHTED))
    mod = _load_by_path(orl)
    prompts = ["<|user|>2+2?<|assistant|>", "<|user|>3+3?<|assistant|>"]
    queries = [prompts[0] + "#### 4", prompts[1] + "maybe #### 5"]
    out = mod.reward_func(queries, prompts, ["4", "6"])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].dtype == torch.float32
    # responses are the queries minus the prompt: 1 + 0.1·2 words; 0 + 0.1·3 words
    np.testing.assert_allclose(out["rewards"].numpy(), [1.2, 0.3], rtol=1e-6)
    assert torch.equal(out["rewards"], out["scores"])
    assert out["extra_logs"]["rule:gsm8k"].tolist() == [1.0, 0.0]
    assert out["extra_logs"]["applies"].tolist() == [1.0, 1.0]
    bound = orl.make_reward_func("rule:length?unit=words")
    assert bound(["P: a b"], ["P: "], None)["rewards"].tolist() == [2.0]
    with pytest.raises(ValueError, match="2 queries and 1 prompts"):
        bound(["a", "b"], ["a"], None)


def test_split_response():
    # one splitter for the reward_func file and the /get_reward endpoint
    assert split_query("PROMPT answer", "PROMPT ")[1] == "answer"
    assert split_query("<s>PROMPT answer", "PROMPT ")[1] == "answer"  # BOS before the prompt
    assert split_query("answer only", "missing")[1] is None  # not found: the item fails
    assert split_query("PROMPT answer</s>", "PROMPT ")[1] == "answer"


_TRACK_LOCK = threading.Lock()


def _tracking(factory, seen, delay=0.05):
    """``factory`` wrapped to count, in ``seen``, its calls and the most running at once."""

    def wrapped(*args, **kwargs):
        with _TRACK_LOCK:
            seen["calls"] += 1
            seen["active"] += 1
            seen["peak"] = max(seen["peak"], seen["active"])
        time.sleep(delay)
        try:
            return factory(*args, **kwargs)
        finally:
            with _TRACK_LOCK:
                seen["active"] -= 1

    return wrapped


def _counts():
    return {"calls": 0, "active": 0, "peak": 0}


def test_verl_concurrent_first_calls_build_the_reward_once(monkeypatch):
    # verl 0.9's reward loop runs compute_score for a chunk's responses at once in threads
    seen = _counts()
    monkeypatch.setattr(vrl, "as_reward", _tracking(vrl.as_reward, seen))
    monkeypatch.setattr(vrl, "_CACHE", {})
    with ThreadPoolExecutor(6) as pool:
        out = list(pool.map(lambda s: vrl.compute_score("d", s, None, spec=WEIGHTED), ["a b"] * 6))
    assert seen["calls"] == 1
    assert len({r["score"] for r in out}) == 1 and out[0] == vrl.compute_score(
        "d", "a b", None, spec=WEIGHTED
    )


def test_reward_builds_run_one_at_a_time_across_threads(monkeypatch):
    import rewardkit.registry as registry

    real = registry._import_factory
    seen = _counts()
    monkeypatch.setattr(registry, "_import_factory", lambda t: _tracking(real(t), seen))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: registry.load_reward("rule:length"), range(4)))
    assert seen["calls"] == 4 and seen["peak"] == 1


@pytest.mark.slow
def test_same_model_built_in_parallel_threads_scores_like_one_built_alone():
    from rewardkit.registry import load_reward
    from rewardkit.types import Query, user

    queries = [Query([user(f"q{i}")], "word " * (3 * i + 1)) for i in range(4)]
    spec = "classifier:minilm?progress=false"
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda _: load_reward(spec).score(queries), range(3)))
    alone = load_reward(spec).score(queries)
    for out in outs:
        np.testing.assert_array_equal(out, alone)


def test_long_component_names_keep_distinct_keys():
    # verl/OpenRLHF log keys are cut to 60 characters; two model paths alike for that long must
    # still give two keys, or one component's column would overwrite the other's
    a = "classifier:/data/checkpoints/experiment-2026-rm/reward-model-final-v1"
    b = "classifier:/data/checkpoints/experiment-2026-rm/reward-model-final-v2"
    assert log_key(a) != log_key(b)
    assert len(log_key(a)) == 60 and log_key(a) == log_key(a)
    assert log_key("rule:length?unit=words") == "rule:length_unit_words"


NO_REFERENCE = ["", "   ", None, [], [""], np.array([]), np.array(["", " "], dtype=object)]


@pytest.mark.parametrize("empty", NO_REFERENCE, ids=repr)
def test_no_reference_means_does_not_apply_in_every_path(empty):
    """The rule gives NaN; verl and OpenRLHF send nan_score with applies 0 (they need a
    number); TRL gets None (its NaN): one meaning of "no reference" everywhere."""
    from rewardkit import Query, load_reward
    from rewardkit.integrations.trl import reward_func

    q = Query([{"role": "user", "content": "2+2?"}], "#### 4", reference=empty)
    for rule in ("rule:gsm8k", "rule:math", "rule:code", "rule:json_schema", "rule:f1"):
        full = load_reward(rule).score_full([q])
        assert np.isnan(full.scores[0]) and not full.stats.get("failed"), (rule, full.stats)
    verl = vrl.compute_score("openai/gsm8k", "#### 4", empty, spec="rule:gsm8k", nan_score=-1.0)
    assert verl == {"score": -1.0, "applies": 0.0, "failed": 0.0}
    out = orl.score_queries(["Q #### 4"], ["Q "], [empty], spec="rule:gsm8k", nan_score=-1.0)
    assert out["rewards"].tolist() == [-1.0] and out["extra_logs"]["applies"].tolist() == [0.0]
    trl = reward_func("rule:gsm8k")(prompts=["2+2?"], completions=["#### 4"], answer=[empty])
    assert trl == [None]


def test_verl_numpy_ground_truth_is_a_list_of_answers():
    """verl's non-tensor batch can hold a list answer as a numpy array: each entry is an
    acceptable answer (not the array's printed form)."""
    for spec in ("rule:gsm8k", "rule:math"):
        out = vrl.compute_score("openai/gsm8k", "#### 5", np.array(["5", "4"]), spec=spec)
        assert out == {"score": 1.0, "applies": 1.0, "failed": 0.0}, spec


@functools.cache
def _gsm8k_rule_and_trl():
    from rewardkit import load_reward
    from rewardkit.integrations.trl import reward_func

    return load_reward("rule:gsm8k"), reward_func("rule:gsm8k")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.none(),
        st.text(alphabet=" \t\n4x5#", max_size=6),
        st.lists(st.one_of(st.none(), st.text(alphabet=" 45x", max_size=4)), max_size=3),
    )
)
def test_every_path_agrees_whether_a_reference_applies(ground_truth):
    """Whatever a trainer passes as the reference, the rule, verl, OpenRLHF and TRL agree on
    whether the reward applies (and the rule reads the raw value as the adapters do)."""
    from rewardkit import Query
    from rewardkit.data.record import as_reference

    rule, trl_reward = _gsm8k_rule_and_trl()
    prompt = [{"role": "user", "content": "2+2?"}]
    raw = rule.score([Query(prompt, "#### 4", reference=ground_truth)])[0]
    read = rule.score([Query(prompt, "#### 4", reference=as_reference(ground_truth))])[0]
    applies = bool(np.isfinite(read))
    assert bool(np.isfinite(raw)) == applies
    # no reference never applies (nor does one without a number gsm8k can read)
    if as_reference(ground_truth) is None:
        assert not applies
    verl = vrl.compute_score("openai/gsm8k", "#### 4", ground_truth, spec="rule:gsm8k")
    assert verl["applies"] == float(applies)
    out = orl.score_queries(["Q #### 4"], ["Q "], [ground_truth], spec="rule:gsm8k")
    assert out["extra_logs"]["applies"].tolist() == [float(applies)]
    trl = trl_reward(prompts=["2+2?"], completions=["#### 4"], answer=[ground_truth])
    assert (trl[0] is not None) == applies


@pytest.mark.parametrize("bad", ["x", None, True, float("nan"), float("inf")])
def test_nan_score_must_be_a_finite_number(bad):
    with pytest.raises(ValueError, match="nan_score must be"):
        vrl.compute_score("d", "abc", None, spec="rule:math", nan_score=bad)
    with pytest.raises(ValueError, match="nan_score must be"):
        orl.score_queries(["q a"], ["q"], None, spec="rule:math", nan_score=bad)
    assert vrl.compute_score("d", "abc", None, spec="rule:math", nan_score=-1)["score"] == -1.0

"""Trainer adapters fed as the trainers' current releases feed them (TRL 1.x GRPOTrainer, verl's
reward managers), and the split of ``integrations/_common.py`` into modules with one job each."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pickle

import numpy as np
import pytest

import rewardkit.integrations._common as common
from rewardkit.data.openrlhf import split_query
from rewardkit.integrations import verl as vrl
from rewardkit.integrations.openrlhf import make_reward_func
from rewardkit.integrations.trl import TRLReward, reward_func


class _State:
    global_step = 3


def _trl_kwargs(n: int) -> dict:
    """What TRL adds to every reward call besides the dataset columns."""
    return {
        "completion_ids": [[1, 2]] * n,
        "trainer_state": _State(),
        "log_extra": lambda *a: None,
        "log_metric": lambda *a: None,
    }


# -- the split keeps every name where tests, serve/openrlhf.py and benchmarks import it ----------
@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("as_prompt", "_messages"),
        ("as_response", "_messages"),
        ("text_of", "_messages"),
        ("IMAGE_PART_TYPES", "_messages"),
        ("as_image_prompt", "_images"),
        ("count_placeholders", "_images"),
        ("RewardSpec", "_reward"),
        ("as_reward", "_reward"),
        ("log_key", "_reward"),
        ("log_keys", "_reward"),
        ("components", "_reward"),
        ("agreeing_members", "_reward"),
        ("warn_unrouted", "_reward"),
        ("refuse_batch_relative", "_reward"),
        ("REFERENCE_COLUMNS", "_columns"),
        ("column", "_columns"),
        ("is_plain", "_columns"),
        ("plain_value", "_columns"),
        ("check_finite_scores", "_scores"),
        ("as_nan_score", "_scores"),
        ("finite_or", "_scores"),
        ("BySource", "_scores"),
    ],
)
def test_common_still_gives_each_moved_name_as_its_new_module_has_it(name, module):
    mod = importlib.import_module(f"rewardkit.integrations.{module}")
    assert getattr(common, name) is getattr(mod, name)


def test_the_failed_item_warn_once_state_is_the_one_tests_reset_in_common(monkeypatch, caplog):
    """tests reset ``_common._FIXED_WARNED``: the warning must read that set, wherever it lives."""
    monkeypatch.setattr(common, "_FIXED_WARNED", {"here"})
    common.warn_fixed_failed("here", 0.0, "failed_score=")
    assert not [r for r in caplog.records if "fixed score" in r.getMessage()]
    monkeypatch.setattr(common, "_FIXED_WARNED", set())
    with caplog.at_level("WARNING", "rewardkit.integrations"):
        common.warn_fixed_failed("here", 0.0, "failed_score=")
    assert [r for r in caplog.records if "fixed score" in r.getMessage()]


# -- verl: extra_info values that are numpy scalars -------------------------------------------
def test_verl_extra_info_numpy_scalars_reach_meta_as_python_values():
    """A non-tensor batch's ``np.int64`` field was dropped from meta (not "plain"): a route keyed
    on it found no value, and the response got ``nan_score`` 0.0 with ``applies`` 0."""
    spec = {"route": {"3": "rule:gsm8k"}, "key": "level"}
    info = {"level": np.int64(3), "index": np.int32(0), "split": np.str_("train")}
    out = vrl.compute_score("openai/gsm8k", "so #### 4", "4", info, spec=spec)
    assert out == {"score": 1.0, "applies": 1.0, "failed": 0.0}


def test_verl_batch_manager_numpy_shapes_route_on_an_extra_info_field():
    spec = {"route": {"easy": "rule:gsm8k", "3": "rule:gsm8k"}, "key": "level"}
    out = vrl.compute_score_batch(
        data_sources=np.array(["a", "a"], dtype=object),
        solution_strs=["#### 4", "#### 4"],
        ground_truths=[np.array(["4"], dtype=object), np.int64(5)],
        extra_infos=np.array([{"level": np.str_("easy")}, {"level": np.int64(3)}], dtype=object),
        spec=spec,
    )
    assert [(r["score"], r["applies"]) for r in out] == [(1.0, 1.0), (0.0, 1.0)]


# -- TRL: a dataset in verl's layout --------------------------------------------------------
def test_trl_reads_the_reference_of_a_dataset_in_verls_layout():
    """verl-format parquet (``reward_model: {"style": "rule", "ground_truth": ...}``) in TRL: no
    reference column was found, every reference rule gave None and TRL dropped the term."""
    f = reward_func("rule:gsm8k")
    rm = [{"style": "rule", "ground_truth": "4"}, {"style": "rule", "ground_truth": "4"}]
    out = f(
        prompts=[[{"role": "user", "content": "2+2?"}]] * 2,
        completions=[[{"role": "assistant", "content": "#### 4"}], "#### 5"],
        reward_model=rm,
        data_source=["openai/gsm8k"] * 2,
        **_trl_kwargs(2),
    )
    assert out == [1.0, 0.0]


def test_trl_a_reference_column_still_wins_over_reward_model():
    f = reward_func("rule:gsm8k")
    out = f(["q"], ["#### 4"], answer=["4"], reward_model=[{"ground_truth": "5"}], **_trl_kwargs(1))
    assert out == [1.0]
    other = f(["q"], ["#### 4"], reward_model=[{"model": "x"}], **_trl_kwargs(1))
    assert other == [None]  # a reward_model column that holds no ground truth is no reference


# -- TRL: an async reward as TRL releases that ask inspect.iscoroutinefunction see it ----------
def _trl_dispatch(func, **kwargs):
    """TRL ≤ 1.10's ``_calculate_rewards``: awaited when ``inspect.iscoroutinefunction``, else
    called and iterated."""
    if inspect.iscoroutinefunction(func):
        return asyncio.run(func(**kwargs))
    out = func(**kwargs)
    return [r if r is not None else float("nan") for r in out]


def test_an_async_reward_is_a_coroutine_function_to_inspect():
    """It was called synchronously there: 'coroutine' object is not iterable on the first step."""
    f = reward_func("rule:gsm8k", asynchronous=True)
    kwargs = {"prompts": ["q", "q"], "completions": ["#### 4", "#### 5"], "answer": ["4", "4"]}
    assert _trl_dispatch(f, **kwargs, **_trl_kwargs(2)) == [1.0, 0.0]
    assert list(inspect.signature(f).parameters) == ["prompts", "completions", "columns"]
    back = pickle.loads(pickle.dumps(f))
    assert inspect.iscoroutinefunction(back)
    assert not inspect.iscoroutinefunction(reward_func("rule:gsm8k"))
    assert isinstance(f, TRLReward) and f.__name__ == "rule:gsm8k"


# -- OpenRLHF VLM rollouts: the processor expanded the image placeholders ---------------------


VLM_PROMPT = (
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.mark.parametrize("n", [1, 4, 256])
def test_a_vlm_query_with_expanded_image_pads_is_split_after_the_prompt(n):
    """OpenRLHF 0.11 decodes ``processor(text=[prompt], images=...)`` ids: one ``<|image_pad|>``
    a patch. The prompt was never found: every VLM rollout failed (0.0, rewardkit_failed 1)."""
    query = VLM_PROMPT.replace("<|image_pad|>", "<|image_pad|>" * n) + "#### 4<|im_end|>"
    assert split_query(query, VLM_PROMPT) == (VLM_PROMPT, "#### 4")
    out = make_reward_func("rule:gsm8k")([query], [VLM_PROMPT], ["4"])
    assert out["rewards"].tolist() == [1.0]
    assert out["extra_logs"]["rewardkit_failed"].tolist() == [0.0]


def test_a_query_whose_text_differs_beyond_the_pads_still_fails():
    query = (
        VLM_PROMPT.replace("2+2", "3+3").replace("<|image_pad|>", "<|image_pad|>" * 8) + "#### 4"
    )
    assert split_query(query, VLM_PROMPT)[1] is None

"""The RL adapters against the trainers' own calling conventions (audit h10).

TRL is called through TRL 1.16's own ``GRPOTrainer._calculate_rewards`` (on a stand-in trainer
carrying only what that method reads); verl's and OpenRLHF's loops are replayed from their code
(verl ``NaiveRewardManager.__call__`` and ``RayPPOTrainer._validate``; OpenRLHF 0.11
``SingleTurnAgentExecutor.execute``, ``SamplesGenerator._process_response_into_experience`` and
``make_experience_batch``), as ``tests/test_integrations_verl_openrlhf.py`` does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

from rewardkit.integrations import openrlhf, trl, verl
from rewardkit.registry import load_reward
from rewardkit.rewards.composite.hybrid import HybridReward
from rewardkit.types import Reward, ScoreResult


class _Judge(Reward):
    """A judge that fails (upstream 500, recorded in its stats) where the response says "fail",
    and answers 2.0 for "right", -2.0 elsewhere."""

    name = "judge-like"

    def identity(self):
        return {"class": "h10-judge"}

    def _score(self, queries):
        bad = [i for i, q in enumerate(queries) if "fail" in q.response]
        scores = [
            math.nan if i in bad else 2.0 if "right" in q.response else -2.0
            for i, q in enumerate(queries)
        ]
        errors = [{"index": i, "error": "upstream answered 500"} for i in bad]
        return ScoreResult(np.array(scores), stats={"failed": len(bad), "errors": errors})


# -- TRL: its own _calculate_rewards -----------------------------------------------------------


@pytest.fixture
def grpo(monkeypatch):
    """``GRPOTrainer`` and a stand-in trainer for its ``_calculate_rewards`` (one process:
    accelerate's ``gather`` is the identity there and its logger a plain one, patched so no
    accelerate state is made for the rest of the suite)."""
    from transformers import TrainerState
    from trl import GRPOTrainer
    from trl.trainer import grpo_trainer

    monkeypatch.setattr(grpo_trainer, "gather", lambda t: t)
    monkeypatch.setattr(grpo_trainer, "logger", logging.getLogger("h10.trl"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def make(funcs):
        t = SimpleNamespace(
            accelerator=SimpleNamespace(device="cpu", is_main_process=True),
            args=SimpleNamespace(report_to=[]),
            state=TrainerState(),
            reward_funcs=funcs,
            reward_processing_classes=[None] * len(funcs),
            reward_func_names=[f.__name__ for f in funcs],
            environments=None,
            async_loop=loop,
            _pending_extra_logs=defaultdict(list),
            _pending_metrics=defaultdict(list),
        )
        t._log_completion_extra = lambda c, v: GRPOTrainer._log_completion_extra(t, c, v)
        t._log_metric = lambda n, v: GRPOTrainer._log_metric(t, n, v)
        return t

    yield GRPOTrainer, make
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _step_metrics(t) -> dict[str, float]:
    """One step's metrics as GRPOTrainer flushes ``_pending_metrics``: sum/count of the values
    the calls of that step logged (one process), then the buffer is cleared."""
    out = {k: sum(v) / len(v) for k, v in t._pending_metrics.items() if v}
    t._pending_metrics.clear()
    return out


def test_trl_failed_count_is_logged_on_every_call_so_trls_mean_is_per_call(grpo):
    """Logged only on failures, TRL's mean over logged steps read 1.0 for one failure in two."""
    GRPOTrainer, make = grpo
    t = make([trl.reward_func(_Judge(), name="judge")])
    steps = []
    for responses in (["right", "please fail"], ["right", "wrong"]):
        inputs = [{"prompt": "q", "answer": "4"} for _ in responses]
        rewards = GRPOTrainer._calculate_rewards(t, inputs, ["q"] * 2, responses, [[1], [2]])
        steps.append(_step_metrics(t))
    assert rewards[:, 0].tolist() == [2.0, -2.0]
    logged = [s["rewardkit/judge/failed"] for s in steps if "rewardkit/judge/failed" in s]
    assert logged == [1.0, 0.0]
    assert sum(logged) / len(logged) == 0.5  # TRL's log(): mean over the steps that logged it


def test_trl_calculate_rewards_mixed_sources_none_and_conversational(grpo, caplog):
    """Standard and conversational rows, a route with an unrouted source, a None and a numeric
    reference, an empty completion: TRL gets a float per completion and NaN (from ``None``)
    only where the reward does not apply (a row no reward applies to: TRL's own warning)."""
    GRPOTrainer, make = grpo
    route = trl.reward_func({"route": {"gsm8k": "rule:gsm8k", "chat": "rule:length?unit=words"}})
    t = make([route, trl.reward_func("rule:gsm8k", asynchronous=True, name="g")])
    inputs = [
        {"prompt": "2+2?", "ground_truth": 4, "data_source": "gsm8k"},
        {"prompt": "2+2?", "ground_truth": None, "data_source": "gsm8k"},
        {"prompt": "hi", "ground_truth": "", "data_source": "chat"},
        {"prompt": "x", "ground_truth": ["4", "four"], "data_source": "other"},
    ]
    completions = ["#### 4", "#### 4", "", "#### 4"]
    out = GRPOTrainer._calculate_rewards(
        t, inputs, [i["prompt"] for i in inputs], completions, [[1]] * 4
    )
    assert out[0].tolist() == [1.0, 1.0] and out[2, 0] == 0.0  # a numeric reference; 0 words
    assert math.isnan(out[3, 0]) and out[3, 1] == 1.0  # unrouted; a list of answers
    assert math.isnan(out[2, 1]) and np.isnan(out[1]).all()  # None and "" are no reference
    assert "All reward functions returned None" in caplog.text
    conv = [[{"role": "user", "content": "2+2?"}]] * 2
    comps = [[{"role": "assistant", "content": "#### 4"}], [{"role": "assistant", "content": ""}]]
    inputs = [{"prompt": p, "ground_truth": "4", "data_source": "gsm8k"} for p in conv]
    out = GRPOTrainer._calculate_rewards(t, inputs, conv, comps, [[1], [2]])
    assert out[:, 0].tolist() == [1.0, 0.0] and out[:, 1].tolist() == [1.0, 0.0]


# -- verl: a component keyed "reward" ---------------------------------------------------------


def _hybrid_with_reward_aspect() -> HybridReward:
    gsm8k, words = load_reward("rule:gsm8k"), load_reward("rule:length?unit=words")
    return HybridReward(rules={"*": gsm8k}, model=words, aspects={"reward": (words, 0.0)})


def _verl_validate(spec) -> dict[str, list]:
    """verl's ``NaiveRewardManager`` loop and ``RayPPOTrainer._validate``'s gathering: the
    scores go to ``reward_extra_infos_dict["reward"]``, then each result key is added, and every
    list must have one value per response."""
    responses, truths = ["#### 4", "#### 5 six"], ["4", "4"]
    extra = defaultdict(list)
    scores = []
    for r, g in zip(responses, truths, strict=True):
        res = verl.compute_score(
            data_source="openai/gsm8k", solution_str=r, ground_truth=g, extra_info={}, spec=spec
        )
        scores.append(res["score"])
        for k, v in res.items():
            extra[k].append(v)
    infos: dict[str, list] = defaultdict(list)
    infos["reward"].extend(scores)
    for k, v in extra.items():
        infos[k].extend(v)
    for k, lst in infos.items():
        assert len(lst) == 0 or len(lst) == len(scores), f"{k}: {len(lst)=}, {len(scores)=}"
    return infos


def test_verl_a_component_named_reward_never_doubles_verls_validation_list():
    """Was AssertionError ``reward: len(lst)=4, len(sample_scores)=2`` in verl's validation."""
    infos = _verl_validate(_hybrid_with_reward_aspect())
    assert infos["reward"] == [1.0, 0.0]  # verl's own: the scores
    assert infos["reward_2"] == [2.0, 3.0]  # the aspect (words), under a key of its own
    assert infos["rule"] == [1.0, 0.0] and infos["score"] == infos["reward"]


def test_verl_batch_manager_keys_avoid_reward_too():
    out = verl.compute_score_batch(
        ["s", "s"], ["#### 4", "#### 5 six"], ["4", "4"], spec=_hybrid_with_reward_aspect()
    )
    assert [sorted(o) for o in out] == [
        ["applies", "failed", "model", "reward_2", "rule", "score"]
    ] * 2


# -- OpenRLHF: extra_logs as its samples hold them --------------------------------------------


def _experience_info(res: dict) -> dict[str, float]:
    """OpenRLHF 0.11 ``_process_response_into_experience``: a sample's ``info`` from one
    ``reward_func`` answer (``reward``/``score`` first, then each ``extra_logs`` key)."""
    reward = float(res["rewards"].flatten()[0])
    info = {
        "response_clip_ratio": 0.0,
        "reward": reward,
        "score": float(res["scores"].flatten()[0]),
    }
    for key, value in res["extra_logs"].items():
        info[key] = float(value.flatten()[0])
    return info


def _batch_info(infos: list[dict[str, float]]) -> dict[str, list[float]]:
    """OpenRLHF 0.11 ``make_experience_batch``: each key of the first sample's info, read from
    every sample (KeyError for a sample without it)."""
    return {k: [i[k] for i in infos] for k in infos[0]}


def test_openrlhf_a_call_whose_prompt_is_lost_keeps_every_component_key():
    """One query a call (OpenRLHF 0.11): the failed call had only applies/rewardkit_failed, and
    OpenRLHF's batching of the samples raised KeyError: 'rule:format'."""
    rf = openrlhf.make_reward_func({"weighted": {"rule:gsm8k": 1.0, "rule:format": 0.5}})
    ok = rf(["Q: 2+2? #### 4"], ["Q: 2+2?"], ["4"])
    lost = rf(["something else #### 4"], ["Q: 2+2?"], ["4"])
    assert sorted(lost["extra_logs"]) == sorted(ok["extra_logs"])
    batch = _batch_info([_experience_info(ok), _experience_info(lost)])
    assert batch["rewardkit_failed"] == [0.0, 1.0]
    assert batch["rule:gsm8k"][1] == batch["reward"][1]  # a failed item's parts: its score
    # a hybrid's parts (no members known before scoring): the keys an earlier call gave
    hyb = openrlhf.make_reward_func(_hybrid_with_reward_aspect())
    first = hyb(["Q: 2+2? #### 4"], ["Q: 2+2?"], ["4"])
    later = hyb(["no prompt here"], ["Q: 2+2?"], ["4"])
    assert sorted(later["extra_logs"]) == sorted(first["extra_logs"])


def test_openrlhf_a_component_never_takes_a_key_of_openrlhfs_sample_info():
    """A component keyed ``reward`` overwrote the sample's reward: rollout/reward_mean logged
    the aspect's 3.0 where the reward was 0.0."""
    rf = openrlhf.make_reward_func(_hybrid_with_reward_aspect())
    res = rf(["Q: 2+2? #### 5 six"], ["Q: 2+2?"], ["4"])
    info = _experience_info(res)
    assert info["reward"] == 0.0 and info["reward_2"] == 3.0 and info["rule"] == 0.0
    assert set(res["extra_logs"]).isdisjoint({"reward", "score", "kl", "return"})


def test_openrlhf_query_as_openrlhf_decodes_it_with_a_real_chat_template():
    """``execute``: prompt tokens (add_special_tokens=False) + the generated ids with its EOS,
    decoded with ``skip_special_tokens=False``. A response that repeats the whole prompt, or
    writes the template's markers, is split after the prompt, never at the copy."""
    from transformers import AutoTokenizer

    from rewardkit.models.embedded import embedded_model_dir

    tok = AutoTokenizer.from_pretrained(embedded_model_dir("smollm2"))
    msgs = [{"role": "user", "content": "What is 2+2? Answer as #### N."}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    rf = openrlhf.make_reward_func("rule:gsm8k")
    cases = {
        "#### 4": 1.0,
        "": 0.0,
        prompt + "#### 5": 0.0,  # the copy of the prompt is the response's: its answer is 5
        "<|im_start|>assistant\n#### 4": 1.0,
    }
    for response, want in cases.items():
        ids = tok(text=prompt, add_special_tokens=False)["input_ids"]
        ids += tok(text=response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        query = tok.decode(ids, skip_special_tokens=False)
        res = rf([query], [prompt], ["4"])
        assert float(res["rewards"][0]) == want, response
        assert float(res["extra_logs"]["rewardkit_failed"][0]) == 0.0


def test_served_get_reward_never_lets_a_component_take_openrlhfs_own_keys():
    """The server's `/get_reward` answer: a component named `reward`, `score` or `kl` (a hybrid
    aspect, an endpoint's part) is logged under `NAME_2`, not over OpenRLHF's own sample fields;
    other names are kept as they are, and the keys are the same in every answer."""
    from rewardkit.serve.openrlhf import to_response
    from rewardkit.serve.protocol import RewardResult

    results = [
        RewardResult(reward=1.0, components={"reward": 3.0, "kl": 0.5, "format": 1.0}),
        RewardResult(reward=0.0, components={"reward": 2.0, "kl": 0.1, "format": 0.0}),
    ]
    body = to_response(results, nan_reward=0.0, names=["reward", "kl", "format"])
    logs = body["extra_logs"]
    assert body["rewards"] == [1.0, 0.0]
    assert logs["reward_2"] == [3.0, 2.0] and logs["kl_2"] == [0.5, 0.1]
    assert logs["format"] == [1.0, 0.0]
    assert "reward" not in logs and "kl" not in logs and "score" not in logs

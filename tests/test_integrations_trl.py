"""TRL adapter: the reward_funcs call contract of trl 1.x, sync and async, and a real GRPOTrainer run."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from rewardkit.integrations.trl import AsyncTRLReward, TRLReward, reward_func
from rewardkit.monitor import RewardMonitor


class _State:
    global_step = 7


def test_plain_and_conversational_inputs_with_reference_and_meta():
    f = reward_func({"route": {"gsm8k": "rule:gsm8k", "chat": "rule:length?unit=words"}})
    logged: dict[str, list[float]] = {}
    out = f(
        prompts=[[{"role": "user", "content": "2+2?"}], [{"role": "user", "content": "hi"}], "x"],
        completions=[
            [{"role": "assistant", "content": "#### 4"}],
            [{"role": "assistant", "content": "hello there friend"}],
            "unrouted",
        ],
        completion_ids=[[1], [2], [3]],
        answer=["4", None, None],
        data_source=["gsm8k", "chat", "other"],
        trainer_state=_State(),
        log_extra=lambda *a: None,
        log_metric=lambda k, v: logged.setdefault(k, []).append(v),
    )
    # gsm8k right → 1.0; chat → 3 words; no route → None (TRL turns it into NaN)
    assert out == [1.0, 3.0, None]
    assert all(isinstance(v, float) for v in out[:2])
    assert any(k.startswith("rewardkit/") for k in logged)


def test_components_are_logged_and_monitor_steps():
    mon = RewardMonitor(warn=False)
    f = reward_func(
        {"weighted": {"rule:length?unit=words": 1.0, "rule:length?unit=chars": 0.5}},
        name="len",
        monitor=mon,
    )
    assert f.__name__ == "len"  # TRL's metric name: rewards/len/mean
    logged: dict[str, float] = {}
    out = f(
        prompts=["p", "p"],
        completions=["a b", "abc"],
        log_metric=logged.__setitem__,
        trainer_state=_State(),
    )
    # 2 words + 0.5·3 chars = 3.5; 1 word + 0.5·3 chars = 2.5
    assert out == [3.5, 2.5]
    assert logged["rewardkit/len/rule:length_unit_words"] == 1.5
    assert logged["rewardkit/len/rule:length_unit_chars"] == 3.0
    assert logged["rewardkit/reward/mean"] == 3.0
    assert mon.history[-1]["step"] == 7 and mon.history[-1]["length/mean"] == 1.5


def test_shape_hook_applies_medgrpo_per_source():
    from rewardkit.combine import MedianLogisticNormalizer
    from rewardkit.integrations.trl import BySource

    norm = MedianLogisticNormalizer(k=1.0)
    f = reward_func("rule:length?unit=words", shape=BySource(norm))
    out = f(
        prompts=["p"] * 4,
        completions=["a", "a b c", "a b c d e f g h i j", "a b c d e f g h i j k l"],
        data_source=["easy", "easy", "hard", "hard"],
    )
    # running medians: easy (1, 3) → 2, hard (10, 12) → 11; σ(1·(r − m)) = σ(∓1)
    np.testing.assert_allclose(out, [0.268941, 0.731059, 0.268941, 0.731059], atol=1e-6)
    assert norm.state_dict()["params"] == {"easy": [2.0, 1.0], "hard": [11.0, 1.0]}


def test_gold_reward_and_ensemble_feed_the_monitor():
    mon = RewardMonitor(warn=False)
    f = reward_func(
        {"ensemble": ["rule:length?unit=words", "rule:length?unit=chars"], "aggregate": "mean"},
        monitor=mon,
        gold="rule:gsm8k",
    )
    out = f(prompts=["p", "p"], completions=["#### 4", "#### 5 x"], answer=["4", "4"])
    assert mon.ensemble == ("rule:length?unit=words", "rule:length?unit=chars")
    # mean of (2 words, 6 chars) = 4; (3 words, 8 chars) = 5.5; gold: right, wrong
    assert out == [4.0, 5.5]
    rec = mon.history[-1]
    assert rec["gold/mean"] == 0.5 and rec["corr/proxy_gold"] == pytest.approx(-1.0)
    # members' population std per row: |2−6|/2 = 2, |3−8|/2 = 2.5 → mean 2.25
    assert rec["disagreement/mean"] == pytest.approx(2.25)
    with pytest.raises(ValueError, match="pass monitor= too"):
        reward_func("rule:length", gold="rule:gsm8k")


def test_async_variant_and_errors():
    f = reward_func("rule:length?unit=words", asynchronous=True)
    assert isinstance(f, AsyncTRLReward)
    from trl.trainer.utils import is_async_callable

    assert is_async_callable(f) and not is_async_callable(reward_func("rule:length"))
    assert asyncio.run(f(prompts=["p"], completions=["a b c"])) == [3.0]
    with pytest.raises(ValueError, match="reference_column 'gold' is not a dataset column"):
        reward_func("rule:gsm8k", reference_column="gold")(
            prompts=["p"], completions=["4"], answer=["4"]
        )
    with pytest.raises(ValueError, match="2 prompts for 1 completions"):
        TRLReward("rule:length")(prompts=["a", "b"], completions=["x"])


@pytest.mark.slow
def test_grpo_trainer_end_to_end(tmp_path):
    """TRL GRPOTrainer, SmolLM2-135M-Instruct policy, rule + model reward: rewards reach the logs."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.models.embedded import embedded_model_dir

    torch.set_num_threads(2)
    torch.manual_seed(0)
    mon = RewardMonitor(tmp_path / "monitor.jsonl", warn=False)
    composite = reward_func(
        {"weighted": {"rule:length?unit=words": 0.1, "classifier:minilm?progress=false": 1.0}},
        name="rk",
        monitor=mon,
    )
    ds = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": q}]
                for q in ["Say hi.", "Name a color.", "What is 2+2?", "Count to 3."]
            ],
            "data_source": ["chat"] * 4,
        }
    )
    cfg = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-5,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        reward_weights=[1.0, 0.0],
    )
    # a second reward, async: TRL runs it on its event-loop thread and awaits it
    chars = reward_func(
        "rule:length?unit=chars", asynchronous=True, name="chars", log_components=False
    )
    trainer = GRPOTrainer(
        model=str(embedded_model_dir("smollm2")),
        reward_funcs=[composite, chars],
        args=cfg,
        train_dataset=ds,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rewards/rk/mean" in h]
    assert len(logs) == 2
    for h in logs:
        assert math.isfinite(h["rewards/rk/mean"]) and h["reward"] == pytest.approx(
            h["rewards/rk/mean"]
        )
        assert h["rewards/chars/mean"] > 0  # the async reward was awaited and logged
        # our component means and monitor metrics went through log_metric into the trainer's logs
        assert "rewardkit/rk/classifier:minilm_progress_false" in h
        assert "rewardkit/corr/reward_length" in h
    # the monitor saw exactly the rewards the trainer logged
    assert len(mon.history) == 2
    np.testing.assert_allclose(
        [r["reward/mean"] for r in mon.history], [h["rewards/rk/mean"] for h in logs], rtol=1e-5
    )
    assert (tmp_path / "monitor.jsonl").read_text().count("\n") == 2


def _trl_advantages(rewards_per_func, weights, G, aggregation):
    """TRL 1.16 GRPOTrainer's advantage lines (``_generate_and_score_completions``, default
    ``scale_rewards="group"``) copied here with its nanstd: a fast replay. Every mode is checked
    with TRL's own trainer in tests/test_peer_contracts.py (benchmarks/peer_contracts.py)."""
    import torch
    from trl.trainer.utils import nanstd

    rpf = torch.tensor(rewards_per_func, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    unscorable = torch.isnan(rpf).all(dim=1)
    if aggregation == "sum_then_normalize":
        rewards = (rpf * w.unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
        adv = (rewards - mean) / (std + 1e-4)
    else:
        grouped = rpf.view(-1, G, rpf.shape[1])
        z = (grouped - torch.nanmean(grouped, dim=1, keepdim=True)) / (
            nanstd(grouped, dim=1, keepdim=True) + 1e-4
        )
        rewards = (z.view(-1, rpf.shape[1]) * w.unsqueeze(0)).nansum(dim=1)
        rewards[unscorable] = torch.nan
        adv = (rewards - torch.nanmean(rewards)) / (nanstd(rewards) + 1e-4)
    return torch.nan_to_num(adv, nan=0.0).numpy()


def test_combine_matches_trl_advantage_code():
    """Cross-check: rewardkit's sum-then-normalize and GDPO equal TRL's two aggregations (NaN too)."""
    pytest.importorskip("trl")
    from rewardkit.combine import TRL, gdpo_advantages, sum_then_normalize

    rng = np.random.default_rng(5)
    G, k = 4, 3
    R = rng.normal(size=(32, k))
    R[rng.random(R.shape) < 0.15] = np.nan  # some rewards do not apply
    R[5] = np.nan  # an unscorable completion
    R[8:12, 0] = 2.0  # an all-equal group in one reward
    w = [1.0, 0.5, 0.25]
    # TRL's nanstd computes its Bessel factor count/(count−1) in float32: agreement to ~1e-7 relative
    ours = np.nan_to_num(sum_then_normalize(R, None, w, group_size=G, **TRL), nan=0.0)
    np.testing.assert_allclose(
        ours, _trl_advantages(R, w, G, "sum_then_normalize"), rtol=1e-6, atol=1e-9
    )
    ours = np.nan_to_num(gdpo_advantages(R, None, w, group_size=G, eps=1e-4), nan=0.0)
    np.testing.assert_allclose(
        ours, _trl_advantages(R, w, G, "normalize_then_sum"), rtol=1e-6, atol=1e-9
    )

"""A LoRA policy trained by TRL's own ``DPOTrainer`` with a peft config and saved as an
adapter folder scores in rewardkit (``dpo:ADAPTER?beta=β``, reference = the adapter's base) as TRL
itself reports its implicit rewards: ``eval_rewards/chosen`` and ``eval_rewards/rejected``
(β·(log π − log π_ref), adapter enabled vs disabled) from ``trainer.evaluate`` on one pair at a
time, in float32 (TRL's default ``bf16=True`` autocast moves its own numbers by ~1e-3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

BETA = 0.25


def _user(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"What is {i} plus {i}?"}]


def _pair(i: int, chosen: str, rejected: str) -> dict[str, list[dict[str, str]]]:
    return {"prompt": _user(i), "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}  # fmt: skip


def test_trl_lora_dpo_policy_scores_as_trl_rewards(tmp_path: Path) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from rewardkit.models.embedded import embedded_model_dir
    from rewardkit.registry import load_reward
    from rewardkit.types import Query

    tok = AutoTokenizer.from_pretrained(embedded_model_dir("smollm2"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")

    rows = [_pair(i, f"{2 * i}.", f"It is not {2 * i + 1}, I think.") for i in range(8)]
    args = DPOConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4,
                     max_steps=2, learning_rate=3e-2, beta=BETA, bf16=False, use_cpu=True,
                     max_length=None, report_to=[], save_strategy="no",
                     disable_tqdm=True)  # fmt: skip
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules="all-linear")
    model = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok, peft_config=lora)  # fmt: skip
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))
    assert not (tmp_path / "adapter" / "config.json").exists()  # an adapter folder, no weights

    held = [_pair(100, "200.", "It is not 201, I think."), _pair(101, "It is not 203.", "202."),
            _pair(102, "204.", "Maybe 7"), _pair(103, "Sure! 206", "206.")]  # fmt: skip
    want = []
    for pair in held:  # one pair per evaluate: TRL's batch-mean metrics are then per pair
        m = trainer.evaluate(Dataset.from_list([pair]))
        want += [m["eval_rewards/chosen"], m["eval_rewards/rejected"]]
    want = np.asarray(want, dtype=np.float64)

    reward = load_reward(f"dpo:{tmp_path / 'adapter'}?beta={BETA}")  # ref: the adapter's base
    sides = ("chosen", "rejected")
    queries = [Query(p["prompt"], p[side][0]["content"]) for p in held for side in sides]
    got = np.asarray(reward.score(queries), dtype=np.float64)

    # Summed log-probs are ~−50…−130 here (vocab 49k: ~−10.8 a token); float32 rounds such a sum
    # to ~1e-5 and the paths differ (TRL: unmerged LoRA / adapter disabled, fused LM head;
    # rewardkit: merged weights, its own batches), so β·Δ agrees to ~1e-5 (seen: 4e-6). 1e-4
    # still fails on a token more or less, β left out, or bf16 (1e-3).
    assert np.max(np.abs(got - want)) < 1e-4, (got, want)
    assert np.max(np.abs(want)) > 0.1  # the adapter moved the policy: not 0 against 0
    wins = want[0::2] > want[1::2]
    assert ((got[0::2] > got[1::2]) == wins).all()  # same verdicts
    assert 0 < wins.sum() < len(held)  # and both verdicts occur

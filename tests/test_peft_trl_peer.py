"""A LoRA reward model trained by TRL's own ``RewardTrainer`` with a peft config and saved as
an adapter folder scores in rewardkit (``classifier:ADAPTER``, base named by the adapter) as
peft's ``PeftModel`` scores it: the peer's inference path, not a hand-written forward."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")


def test_trl_lora_reward_model_scores_as_peft_does(tmp_path: Path) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel, TaskType
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from rewardkit.models.embedded import embedded_model_dir
    from rewardkit.registry import load_reward
    from rewardkit.types import Query

    tok = AutoTokenizer.from_pretrained(embedded_model_dir("smollm2"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      num_labels=1, pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")

    def user(i: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Question {i}?"}]

    rows = [{"prompt": user(i), "chosen": [{"role": "assistant", "content": f"Answer {i}."}],
             "rejected": [{"role": "assistant", "content": "no"}]} for i in range(8)]  # fmt: skip
    args = RewardConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4,
                        max_steps=2, learning_rate=5e-3, report_to=[], save_strategy="no",
                        use_cpu=True, max_length=64, disable_tqdm=True)  # fmt: skip
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                      target_modules=["q_proj", "v_proj"])  # fmt: skip
    model = LlamaForSequenceClassification.from_pretrained(tmp_path / "base")
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=tok, peft_config=lora)  # fmt: skip
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert not (tmp_path / "adapter" / "config.json").exists()

    pairs = [(user(i), r) for i in range(4) for r in (f"Answer {i}.", "no")]
    peer = PeftModel.from_pretrained(
        LlamaForSequenceClassification.from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    ).eval()
    with torch.no_grad():
        want = [
            float(peer(**tok(tok.apply_chat_template([*p, {"role": "assistant", "content": r}],
                                                     tokenize=False),
                             return_tensors="pt", add_special_tokens=False)).logits[0, 0])
            for p, r in pairs
        ]  # fmt: skip
    reward = load_reward(f"classifier:{tmp_path / 'adapter'}")  # base from adapter_config.json
    got = reward.score([Query(p, r) for p, r in pairs])
    assert np.max(np.abs(np.asarray(got, dtype=np.float64) - want)) < 1e-5
    assert len(set(np.round(want, 6))) > 1  # the scores differ: a real comparison

"""Peer side of the TRL check, run by ``benchmarks/peer_contracts.py`` in the venv that has TRL.

TRL's own ``GRPOTrainer`` trains a tiny random Llama (the embedded SmolLM2 tokenizer) for two steps
in each advantage mode, with three rewardkit reward functions (``rewardkit.integrations.trl``)
that sometimes do not apply (None) and sometimes are constant in a group. It records what each
reward function returned to TRL and the advantages TRL computed from them (the output of its
``_generate_and_score_completions``), and writes them as JSON for the driver to recompute with
``rewardkit.combine``. Usage: ``python trl_side.py TOKENIZER_DIR OUT.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any

import torch
import trl
from datasets import Dataset
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from trl import GRPOConfig, GRPOTrainer

from rewardkit.integrations.trl import reward_func

#: (multi_objective_aggregation, scale_rewards, loss_type): every advantage mode of TRL 1.x, and
#: two loss types to show that the loss type does not change the advantages.
MODES = [
    ("sum_then_normalize", "group", "dapo"),
    ("sum_then_normalize", "batch", "dapo"),
    ("sum_then_normalize", "none", "dapo"),
    ("normalize_then_sum", "group", "dapo"),
    ("sum_then_normalize", "group", "grpo"),
    ("sum_then_normalize", "none", "dr_grpo"),
]
WEIGHTS = [1.0, 0.5, 0.25]
G = 4


class Recorder:
    """A TRL reward function that keeps what the wrapped rewardkit function returned."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.calls: list[list[float | None]] = []

    def __call__(self, **kwargs: Any) -> list[float | None]:
        out = self.fn(**kwargs)
        self.calls.append(list(out))
        return out


class Capturing(GRPOTrainer):
    """GRPOTrainer that keeps the advantages its own code computed for each generation batch."""

    captured: list[list[float]]

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        self.captured.append(out["advantages"].tolist())
        return out


def run_mode(tok: Any, aggregation: str, scale: str, loss_type: str) -> dict[str, Any]:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    model = LlamaForCausalLM(cfg)
    funcs = [
        # chars for sources a and b, None for c (c rows: no reward applies → unscorable)
        Recorder(reward_func({"route": {"a": "rule:length?unit=chars", "b": "rule:length"}})),
        # words for a only
        Recorder(reward_func({"route": {"a": "rule:length?unit=words"}}, name="words")),
        # gsm8k against the answer column: random text is always wrong → a constant 0 column
        Recorder(reward_func({"route": {"a": "rule:gsm8k", "b": "rule:gsm8k"}}, name="gsm8k")),
    ]
    ds = Dataset.from_dict(
        {
            "prompt": ["Add 2 and 2.", "Say hi.", "Name a color.", "Count to three."],
            "data_source": ["a", "b", "c", "a"],
            "answer": ["4", "hi", "red", "3"],
        }
    )
    with tempfile.TemporaryDirectory() as out_dir:
        args = GRPOConfig(
            output_dir=out_dir,
            per_device_train_batch_size=2 * G,
            num_generations=G,
            max_completion_length=12,
            max_steps=2,
            learning_rate=1e-4,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            logging_steps=1,
            dataloader_num_workers=0,
            disable_tqdm=True,
            reward_weights=WEIGHTS,
            scale_rewards=scale,
            multi_objective_aggregation=aggregation,
            loss_type=loss_type,
            seed=0,
        )
        trainer = Capturing(
            model=model, reward_funcs=funcs, args=args, train_dataset=ds, processing_class=tok
        )
        trainer.captured = []
        trainer.train()
    calls = [
        {"rewards": [f.calls[i] for f in funcs], "advantages": trainer.captured[i]}
        for i in range(len(trainer.captured))
    ]
    return {
        "aggregation": aggregation,
        "scale_rewards": scale,
        "loss_type": loss_type,
        "weights": WEIGHTS,
        "group_size": G,
        "calls": calls,
    }


def main() -> None:
    tok_dir, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    modes = [run_mode(tok, *m) for m in MODES]
    with open(out, "w") as f:
        json.dump({"peer": "trl", "version": trl.__version__, "modes": modes}, f)


if __name__ == "__main__":
    main()

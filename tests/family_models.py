"""Tiny random checkpoints shaped like the real reward-model families (tests only).

Each builder writes a model directory whose config, weight names and (where the real family
ships it) modelling code mirror the real checkpoint, with the embedded tokenizers.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

from rewardkit.models.families import PAIR_MARKERS
from rewardkit.models.loading import resolve_model
from train_helpers import tiny_llama_config

REMOTE_CODE = Path(__file__).parent / "remote_code"


def smollm_tokenizer():
    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def seeded_causal_lms(root: Path, tok, seeds=(0, 1)) -> list[Path]:
    """2-layer causal Llamas over ``tok``, one per seed, saved under ``root`` (``lm{seed}``)."""
    paths = []
    for seed in seeds:
        cfg = tiny_llama_config(tok, max_position_embeddings=256, tie_word_embeddings=False)
        torch.manual_seed(seed)
        transformers.LlamaForCausalLM(cfg).save_pretrained(root / f"lm{seed}")
        tok.save_pretrained(root / f"lm{seed}")
        paths.append(root / f"lm{seed}")
    return paths


def chat_ids(tok, query) -> list[int]:
    """The ids of ``query`` rendered whole by ``tok``'s chat template (the response as the
    assistant turn), as one pass of the template gives them."""
    text = tok.apply_chat_template(
        [*query.prompt, {"role": "assistant", "content": query.response}], tokenize=False
    )
    return tok(text, add_special_tokens=False)["input_ids"]


def llama_config(tok, **extra) -> transformers.LlamaConfig:
    return tiny_llama_config(
        tok,
        max_position_embeddings=512,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        **extra,
    )


def _write_config(path: Path, cfg: transformers.PretrainedConfig, **fields) -> None:
    data = cfg.to_dict()
    data.update(fields)
    (path / "config.json").write_text(json.dumps(data, indent=1))


def value_head_model(path: Path, shape: str = "starling", seed: int = 0) -> Path:
    """Starling (``transformer.*`` + ``v_head``), UltraRM (``model.*`` + ``regression_head``,
    architectures LlamaRewardModel) or Beaver (``model.*`` + ``score_head`` with a bias)."""
    prefix, head, arch, bias = {
        "starling": ("transformer.", "v_head", "GPTRewardModel", False),
        "ultrarm": ("model.", "regression_head", "LlamaRewardModel", False),
        "beaver": ("model.", "score_head", "LlamaForScore", True),
    }[shape]
    path.mkdir(parents=True, exist_ok=True)
    tok = smollm_tokenizer()
    cfg = llama_config(tok)
    torch.manual_seed(seed)
    body = transformers.LlamaModel(cfg)
    linear = torch.nn.Linear(32, 1, bias=bias)
    torch.nn.init.normal_(linear.weight, std=0.5)
    state = {f"{prefix}{k}": v.contiguous() for k, v in body.state_dict().items()}
    state.update({f"{head}.{k}": v.contiguous() for k, v in linear.state_dict().items()})
    save_file(state, str(path / "model.safetensors"))
    _write_config(path, cfg, architectures=[arch])
    tok.save_pretrained(path)
    return path


def remote_model(path: Path, kind: str, seed: int = 0) -> Path:
    """An AutoModel checkpoint with remote code: ``eurus`` (forward returns the reward),
    ``reward-token`` (InternLM2 shape, appended reward token) or ``first-eos`` (a broken
    classifier pooling before the first eos, AutoModelForSequenceClassification)."""
    module, cls, auto = {
        "eurus": ("modeling_eurus_shape", "EurusShapeRewardModel", "AutoModel"),
        "reward-token": ("modeling_reward_token_shape", "RewardTokenShapeModel", "AutoModel"),
        "first-eos": (
            "modeling_first_eos_shape",
            "FirstEosClassifier",
            "AutoModelForSequenceClassification",
        ),
    }[kind]
    path.mkdir(parents=True, exist_ok=True)
    tok = smollm_tokenizer()
    extra = {"reward_token_id": len(tok) - 1} if kind == "reward-token" else {}
    cfg = llama_config(tok, **extra)
    shutil.copy(REMOTE_CODE / f"{module}.py", path / f"{module}.py")
    cfg.auto_map = {auto: f"{module}.{cls}"}
    cfg.architectures = [cls]
    torch.manual_seed(seed)
    model = getattr(importlib.import_module(f"remote_code.{module}"), cls)(cfg)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(path / "model.safetensors"),
    )
    _write_config(path, cfg)
    tok.save_pretrained(path)
    return path


def pairrm_model(path: Path, seed: int = 0) -> Path:
    """PairRM-hf's layout: DebertaV2PairRM config with marker ids, ``pretrained_model.*`` body
    and ``head_layer.{1,4}`` weights; the MiniLM tokenizer with the three marker tokens."""
    path.mkdir(parents=True, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("minilm").source)
    tok.add_special_tokens({"additional_special_tokens": list(PAIR_MARKERS)})
    markers = tok.convert_tokens_to_ids(list(PAIR_MARKERS))
    cfg = transformers.DebertaV2Config(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=64,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        pad_token_id=tok.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    body = transformers.DebertaV2Model(cfg)
    head = torch.nn.Sequential(
        torch.nn.Dropout(0.05),
        torch.nn.Linear(64, 32),
        torch.nn.Tanh(),
        torch.nn.Dropout(0.05),
        torch.nn.Linear(32, 1),
    )
    state = {f"pretrained_model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    state.update({f"head_layer.{k}": v.contiguous() for k, v in head.state_dict().items()})
    save_file(state, str(path / "model.safetensors"))
    _write_config(
        path,
        cfg,
        architectures=["DebertaV2PairRM"],
        source_prefix_id=markers[0],
        cand1_prefix_id=markers[1],
        cand2_prefix_id=markers[2],
        n_tasks=1,
        drop_out=0.05,
    )
    tok.save_pretrained(path)
    return path


def pair_lm_model(path: Path, seed: int = 0) -> Path:
    """RLHFlow pair-preference shape: a plain LlamaForCausalLM with a chat template."""
    path.mkdir(parents=True, exist_ok=True)
    tok = smollm_tokenizer()
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(llama_config(tok, tie_word_embeddings=True)).save_pretrained(path)
    tok.save_pretrained(path)
    return path

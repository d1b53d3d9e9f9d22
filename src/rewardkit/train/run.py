"""``train(cfg)``: data → items → model → :class:`RewardTrainer` → saved directory.

One function per kind of run: a full (or LoRA) fine-tune through ``Trainer``, a frozen-encoder
feature head (:mod:`rewardkit.train.frozen`), or an ensemble of members
(:mod:`rewardkit.train.ensemble`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import DataError, SpecError
from rewardkit.train.config import TrainConfig


@dataclass
class TrainResult:
    """Where the model went and the last metrics."""

    output_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, Any]]


def load_examples(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """Training and evaluation examples (the eval file, or a held-out fraction). ``data`` may
    name several files, comma-separated; ``limit`` applies to each."""
    from rewardkit.data import load

    train = []
    for part in [p.strip() for p in cfg.data.split(",") if p.strip()]:
        train += load(
            part,
            format=cfg.data_format,
            columns=cfg.columns,
            limit=cfg.limit,
            on_error=cfg.on_error,
        )
    if not train:
        raise DataError(f"train data {cfg.data!r} holds no examples")
    evals = (
        load(cfg.eval_data, format=cfg.eval_format, limit=cfg.eval_limit, on_error=cfg.on_error)
        if cfg.eval_data
        else []
    )
    return train, evals


def _apply_lora(hf: Any, cfg: TrainConfig, task: str | None, targets: Any = "all-linear") -> Any:
    """``hf`` wrapped with LoRA adapters from the config (``cfg.lora_targets`` or ``targets``)."""
    from rewardkit.errors import MissingDependencyError

    try:
        import peft
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("LoRA needs peft: pip install 'rewardkit[train]'") from exc
    lcfg = peft.LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_targets or targets,
        task_type=task,
    )
    return peft.get_peft_model(hf, lcfg)


def load_classifier(model: str, num_labels: int, seed: int, dtype: str) -> Any:
    """A trainable sequence classifier with ``num_labels`` outputs; a new or resized head is
    initialised from ``seed``."""
    import torch
    import transformers

    from rewardkit.models.loading import resolve_model, torch_dtype

    source = resolve_model(model).source
    torch.manual_seed(seed)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=num_labels, ignore_mismatched_sizes=True, dtype=torch_dtype(dtype)
    )
    return hf.to(torch_dtype(dtype))


def scoring_encoder(cfg: TrainConfig, hf: Any) -> tuple[Any, Any]:
    """(tokenizer, encode) exactly as ``classifier:DIR`` encodes at scoring time (chat template
    when the tokenizer has one, else a text pair), under the config's truncation policy."""
    from functools import partial

    from rewardkit.engine.encoding import encode_chat, encode_text_pair, pair_layout
    from rewardkit.models.loading import fit_max_length, load_tokenizer, resolve_model

    tok = load_tokenizer(resolve_model(cfg.model).source)
    if hf.config.pad_token_id is None:
        hf.config.pad_token_id = tok.pad_token_id
    has_template = bool(getattr(tok, "chat_template", None))
    use_template = has_template if cfg.use_chat_template is None else cfg.use_chat_template
    max_len = fit_max_length(hf.config, tok, cfg.max_length, cfg.max_length)

    def encode(queries: list[Any]) -> list[Any]:
        if use_template:
            return encode_chat(tok, queries, max_len, cfg.truncation)
        return encode_text_pair(tok, pair_layout(tok), queries, max_len, cfg.truncation)

    return tok, partial(encode)


def disable_dropout(module: Any) -> None:
    """Set every dropout probability in ``module`` to 0 (``nn.Dropout`` layers and the
    ``attention_dropout`` rates attention modules read), as TRL's ``disable_dropout`` does."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
        if isinstance(getattr(m, "attention_dropout", None), float):
            m.attention_dropout = 0.0


def build_model(cfg: TrainConfig, seed: int | None = None):
    """(module to train, tokenizer, encode function, collator, verdict ids) for ``cfg``."""
    import torch

    from rewardkit.engine.config import EngineConfig
    from rewardkit.train.collate import Collator
    from rewardkit.train.model import GenerativeModel, PeerModels, RewardModel, can_pack, is_decoder
    from rewardkit.train.objectives import num_outputs

    seed = cfg.seed if seed is None else seed
    engine = EngineConfig(max_length=cfg.max_length, truncation=cfg.truncation, dtype=cfg.dtype)
    verdict = (-1, -1)
    if cfg.objective == "prm":
        from rewardkit.train.prm import build_step_model

        module, tok, encode, collator, verdict = build_step_model(cfg, seed)
        if cfg.disable_dropout:
            disable_dropout(module)
        return module, tok, encode, collator, verdict
    if cfg.objective == "generative":
        import transformers

        from rewardkit.rewards.judges.local import YesNoJudgeReward

        judge = YesNoJudgeReward(
            cfg.model, engine, use_chat_template=cfg.use_chat_template is not False
        )
        tok = judge.tokenizer
        torch.manual_seed(seed)
        hf = transformers.AutoModelForCausalLM.from_pretrained(judge.resolved.source)
        if cfg.lora_r:
            hf = _apply_lora(hf, cfg, "CAUSAL_LM")
        verdict = (int(judge.yes_ids[0]), int(judge.no_ids[0]))
        module = GenerativeModel(hf, *verdict)
        encode = judge.encode
        decoder, pool = True, "last"
    else:
        members = []
        for i in range(2 if cfg.objective == "crm" else 1):
            hf = load_classifier(cfg.model, num_outputs(cfg), seed + i, cfg.dtype)
            if cfg.attributes and cfg.objective != "bt":
                names = list(cfg.attributes)
                if cfg.objective == "gated":
                    names += [f"gate_{a}" for a in cfg.attributes]
                hf.config.id2label = dict(enumerate(names))
                hf.config.label2id = {n: i for i, n in enumerate(names)}
            base = hf
            if cfg.lora_r:
                hf = _apply_lora(hf, cfg, "SEQ_CLS")
            members.append(RewardModel(hf))
        module = members[0] if len(members) == 1 else PeerModels(*members)
        tok, encode = scoring_encoder(cfg, base)
        for m in members:
            m.config.pad_token_id = base.config.pad_token_id
        rew_model = base
        decoder = is_decoder(rew_model)
        pool = "last_non_pad" if decoder else "first"
        if cfg.packing and not can_pack(rew_model):
            logging.getLogger(__name__).warning(
                "%s: packing not supported; padding instead", cfg.model
            )
            cfg.packing = False
    if cfg.disable_dropout:
        disable_dropout(module)
    if cfg.dtype in ("bfloat16", "bf16"):
        module.to(torch.bfloat16)
    collator = Collator(
        pad_id=int(tok.pad_token_id),
        decoder=decoder,
        packing=cfg.packing,
        capacity=cfg.max_length,
        pool=pool,
    )
    return module, tok, encode, collator, verdict


def training_args(cfg: TrainConfig, output_dir: str, seed: int, n_eval: int) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.scheduler,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        seed=seed,
        data_seed=seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if (cfg.eval_steps and n_eval) else "no",
        eval_steps=cfg.eval_steps or None,
        remove_unused_columns=False,
        train_sampling_strategy="random" if cfg.shuffle else "sequential",
        report_to="none",
        disable_tqdm=not cfg.progress,
        dataloader_num_workers=0,
        use_cpu=not __import__("torch").cuda.is_available(),
        bf16=cfg.bf16,
        ddp_backend="gloo"
        if int(os.environ.get("WORLD_SIZE", "1")) > 1
        and not __import__("torch").cuda.is_available()
        else None,
    )


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg`` and save to ``cfg.output_dir``; see docs/training.md."""
    cfg.validate()
    from rewardkit.train.image import is_image_config

    if is_image_config(cfg):
        from rewardkit.train.image import train_image

        return train_image(cfg)
    if cfg.head == "cosine":
        raise SpecError("train config: head 'cosine' is for image reward models only")
    if cfg.ensemble_size > 1 or cfg.ensemble_backbones:
        from rewardkit.train.ensemble import train_ensemble

        return train_ensemble(cfg)
    if cfg.freeze_backbone:
        from rewardkit.train.frozen import train_frozen_head

        return train_frozen_head(cfg)
    return train_model(cfg)


def prepare(
    cfg: TrainConfig,
    seed: int | None = None,
    examples: tuple[list[Any], list[Any]] | None = None,
) -> Any:
    """A ready :class:`~rewardkit.train.trainer.RewardTrainer` for ``cfg`` (``examples``:
    (train, eval) to use instead of loading ``cfg.data``)."""
    from transformers import set_seed

    from rewardkit.models.loading import set_threads
    from rewardkit.train.collate import build_items, split_holdout
    from rewardkit.train.trainer import RewardTrainer

    seed = cfg.seed if seed is None else seed
    set_threads(cfg.threads)
    set_seed(seed)
    train_ex, eval_ex = examples if examples is not None else load_examples(cfg)
    module, tok, encode, collator, verdict = build_model(cfg, seed)
    if cfg.objective == "prm":
        from rewardkit.train.prm import build_step_items as build_items
    items = build_items(train_ex, encode, cfg)
    eval_items = build_items(eval_ex, encode, cfg) if eval_ex else []
    if not eval_items and cfg.eval_fraction > 0:
        items, eval_items = split_holdout(items, cfg.eval_fraction, seed)
    args = training_args(cfg, str(cfg.output_dir), seed, len(eval_items))
    return RewardTrainer(
        model=module,
        args=args,
        train_dataset=items,
        eval_dataset=eval_items or None,
        data_collator=collator,
        processing_class=tok,
        cfg=cfg,
        verdict_ids=verdict,
    )


def train_model(
    cfg: TrainConfig,
    seed: int | None = None,
    examples: tuple[list[Any], list[Any]] | None = None,
) -> TrainResult:
    """A full or LoRA fine-tune through :class:`~rewardkit.train.trainer.RewardTrainer`."""
    return finish_training(cfg, prepare(cfg, seed, examples))


def finish_training(cfg: TrainConfig, trainer: Any) -> TrainResult:
    """Run a prepared trainer (resuming when asked), evaluate, save the model, history, metrics
    and plot to ``cfg.output_dir``."""
    import torch

    from rewardkit.train.trainer import last_intact_checkpoint

    out = Path(cfg.output_dir)
    resume = None
    if cfg.resume:
        resume = last_intact_checkpoint(out)
        if resume is None:
            logging.getLogger(__name__).warning("resume: no checkpoint in %s; starting fresh", out)
    trainer.train(resume_from_checkpoint=resume)
    metrics: dict[str, float] = {}
    if trainer.eval_dataset:
        metrics = trainer.evaluate()
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))
        history = trainer.state.log_history
        (out / "log_history.json").write_text(json.dumps(history, indent=1))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if cfg.plot:
            from rewardkit.train.plot import plot_history

            plot_history(history, out / "training.png")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return TrainResult(out, metrics, trainer.state.log_history)

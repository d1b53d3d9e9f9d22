"""``train(cfg)``: data → items → model → :class:`RewardTrainer` → saved directory.

One function per kind of run: a full (or LoRA) fine-tune through ``Trainer``, a frozen-encoder
feature head (:mod:`rewardkit.train.frozen`), or an ensemble of members
(:mod:`rewardkit.train.ensemble`).
"""

from __future__ import annotations

import logging
from typing import Any

from rewardkit.errors import DataError, SpecError
from rewardkit.train.common import (
    TrainResult,
    disable_dropout,
    finish_training,
    load_classifier,
    load_examples,
    run_counts,
    training_args,
    world_size,
)
from rewardkit.train.config import TrainConfig
from rewardkit.train.lora import apply_lora
from rewardkit.train.steps import epoch_steps

__all__ = [
    "TrainResult",
    "build_model",
    "finish_training",
    "load_examples",
    "prepare",
    "train",
    "train_model",
    "training_args",
]


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


def build_model(cfg: TrainConfig, seed: int | None = None):
    """(module to train, tokenizer, encode function, collator, verdict ids) for ``cfg``."""
    import torch

    from rewardkit.engine.config import EngineConfig
    from rewardkit.train.collate import Collator
    from rewardkit.train.model import (
        GenerativeModel,
        PeerModels,
        RewardModel,
        is_decoder,
        packing_refusal,
    )
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

        judge = YesNoJudgeReward(  # the reward it trains is the saved judge's (its `answers`)
            cfg.model,
            engine,
            use_chat_template=cfg.use_chat_template is not False,
            output=GenerativeModel.output,
        )
        tok = judge.tokenizer
        torch.manual_seed(seed)
        hf = transformers.AutoModelForCausalLM.from_pretrained(judge.resolved.source)
        if cfg.lora_r:
            hf = apply_lora(hf, cfg, "CAUSAL_LM")
        module = GenerativeModel(hf, judge.answers)
        verdict = (module.yes_id, module.no_id)
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
                hf = apply_lora(hf, cfg, "SEQ_CLS")
            members.append(RewardModel(hf))
        module = members[0] if len(members) == 1 else PeerModels(*members)
        tok, encode = scoring_encoder(cfg, base)
        for m in members:
            m.config.pad_token_id = base.config.pad_token_id
        rew_model = base
        decoder = is_decoder(rew_model)
        pool = "last_non_pad" if decoder else "first"
    if cfg.packing:  # packed rows only where they give the model's own rewards
        # rows are cut to max_length: a sliding window at least that long changes nothing
        refusal = packing_refusal(
            hf if cfg.objective == "generative" else rew_model, longest=cfg.max_length
        )
        if refusal:
            logging.getLogger(__name__).warning(
                "%s: packing refused (%s); padding instead", cfg.model, refusal
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


def check_model_found(name: str) -> None:
    """A ``model`` that is neither embedded nor a local path must be in the local Hub cache or
    on a Hub that answers: else :class:`~rewardkit.errors.ModelNotFoundError` at once, saying
    where it was looked for (offline, or the Hub unreachable: no minute of Hub retries per
    look-up; :func:`rewardkit.models.loading.locate_hub_model`)."""
    from pathlib import Path

    from rewardkit.models.embedded import embedded_key

    if embedded_key(name) is not None or Path(name).expanduser().exists():
        return
    from rewardkit.models.loading import locate_hub_model

    locate_hub_model(name)


def check_run_config(cfg: TrainConfig) -> bool:
    """The refusals a run makes before any model or data loads (``rewardkit train
    --print-config`` makes them too, so it exits where the run would); returns whether ``cfg``
    trains an image reward model (decided once: a Hub id's config is read for it)."""
    from rewardkit.train.image import check_image_config, is_image_config
    from rewardkit.train.labels import F32_MAX
    from rewardkit.train.votes import load_votes

    if cfg.lr > F32_MAX:  # 1e300 ended a frozen-head run on a torch float overflow traceback
        raise SpecError(f"train config: lr must be at most {F32_MAX:.4g} (float32), got {cfg.lr!r}")
    check_model_found(cfg.model)  # before is_image_config asks the Hub for its config
    if is_image_config(cfg):
        check_image_config(cfg)
        return True
    if cfg.head == "cosine":
        raise SpecError("train config: head 'cosine' is for image reward models only")
    if cfg.head == "mlp" and not cfg.freeze_backbone:
        # A full or LoRA fine-tune trains the checkpoint's own classification head (so the
        # output loads with AutoModelForSequenceClassification); an MLP head would be ignored.
        raise SpecError(
            "train config: head 'mlp' (docs/methods/A14-two-layer-head.md) is trained on a frozen "
            "backbone: set freeze_backbone: true, or head: linear for a full or LoRA fine-tune "
            "(which trains the model's own classification head)"
        )
    if cfg.ensemble_size > 1 or cfg.ensemble_backbones:
        from rewardkit.train.ensemble import ensemble_refusal

        refusal = ensemble_refusal(cfg)
        if refusal:
            raise SpecError(refusal)
    if cfg.freeze_backbone:
        from rewardkit.train.frozen import frozen_refusal

        refusal = frozen_refusal(cfg)
        if refusal:
            raise SpecError(refusal)
    load_votes(cfg.vote_file)  # a bad vote_file before the model loads, not after
    return False


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg`` and save to ``cfg.output_dir``; see docs/training.md."""
    cfg.validate()
    image = check_run_config(cfg)
    from rewardkit.train.runstate import claim_output_dir

    # Before any model or data loads: a fresh run never mixes with another (with --overwrite
    # the earlier run is deleted only once this one's data and model have loaded).
    claim_output_dir(cfg, clear=False)

    if image:
        from rewardkit.train.image import train_image

        return train_image(cfg)
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
    from rewardkit.train.collate import (
        build_items,
        check_labels,
        data_counts,
        describe_counts,
        split_holdout,
    )
    from rewardkit.train.labels import Truncations, check_attributes, check_pairs_differ
    from rewardkit.train.pairs import group_key
    from rewardkit.train.trainer import RewardTrainer

    seed = cfg.seed if seed is None else seed
    set_threads(cfg.threads)
    set_seed(seed)
    train_ex, eval_ex = examples if examples is not None else load_examples(cfg)
    module, tok, encode, collator, verdict = build_model(cfg, seed)
    build: Any = build_items
    if cfg.objective == "prm":
        from rewardkit.train.prm import build_step_items

        build = lambda ex, enc, c, where, use_votes=True: build_step_items(ex, enc, c)  # noqa: E731
    given = examples is not None
    where = "train examples" if given else f"train data {cfg.data!r}"
    cuts = Truncations(encode)
    items = build(train_ex, cuts, cfg, where)
    cuts.warn(where)  # e.g. max_length under the chat template's header: response tails only
    eval_where = "eval examples" if given else f"eval data {cfg.eval_data!r}"
    eval_items = build(eval_ex, encode, cfg, eval_where, use_votes=False) if eval_ex else []
    if cfg.objective == "prm":  # one item per example: a problem's solutions stay together
        for part, exs in ((items, train_ex), (eval_items, eval_ex)):
            for it, ex in zip(part, exs, strict=True):
                it.prompt_key = group_key(ex)
    if not eval_items and cfg.eval_fraction > 0:
        items, eval_items = split_holdout(items, cfg.eval_fraction, seed, cfg.holdout_by, where)
        where = f"{where} after holding out eval_fraction {cfg.eval_fraction}"
        if not items:
            raise DataError(
                f"{where}: no training example is left ({len(eval_items)} held out); lower "
                "eval_fraction or give eval_data"
            )
        if cfg.objective != "prm":
            check_labels(items, cfg, where)
            # the hold-out is eval data too: all ties there reported eval_loss 0 (as
            # eval_data with no preference is refused)
            check_labels(eval_items, cfg, f"the eval_fraction {cfg.eval_fraction} hold-out")
    if not items:
        raise DataError(f"{where}: no training example is left (the vote file dropped them all)")
    check_attributes(items, cfg, where)
    check_pairs_differ(items, cfg.objective, where)
    log = logging.getLogger(__name__)
    log.info(
        "%s: training on %s",
        where,
        describe_counts(data_counts(items, cfg.objective), cfg.objective),
    )
    if eval_items:
        said = describe_counts(data_counts(eval_items, cfg.objective), cfg.objective)
        log.info("%s: evaluating on %s", eval_where if eval_ex else "the hold-out", said)
    epoch_steps(cfg, len(items), where, world_size())  # epochs of less than half a step: refused
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
    trainer = prepare(cfg, seed, examples)
    return finish_training(cfg, trainer, run_counts(cfg, trainer))

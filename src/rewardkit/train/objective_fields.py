"""Which config fields each objective reads, and the refusal of a field an objective would
ignore (docs/training.md): a run would train as if the field were unset while its config says
otherwise. Torch-free (``TrainConfig.validate`` calls :func:`check_objective_fields`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from rewardkit.errors import SpecError

#: Objectives whose loss takes a per-pair weight (``meta.weight``, a vote down-weight) and a
#: label smoothing (``label_smoothing``, ``meta.label_confidence``) (docs/curation.md).
WEIGHTED = ("bt", "bt+regression", "gated", "crm", "tie", "crome")
SMOOTHED = ("bt", "bt+regression", "gated", "crm")
#: The smallest SimCSE temperature (card A6): the logits are cos/τ, up to 1/τ; far below it
#: (1e-20) every step's gradient overflowed to inf, the optimizer skipped it, and a run that
#: never moved a weight reported success (SimCSE uses 0.05).
MIN_TEMPERATURE = 1e-4
#: Objective-specific fields and the objectives that read them (docs/training.md); any other
#: objective refuses a value other than the field's default: it would change nothing.
READERS: dict[str, tuple[str, ...]] = {
    "margin_column": SMOOTHED,
    "label_smoothing": SMOOTHED,
    "center_coef": ("bt", "bt+regression", "gated"),
    "tie_k": ("tie",),
    "attributes": ("regression", "bt+regression", "gated"),
    "rating_key": ("listwise",),
    "bt_weight": ("bt+regression",),
    "reg_weight": ("bt+regression", "gated"),
    "crm_noise_rate": ("crm",),
    "crm_warmup": ("crm",),
    "prm_tag": ("prm",),
    "prm_neutral": ("prm",),
    **dict.fromkeys(
        (
            "contrastive_weight",
            "contrastive_temperature",
            "metarm_data",
            "metarm_eta",
            "metarm_batch_size",
        ),
        ("bt", "bt+regression", "gated"),
    ),
}


@dataclass
class ExtraTermFields:
    """The training terms added to an objective's loss (docs/methods/A6-contrastive-metarm.md),
    fields of :class:`~rewardkit.train.config.TrainConfig` (it inherits them)."""

    # β_cl of L = L_obj + β_cl·L_cl, a SimCSE loss over two dropout views of each pair's
    # difference representation (0: off; needs disable_dropout: false)
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.05
    # MetaRM: prompts with >= 2 unlabelled responses each sampled from the shifted policy
    metarm_data: str | None = None
    metarm_eta: float | None = None  # the meta (ascent) step size η; null: lr
    metarm_batch_size: int | None = None  # prompts per MetaRM step; null: batch_size


def _bad(value: Any, ok: bool) -> bool:
    return value is not None and not ok


def check_extra_terms(cfg: Any) -> None:
    """SpecError naming the field when an extra-term field (:class:`ExtraTermFields`) is out of
    range, set where it changes nothing, or set for a run that cannot apply it."""
    w, t, eta, size = (
        cfg.contrastive_weight,
        cfg.contrastive_temperature,
        cfg.metarm_eta,
        cfg.metarm_batch_size,
    )
    for name, value, ok, wants in (
        ("contrastive_weight", w, math.isfinite(w) and w >= 0, "a number >= 0 (0: off)"),
        ("contrastive_temperature", t, math.isfinite(t) and t >= MIN_TEMPERATURE, f"a number >= {MIN_TEMPERATURE:g} (SimCSE: 0.05)"),
        ("metarm_eta", eta, eta is None or (math.isfinite(eta) and eta > 0), "a number > 0 (or null: lr)"),
        ("metarm_batch_size", size, size is None or size >= 1, "an integer >= 1 (or null: batch_size)"),
    ):  # fmt: skip
        if _bad(value, ok):
            raise SpecError(f"train config: {name} must be {wants}, got {value!r}")
    if cfg.metarm_data is not None:
        _check_metarm_source(str(cfg.metarm_data))
    unused = [
        (name, needs)
        for name, needs, is_set in (
            ("contrastive_temperature", "contrastive_weight", not w and t != 0.05),
            ("metarm_eta", "metarm_data", cfg.metarm_data is None and eta is not None),
            ("metarm_batch_size", "metarm_data", cfg.metarm_data is None and size is not None),
        )
        if is_set
    ]
    if unused:
        name, needs = unused[0]
        raise SpecError(
            f"train config: {name} {getattr(cfg, name)!r} is read only with {needs} set: it "
            f"would change nothing; set {needs} too, or remove {name}"
        )
    on = [n for n, v in (("contrastive_weight", w), ("metarm_data", cfg.metarm_data)) if v]
    if on and cfg.freeze_backbone:
        raise SpecError(
            f"train config: {' and '.join(on)} with freeze_backbone: a frozen backbone trains a "
            "head on cached features, with no dropout views and no meta step "
            "(docs/methods/A6-contrastive-metarm.md); fine-tune (freeze_backbone: false, or "
            f"LoRA with lora_r), or remove {' and '.join(on)}"
        )
    if w and cfg.batch_size < 2:
        raise SpecError(
            "train config: contrastive_weight with batch_size 1: SimCSE's negatives are the "
            "batch's other pairs, so with one pair per batch L_cl is 0 at every step and the "
            "term trains nothing; use batch_size >= 2 (SimCSE: dozens), or contrastive_weight: 0"
        )
    if w and cfg.disable_dropout:
        raise SpecError(
            "train config: contrastive_weight needs two dropout views of each pair (SimCSE), "
            "and disable_dropout (the default) sets every dropout to 0, so both views would be "
            "one: set disable_dropout: false (--no-disable_dropout), or contrastive_weight: 0"
        )


def _check_metarm_source(source: str) -> None:
    """SpecError for a local ``metarm_data`` path that does not exist (before any model loads;
    ``hf:`` sources are read at the run's start; a blank one is refused with the other path
    fields, ``config.PATH_FIELDS``)."""
    from pathlib import Path

    if not source.startswith("hf:") and not Path(source).expanduser().exists():
        raise SpecError(f"train config: metarm_data {source!r} does not exist")


def field_default(name: str) -> Any:
    """The default value of the config field ``name``."""
    from rewardkit.train.config import TrainConfig

    f = TrainConfig.__dataclass_fields__[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def ignored_fields(objective: str) -> frozenset[str]:
    """The objective-specific fields (:data:`READERS`) that ``objective`` does not read."""
    return frozenset(k for k, readers in READERS.items() if objective not in readers)


def _is_default(name: str, value: Any) -> bool:
    return value == field_default(name) or (name == "center_coef" and value == 0)


def check_objective_fields(cfg: Any) -> None:
    """Refuse a field the objective would ignore (a run would train as if it were unset while
    the config says otherwise): objective-specific fields (:data:`READERS`), a ``yes_token`` /
    ``no_token`` the saved judge cannot read, and a vote action the objective cannot apply."""
    for name in sorted(ignored_fields(cfg.objective)):
        value = getattr(cfg, name)
        if not _is_default(name, value):
            raise SpecError(
                f"train config: {name} {value!r} is read by objective "
                f"{', '.join(READERS[name])} only, not {cfg.objective!r}: it would change "
                "nothing; remove it (or choose one of those objectives)"
            )
    for name in ("yes_token", "no_token"):
        if getattr(cfg, name) != field_default(name):
            raise SpecError(
                f"train config: {name} {getattr(cfg, name)!r} cannot be honoured: the generative "
                "objective trains the verdict the saved judge reads (judge:DIR, every spelling of "
                "Yes and of No, docs/methods/B3-yes-token-reward.md); leave yes_token and "
                "no_token at their defaults"
            )
    if cfg.vote_file:
        _check_vote_action(cfg)
    check_extra_terms(cfg)


def _check_vote_action(cfg: Any) -> None:
    """A ``vote_file`` action the objective cannot apply is refused (it would be logged as done)."""
    why = None
    if cfg.objective == "prm":
        why = "step-labelled data has no preference pairs to vote on"
    elif cfg.vote_action == "downweight" and cfg.objective not in WEIGHTED:
        why = f"downweight needs a per-pair weight, which only {', '.join(WEIGHTED)} read"
    elif cfg.vote_action == "flip" and cfg.objective == "regression":
        why = "flip reverses a preference, and regression trains on ratings alone"
    if why:
        raise SpecError(
            f"train config: vote_file with vote_action {cfg.vote_action} and objective "
            f"{cfg.objective!r}: {why}"
        )

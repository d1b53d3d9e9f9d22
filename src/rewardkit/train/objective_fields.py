"""Which config fields each objective reads, and the refusal of a field an objective would
ignore (docs/training.md): a run would train as if the field were unset while its config says
otherwise. Torch-free (``TrainConfig.validate`` calls :func:`check_objective_fields`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from rewardkit.errors import SpecError

#: Objectives whose loss takes a per-pair weight (``meta.weight``, a vote down-weight) and a
#: label smoothing (``label_smoothing``, ``meta.label_confidence``) (docs/curation.md).
WEIGHTED = ("bt", "bt+regression", "gated", "crm", "tie", "crome")
SMOOTHED = ("bt", "bt+regression", "gated", "crm")
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
}


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

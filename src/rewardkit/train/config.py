"""The training configuration: one dataclass, read from YAML, every field overridable.

``rewardkit train --config x.yaml --lr 1e-4 --set batch_size=16`` reads the file, then applies
the command-line values (cast to each field's type). Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError

OBJECTIVES = (
    "bt",
    "tie",
    "crome",
    "listwise",
    "regression",
    "bt+regression",
    "gated",
    "generative",
    "crm",
    "prm",
)


@dataclass
class TrainConfig:
    """Everything a reward-model training run needs (see docs/training.md for each field)."""

    # What to train
    model: str = "minilm"  # embedded alias (minilm, smollm2), local directory or Hub id
    # auto: an image reward model when `model` is a CLIP-style dual encoder (or a saved image
    # reward model), else text; "image" / "text" force it (docs/multimodal.md)
    model_type: str = "auto"
    objective: str = "bt"  # one of OBJECTIVES
    head: str = "linear"  # linear | mlp (docs/methods/A14-two-layer-head.md two-layer SiLU head) | cosine (image)
    head_inner: int | None = None
    freeze_backbone: bool = False  # frozen encoder: features cached once, only the head trains
    pooling: str = "mean"  # feature pooling for a frozen backbone: mean | cls | last
    lora_r: int = 0  # > 0: train LoRA adapters through peft
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list[str] | None = None
    use_chat_template: bool | None = None  # None: use the tokenizer's when it has one

    # Data
    data: str = "sample"  # a file, directory, hf:..., "sample"; several comma-separated
    data_format: str | None = None
    columns: dict[str, str] | None = None
    limit: int | None = None
    on_error: str = "raise"  # raise | skip (drop malformed records with one warning)
    eval_data: str | None = None
    eval_format: str | None = None
    eval_limit: int | None = None
    eval_fraction: float = 0.0  # held out from `data` when eval_data is not given
    max_length: int = 512
    truncation: str = "left"  # the project's policy: left drops the oldest prompt tokens
    packing: bool = True  # padding-free packing of the sequences of a batch

    # Objective options
    margin_column: str | None = None  # Example.meta key holding a per-pair margin
    label_smoothing: float = 0.0  # docs/methods/E1-preference-strength.md
    center_coef: float | None = None  # reward centering coefficient
    tie_k: float = 5.0  # docs/methods/A13-uncertainty-tie-bt.md
    attributes: list[str] = field(default_factory=list)  # regression / gated objectives
    rating_key: str | None = None  # listwise: rank responses by this rating (else by `chosen`)
    bt_weight: float = 1.0  # bt+regression mix
    reg_weight: float = 1.0
    crm_noise_rate: float = 0.2  # docs/methods/A7-collaborative-rm.md
    crm_warmup: float = 0.5
    vote_file: str | None = (
        None  # docs/methods/E1-preference-strength.md: JSON {example_id: strength} from an ensemble
    )
    vote_action: str = "drop"  # drop | downweight | flip pairs with strength < vote_threshold
    vote_threshold: float = 0.0
    vote_weight: float = 0.1
    yes_token: str = " Yes"  # generative objective
    no_token: str = " No"
    prm_tag: str = "<extra_0>"  # objective prm: the step separator token (added when missing)
    prm_neutral: str = "ignore"  # objective prm: neutral (0) steps: ignore | positive | negative

    # Optimisation
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    scheduler: str = "linear"
    batch_size: int = 8  # examples (pairs) per device and step
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int = -1
    seed: int = 0
    shuffle: bool = True  # False: examples in file order (HelpSteer2-Preference trains unshuffled)
    dtype: str = "float32"  # weights
    bf16: bool = False  # bf16 autocast (mixed precision) on CUDA or CPU, as TRL's default
    threads: int | None = None
    # Dropout off (TRL's and OpenRLHF's RM default): with dropout the chosen and rejected sides of
    # a pair see different sub-networks, and its random masks cost time on CPU.
    disable_dropout: bool = True
    ensemble_size: int = (
        1  # > 1: train members with seeds seed, seed+1, ... (docs/methods/C5-reward-ensembles.md)
    )
    ensemble_backbones: list[str] | None = None

    # Output
    output_dir: str = "out/train"
    save_steps: int = 0  # checkpoint every N steps (0: only the final model)
    save_total_limit: int | None = 3
    eval_steps: int = 0  # evaluate every N steps (0: at the end only)
    logging_steps: int = 10
    resume: bool = False  # continue from the last checkpoint in output_dir
    plot: bool = True
    progress: bool = True
    cache_dir: str | None = None  # frozen backbone: score cache for the features (reruns are fast)

    def validate(self) -> None:
        """Raise :class:`SpecError` naming the first bad field."""
        if self.objective not in OBJECTIVES:
            raise SpecError(f"train config: objective {self.objective!r} not in {OBJECTIVES}")
        if self.model_type not in ("auto", "text", "image"):
            raise SpecError(
                f"train config: model_type must be auto, text or image, got {self.model_type!r}"
            )
        if self.head not in ("linear", "mlp", "cosine"):
            raise SpecError(
                f"train config: head must be 'linear', 'mlp' or 'cosine', got {self.head!r}"
            )
        if self.truncation not in ("left", "right", "error"):
            raise SpecError(f"train config: truncation {self.truncation!r} not left/right/error")
        if self.objective in ("regression", "bt+regression", "gated") and not self.attributes:
            raise SpecError(f"train config: objective {self.objective!r} needs `attributes`")
        if self.vote_action not in ("drop", "downweight", "flip"):
            raise SpecError(
                f"train config: vote_action {self.vote_action!r} not drop/downweight/flip"
            )
        if self.batch_size < 1 or self.grad_accum < 1:
            raise SpecError("train config: batch_size and grad_accum must be >= 1")
        if self.max_length < 8:
            raise SpecError(f"train config: max_length {self.max_length} is too small")
        if self.pooling not in ("mean", "cls", "last"):
            raise SpecError(f"train config: pooling {self.pooling!r} not mean/cls/last")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _cast(name: str, text: Any) -> Any:
    """Cast a command-line string to the type of field ``name``."""
    hints = typing.get_type_hints(TrainConfig)
    tp = hints[name]
    if not isinstance(text, str):
        return text
    low = text.strip().lower()
    is_union = typing.get_origin(tp) in (typing.Union, __import__("types").UnionType)
    args = typing.get_args(tp) if is_union else ()
    optional = type(None) in args
    if optional and low in ("none", "null", ""):
        return None
    base = next((a for a in args if a is not type(None)), tp) if args else tp
    origin = typing.get_origin(base) or base
    try:
        if origin is bool:
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if origin is int:
            return int(text)
        if origin is float:
            return float(text)
        if origin is list:
            if text.strip().startswith("["):
                return list(json.loads(text))
            return [p.strip() for p in text.split(",") if p.strip()]
        if origin is dict:
            if text.strip().startswith("{"):
                return dict(json.loads(text))
            return dict(p.split("=", 1) for p in text.split(",") if p)
    except (ValueError, json.JSONDecodeError) as exc:
        raise SpecError(f"train config: cannot read {name}={text!r} as {base}") from exc
    return text


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``cfg`` with ``overrides`` (field -> value or command-line text) applied."""
    names = set(field_names())
    values = cfg.to_dict()
    for key, value in overrides.items():
        k = key.replace("-", "_")
        if k not in names:
            raise SpecError(
                f"train config: unknown field {key!r}; fields are: {', '.join(sorted(names))}"
            )
        values[k] = _cast(k, value)
    out = TrainConfig(**values)
    out.validate()
    return out


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML/JSON config file (relative ``data``/``output_dir`` paths stay relative to the
    working directory), then apply ``overrides``."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"train config file {p} does not exist")
        import yaml

        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SpecError(f"train config {p}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise SpecError(
                f"train config {p}: expected a mapping of fields, got {type(raw).__name__}"
            )
    return apply_overrides(TrainConfig(), {**raw, **(overrides or {})})


def parse_cli_overrides(args: list[str], sets: list[str] | None = None) -> dict[str, Any]:
    """``["--lr", "1e-4", "--packing=false"]`` and ``["batch_size=16"]`` to a field dict."""
    out: dict[str, Any] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            raise SpecError(f"unexpected argument {a!r}; use --FIELD VALUE or --set FIELD=VALUE")
        key, eq, value = a[2:].partition("=")
        if not eq:
            if key.startswith("no-") and key[3:].replace("-", "_") in field_names():
                out[key[3:]] = "false"
                i += 1
                continue
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                value = "true"  # a bare --flag
            else:
                value = args[i + 1]
                i += 1
        out[key] = value
        i += 1
    return out

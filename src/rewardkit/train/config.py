"""The training configuration: one dataclass, read from YAML, every field overridable.

``rewardkit train --config x.yaml --lr 1e-4 --set batch_size=16`` reads the file, then applies
the command-line values (cast to each field's type). Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.engine.config import MAX_THREADS
from rewardkit.errors import DataError, SpecError
from rewardkit.train.objective_fields import ExtraTermFields

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
#: ``prm_neutral``: how neutral (0) steps train (docs/methods/B4-orm-vs-prm.md).
PRM_NEUTRAL = ("ignore", "positive", "negative")
#: ``holdout_by``: an ``eval_fraction`` hold-out of whole prompts (every row of a prompt on one
#: side) or of single rows (docs/training.md, "The eval_fraction hold-out").
HOLDOUT_BY = ("prompt", "row")
#: Learning-rate schedules (transformers' names) that need no extra arguments.
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)


#: Why ``pooling`` takes only ``mean``: what each kind of training reads is fixed.
POOLING_FIXED = (
    "frozen-backbone training reads mean-pooled sentence embeddings and a fine-tune its "
    "checkpoint's own classification head, so only pooling: mean (the default) is honoured"
)


@dataclass
class TrainConfig(ExtraTermFields):
    """Everything a reward-model training run needs (see docs/training.md for each field; the
    extra loss terms of :class:`~rewardkit.train.objective_fields.ExtraTermFields` too)."""

    # What to train
    model: str = "minilm"  # embedded alias (minilm, smollm2), local directory or Hub id
    # auto: an image reward model when `model` is a CLIP-style dual encoder (or a saved image
    # reward model), else text; "image" / "text" force it (docs/multimodal.md)
    model_type: str = "auto"
    objective: str = "bt"  # one of OBJECTIVES
    head: str = "linear"  # linear | mlp (docs/methods/A14-two-layer-head.md two-layer SiLU head) | cosine (image)
    head_inner: int | None = None
    freeze_backbone: bool = False  # frozen encoder: features cached once, only the head trains
    pooling: str = "mean"  # frozen-backbone features: mean-pooled (the only pooling)
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
    # column map of eval_data; None: the same as `columns` (a split of the same dataset); {}: none
    eval_columns: dict[str, str] | None = None
    eval_limit: int | None = None
    eval_fraction: float = 0.0  # held out from `data` when eval_data is not given
    holdout_by: str = "prompt"  # the eval_fraction hold-out: whole prompts | single rows
    max_length: int = 512
    truncation: str = "left"  # the project's policy: left drops the oldest prompt tokens
    packing: bool = True  # padding-free packing of the sequences of a batch

    # Objective options
    margin_column: str | None = None  # Example.meta key holding a per-pair margin
    # how the margin m enters BT: "margin" −log σ(Δ − m) (A1/E1), "scaled" −m·log σ(Δ) (A3)
    margin_kind: str = "margin"
    label_smoothing: float = 0.0  # docs/methods/E1-preference-strength.md
    center_coef: float | None = None  # reward centering coefficient
    tie_k: float = 5.0  # docs/methods/A13-uncertainty-tie-bt.md
    attributes: list[str] = field(default_factory=list)  # regression / gated objectives
    rating_key: str | None = None  # listwise: rank responses by this rating (else by `chosen`)
    bt_weight: float = 1.0  # bt+regression mix
    reg_weight: float = 1.0
    crm_noise_rate: float = 0.2  # docs/methods/A7-collaborative-rm.md
    crm_warmup: float = 0.5
    # docs/methods/E1-preference-strength.md: JSON {example_id: strength} from an ensemble
    vote_file: str | None = None
    vote_action: str = "drop"  # drop | downweight | flip pairs with strength < vote_threshold
    vote_threshold: float = 0.0
    vote_weight: float = 0.1
    # curated meta.weight (× the pair weight) and meta.label_confidence (α = 1 − C, per pair)
    # of training examples (docs/curation.md); false trains on the labels as given
    use_meta_labels: bool = True
    # generative objective: fixed (another value is refused); the judge reads every spelling
    yes_token: str = " Yes"
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
    # > 1: train members with seeds seed, seed+1, ... (docs/methods/C5-reward-ensembles.md)
    ensemble_size: int = 1
    ensemble_backbones: list[str] | None = None

    # Output
    output_dir: str = "out/train"
    save_steps: int = 0  # checkpoint every N steps (0: only the final model)
    save_total_limit: int | None = 3
    eval_steps: int = 0  # evaluate every N steps (0: at the end only)
    logging_steps: int = 10
    resume: bool = False  # continue from the last checkpoint in output_dir
    # a fresh run into an output_dir holding another run's checkpoints or model: delete those
    # first (without it such a run is refused; train/runstate.py)
    overwrite: bool = False
    plot: bool = True
    progress: bool = True
    cache_dir: str | None = None  # frozen backbone: score cache for the features (reruns are fast)

    def validate(self) -> None:
        """Check every field up front (type, then range, then combinations); raise
        :class:`SpecError` naming the first bad field and what it accepts."""
        check_types(self)
        for name, (ok, wants) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise SpecError(f"train config: {name} must be {wants}, got {value!r}")
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
        twice = sorted({a for a in self.attributes if self.attributes.count(a) > 1})
        if twice:  # two outputs trained on one rating; weights=NAME:W could not tell them apart
            raise SpecError(f"train config: attributes {twice} given twice in {self.attributes}")
        if self.objective == "bt+regression" and self.bt_weight == self.reg_weight == 0:
            raise SpecError(
                "train config: bt_weight and reg_weight are both 0, so the loss is 0 and nothing "
                "would train; give one of them a weight > 0"
            )
        if self.vote_action not in ("drop", "downweight", "flip"):
            raise SpecError(
                f"train config: vote_action {self.vote_action!r} not drop/downweight/flip"
            )
        if self.holdout_by not in HOLDOUT_BY:
            raise SpecError(
                f"train config: holdout_by must be {' or '.join(HOLDOUT_BY)}, got "
                f"{self.holdout_by!r}"
            )
        if self.on_error not in ("raise", "skip"):
            raise SpecError(f"train config: on_error must be raise or skip, got {self.on_error!r}")
        if self.dtype.lower() == "int8":
            raise SpecError(
                "train config: dtype int8 is dynamic quantization for scoring on CPU, not "
                "trainable weights (a run would train float32 and say int8): train with float32 "
                "or bfloat16, then score with classifier:DIR?dtype=int8"
            )
        if self.dtype.lower() not in ("float32", "fp32", "bfloat16", "bf16"):
            raise SpecError(f"train config: dtype must be float32 or bfloat16, got {self.dtype!r}")
        if self.margin_kind not in ("margin", "scaled"):
            raise SpecError(
                f"train config: margin_kind must be margin or scaled, got {self.margin_kind!r}"
            )
        if self.margin_kind == "scaled" and not self.margin_column:
            raise SpecError(
                "train config: margin_kind scaled multiplies each pair's BT loss by its margin "
                "(docs/methods/A3-scaled-bt.md): it needs margin_column (e.g. "
                "preference_strength); without one every pair would weigh 0"
            )
        if self.margin_kind == "scaled" and self.objective not in ("bt", "bt+regression", "gated"):
            raise SpecError(
                f"train config: margin_kind scaled applies to objectives bt, bt+regression and "
                f"gated, not {self.objective!r}"
            )
        if self.scheduler not in SCHEDULERS:
            raise SpecError(
                f"train config: scheduler {self.scheduler!r} not in {', '.join(SCHEDULERS)}"
            )
        if self.pooling != "mean":  # cls/last were accepted and trained the same mean features
            raise SpecError(f"train config: pooling {self.pooling!r}: {POOLING_FIXED}")
        if self.prm_neutral not in PRM_NEUTRAL:
            raise SpecError(
                f"train config: prm_neutral must be one of {', '.join(PRM_NEUTRAL)}, got "
                f"{self.prm_neutral!r}"
            )
        if self.eval_steps and not str(self.eval_data or "").strip() and not self.eval_fraction:
            raise SpecError(  # transformers' Trainer refuses eval steps without eval data too
                f"train config: eval_steps {self.eval_steps} evaluates every {self.eval_steps} "
                "steps, but there is no eval data (no eval_data, eval_fraction 0), so no eval "
                "would run: give eval_data or eval_fraction, or leave eval_steps at 0"
            )
        from rewardkit.train.config_file import check_combinations
        from rewardkit.train.objective_fields import check_objective_fields

        check_combinations(self)
        for name in PATH_FIELDS:  # after check_combinations: it reads a blank eval_data as none
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise SpecError(f"train config: {name} {EMPTY_PATH}, got {getattr(self, name)!r}")
        check_objective_fields(self)
        self.check_output_dir()

    def check_output_dir(self) -> None:
        """Refuse an ``output_dir`` that cannot become a directory (an existing file, a path
        under a file, an unwritable folder) or lies inside a data directory (the next run on
        that data would read the saved model's JSON files as examples) before any model or
        data loads."""
        from rewardkit.data.sources import check_out_outside_data
        from rewardkit.outputs import check_dir_target

        if not str(self.output_dir).strip():
            raise SpecError(
                "train config: output_dir is empty; give the folder the trained model goes to "
                "(e.g. out/train)"
            )
        check_dir_target(self.output_dir, "train config: output_dir")
        for name in ("data", "eval_data"):
            for part in str(getattr(self, name) or "").split(","):
                if part.strip() and part.strip() != "sample":
                    check_out_outside_data(
                        self.output_dir, part.strip(), "train config: output_dir", name
                    )

    def to_dict(self) -> dict[str, Any]:
        """The fields by name, the inherited extra-term fields last."""
        d = dataclasses.asdict(self)
        return {**{k: v for k, v in d.items() if k not in _EXTRA}, **{k: d[k] for k in _EXTRA}}


_EXTRA = tuple(f.name for f in dataclasses.fields(ExtraTermFields))


#: The widest LoRA rank / MLP-head width (2**70 or 1e8 failed after the model loaded).
MAX_WIDTH = 65536
#: The most steps (max_steps, save/eval/logging_steps) and examples (limit, eval_limit), epochs
#: and max_length tokens: 2**70 steps or 1e300 epochs were taken; a run trained until stopped.
MAX_STEPS, MAX_EPOCHS, MAX_TOKENS = 10**12, 10**6, 10**6
#: Fields naming a file, folder or model: ``''`` (an unset shell variable) is refused, not null.
PATH_FIELDS = ("model", "data", "eval_data", "vote_file", "metarm_data", "cache_dir")
EMPTY_PATH = "must be a path or name, not empty (an unset shell variable?)"
_finite = math.isfinite
#: Field → (test, what the field accepts); None always passes (checked by type for Optional).
_RANGES: dict[str, tuple[Any, str]] = {
    "lr": (lambda x: _finite(x) and x > 0, "a number > 0"),
    "weight_decay": (lambda x: _finite(x) and x >= 0, "a number >= 0"),
    "warmup_ratio": (lambda x: 0 <= x <= 1, "between 0 and 1"),
    "epochs": (lambda x: _finite(x) and 0 < x <= MAX_EPOCHS, "a number in (0, 1,000,000]"),
    "max_steps": (lambda x: x == -1 or 1 <= x <= MAX_STEPS, "-1 (use epochs) or 1 to 10**12"),
    "batch_size": (lambda x: 1 <= x < 2**31, "an integer from 1 to 2**31 - 1"),
    "metarm_batch_size": (lambda x: 1 <= x < 2**31, "an integer from 1 to 2**31 - 1 (or null)"),
    "grad_accum": (lambda x: 1 <= x < 2**31, "an integer from 1 to 2**31 - 1"),
    "seed": (lambda x: 0 <= x < 2**32, "an integer in [0, 2**32)"),
    "threads": (lambda x: 1 <= x <= MAX_THREADS, f"an integer from 1 to {MAX_THREADS} (or null)"),
    "ensemble_size": (lambda x: 1 <= x <= 1000, "an integer from 1 to 1000 (members)"),
    "save_steps": (lambda x: 0 <= x <= MAX_STEPS, "an integer from 0 (only the end) to 10**12"),
    "save_total_limit": (lambda x: x >= 1, "an integer >= 1 (or null: keep all)"),
    "eval_steps": (lambda x: 0 <= x <= MAX_STEPS, "an integer from 0 (at the end only) to 10**12"),
    "logging_steps": (lambda x: 1 <= x <= MAX_STEPS, "an integer from 1 to 10**12"),
    "limit": (lambda x: 1 <= x <= MAX_STEPS, "an integer from 1 to 10**12 (or null: all)"),
    "eval_limit": (lambda x: 1 <= x <= MAX_STEPS, "an integer from 1 to 10**12 (or null: all)"),
    "eval_fraction": (lambda x: 0 <= x < 1, "in [0, 1)"),
    "max_length": (lambda x: 8 <= x <= MAX_TOKENS, f"an integer from 8 to {MAX_TOKENS:,}"),
    "label_smoothing": (lambda x: 0 <= x < 0.5, "in [0, 0.5)"),
    "center_coef": (lambda x: _finite(x) and x >= 0, "a number >= 0 (or null)"),
    "tie_k": (
        lambda x: _finite(x) and x > 1,
        "a number > 1 (docs/methods/A13-uncertainty-tie-bt.md)",
    ),
    "bt_weight": (lambda x: _finite(x) and x >= 0, "a number >= 0"),
    "reg_weight": (lambda x: _finite(x) and x >= 0, "a number >= 0"),
    "crm_noise_rate": (lambda x: 0 <= x < 1, "in [0, 1)"),
    "crm_warmup": (lambda x: 0 <= x <= 1, "between 0 and 1"),
    "vote_threshold": (_finite, "a finite number"),
    "vote_weight": (lambda x: _finite(x) and x >= 0, "a number >= 0"),
    "lora_r": (lambda x: 0 <= x <= MAX_WIDTH, f"an integer from 0 (no LoRA) to {MAX_WIDTH}"),
    "lora_alpha": (lambda x: x >= 1, "an integer >= 1"),
    "lora_dropout": (lambda x: 0 <= x < 1, "in [0, 1)"),
    "head_inner": (lambda x: 1 <= x <= MAX_WIDTH, f"an integer from 1 to {MAX_WIDTH} (or null)"),
}


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``tp``; ints are accepted (and made float) for
    float fields. Returns (ok, value to store)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            return type(None) in args, value
        for arg in args:
            if arg is not type(None):
                ok, v = _type_ok(value, arg)
                if ok:
                    return True, v
        return False, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(isinstance(v, inner) for v in value), value
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ), value
    return True, value


def _type_name(tp: Any) -> str:
    text = str(tp).replace("typing.", "")
    return {"<class 'int'>": "an integer", "<class 'float'>": "a number"}.get(
        text, text.replace("<class '", "").replace("'>", "")
    )


def check_types(cfg: TrainConfig) -> None:
    """Every field has its annotated type (YAML ``1.5`` for an int field, ``"ten"`` for a float
    one, ``true`` for a number are refused, naming the field)."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        ok, fixed = _type_ok(value, hints[f.name])
        if not ok:
            raise SpecError(
                f"train config: {f.name} must be {_type_name(hints[f.name])}, got {value!r}"
            )
        setattr(cfg, f.name, fixed)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _cast(name: str, text: Any) -> Any:
    """Cast a command-line string to the type of field ``name``."""
    hints = typing.get_type_hints(TrainConfig)
    tp = hints[name]
    if not isinstance(text, str):
        return text
    low = text.strip().lower()
    is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    args = typing.get_args(tp) if is_union else ()
    optional = type(None) in args
    if optional and (low in ("none", "null") or (low == "" and name not in PATH_FIELDS)):
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
            value = float(text) if any(c in low for c in ".e") else int(text)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(text)
            return int(value)
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
        raise SpecError(f"train config: {name} must be {_type_name(base)}, got {text!r}") from exc
    return text


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``cfg`` with ``overrides`` (field -> value or command-line text) applied."""
    names = set(field_names())
    values = cfg.to_dict()
    for key, value in overrides.items():
        k = key.replace("-", "_")
        if k not in names:
            from rewardkit.train.config_file import unknown_field

            raise SpecError(f"train config: {unknown_field(key)}")
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
        if p.is_dir():
            raise SpecError(f"train config {p} is a directory, not a YAML or JSON config file")
        if not p.exists():  # a pipe or device: read_config_file names what it is
            raise SpecError(f"train config file {p} does not exist")
        from rewardkit.data.readers import read_config_file

        try:
            raw = read_config_file(p, "train config")  # None: empty, or only `null`
        except DataError as exc:
            raise SpecError(str(exc)) from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise SpecError(
                f"train config {p}: expected a mapping of fields, got {type(raw).__name__}"
            )
        from rewardkit.train.config_file import check_file_values

        check_file_values(p, raw, set(overrides or {}))
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

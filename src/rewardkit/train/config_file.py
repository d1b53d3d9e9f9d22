"""The values a train config file gives, checked one by one and named with the file.

YAML reads a quoted value as text (``lr: "1e-3"``, ``epochs: "3"``), and so does JSON
(``"lr": "1e-3"``). A string where a number is expected is usually a mistake, so a number field
given as quoted text is refused, naming the key, the value and the file, instead of converted
(before: converted silently, as a command-line value is). Unquoted ``lr: 1e-3``, which YAML 1.1
also reads as text, stays a number (its exact conversion). Unknown keys, values that are not of
their field's type and values out of their field's range are named with the file too, unless the
command line replaces them. A value that would change nothing (an empty ``lora_targets`` or
``ensemble_backbones`` list, ``head_inner`` without an ``mlp`` head, ``eval_format`` without
``eval_data``) is refused naming the keys (:func:`check_combinations`). Torch-free.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.train.config import _RANGES, TrainConfig, _cast, _type_name, _type_ok, field_names


def _hint(name: str) -> Any:
    return typing.get_type_hints(TrainConfig)[name]


def numeric_field(name: str) -> bool:
    """Whether field ``name`` holds a number (int or float, optional or not)."""
    tp = _hint(name)
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()
    return bool({int, float} & set(args or (tp,)))


def quoted_keys(path: Path, raw: dict[str, Any]) -> set[str]:
    """Top-level keys whose value the file writes as text: any string in JSON; a quoted or
    block scalar in YAML (``lr: "1e-3"``, not ``lr: 1e-3``; ``<<: *base`` merges followed)."""
    if path.suffix.lower() == ".json":
        return {k for k, v in raw.items() if isinstance(v, str)}
    import yaml

    quoted: dict[str, bool] = {}

    def walk(node: Any) -> None:
        for key, value in getattr(node, "value", []):
            if key.tag == "tag:yaml.org,2002:merge":
                for base in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                    walk(base)  # merged first: the mapping's own keys override them
            elif isinstance(key, yaml.ScalarNode):
                quoted[key.value] = isinstance(value, yaml.ScalarNode) and value.style is not None

    text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):  # `null` (an empty config) is a scalar node
        walk(root)  # read_config_file checked it already
    return {k for k, q in quoted.items() if q}


def unknown_field(key: Any) -> str:
    """ "unknown field 'lrr' (did you mean 'lr'?); fields are: …" for a key no field has."""
    import difflib

    names = sorted(field_names())
    close = difflib.get_close_matches(str(key).replace("-", "_"), names, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {key!r}{hint}; fields are: {', '.join(names)}"


def check_file_values(path: Path, raw: dict[str, Any], overridden: set[str]) -> None:
    """Raise :class:`SpecError` naming ``path`` for an unknown key, a number field given as
    quoted text, or a value (not replaced by the command line, ``overridden``) of the wrong type
    or out of range (the module docstring)."""
    names = set(field_names())
    for key in raw:
        if str(key).replace("-", "_") not in names:
            raise SpecError(f"train config {path}: {unknown_field(key)}")
    quoted = quoted_keys(path, raw)
    cli = {str(k).replace("-", "_") for k in overridden}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name in cli:
            continue
        if numeric_field(name) and isinstance(value, str) and key in quoted:
            plain = "a JSON number" if path.suffix.lower() == ".json" else f"{key}: {value}"
            raise SpecError(
                f"train config {path}: {key} is the quoted text {value!r} where a number is "
                f"expected; write it without quotes ({plain})"
            )
        try:
            value = _cast(name, value)
        except SpecError as exc:
            raise SpecError(str(exc).replace("train config:", f"train config {path}:", 1)) from None
        ok, value = _type_ok(value, _hint(name))
        if not ok:
            raise SpecError(
                f"train config {path}: {key} must be {_type_name(_hint(name))}, got {value!r}"
            )
        test, wants = _RANGES.get(name, (None, ""))
        if test is not None and value is not None and not test(value):
            raise SpecError(f"train config {path}: {key} must be {wants}, got {value!r}")


def _empty_list(key: str, before: str, instead: str) -> SpecError:
    return SpecError(
        f"train config: {key} is an empty list (it trained {before}): {instead}, or leave it out "
        "(null) for the default"
    )


def check_combinations(cfg: TrainConfig) -> None:
    """Raise :class:`SpecError` for a key whose value changes nothing in ``cfg``, so a run never
    trains other than the config says (docs/training.md, "Config values are checked when the
    config is read"): empty ``lora_targets`` / ``ensemble_backbones`` lists, ``head_inner``
    with a head other than ``mlp``, ``eval_format`` without ``eval_data``."""
    if cfg.lora_targets == []:
        raise _empty_list(
            "lora_targets",
            "the default modules",
            "name the modules to adapt (e.g. [q_proj, v_proj]), write all-linear",
        )
    if cfg.ensemble_backbones == []:
        raise _empty_list(
            "ensemble_backbones",
            "`model` alone, as if it were not set",
            "name the members' backbones (e.g. [minilm, smollm2]), use ensemble_size for "
            "members of `model` that differ by seed",
        )
    if cfg.head_inner is not None and cfg.head != "mlp":
        raise SpecError(
            f"train config: head_inner {cfg.head_inner} is the inner width of an mlp head, but "
            f"head is {cfg.head!r}, which has no inner layer (head_inner was ignored): set "
            "head: mlp, or leave head_inner out"
        )
    if cfg.eval_format is not None and not str(cfg.eval_data or "").strip():
        raise SpecError(
            f"train config: eval_format {cfg.eval_format!r} is the format of eval_data, but "
            "eval_data is not set (eval_format was ignored; an eval_fraction hold-out is read "
            "with data_format): give eval_data, or leave eval_format out"
        )


__all__ = [
    "check_combinations",
    "check_file_values",
    "numeric_field",
    "quoted_keys",
    "unknown_field",
]

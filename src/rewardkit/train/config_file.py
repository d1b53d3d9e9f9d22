"""The values a train config file gives, checked one by one and named with the file.

YAML reads a quoted value as text (``lr: "1e-3"``, ``epochs: "3"``), and so does JSON
(``"lr": "1e-3"``). A string where a number is expected is usually a mistake, so a number field
given as quoted text is refused, naming the key, the value and the file, instead of converted
(before: converted silently, as a command-line value is). Unquoted ``lr: 1e-3``, which YAML 1.1
also reads as text, stays a number (its exact conversion). Unknown keys, values that are not of
their field's type and values out of their field's range are named with the file too, unless the
command line replaces them. Torch-free.
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


__all__ = ["check_file_values", "numeric_field", "quoted_keys", "unknown_field"]

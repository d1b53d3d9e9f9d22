"""Read what a checkpoint is without building it: its config and the names and shapes of its
weights. The model-family table (:mod:`rewardkit.models.families`) picks a family from this.

Imports torch (for ``.bin`` weight files): only model-backed rewards import this module.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from rewardkit.errors import SpecError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
#: Linear heads on hidden states that value-head reward models save under their own names.
HEAD_NAMES = ("v_head", "regression_head", "score_head", "value_head", "reward_head")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's config (``config.json``) and, for a local one, its weights' shapes."""

    source: str
    config: dict[str, Any]
    weights: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(str(a) for a in self.config.get("architectures") or ())

    @property
    def auto_map(self) -> dict[str, str]:
        found = self.config.get("auto_map") or {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type") or "")

    def head_weights(self) -> list[str]:
        """Weights named like a value head (``v_head.weight``, ``regression_head.weight``…)."""
        return sorted(k for k in self.weights if _is_head(k))

    def describe(self) -> str:
        """What was found, for error messages."""
        heads = self.head_weights()
        parts = [
            f"architectures {list(self.architectures) or 'none'}",
            f"model_type {self.model_type or 'none'}",
            f"auto_map {sorted(self.auto_map) or 'none'}",
            f"head-like weights {heads or 'none'}"
            if self.weights
            else "weights not inspected (not a local directory)",
        ]
        return ", ".join(parts)


def _is_head(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] in ("weight", "bias") and parts[-2] in HEAD_NAMES


def inspect_checkpoint(source: str) -> Checkpoint:
    """The :class:`Checkpoint` of a local model directory or a Hub id (config only for a Hub id)."""
    path = Path(source)
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise SpecError(f"{source}: no config.json; is this a model directory?")
        return Checkpoint(source, _read_json(config_path), weight_shapes(path))
    from transformers.utils import cached_file

    found = cached_file(source, "config.json")
    if found is None:
        raise SpecError(f"{source}: no config.json found")
    return Checkpoint(source, _read_json(Path(found)))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: cannot read the model config ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the model config is not a JSON object")
    return data


#: What a trainer or an adapter writes beside (or instead of) a model's weights: pickled
#: arguments, optimizer/scheduler/scaler state, LoRA adapters. Never read as the model.
NOT_WEIGHTS = ("training_args", "optimizer", "scheduler", "scaler", "rng_state", "adapter_model")


def weight_files(path: Path) -> list[Path]:
    """The weight files of a model directory, as transformers finds them: the shards an index
    (``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``) names, else
    ``model*.safetensors``, else ``pytorch_model*.bin``; a checkpoint saved under other names
    (some value-head models) falls back to its other weight files, never a trainer's state
    (:data:`NOT_WEIGHTS`). Safetensors are preferred when both exist."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        shards = _read_json(path / index).get("weight_map") if (path / index).is_file() else None
        if isinstance(shards, dict) and shards:
            return sorted({path / str(name) for name in shards.values()})
    safe = [p for p in files if p.name.startswith("model") and p.suffix == ".safetensors"]
    bins = [p for p in files if p.name.startswith("pytorch_model") and p.suffix == ".bin"]
    if safe or bins:
        return safe or bins
    others = [p for p in files if not p.name.startswith(NOT_WEIGHTS)]
    return [p for p in others if p.suffix == ".safetensors"] or others


def _iter_tensors(path: Path, load: bool) -> Iterator[tuple[str, Any]]:
    """(name, shape or tensor) over every weight file of ``path``; a file that cannot be read
    (cut short, empty, not a state dict) is a one-line :class:`SpecError` naming it."""
    for f in weight_files(path):
        yield from _read_file(f, load)


def _read_file(f: Path, load: bool) -> Iterator[tuple[str, Any]]:
    """:func:`_file_tensors` of one file, a file that cannot be read refused in one line."""
    try:
        yield from _file_tensors(f, load)
    except (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200] or type(exc).__name__
        raise SpecError(
            f"{f}: cannot read the weights ({first}); the file is cut short, empty or not "
            "a weight file"
        ) from None


def file_shapes(f: Path) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor of one weight file (an adapter's, say)."""
    return dict(_read_file(f, load=False))


def _file_tensors(f: Path, load: bool) -> Iterator[tuple[str, Any]]:
    if f.suffix == ".safetensors":
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield k, (fh.get_tensor(k) if load else tuple(fh.get_slice(k).get_shape()))
        return
    state = torch.load(str(f), map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpecError(f"{f}: not a state dict of tensors (a trainer's or optimizer's file?)")
    for k, v in state.items():
        yield k, (v if load else tuple(v.shape))


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name → shape of every weight in a local model directory."""
    return dict(_iter_tensors(path, load=False))


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Every weight of a local model directory, by its saved name."""
    directory = Path(path)
    if not directory.is_dir():
        raise SpecError(
            f"{path}: this model family reads the weights from a local directory; download the "
            "checkpoint first (e.g. `huggingface-cli download ID --local-dir DIR`)"
        )
    return dict(_iter_tensors(directory, load=True))


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The weights under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def body_prefix(names: Iterator[str] | list[str], candidates: tuple[str, ...]) -> str:
    """The first of ``candidates`` under which a transformer body's layers are saved."""
    names = list(names)
    for prefix in candidates:
        if any(n.startswith(prefix) and ".layers.0." in f".{n[len(prefix) :]}" for n in names):
            return prefix
        if any(n.startswith(prefix) and ".layer.0." in f".{n[len(prefix) :]}" for n in names):
            return prefix
    raise SpecError(
        f"no transformer body found under any of {list(candidates)} in the checkpoint's weights"
    )

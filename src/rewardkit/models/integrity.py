"""Refuse a model folder that would not score as it was saved, in one line naming the folder and
what is wrong (docs/families.md, "Folders that are refused"):

- weights the model needs that the checkpoint lacks (every tensor renamed, a layer or the head
  missing, a config with more layers than the weights): ``from_pretrained`` fills them with
  random values and the model scores noise, different on every run. Only a plain base LM or
  encoder given the documented seeded fresh head may lack weights, and only the head's;
- saved layers past the config's layer count (a config with fewer layers than the weights):
  ``from_pretrained`` drops them and the model runs shallower than the checkpoint;
- saved tensors whose shapes do not fit the config (``num_labels``, ``hidden_size``);
- a weight file that cannot be read (cut short, empty, not a weight file);
- NaN or ±inf weights (every reward would be NaN, read as "does not apply");
- a tokenizer that ships its own code without ``trust_remote_code=true`` (never transformers'
  interactive ``[y/N]`` prompt, which runs the code on a "y"), and a folder with no tokenizer.

Also :func:`remote_code_id`, the hash of a checkpoint's own ``*.py`` files that the score cache
keys on when that code runs.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from rewardkit.errors import SpecError
from rewardkit.models.checkpoint import HEAD_NAMES
from rewardkit.models.heads import refuse_nonfinite


class WeightsError(SpecError):
    """A model folder whose weights cannot give the model its config describes."""


#: What reading a broken weight file raises (safetensors, torch's pickle reader).
READ_ERRORS = (SafetensorError, pickle.UnpicklingError, EOFError)
#: Which missing weights a loader accepts: ``(model, name) -> bool``.
MayLack = Callable[[Any, str], bool]


def shown(names: Iterable[str], k: int = 3) -> str:
    """The first ``k`` names, and how many more."""
    names = list(names)
    more = f", … {len(names) - k} more" if len(names) > k else ""
    return ", ".join(names[:k]) + more


#: Architectures of a plain base LM or encoder (no reward head of its own).
BASE_SUFFIXES = ("ForCausalLM", "Model", "LMHeadModel", "ForMaskedLM", "ForPreTraining")


def plain_base(architectures: Iterable[str]) -> bool:
    """Whether a config's architectures are a plain base LM or encoder's (none: also)."""
    return all(a.endswith(BASE_SUFFIXES) and "Reward" not in a for a in architectures)


def head_weight(model: Any, name: str) -> bool:
    """Whether ``name`` belongs to a classifier's head: outside its base model, or its pooler
    (a base LM or encoder given a fresh head lacks exactly these)."""
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    return ".pooler." in f".{name}" or (bool(prefix) and not name.startswith(f"{prefix}."))


def pooler_weight(model: Any, name: str) -> bool:
    """Whether ``name`` is a pooler's weight (unused by rewards reading hidden states)."""
    return ".pooler." in f".{name}"


def unreadable(source: object, exc: BaseException) -> WeightsError:
    """The one-line error for a weight file that cannot be read."""
    first = (str(exc).strip().splitlines() or [""])[0][:200] or type(exc).__name__
    return WeightsError(
        f"{source}: a weight file cannot be read ({first}); it is cut short, empty or not a "
        "weight file"
    )


def load_pretrained(
    auto_class: Any, source: str, *, may_lack: MayLack | None = None, **kwargs: Any
) -> tuple[Any, list[str]]:
    """``auto_class.from_pretrained(source, **kwargs)`` and the names of the weights it lacks,
    refusing (see the module docstring) misshapen or unreadable weights, missing ones that
    ``may_lack`` does not allow, and NaN/±inf values. ``trust_remote_code`` is always passed
    (False unless given), so transformers never prompts."""
    kwargs["trust_remote_code"] = bool(kwargs.get("trust_remote_code", False))
    try:
        model, info = auto_class.from_pretrained(source, output_loading_info=True, **kwargs)
    except RuntimeError as exc:
        if "ignore_mismatched_sizes" not in str(exc):
            raise
        raise WeightsError(_mismatch(auto_class, source, kwargs)) from None
    except READ_ERRORS as exc:
        raise unreadable(source, exc) from None
    missing = sorted(info.get("missing_keys") or ())
    lacking = [k for k in missing if not (may_lack and may_lack(model, k))]
    unused = sorted(info.get("unexpected_keys") or ())
    own_head = [k for k in unused if k.split(".")[-2:-1] and k.split(".")[-2] in HEAD_NAMES]
    if missing and own_head and not lacking:
        raise WeightsError(
            f"{source}: the checkpoint's own head ({shown(own_head)}) is not read by a "
            f"{type(model).__name__}, which would get a fresh random one instead; it is a "
            "value-head checkpoint (family value-head reads it)"
        )
    beyond = layers_beyond_config(model, unused)
    if beyond:
        path, count, names = beyond
        raise WeightsError(
            f"{source}: the checkpoint holds layers its config does not have ({shown(names)}; "
            f"the model's {path} has {count}); the model would run without them and every score "
            "would differ from the checkpoint's; set the layer count in config.json to the "
            "saved layers"
        )
    if lacking:
        extra = f"; {len(unused)} saved tensor(s) fit none of its weights ({shown(unused, 2)})"
        raise WeightsError(
            f"{source}: {len(lacking)} weight(s) of the {type(model).__name__} its config "
            f"describes are not in the checkpoint ({shown(lacking)}){extra if unused else ''}; "
            "they would be random and every score noise"
        )
    refuse_nonfinite(model, source)
    return model, missing


def layers_beyond_config(model: Any, unused: Iterable[str]) -> tuple[str, int, list[str]] | None:
    """(the model's layer list, its length, the saved tensors of layers past its end) when the
    checkpoint holds numbered layers that the config cut off (``num_hidden_layers`` smaller than
    the saved layers: transformers drops them and runs a shallower model), else None. Only
    tensors under the model's own layer list count (as the model names it, with or without its
    ``base_model_prefix``), so another tower's layers (a vision encoder not loaded) are not
    taken for it."""
    unused = list(unused)
    if not unused:
        return None
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    for path, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        stems = {path}
        if prefix and path.startswith(f"{prefix}."):
            stems.add(path[len(prefix) + 1 :])  # a base checkpoint in a model with a head
        elif prefix:
            stems.add(f"{prefix}.{path}")  # a checkpoint with a head in the base model
        found = []
        for key in unused:
            for stem in stems:
                index, dot, _ = key[len(stem) + 1 :].partition(".")
                if key.startswith(f"{stem}.") and dot and index.isdigit():
                    if int(index) >= len(module):
                        found.append(key)
                    break
        if found:
            return path, len(module), sorted(found)
    return None


def _mismatch(auto_class: Any, source: str, kwargs: dict[str, Any]) -> str:
    """Which saved tensors do not fit the model (loaded again, skipping them, to name them)."""
    try:
        _, info = auto_class.from_pretrained(
            source, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
        )
        found = sorted(info.get("mismatched_keys") or ())
    except (RuntimeError, ValueError, OSError):
        found = []
    what = "; ".join(
        f"{name} is {list(saved)} in the checkpoint, {list(wanted)} in the model"
        for name, saved, wanted in found[:2]
    )
    more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
    labels = kwargs.get("num_labels")
    hint = (
        f"num_labels={labels} does not match the saved head"
        if labels is not None
        else "config.json does not describe these weights"
    )
    return (
        f"{source}: {len(found) or 'some'} saved tensor(s) do not fit the model its config "
        f"describes ({what or 'shapes differ'}{more}); {hint}"
    )


# -- tokenizers ---------------------------------------------------------------------------------
#: Files any tokenizer is read from (besides SentencePiece/tiktoken models found by suffix).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "special_tokens_map.json",
)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def auto_map_of(source: str, file: str) -> dict[str, Any]:
    """The ``auto_map`` of a local folder's ``config.json`` or ``tokenizer_config.json``."""
    found = _read_json(Path(source) / file).get("auto_map")
    return found if isinstance(found, dict) else {}


def check_tokenizer_folder(source: str, trust_remote_code: bool) -> None:
    """Before the tokenizer loads: a local folder must hold tokenizer files, and a tokenizer
    shipping its own code (``auto_map`` AutoTokenizer) needs ``trust_remote_code=true``."""
    path = Path(source)
    if not path.is_dir():
        return
    suffixed = any(p.suffix in (".model", ".tiktoken") for p in path.iterdir() if p.is_file())
    if not suffixed and not any((path / n).is_file() for n in TOKENIZER_FILES):
        raise SpecError(
            f"{source}: no tokenizer files (tokenizer.json / tokenizer_config.json / vocab…); "
            "copy the tokenizer of the model these weights belong to into the folder"
        )
    code = auto_map_of(source, "tokenizer_config.json").get("AutoTokenizer")
    if code and not trust_remote_code:
        names = sorted({str(c) for c in (code if isinstance(code, list) else [code]) if c})
        raise SpecError(
            f"{source}: tokenizer_config.json's auto_map runs the checkpoint's own tokenizer "
            f"code (AutoTokenizer → {', '.join(names)}); pass trust_remote_code=true if you "
            "trust it"
        )


def tokenizer_error(source: str, exc: ValueError) -> SpecError | None:
    """One line for the tokenizer failures transformers words at length, else None."""
    text = str(exc)
    first = (text.strip().splitlines() or [""])[0][:160]
    if "trust_remote_code" in text:
        return SpecError(
            f"{source}: the tokenizer ships its own code; pass trust_remote_code=true if you "
            "trust it"
        )
    if "backend tokenizer" in text or "sentencepiece" in text:
        return SpecError(f"{source}: the tokenizer files cannot be loaded ({first})")
    return None


def folder_error(source: str, exc: BaseException) -> SpecError | None:
    """One line naming the file, for a model folder whose files transformers cannot read and
    reports without naming them: a config.json it refuses (huggingface_hub's validation error,
    a traceback before: hidden size not a multiple of the heads…) or a JSON file cut short
    (tokenizer.json: "Expecting value: line 97580"). None for any other error."""
    from huggingface_hub import errors as hub_errors

    folder = Path(source).expanduser()
    if not folder.is_dir():
        return None
    if isinstance(exc, getattr(hub_errors, "StrictDataclassError", ())):
        cause = " ".join(str(exc.__cause__ or exc).split())
        return SpecError(
            f"{folder / 'config.json'}: transformers refuses the model config ({cause})"
        )
    if isinstance(exc, json.JSONDecodeError):
        for path in sorted(folder.glob("*.json")):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as bad:
                return SpecError(
                    f"{path}: not valid JSON ({bad}); the file is cut short or not JSON"
                )
    return None


# -- the checkpoint's own code ------------------------------------------------------------------
def remote_code_id(source: str) -> dict[str, str]:
    """sha256 over the ``*.py`` files of a local folder whose config or tokenizer names its own
    code (``auto_map``): with ``trust_remote_code=true`` that code computes the scores, so an
    edited ``modeling_*.py`` must not keep serving cached ones. Empty otherwise."""
    path = Path(source)
    if not path.is_dir():
        return {}
    if not (auto_map_of(source, "config.json") or auto_map_of(source, "tokenizer_config.json")):
        return {}
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return {"code_sha256": digest.hexdigest()[:32]}

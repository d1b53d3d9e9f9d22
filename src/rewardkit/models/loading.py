"""Load any Hugging Face id or local path (or an embedded default) with an identity for caching.

Imports torch and transformers: only model-backed rewards import this module.
"""

from __future__ import annotations

import functools
import os
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.errors import MissingDependencyError, SpecError
from rewardkit.models import peft_adapter
from rewardkit.models.allocator import keep_freed_memory
from rewardkit.models.cpu_linear import route_linears
from rewardkit.models.device import (  # noqa: F401 - re-exported: callers import them from here
    DEVICE_CHOICES,
    DEVICE_OPTION,
    DeviceError,
    resolve_device,
)
from rewardkit.models.embedded import EMBEDDED, embedded_key, embedded_model_dir
from rewardkit.models.fingerprint import (  # noqa: F401 - SCORING_FILES re-exported
    SCORING_FILES,
    hub_commit,
    text_files_id,
    weights_id,
)

try:
    import torch
    import transformers
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "model-backed rewards need torch and transformers: `pip install torch==2.13.0` "
        "(CPU build) and `pip install 'rewardkit[models]'`"
    ) from exc


# Loading reports ("score.weight | MISSING") are expected for fresh heads; rewardkit records them
# in the reward's fingerprint instead of printing them.
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    # Dynamic int8 (CPU, opt-in): weights of the body's linear layers stored as int8, activations
    # quantized per batch; everything else stays float32 (see quantize_int8).
    "int8": torch.float32,
}


def is_int8(name: str) -> bool:
    """Whether a dtype name asks for dynamic int8 linear layers."""
    return name.lower() == "int8"


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of the linear layers of ``model``'s transformer body.

    The output head (LM head, score head) stays float32: judges and log-prob rewards read its
    weight rows directly, and a scalar head is too small to matter. CPU only (fbgemm/oneDNN).
    The accuracy cost is measured in ``benchmarks/scoring.py`` (docs/performance.md).
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    body = getattr(model, "base_model", model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates quantized tensors in favour of torchao
        # Per-output-channel weight scales: per-tensor scales lose far more accuracy.
        spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
        quantize_dynamic(body, spec, dtype=torch.qint8, inplace=True)
    return model


@functools.cache
def _cpu_flags() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); None if unknown."""
    flags = _cpu_flags()
    return None if flags is None else ("avx512_bf16" in flags or "amx_bf16" in flags)


def cpu_has_amx() -> bool | None:
    """Whether this CPU has AMX tiles for bfloat16 matmuls; None if unknown."""
    flags = _cpu_flags()
    return None if flags is None else "amx_bf16" in flags


def finish_dtype(model: Any, dtype: str) -> Any:
    """Cast a freshly loaded model to ``dtype`` (quantizing for int8) and put it in eval mode."""
    bf16 = dtype.lower() in ("bfloat16", "bf16")
    if bf16 and not torch.cuda.is_available() and cpu_has_native_bf16() is False:
        warnings.warn(
            "dtype=bfloat16 on a CPU without AVX-512 BF16 or AMX is emulated and usually "
            "slower than float32",
            stacklevel=2,
        )
    # .to() as well: transformers < 4.56 reads the dtype keyword as a config field and ignores it.
    model = model.to(torch_dtype(dtype)).eval()
    if is_int8(dtype):
        return quantize_int8(model)
    route_linears(model)  # float32 layers on oneDNN where this CPU runs them faster
    return model


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"``/``"fp32"`` or ``"bfloat16"``/``"bf16"`` to a torch dtype."""
    try:
        return DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}") from None


@dataclass
class ResolvedModel:
    """Where a model's files are, and what identifies its weights."""

    source: str  # local directory or Hub id, as passed to from_pretrained
    identity: dict[str, Any] = field(default_factory=dict)
    adapter: Any = None  # a LoRA/PEFT adapter folder's models.peft_adapter.Adapter


def resolve_model(name: str, base: str | None = None) -> ResolvedModel:
    """Resolve an embedded alias (``smollm2``, ``minilm``), a local directory, or a Hub id; a
    LoRA/PEFT adapter folder with its base (``base``, else its config's): ``resolve_adapter``."""
    key = embedded_key(name)
    if key is not None and base is None:
        path = embedded_model_dir(key)
        return ResolvedModel(
            str(path),
            {
                "model": EMBEDDED[key].hub_id,
                "embedded": EMBEDDED[key].pip_name,
                **weights_id(path),
            },
        )
    path = Path(name).expanduser()
    if base is not None or peft_adapter.is_adapter_folder(path):
        return peft_adapter.resolve_adapter(path, base)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"model path {path} is a file; pass the model directory")
        return ResolvedModel(
            str(path.resolve()), {"model": str(path.resolve()), **weights_id(path)}
        )
    locate_hub_model(name)
    revision = os.environ.get("REWARDKIT_REVISION")
    identity = {"model": name, "revision": revision}
    commit = hub_commit(name, revision)
    if commit is not None:  # a moved branch (an updated model) is another key
        identity["commit"] = commit
    return ResolvedModel(name, identity)


_weights_id = weights_id  # the name peft_adapter imports


def _hub_unreachable(endpoint: str, offline: bool) -> str | None:
    """Why the Hub cannot be reached right now (offline mode, DNS, refused), or None. One TCP
    connect with a 3 s timeout instead of the Hub client's minute of retries; skipped behind a
    proxy (the proxy decides)."""
    import socket
    from urllib.parse import urlparse

    if offline:  # huggingface_hub reads either variable
        named = [v for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(v)]
        return f"{(named or ['HF_HUB_OFFLINE'])[0]} is set"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=3).close()
    except OSError as exc:
        return f"{url.hostname}: {exc.strerror or exc}"
    return None


def locate_hub_model(name: str) -> None:
    """Make sure ``name`` (not a local directory) can be loaded from the Hub: found in the local
    Hub cache, or its ``config.json`` downloadable. Raise :class:`ModelNotFoundError` saying in
    one line where the model was looked for (local path, local cache, Hub)."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    from rewardkit.errors import ModelNotFoundError

    local = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"model {name!r}: no such local directory ({local.resolve()})")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelNotFoundError(
            f"model {name!r}: no such local directory ({local.resolve()}), and not a valid Hub "
            "id (org/name)"
        ) from None
    revision = os.environ.get("REWARDKIT_REVISION")
    if isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
        return
    where = f"not a local directory, not in the local Hub cache ({constants.HF_HUB_CACHE})"
    unreachable = _hub_unreachable(constants.ENDPOINT, constants.HF_HUB_OFFLINE)
    if unreachable:
        raise ModelNotFoundError(
            f"model {name!r}: {where}, and the Hub is unreachable ({unreachable})"
        )
    try:
        hf_hub_download(name, "config.json", revision=revision)
    except LocalEntryNotFoundError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(
            f"model {name!r}: {where}, and the Hub is unreachable ({reason[:160]})"
        ) from None
    except EntryNotFoundError:
        return  # the repository exists; let the loader find its files
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ModelNotFoundError(
            f"model {name!r}: {where}, and not found on the Hub ({type(exc).__name__})"
        ) from None
    except Exception as exc:  # offline, DNS, proxy, timeout: the Hub cannot be reached
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(
            f"model {name!r}: {where}, and the Hub is unreachable ({reason[:160]})"
        ) from None


def load_tokenizer(source: str, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer (fast when available); a pad token is set if it has none: its eos,
    else its unk, else the token of the model config's ``pad_token_id``/``eos_token_id``.
    Batches are always masked, so the pad only has to be a real token (docs/families.md).

    A folder without tokenizer files, or whose tokenizer ships its own code while
    ``trust_remote_code`` is off, is refused in one line (never transformers' ``[y/N]``
    prompt): :func:`rewardkit.models.integrity.check_tokenizer_folder`."""
    from rewardkit.models.integrity import check_tokenizer_folder, folder_error, tokenizer_error

    source = peft_adapter.tokenizer_folder(source)  # an adapter folder without one: its base's
    check_tokenizer_folder(source, trust_remote_code)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(
            source, trust_remote_code=bool(trust_remote_code)
        )
    except Exception as exc:  # a bad config.json or JSON file: one line naming it
        clear = tokenizer_error(source, exc) if isinstance(exc, ValueError) else None
        clear = clear or folder_error(source, exc)
        if clear is None:
            raise
        raise clear from None
    if tok.pad_token_id is None:
        fallback = tok.eos_token if tok.eos_token is not None else tok.unk_token
        if fallback is None:
            fallback = _config_token(source, tok, trust_remote_code)
        if fallback is None:
            raise SpecError(
                f"{source}: the tokenizer has no pad, eos or unk token and config.json names no "
                'pad_token_id or eos_token_id; set "pad_token" in tokenizer_config.json'
            )
        tok.pad_token = fallback
    return tok


def _config_token(source: str, tok: Any, trust_remote_code: bool = False) -> str | None:
    """The token of the model config's pad (else eos) id, when it is in the tokenizer's vocab."""
    try:
        config = transformers.AutoConfig.from_pretrained(
            source, trust_remote_code=bool(trust_remote_code)
        )
    except (OSError, ValueError):
        return None
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(config, name, None)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, int) and 0 <= value < len(tok):
            return str(tok.convert_ids_to_tokens(value))
    return None


#: Encoders whose position ids start at ``pad_token_id + 1`` (fairseq's offset): they take
#: ``max_position_embeddings − pad_token_id − 1`` tokens, not ``max_position_embeddings``.
_OFFSET = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "ibert")
PADDING_OFFSET_TYPES = frozenset((*_OFFSET, "longformer", "mpnet", "roberta-prelayernorm"))


def position_limit(model_config: Any) -> int | None:
    """How many positions the model's table holds for a row (None: no table found)."""
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(model_config, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            if getattr(model_config, "model_type", None) in PADDING_OFFSET_TYPES:
                pad = getattr(model_config, "pad_token_id", None)
                pad = pad if isinstance(pad, int) and pad >= 0 else 1
                return max(value - pad - 1, 1)
            return value
    return None


def fit_max_length(
    model_config: Any,
    tokenizer: Any,
    requested: int | None,
    default: int,
    extra_limits: tuple[int, ...] = (),
) -> int:
    """The longest sequence to feed a model: ``requested`` if given, else ``default``, never
    above what the model can take (its position table, the tokenizer's limit, ``extra_limits``).

    A requested length above the model's limit is lowered to it with a warning, never passed
    through to fail mid-run on the first long row.
    """
    hard = [int(v) for v in extra_limits if v and v > 0]
    positions = position_limit(model_config)
    if positions is not None:
        hard.append(positions)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        hard.append(tok_max)
    limit = min(hard) if hard else None
    if requested:
        if limit is not None and requested > limit:
            warnings.warn(
                f"max_length {requested} is above the model's limit of {limit} tokens; using {limit}",
                stacklevel=3,
            )
            return limit
        return int(requested)
    return min(default, limit) if limit is not None else default


_fork_guarded = False


def _one_thread_after_fork() -> None:
    """In a child just forked: torch's OpenMP thread team (GNU libgomp in the Linux wheels)
    does not survive ``fork``, and the child's first parallel kernel waits for it forever (a
    ``multiprocessing`` pool scoring a model the parent had used hung in ``layer_norm``). One
    intra-op thread never enters the team; torch's own DataLoader workers do the same."""
    torch.set_num_threads(1)


def guard_forks() -> None:
    """Register :func:`_one_thread_after_fork` for every later ``fork`` (once per process)."""
    global _fork_guarded
    if not _fork_guarded and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_one_thread_after_fork)
        _fork_guarded = True


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads for torch (None leaves torch's default). Every model
    build calls it, so it also keeps freed tensor memory in the C heap for the next tensor
    (:func:`rewardkit.models.allocator.keep_freed_memory`) and makes a process forked later
    run its models on one thread rather than hang (:func:`guard_forks`)."""
    keep_freed_memory()
    guard_forks()
    if threads:
        torch.set_num_threads(int(threads))


def load_causal_lm(source: str, dtype: str = "float32", adapter: Any = None) -> Any:
    """A causal LM in eval mode; refused in one line when weights it needs are not in the
    checkpoint (a classifier folder has no LM head: it would be random) or are NaN
    (:func:`rewardkit.models.integrity.load_pretrained`); a LoRA/PEFT adapter is merged."""
    from rewardkit.models.integrity import load_pretrained

    if adapter is not None or peft_adapter.is_adapter_folder(source):
        return peft_adapter.load_merged_causal_lm(source, dtype, adapter)
    model, _ = load_pretrained(transformers.AutoModelForCausalLM, source, dtype=torch_dtype(dtype))
    return finish_dtype(model, dtype)


_SHARED_LMS: weakref.WeakValueDictionary[tuple[str, ...], Any] = weakref.WeakValueDictionary()


def load_causal_lm_shared(
    source: str, dtype: str, device: torch.device, adapter: Any = None
) -> Any:
    """A causal LM on ``device``, shared by every reward that asks for the same weights.

    Rewards that pair a model with itself (a DPO policy and its reference, the strong and weak
    sides of a density ratio on the same weights) hold one copy in memory. The models are used
    for inference only, so sharing is safe; a model is freed when no reward holds it any more.
    """
    key = (source, getattr(adapter, "base_source", ""), dtype.lower(), str(device))
    model = _SHARED_LMS.get(key)
    if is_int8(dtype) and device.type != "cpu":
        raise ValueError("dtype=int8 (dynamic quantization) runs on CPU only; use bfloat16 on GPU")
    if model is None:
        model = load_causal_lm(source, dtype, adapter).to(device)
        _SHARED_LMS[key] = model
    return model


def load_sequence_classifier(
    source: str,
    dtype: str = "float32",
    num_labels: int | None = None,
    head_seed: int = 0,
    trust_remote_code: bool = False,
    adapter: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """A sequence classifier in eval mode, and a note on its head; with a LoRA/PEFT
    ``adapter``, ``source`` is its base and the adapter (with its saved head) is merged in.

    A checkpoint without a trained score head (a base LM, say) gets a head initialised from
    ``head_seed``, so the same spec always gives the same scores; the note says so and becomes
    part of the reward's fingerprint. ``trust_remote_code`` runs the checkpoint's own modelling
    code (ArmoRM-style gated heads ship it); it is off unless the user asks.
    """
    from rewardkit.models.integrity import head_weight, load_pretrained, plain_base

    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype), "trust_remote_code": trust_remote_code}
    # A checkpoint saved as a classifier knows its outputs and must hold its head; anything else
    # (a base LM or an encoder) gets a fresh head, one output (a scalar reward) by default.
    config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    archs = getattr(config, "architectures", None) or []
    auto_map = getattr(config, "auto_map", None) or {}
    saved_as_classifier = any(a.endswith("ForSequenceClassification") for a in archs) or (
        "AutoModelForSequenceClassification" in auto_map
    )
    if num_labels is None and not saved_as_classifier:
        num_labels = 1
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    state = torch.random.get_rng_state()
    torch.manual_seed(head_seed)
    try:
        model, missing = load_pretrained(
            transformers.AutoModelForSequenceClassification,
            source,
            may_lack=None if saved_as_classifier or not plain_base(archs) else head_weight,
            **kwargs,
        )
    finally:
        torch.random.set_rng_state(state)
    head: dict[str, Any] = {"num_labels": int(model.config.num_labels)}
    if adapter is not None:  # merged before finish_dtype, which may swap Linear classes
        model, missing = adapter.merge(model), adapter.uncovered(missing)
    if missing:
        head["random_init"] = {"seed": head_seed, "params": sorted(missing)}
    return finish_dtype(model, dtype), head

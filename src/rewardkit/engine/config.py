"""Settings of the scoring engine."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rewardkit.errors import SpecError

Truncation = Literal["left", "right", "error"]
LAYOUTS = ("auto", "padded", "packed", "shared")
ATTENTION = ("auto", "dense")
TRUNCATIONS = ("left", "right", "error")
#: dtype names the engine takes (any case): float32, bfloat16 or int8.
DTYPES = ("float32", "fp32", "bfloat16", "bf16", "int8")
#: Device names a model can run on (``models.device.resolve_device`` checks that this machine
#: has it when a model loads): auto, cpu, mps, cuda or cuda:N.
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def engine_name_problem(
    truncation: str | None, dtype: str | None, device: str | None
) -> tuple[str, str] | None:
    """``(option, message)`` for a ``truncation``, ``dtype`` or ``device`` name no engine takes
    (whether this machine has the device is checked when a model loads); None when all are
    names an engine takes or unset."""
    if truncation is not None and truncation not in TRUNCATIONS:
        return "--truncation", f"expected {', '.join(TRUNCATIONS)}, got {truncation!r}"
    if dtype is not None and dtype.lower() not in DTYPES:
        return "--dtype", f"expected {', '.join(DTYPES)}, got {dtype!r}"
    if device is not None and not DEVICE_NAME.fullmatch(device):
        choices = "auto, cpu, cuda, cuda:N or mps"
        if not device.strip():
            return "--device", f"expected a device ({choices}), got {device!r}"
        return "--device", f"unknown device {device!r}; expected {choices}"
    return None


#: Most torch threads a reward may ask for: far above any machine's cores, far below what makes
#: the OpenMP runtime try to allocate per-thread state for a billion threads and abort.
MAX_THREADS = 1024


#: Integer engine settings: (name, least value, may be unset).
_WHOLE_FIELDS = (
    ("token_budget", 1, False),
    ("max_batch_size", 1, False),
    ("max_length", 1, True),
    ("default_max_length", 1, False),
    ("pack_length", 1, False),
    ("min_shared_prefix", 0, False),
    ("batch_overhead", 0, True),
    ("pad_multiple", 1, False),
    ("workers", 1, True),
)


def _whole(name: str, value: Any, lo: int, optional: bool) -> int | None:
    """``value`` as an int >= ``lo`` (an integral float such as ``1e4`` from a spec is taken);
    a :class:`SpecError` naming the option otherwise (NaN, ±inf, true/false, 0 for a length)."""
    if value is None and optional:
        return None
    ok = not isinstance(value, bool) and (
        isinstance(value, int)
        or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    )
    if not ok or value < lo:
        unset = " (or unset)" if optional else ""
        raise SpecError(f"engine option {name} must be an integer >= {lo}{unset}, got {value!r}")
    return int(value)


def compile_mode(value: Any) -> str | bool:
    """``EngineConfig.compile`` as ``"auto"``, True or False (a spec may spell them as text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("auto", "true", "false"):
        return {"auto": "auto", "true": True, "false": False}[value.lower()]
    raise ValueError(f"compile must be auto, true or false, got {value!r}")


@dataclass
class EngineConfig:
    """How a model-backed reward batches, truncates, and caches.

    - ``token_budget``: the most padded tokens in one batch (rows × longest row). Batches are
      formed from length-sorted queries under this budget, not from a fixed row count.
    - ``max_batch_size``: a cap on rows per batch, whatever their length.
    - ``max_length``: longest sequence fed to the model (None: the model's own limit, capped at
      ``default_max_length``).
    - ``truncation``: ``"left"`` drops the oldest prompt tokens and keeps the response (if the
      response alone is too long, its end is cut as a last resort); ``"right"`` cuts the end of
      the whole sequence (what plain tokenizer truncation does); ``"error"`` raises. No row is
      ever dropped; truncated rows are counted in the call's statistics (``ScoreResult.stats``).
    - ``dtype``: ``"float32"``, ``"bfloat16"``, or ``"int8"`` (CPU: dynamic int8 linear layers,
      opt-in; its accuracy delta is in docs/performance.md).
    - ``threads``: torch intra-op threads (None: torch's default).
    - ``workers``: forward passes run at once on a CPU, each on its share of the threads
      (:mod:`rewardkit.engine.workers`; None: 2 where there are two threads or more; 1: one pass
      at a time on every thread). With more than one, ``compile="auto"`` stays eager (two eager
      passes at once beat compiled ones in turn, docs/performance.md); GPUs run one pass at a time.
    - ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
    - ``cache_dir``: where the on-disk score cache lives (None: no cache).
    - ``progress``: show a progress bar.
    - ``layout``: how rows reach the model. ``"padded"``: length-sorted right-padded batches;
      ``"shared"``: rows sharing a token prefix (the responses of one prompt) run the prefix once
      and score every response on its key/value cache (decoders); ``"packed"``: rows packed
      into sequences of at most ``pack_length`` tokens with block-diagonal attention, no
      padding; ``"auto"``: on CPU, ``"shared"`` where the model supports it, sharing saves at
      least ``min_shared_fraction`` of the tokens, and the shared plan's estimated time beats
      the padded plan's (:mod:`rewardkit.engine.planning`: both in linear-equivalent tokens plus
      ``batch_overhead`` per forward pass, the shared one scaled by ``1 + shared_overhead``);
      else ``"padded"`` (on a GPU always ``"padded"``; packed lost on every benchmark,
      docs/performance.md). Scores equal the padded path's within 1e-4.
    - ``shared_overhead``: the shared layout's extra time per unit of work over padded on this
      device, used by ``layout="auto"`` (None: the CPU figure measured in docs/performance.md,
      "Choosing a layout": 0.05 without AMX, 0.8 with AMX). Long shared prompts (GRPO groups)
      clear either; pairs and short-prompt best-of-N clear only the first.
    - ``attention_aware``: count the token budget in linear-equivalent tokens, so attention's
      quadratic cost on long rows stays inside it (``layout.attention_cost``).
    - ``batch_overhead``: the fixed cost of one forward pass in tokens; batches are cut to
      minimise padding plus this per batch (None: 128 on CPU, 2048 on a GPU).
    - ``compile``: ``torch.compile`` the model's transformer blocks (inductor fuses the
      element-wise work around the matmuls: faster batches after a warm-up of seconds once per
      process). ``"auto"`` (default): only when a run is large enough that the measured saving
      outweighs the warm-up (:mod:`rewardkit.engine.compiling`; small jobs stay eager);
      ``True``: on the first run; ``False``: never. A compile error falls back to eager with
      one warning.
    - ``pad_multiple``: pad each padded batch to a multiple of this many tokens (1: to its
      longest row). A server sets 16, so batches take few distinct shapes and the native
      memory kept per shape stays bounded (docs/serving.md, "Memory over a long run").
    - ``attention``: how the packed and shared layouts attend. ``"auto"``: without dense masks
      where the model runs ``sdpa`` (:mod:`rewardkit.engine.attention`: memory O(tokens)):
      packed and shared on CPU and CUDA;
      ``"dense"``: always the (q × k) 4-D masks (the fallback; for comparisons).
    """

    token_budget: int = 16384
    max_batch_size: int = 256
    max_length: int | None = None
    default_max_length: int = 4096
    truncation: Truncation = "left"
    dtype: str = "float32"
    threads: int | None = None
    device: str = "auto"
    cache_dir: str | None = None
    progress: bool = True
    layout: str = "auto"
    pack_length: int = 1024
    min_shared_prefix: int = 16
    min_shared_fraction: float = 0.05
    shared_overhead: float | None = None
    attention_aware: bool = True
    batch_overhead: int | None = None
    compile: bool | str = "auto"
    pad_multiple: int = 1
    attention: str = "auto"
    workers: int | None = None

    def __post_init__(self) -> None:
        # the same ranges as the CLI flags (--token-budget, --max-length: integers ≥ 1), for
        # values that come from a reward spec (``default?max_length=0``) or from code
        for name, lo, optional in _WHOLE_FIELDS:
            setattr(self, name, _whole(name, getattr(self, name), lo, optional))
        for name in ("min_shared_fraction", "shared_overhead"):
            value = getattr(self, name)
            if value is None and name == "shared_overhead":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (name == "min_shared_fraction" and value > 1)
            ):
                want = "a number in [0, 1]" if name == "min_shared_fraction" else "a number >= 0"
                unset = " (or unset)" if name == "shared_overhead" else ""
                raise SpecError(f"engine option {name} must be {want}{unset}, got {value!r}")
        if self.truncation not in TRUNCATIONS:
            raise SpecError(
                f"truncation must be 'left', 'right' or 'error', got {self.truncation!r}"
            )
        if self.layout not in LAYOUTS:
            raise SpecError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        self.compile = compile_mode(self.compile)
        if self.threads is not None and (
            isinstance(self.threads, bool)
            or not isinstance(self.threads, int)
            or not 1 <= self.threads <= MAX_THREADS
        ):
            raise SpecError(
                f"threads must be an integer from 1 to {MAX_THREADS} (or unset), got {self.threads!r}"
            )
        if self.attention not in ATTENTION:
            raise SpecError(
                f"attention must be one of {', '.join(ATTENTION)}, got {self.attention!r}"
            )
        if not isinstance(self.dtype, str) or self.dtype.lower() not in DTYPES:
            raise SpecError(f"dtype must be float32, bfloat16 or int8, got {self.dtype!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> EngineConfig:
        """Take the engine's fields out of a reward spec's options (the rest stay in ``options``)."""
        names = set(cls.__dataclass_fields__)
        mine = {k: options.pop(k) for k in list(options) if k in names}
        return cls(**mine)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

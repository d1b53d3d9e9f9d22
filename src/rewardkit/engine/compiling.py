"""When and how the engine compiles a model's transformer blocks (``EngineConfig.compile``).

``torch.compile`` (inductor) fuses the norms, rotary embeddings and activations around the
matmuls: on CPU, bf16 padded batches of SmolLM2-135M ran 1.6× faster, for a warm-up of 7–12 s
the first time a process compiles (docs/performance.md, "Automatic compile"). The warm-up only
pays off on large jobs, so ``compile="auto"`` (the default) decides per engine run:

1. The run's first step runs eagerly and is timed: seconds per real token on this machine,
   for this model, dtype and layout.
2. The rest of the run would take ``eager_left`` seconds eagerly; compiling saves
   ``eager_left · (1 − 1/speedup)`` (:func:`worth_compiling`), where ``speedup`` is the gain
   this machine last measured for this model, dtype and layout (:func:`expected_speedup`), else
   the project's measured gain for this device, dtype and layout (:data:`SPEEDUP`; a layout or
   device without either is never compiled automatically), and the warm-up is the last one
   measured for this model on this machine (inductor's on-disk cache makes a second process's
   warm-up shorter; :func:`expected_warmup`), else :data:`DEFAULT_WARMUP`.
3. If it pays, the blocks are compiled and the first step's first two rows (padded steps; the
   whole step in other layouts) run again compiled: that is the warm-up, and their scores are
   checked against the eager ones (:func:`outputs_agree`). A
   compile error (no C++ compiler, a model dynamo cannot trace) or a disagreement puts the
   model back to eager with one warning line; the run's scores are always eager-checked or
   eager.

A run that compiled on its first step measures its gain: the first step's eager seconds per
unit of work against the later, compiled steps' (units: linear-equivalent tokens,
:func:`rewardkit.engine.layout.attention_cost`, so long and short batches compare), recorded when
the compiled steps took at least :data:`MIN_GAIN_SECONDS`. The gain differs by machine more than
by model: 1.6× on a CPU with AMX, about 1.2× on one without (docs/performance.md).

``compile=True`` compiles on the first run whatever its size (same check and fallback);
``compile=False`` never compiles. Compilation belongs to the loaded model: twins sharing its
weights (:meth:`ModelBackedReward.engine_variant`) run it compiled once one of them compiled it.
The blocks compile with ``dynamic=True``: one graph for every batch shape (tested: the number of
graphs stays bounded over many shapes).
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import compile_mode
from rewardkit.engine.layout import attention_cost

#: Measured end-to-end speed-up of compiled over eager batches (docs/performance.md), by
#: (device type, dtype, layout). Missing entries (CUDA, float32) are never compiled by ``auto``
#: before this machine measured a gain. The shared entry was measured on a CPU without AMX
#: (2026-12-07: 1.06-1.18x over three interleaved rounds of 40 HH pairs), the others on one with it.
SPEEDUP: dict[tuple[str, str, str], float] = {
    ("cpu", "bfloat16", "padded"): 1.6,
    ("cpu", "bfloat16", "packed"): 1.6,
    ("cpu", "bfloat16", "shared"): 1.15,
}

#: Layouts whose forward passes the compiled blocks serve: all three, the packed and shared
#: ones through one opaque attention operator (:mod:`rewardkit.engine.layout_op`). The shared
#: layout on dense masks (a body not on the mask-free attention) runs its suffixes on a
#: transformers key/value cache, whose ``update`` would specialise every block's graph on its
#: layer index (dynamo's recompile limit after 8 layers): the runner names it
#: :data:`DENSE_SHARED`, which always runs eagerly, even on a body an earlier run compiled.
COMPILED_LAYOUTS = frozenset({"padded", "packed", "shared"})
DENSE_SHARED = "shared (dense masks)"

#: Warm-up seconds assumed before this machine has measured one for the model.
DEFAULT_WARMUP = {"cpu": 12.0, "cuda": 40.0}

#: Largest |compiled − eager| accepted on the check batch, as a fraction of 1 + max |eager|.
TOLERANCE = {"float32": 1e-3, "bfloat16": 1e-1}


class CompileWarning(UserWarning):
    """The engine fell back to eager execution (a compile error or a failed check)."""


_STATE: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()
_WARNED: set[str] = set()


def worth_compiling(eager_left: float, warmup: float, speedup: float) -> bool:
    """Whether compiling saves time: the eager seconds left times ``1 − 1/speedup`` exceed the
    warm-up. E.g. 40 s of eager work left at a 1.6× speed-up saves 15 s: worth a 12 s warm-up;
    20 s left saves 7.5 s: not."""
    return speedup > 1.0 and eager_left * (1.0 - 1.0 / speedup) > warmup


def outputs_agree(eager: list[np.ndarray], compiled: list[np.ndarray], dtype: str) -> bool:
    """Whether compiled outputs match eager ones: the same NaN positions and every difference
    within :data:`TOLERANCE` of ``1 + max |eager|``."""
    a = np.concatenate([np.ravel(x) for x in eager]).astype(np.float64)
    b = np.concatenate([np.ravel(x) for x in compiled]).astype(np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    ok = ~np.isnan(a)
    if not ok.any():
        return True
    if not np.isfinite(b[ok]).all():
        return False
    tol = TOLERANCE.get(canonical_dtype(dtype), 1e-1) * (1.0 + float(np.max(np.abs(a[ok]))))
    return float(np.max(np.abs(a[ok] - b[ok]))) <= tol


def canonical_dtype(dtype: str) -> str:
    """``fp32``/``bf16`` spelt ``float32``/``bfloat16``."""
    low = dtype.lower()
    return {"fp32": "float32", "bf16": "bfloat16"}.get(low, low)


def blocks(body: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks of a body: its longest ``ModuleList`` (``layers``,
    ``encoder.layer``, ``h``...)."""
    lists = [m for m in body.modules() if isinstance(m, torch.nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


def compile_body(body: torch.nn.Module | None, dtype: str) -> int:
    """Compile each transformer block of ``body`` with ``torch.compile(dynamic=True)``; the blocks
    share one compiled graph. Compilation itself happens on the next forward pass. Returns the
    number of blocks marked: 0 without a body or for int8 (quantized linear layers do not
    compile)."""
    if body is None or canonical_dtype(dtype) == "int8":
        return 0
    found = blocks(body)
    for block in found:
        block.compile(dynamic=True)
    return len(found)


def uncompile_body(body: torch.nn.Module) -> None:
    """Put ``body``'s blocks back to eager execution."""
    for block in blocks(body):
        block._compiled_call_impl = None


def missing_compiler(device: torch.device) -> str | None:
    """Why inductor cannot build CPU kernels here (no C++ compiler), or None."""
    if device.type != "cpu":
        return None
    from torch._inductor import config as inductor_config

    cxx = inductor_config.cpp.cxx
    names = [c for c in (cxx if isinstance(cxx, tuple) else (cxx,)) if c]
    if not names or any(shutil.which(c) for c in names):
        return None
    return f"no C++ compiler found ({', '.join(names)})"


def describe(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def warn_once(message: str) -> None:
    """One warning line per distinct message per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, CompileWarning, stacklevel=4)


#: The compile warm-ups measured on this machine, in the rewardkit cache.
WARMUP_RECORD = "compile-warmup.json"


def model_key(body: torch.nn.Module, dtype: str, device: torch.device) -> str:
    """Identifies a compiled graph's cost: torch version, model class and shape, dtype, device."""
    cfg = getattr(body, "config", None)
    shape = [getattr(cfg, k, None) for k in ("hidden_size", "num_hidden_layers")]
    return "|".join(
        str(x)
        for x in (torch.__version__, type(body).__name__, *shape, canonical_dtype(dtype), device)
    )


def expected_warmup(key: str, device: torch.device) -> float:
    """The last warm-up measured for ``key`` on this machine, else :data:`DEFAULT_WARMUP`."""
    from rewardkit.models.embedded import read_record

    try:
        return float(read_record(WARMUP_RECORD)[key])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_WARMUP.get(device.type, DEFAULT_WARMUP["cuda"])


def record_warmup(key: str, seconds: float) -> None:
    """Remember a measured warm-up (best effort: a read-only cache is not an error)."""
    from rewardkit.models.embedded import update_record

    update_record(WARMUP_RECORD, key, round(seconds, 2))


#: The compiled-over-eager speed-ups measured on this machine, in the rewardkit cache.
GAIN_RECORD = "compile-gain.json"
#: Compiled seconds a run must have timed before its speed-up is recorded (less is noise).
MIN_GAIN_SECONDS = 1.0


def recorded_speedup(key: str, layout: str) -> float | None:
    """The speed-up this machine last measured for ``key`` in ``layout`` (one read of the
    record; a value that is no positive number counts as 1), None when it measured none."""
    from rewardkit.models.embedded import read_record

    try:
        gain = float(read_record(GAIN_RECORD)[f"{key}|{layout}"])
    except (KeyError, TypeError, ValueError):
        return None
    return gain if gain > 0 else 1.0


def expected_speedup(key: str, device: torch.device, dtype: str, layout: str) -> float:
    """The speed-up this machine last measured for ``key`` in ``layout``, else :data:`SPEEDUP`'s
    for the device, dtype and layout, else 1 (never worth compiling)."""
    gain = recorded_speedup(key, layout)
    return SPEEDUP.get((device.type, canonical_dtype(dtype), layout), 1.0) if gain is None else gain


def layout_gain(
    mode: Any, body: torch.nn.Module | None, device: torch.device, dtype: str, layout: str
) -> float:
    """How much faster this run's steps in ``layout`` may run compiled, for ``layout="auto"``'s
    choice between padded and shared: 1 when compile is off or never applies to ``layout``;
    with ``compile=True`` the gain this machine measured, else :data:`SPEEDUP`'s; with
    ``auto``, only a gain this machine measured (whether ``auto`` compiles depends on the run's
    size, unknown before its first step). Never below 1."""
    mode = compile_mode(mode)
    if mode is False or body is None or canonical_dtype(dtype) == "int8":
        return 1.0
    if layout not in COMPILED_LAYOUTS:
        return 1.0
    measured = recorded_speedup(model_key(body, canonical_dtype(dtype), device), layout)
    if mode == "auto" or measured is not None:
        return max(1.0, measured or 1.0)
    return max(1.0, SPEEDUP.get((device.type, canonical_dtype(dtype), layout), 1.0))


def record_speedup(key: str, layout: str, gain: float) -> None:
    """Remember a measured speed-up (best effort, as :func:`record_warmup`)."""
    from rewardkit.models.embedded import update_record

    update_record(GAIN_RECORD, f"{key}|{layout}", round(gain, 3))


def measured_speedup(eager: tuple[float, float], compiled: tuple[float, float]) -> float | None:
    """Eager over compiled seconds per unit of work, from (seconds, units) of each; None when
    the compiled steps took less than :data:`MIN_GAIN_SECONDS` or either side did no work."""
    (e_s, e_u), (c_s, c_u) = eager, compiled
    if c_s < MIN_GAIN_SECONDS or min(e_s, e_u, c_s, c_u) <= 0:
        return None
    return (e_s / e_u) / (c_s / c_u)


def late_warmup(
    building: Sequence[tuple[float, float]],
    compiled: tuple[float, float],
    eager: tuple[float, float],
) -> float:
    """Compilation inside compiled steps: the seconds of the steps that built a graph, each
    less its work at the compiled rate (``compiled``'s seconds per unit; without compiled steps
    to measure it, the eager rate, which undercounts). All as (seconds, work units)."""
    (c_s, c_u), (e_s, e_u) = compiled, eager
    rate = c_s / c_u if c_s > 0 and c_u > 0 else e_s / max(e_u, 1e-9)
    return sum(max(seconds - work * rate, 0.0) for seconds, work in building)


Outputs = list[np.ndarray]


def graphs_built() -> int:
    """How many graphs dynamo has compiled in this process (its own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


_EAGER_LOCK = threading.Lock()
_EAGER_USERS: list[Any] = []  # the set_stance that restores the prior one, then one per user


@contextmanager
def eager_blocks() -> Iterator[None]:
    """Compiled modules run eagerly inside (dynamo's ``force_eager`` stance). The stance is
    process-wide, so concurrent and nested users are counted: the first one in sets it and the
    last one out restores what was there before, whatever order the threads leave in."""
    with _EAGER_LOCK:
        if not _EAGER_USERS:
            _EAGER_USERS.append(torch.compiler.set_stance("force_eager"))
        _EAGER_USERS.append(None)
    try:
        yield
    finally:
        with _EAGER_LOCK:
            _EAGER_USERS.pop()
            if len(_EAGER_USERS) == 1:
                _EAGER_USERS.pop().__exit__(None, None, None)


class CompileGate:
    """Runs one engine run's steps, compiling the body when it pays (module docstring).

    ``total_tokens`` are the run's real tokens; each :meth:`run` call gets a step's row lengths
    and a call computing its outputs.
    """

    def __init__(
        self,
        mode: str | bool,
        body: torch.nn.Module | None,
        device: torch.device,
        dtype: str,
        layout: str,
        total_tokens: int,
    ) -> None:
        self.mode = compile_mode(mode)
        self.body = body
        self.device = device
        self.dtype = canonical_dtype(dtype)
        self.layout = layout
        self.tokens_left = total_tokens
        self.decided = self.mode is False or body is None or self.dtype == "int8"
        #: What happened in this run: "eager", "compiled" or "fallback".
        self.outcome = (
            "compiled" if body is not None and _STATE.get(body) == "compiled" else "eager"
        )
        if self.outcome == "compiled" or (body is not None and _STATE.get(body) == "failed"):
            self.decided = True
        #: (seconds, work units) of the eager deciding step and of the compiled steps after it.
        self.eager_work: tuple[float, float] | None = None
        self.compiled_work = (0.0, 0.0)
        #: The warm-up measured on the probe, and (seconds, work units) of the later steps
        #: during which dynamo built a graph (a new shape): compilation too.
        self.warmup = 0.0
        self.building_work: list[tuple[float, float]] = []
        #: Steps of this run bypass compiled blocks (a layout they do not serve).
        self.force_eager = layout not in COMPILED_LAYOUTS and body is not None
        if self.force_eager:
            if self.mode is True:
                warn_once(f"compile does not apply to the {layout} layout; scoring it eagerly")
            self.decided = True  # nothing to decide: the runner builds no probe
            self.outcome = "eager"

    def run(
        self,
        lengths: Sequence[int],
        step: Callable[[], Outputs],
        probe: tuple[int, int, Callable[[], Outputs]] | None = None,
        work: float | None = None,
    ) -> Outputs:
        """The outputs of one step (rows of ``lengths`` real tokens), eager or compiled.

        ``probe`` (rows, real tokens, call): the first ``rows`` rows of this step on their own.
        When the gate compiles on this step, it warms up and checks the compiled blocks on the
        probe instead of running the whole step a second time (a padded first step can hold a
        16k-token budget: seconds of eager work). ``work``: the step's cost as its plan
        estimated it (a shared batch runs far fewer tokens than its rows hold), else its rows'
        padded cost; the gain recorded compares eager and compiled seconds per unit of it."""
        step_tokens = sum(lengths)
        self.tokens_left -= step_tokens
        if self.force_eager:
            if _STATE.get(self.body) != "compiled":
                return step()
            with eager_blocks():
                return step()
        if self.decided:
            if self.outcome != "compiled":
                return step()
            if self.eager_work is None:
                return self._guarded(step)
            return self._timed(step, self._work(lengths) if work is None else work)
        self.decided = True
        t0 = time.perf_counter()
        eager = step()
        seconds = time.perf_counter() - t0
        per_token = seconds / max(step_tokens, 1)
        assert self.body is not None
        key = model_key(self.body, self.dtype, self.device)
        if self.mode == "auto":
            speedup = expected_speedup(key, self.device, self.dtype, self.layout)
            warmup = expected_warmup(key, self.device)
            if not worth_compiling(self.tokens_left * per_token, warmup, speedup):
                return eager
        why = missing_compiler(self.device)
        if why:
            self._fall_back(why)
            return eager
        check_rows, check_tokens, check = (
            (len(eager), step_tokens, step) if probe is None else probe
        )
        compile_body(self.body, self.dtype)
        t0 = time.perf_counter()
        try:
            compiled = check()
        except Exception as exc:  # any compile error: dynamo, inductor, the C++ build
            self._fall_back(describe(exc))
            return eager
        if not outputs_agree(list(eager[:check_rows]), compiled, self.dtype):
            self._fall_back("compiled scores differ from eager ones on the first batch")
            return eager
        self.warmup = max(time.perf_counter() - t0 - per_token * check_tokens, 0.0)
        record_warmup(key, self.warmup)
        _STATE[self.body] = "compiled"
        self.outcome = "compiled"
        self.eager_work = (seconds, self._work(lengths) if work is None else work)
        return eager

    @functools.cached_property
    def attn_width(self) -> float | None:
        """The body's attention width (:func:`_attention_width`), read only by runs that measure
        a gain: other runs, a server's small batches among them, skip the parameter count."""
        return _attention_width(self.body)

    def _work(self, lengths: Sequence[int]) -> float:
        """A step's work in linear-equivalent tokens."""
        return attention_cost(len(lengths), max(lengths, default=0), self.attn_width)

    def _timed(self, step: Callable[[], Outputs], work: float) -> Outputs:
        """A compiled step of a run that compiled on its first one: timed, and after the run's
        last step its speed-up over the eager first step is recorded (:func:`measured_speedup`).
        A step during which dynamo built a graph (a first shape after the warm-up) is not
        counted: its seconds are compilation, not the compiled speed; what it took beyond
        that speed is added to the recorded warm-up (:func:`late_warmup`), which ``auto``
        weighs against the time compiling saves."""
        graphs = graphs_built()
        t0 = time.perf_counter()
        out = self._guarded(step)
        if self.outcome != "compiled" or self.eager_work is None:
            return out
        seconds = time.perf_counter() - t0
        if graphs_built() == graphs:
            c_s, c_u = self.compiled_work
            self.compiled_work = (c_s + seconds, c_u + work)
        else:
            self.building_work.append((seconds, work))
        if self.tokens_left > 0:
            return out
        assert self.body is not None
        key = model_key(self.body, self.dtype, self.device)
        late = late_warmup(self.building_work, self.compiled_work, self.eager_work)
        if late > 0:
            record_warmup(key, self.warmup + late)
        gain = measured_speedup(self.eager_work, self.compiled_work)
        if gain is not None:
            record_speedup(key, self.layout, gain)
        return out

    def _guarded(self, step: Callable[[], Outputs]) -> Outputs:
        """A compiled step; a compile error on a new shape falls back to eager for good."""
        try:
            return step()
        except Exception as exc:
            self._fall_back(describe(exc))
            return step()

    def _fall_back(self, why: str) -> None:
        assert self.body is not None
        uncompile_body(self.body)
        _STATE[self.body] = "failed"
        self.outcome = "fallback"
        warn_once(f"torch.compile unavailable, scoring eagerly ({why})")


def _attention_width(body: torch.nn.Module | None) -> float | None:
    """Where attention costs as much as the linear layers, for work units (None: unknown)."""
    if body is None:
        return None
    from rewardkit.engine.execute import model_attention_width

    try:
        return model_attention_width(body)
    except Exception:  # a body without the usual config fields: count plain tokens
        return None

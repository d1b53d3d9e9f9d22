"""float32 linear layers on oneDNN where this CPU runs them faster than torch's default BLAS
(docs/performance.md, "float32 GEMMs on oneDNN").

torch sends a float32 ``nn.Linear`` to MKL's ``sgemm``; bfloat16 ones already go to oneDNN. On
an AMD CPU MKL takes its generic code path: on the project's AMD EPYC host (2 cores) MKL ran the
linear shapes of SmolLM2-135M and MiniLM at 170–200 GFLOP/s and oneDNN's kernel
(``torch.ops.mkldnn._linear_pointwise``) at 340–440, 2.0–2.4× on every shape. So when a float32
model is loaded (:func:`rewardkit.models.loading.finish_dtype`), :func:`route_linears` times both
kernels on the model's linear shapes and, where oneDNN is at least :data:`MIN_GAIN` faster over
them (weighted by each shape's share of the model's products), turns the model's ``nn.Linear``
layers into :class:`OneDNNLinear`. The verdict is kept in the rewardkit cache
(:data:`RECORD`, per CPU, torch version, thread count and shapes), so every later process on the
machine makes the same choice: two processes timing a near tie (a server and an offline run) no
longer take different kernels. Results are equal to float32 rounding (the products accumulate in
float32 either way).

A switched layer calls oneDNN only for CPU tensors with no gradient to track (scoring runs under
``torch.inference_mode``) and outside ``torch.compile``; anything else, training included, takes
``F.linear``.
``REWARDKIT_FP32_LINEAR``: ``auto`` (default, measured), ``onednn`` (always, where available) or
``default`` (never).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
from collections import Counter

import torch
import torch.nn.functional as F

from rewardkit.timing import best_seconds

MODE_ENV = "REWARDKIT_FP32_LINEAR"
MODES = ("auto", "onednn", "default")
#: oneDNN must be at least this much faster over the model's shapes for ``auto`` to switch.
MIN_GAIN = 1.1
#: The verdicts measured on this machine, in the rewardkit cache.
RECORD = "fp32-linear.json"
#: Shapes timed per model (the ones holding the most of its products).
TIMED_SHAPES = 3
#: Rows of the timed product (a padded batch holds thousands of tokens).
TIMED_ROWS = 1024


def available() -> bool:
    """Whether this torch has oneDNN's float32 linear kernel."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` by oneDNN's kernel (no autograd: callers check)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.cache
def onednn_speedup(in_features: int, out_features: int, threads: int) -> float:
    """torch's default float32 linear time over oneDNN's on a (:data:`TIMED_ROWS`, in) × (in, out)
    product with ``threads`` threads (cached per process): the best of three calls each after a
    warm-up, the two kernels taking turns, so a burst of load on a shared machine hits both."""
    x = torch.randn(TIMED_ROWS, in_features)
    w = torch.randn(out_features, in_features)
    calls = (lambda: F.linear(x, w), lambda: onednn_linear(x, w, None))
    best = [float("inf"), float("inf")]
    with torch.inference_mode():
        for turn in range(3):
            for i, call in enumerate(calls):
                best[i] = min(best[i], best_seconds(call, reps=1, warmup=turn == 0))
    default, onednn = best
    return default / onednn if onednn > 0 else 1.0


@functools.cache
def cpu_name() -> str:
    """This CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` says), read once."""
    names: list[str] = []
    with contextlib.suppress(OSError), open("/proc/cpuinfo", errors="replace") as fh:
        names = [ln.split(":", 1)[1].strip() for ln in fh if ln.lower().startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def _recorded_gain(key: str) -> float | None:
    """The speed-up :data:`RECORD` holds for ``key``; None when absent or not a positive number
    (a damaged record is measured again)."""
    from rewardkit.models.embedded import read_record

    try:
        gain = float(read_record(RECORD)[key])
    except (KeyError, TypeError, ValueError):
        return None
    return gain if math.isfinite(gain) and gain > 0 else None


def model_speedup(shapes: Counter[tuple[int, int]], threads: int) -> float:
    """oneDNN's speed-up over torch's default on a model whose linear layers have ``shapes``
    (``(in, out)`` → layer count): per-shape speed-ups (:func:`onednn_speedup`) of the
    :data:`TIMED_SHAPES` shapes holding the most products, weighted by their products. Read from
    the rewardkit cache's :data:`RECORD` when this machine measured it before; else measured and
    recorded there (best effort)."""
    from rewardkit.models.embedded import update_record

    top = sorted(shapes.items(), key=lambda kv: (-kv[0][0] * kv[0][1] * kv[1], kv[0]))
    top = top[:TIMED_SHAPES]
    key = "|".join(
        [torch.__version__, cpu_name(), f"cpus={os.cpu_count()}", f"threads={threads}"]
        + [f"{k}x{n}*{c}" for (k, n), c in sorted(top)]
    )
    from rewardkit.models.embedded import cache_root

    decided = (str(cache_root()), key)
    if decided in _DECIDED:
        return _DECIDED[decided]
    recorded = _recorded_gain(key)
    if recorded is None:
        work = {shape: shape[0] * shape[1] * count for shape, count in top}
        default = sum(work.values())
        onednn = sum(w / onednn_speedup(k, n, threads) for (k, n), w in work.items())
        recorded = default / onednn if onednn > 0 else 1.0
        update_record(RECORD, key, round(recorded, 3))
    return _DECIDED.setdefault(decided, recorded)


#: The gain each (cache, key) got first in this process: another process rewriting the record after a
#: measurement of its own never moves a later load here to the other kernel (two loads of one
#: model in one process run the same kernels, so give the same scores bit for bit).
_DECIDED: dict[tuple[str, str], float] = {}


class OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose forward runs oneDNN's kernel for CPU float32 inputs without
    gradients, and ``F.linear`` otherwise (same parameters, same state dict). Under
    ``torch.compile`` it is a plain linear layer: inductor picks its own kernels (it cannot lower
    this op in float32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            torch.compiler.is_compiling()
            or x.device.type != "cpu"
            or x.dtype != torch.float32
            or self.weight.dtype != torch.float32
            or (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
        ):
            return F.linear(x, self.weight, self.bias)
        return onednn_linear(x, self.weight, self.bias)


def mode(env: dict[str, str] | None = None) -> str:
    """The ``REWARDKIT_FP32_LINEAR`` setting (``auto`` when unset or not one of :data:`MODES`)."""
    value = (os.environ if env is None else env).get(MODE_ENV, "auto").strip().lower()
    return value if value in MODES else "auto"


def is_switched(layer: torch.nn.Module) -> bool:
    """Whether ``layer`` runs on oneDNN's kernel (:func:`route_linears` switched it)."""
    return isinstance(layer, OneDNNLinear)


def _output_embeddings(model: torch.nn.Module) -> torch.nn.Module | None:
    """A language model's vocabulary projection (``get_output_embeddings``), else None."""
    getter = getattr(model, "get_output_embeddings", None)
    try:
        return getter() if callable(getter) else None
    except (AttributeError, NotImplementedError, TypeError):
        return None


def route_linears(model: torch.nn.Module, setting: str | None = None) -> int:
    """Switch ``model``'s float32 CPU ``nn.Linear`` layers to oneDNN when it is measured faster
    here (:func:`model_speedup`; or ``setting``/the environment says ``onednn``); the number of
    layers switched (already switched ones count too)."""
    choice = setting or mode()
    if choice == "default" or not available():
        return 0
    linears = [
        m
        for m in model.modules()
        if type(m) in (torch.nn.Linear, OneDNNLinear)
        and m.weight.dtype == torch.float32
        and m.weight.device.type == "cpu"
    ]
    if not linears:
        return 0
    if choice == "auto":
        # the vocabulary projection is left out of the timing: scoring runs it on a few
        # positions per row (a judge's verdict token), not on every token as the blocks
        head = _output_embeddings(model)
        timed = [m for m in linears if m is not head] or linears
        shapes = Counter((m.in_features, m.out_features) for m in timed)
        if model_speedup(shapes, torch.get_num_threads()) < MIN_GAIN:
            return 0
    for layer in linears:
        layer.__class__ = OneDNNLinear  # same fields: only the forward differs
    return len(linears)

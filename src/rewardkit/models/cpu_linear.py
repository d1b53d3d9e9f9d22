"""float32 linear layers on oneDNN where this CPU runs them faster than torch's default BLAS
(docs/performance.md, "float32 GEMMs on oneDNN").

torch sends a float32 ``nn.Linear`` to MKL's ``sgemm``; bfloat16 ones already go to oneDNN. On
an AMD CPU MKL takes its generic code path: on the project's AMD EPYC host (2 cores) MKL ran the
linear shapes of SmolLM2-135M and MiniLM at 170–200 GFLOP/s and oneDNN's kernel
(``torch.ops.mkldnn._linear_pointwise``) at 340–440, 2.0–2.4× on every shape. So when a float32
model is loaded (:func:`rewardkit.models.loading.finish_dtype`), :func:`route_linears` times both
kernels once per process on the model's most common linear shape and, where oneDNN is at least
:data:`MIN_GAIN` faster, turns the model's ``nn.Linear`` layers into :class:`OneDNNLinear`.
Results are equal to float32 rounding (the products accumulate in float32 either way).

A switched layer calls oneDNN only for CPU tensors with no gradient to track (scoring runs under
``torch.inference_mode``) and outside ``torch.compile``; anything else, training included, takes
``F.linear``.
``REWARDKIT_FP32_LINEAR``: ``auto`` (default, measured), ``onednn`` (always, where available) or
``default`` (never).
"""

from __future__ import annotations

import functools
import os
from collections import Counter

import torch
import torch.nn.functional as F

from rewardkit.timing import best_seconds

MODE_ENV = "REWARDKIT_FP32_LINEAR"
MODES = ("auto", "onednn", "default")
#: oneDNN must be at least this much faster on the timed shape for ``auto`` to switch.
MIN_GAIN = 1.2
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
    product with ``threads`` threads (cached per process)."""
    x = torch.randn(TIMED_ROWS, in_features)
    w = torch.randn(out_features, in_features)
    with torch.inference_mode():
        default = best_seconds(lambda: F.linear(x, w))
        onednn = best_seconds(lambda: onednn_linear(x, w, None))
    return default / onednn if onednn > 0 else 1.0


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


def route_linears(model: torch.nn.Module, setting: str | None = None) -> int:
    """Switch ``model``'s float32 CPU ``nn.Linear`` layers to oneDNN when it is measured faster
    here (or ``setting``/the environment says ``onednn``); the number of layers switched (already
    switched ones count too)."""
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
        (k, n), _ = Counter((m.in_features, m.out_features) for m in linears).most_common(1)[0]
        if onednn_speedup(k, n, torch.get_num_threads()) < MIN_GAIN:
            return 0
    for layer in linears:
        layer.__class__ = OneDNNLinear  # same fields: only the forward differs
    return len(linears)

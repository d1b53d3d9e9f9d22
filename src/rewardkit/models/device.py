"""Resolve a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) to a usable torch
device, or say in one line why this machine cannot run it (re-exported by
:mod:`rewardkit.models.loading`)."""

from __future__ import annotations

import torch

from rewardkit.errors import SpecError

#: Where a device name comes from, for error messages (a verb's option or a spec's option).
DEVICE_OPTION = "--device (or device= in a reward spec)"
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(SpecError):
    """A device that is not a device name, or that this machine (or this torch build) lacks."""


def resolve_device(name: str, option: str = DEVICE_OPTION) -> torch.device:
    """The torch device ``name`` names, checked: ``"auto"`` is CUDA when available, else CPU;
    ``cpu``, ``cuda``, ``cuda:N`` (N an existing GPU) and ``mps`` must be usable here.

    Anything else (an unknown name, ``meta``, a CUDA device on a CPU-only torch or an index past
    the last GPU) is a :class:`DeviceError` naming ``option``, raised before any model moves.
    """
    if not isinstance(name, str) or not name.strip():
        raise DeviceError(f"{option}: expected a device ({DEVICE_CHOICES}), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"{option}: unknown device {name!r}; expected {DEVICE_CHOICES}") from None
    where = f"{option}: device {name!r}"
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise DeviceError(
                f"{where}: this torch ({torch.__version__}) is built without CUDA; use "
                "--device cpu or auto, or install a CUDA build of torch"
            )
        if not torch.cuda.is_available():
            raise DeviceError(f"{where}: no CUDA GPU is visible; use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"{where}: there is no GPU {device.index} (this machine has {count}: "
                f"cuda:0 to cuda:{count - 1})"
            )
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"{where}: Apple MPS is not available here; use --device cpu or auto")
        return device
    raise DeviceError(
        f"{where}: device type {device.type!r} cannot run a model here; expected {DEVICE_CHOICES}"
    )

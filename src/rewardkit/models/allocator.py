"""The C allocator's settings for tensor work on a CPU (glibc only; docs/performance.md, "Page
faults between tensors").

torch allocates each intermediate tensor with ``posix_memalign`` and frees it right after use.
With glibc's defaults a block freed at the top of the heap goes back to the kernel as soon as the
top grows past the trim threshold (twice the dynamic mmap threshold), and the next tensor of that
size faults its pages in again: about one minor page fault per 4 KiB of activations, on every
layer of every batch. :func:`keep_freed_memory` fixes both thresholds once per process, so freed
blocks stay in the heap for the next tensor. The peak memory does not change (what is kept was
in use at the peak); what changes is that the process does not shrink between batches. A
long-running server still hands free pages back every few seconds
(:func:`rewardkit.serve.memory.release_memory`).

Elsewhere than glibc (musl, macOS, Windows) nothing is done. Settings the user made win: with any
``MALLOC_*_`` variable or a ``glibc.malloc`` tunable in the environment rewardkit sets nothing,
and ``REWARDKIT_MALLOC_TUNING=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Mapping

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap, larger ones from their own mapping: glibc's largest
#: allowed value (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit), the value its dynamic threshold
#: climbs to anyway after the first large free.
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is handed back only beyond this.
TRIM_THRESHOLD = 1 << 30
#: Where the user chose glibc's malloc settings themselves.
USER_SETTINGS = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)
OPT_OUT = "REWARDKIT_MALLOC_TUNING"

_lock = threading.Lock()
_state: dict[str, bool] = {}


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.gnu_get_libc_version  # noqa: B018 - glibc's own symbol: musl and others lack it
        lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return lib


def user_chose(env: Mapping[str, str]) -> bool:
    """Whether the environment holds the user's own malloc settings, or opts out of ours."""
    if env.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        return True
    if any(name in env for name in USER_SETTINGS):
        return True
    return "glibc.malloc." in env.get("GLIBC_TUNABLES", "")


def keep_freed_memory(env: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap and trim thresholds (module docstring), once per process; True when the
    settings are in place (now or by an earlier call), False where nothing was set."""
    with _lock:
        if "done" in _state:
            return _state["done"]
        lib = None if user_chose(env) else glibc()
        done = bool(
            lib is not None
            and lib.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and lib.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        )
        _state["done"] = done
        return done

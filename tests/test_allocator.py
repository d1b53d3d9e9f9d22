"""The C allocator settings for tensor work (rewardkit.models.allocator): freed tensor memory
stays in the heap, so repeated activations of one size stop faulting pages in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rewardkit.models.allocator import glibc, user_chose

FAULTS = """
import json, resource, sys
import torch
from rewardkit.models.loading import set_threads
from rewardkit.models.allocator import keep_freed_memory
set_threads(None)  # what every model build calls
def layer():  # three 24 MiB activations alive at once, then freed, as in a forward pass
    held = [torch.empty(6 << 20).fill_(1.0) for _ in range(3)]
    del held
for _ in range(3):
    layer()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    layer()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"tuned": keep_freed_memory(), "faults": faults}))
"""


def run_faults(env_extra: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    env.pop("REWARDKIT_MALLOC_TUNING", None)
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(glibc() is None, reason="the allocator settings are glibc's (not this libc)")
def test_freed_tensor_memory_is_reused_without_page_faults() -> None:
    tuned = run_faults({})
    assert tuned["tuned"] is True
    # 30 tensors of 24 MiB faulted in afresh would be ~180,000 faults (one per 4 KiB page).
    assert tuned["faults"] < 500, tuned


@pytest.mark.skipif(glibc() is None, reason="the allocator settings are glibc's (not this libc)")
def test_user_opt_out_sets_nothing() -> None:
    assert run_faults({"REWARDKIT_MALLOC_TUNING": "0"})["tuned"] is False


@pytest.mark.parametrize(
    ("env", "chose"),
    [
        ({}, False),
        ({"REWARDKIT_MALLOC_TUNING": "1"}, False),
        ({"REWARDKIT_MALLOC_TUNING": "off"}, True),
        ({"REWARDKIT_MALLOC_TUNING": " 0 "}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}, True),
        ({"GLIBC_TUNABLES": "glibc.rtld.nns=4"}, False),
    ],
)
def test_user_settings_win(env: dict[str, str], chose: bool) -> None:
    assert user_chose(env) is chose

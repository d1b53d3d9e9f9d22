"""OpenMP waits are set before torch loads, and a user's own setting wins (models/openmp.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rewardkit.models.openmp import WAITS, set_openmp_waits

SRC = Path(__file__).resolve().parents[1] / "src"


def test_sleeping_waits_by_default():
    env: dict[str, str] = {}
    assert set_openmp_waits(env)
    assert env == WAITS == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_a_users_setting_wins():
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}):
        env = dict(user)
        assert not set_openmp_waits(env)
        assert env == user  # nothing added beside it either


def test_import_rewardkit_sets_them_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PYTHONPATH"] = str(SRC)
    code = (
        "import os, sys; import rewardkit; "
        "print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'], 'GOMP_SPINCOUNT' in os.environ)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "PASSIVE", "False"]

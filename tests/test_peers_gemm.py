"""The model-shape GEMM accounting of benchmarks/scoring_peers.py counts a real model's linear
layers at the shapes a run gives them (so the `--peers` note cannot rot)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scoring_peers import gemm_seconds, linear_shapes  # noqa: E402


def test_linear_shapes_and_their_time():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))

    def run():
        model(torch.randn(3, 5, 8))  # 15 tokens
        model(torch.randn(2, 8))

    shapes = linear_shapes(model, run)
    assert shapes == {(15, 8, 16): 1, (15, 16, 4): 1, (2, 8, 16): 1, (2, 16, 4): 1}
    assert not model[0]._forward_hooks  # hooks removed
    once = gemm_seconds(shapes, torch.float32)
    assert once > 0
    assert gemm_seconds({k: 1000 * v for k, v in shapes.items()}, torch.float32) > once

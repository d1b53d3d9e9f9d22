"""benchmarks/gpu_scoring.sh and benchmarks/layout_scoring.py run (CPU smoke) and do not rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Each test runs a benchmark script end to end in fresh processes: `make test-heavy` (CI).
pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ("padded", "packed", "shared", "packed-dense", "shared-dense")


def _run(*args: str) -> str:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _table(out: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 10 and cells[2] in LAYOUTS and cells[1] in ("pairs", "grpo"):
            rows[(cells[1], cells[2])] = cells
    return rows


def test_gpu_scoring_cpu_smoke_prints_every_layout_with_equal_fp32_scores():
    out = _run("bash", "benchmarks/gpu_scoring.sh", "--cpu-smoke", "--dtype", "float32")
    assert "float32 matmul peak" in out
    table = _table(out)
    assert set(table) == {(w, layout) for w in ("pairs", "grpo") for layout in LAYOUTS}
    for cells in table.values():
        tokens, tps, peak, mb = int(cells[3]), float(cells[4]), cells[5], float(cells[6])
        assert tokens > 0 and tps > 0 and peak.endswith("%") and mb >= 0
        assert float(cells[8]) <= 1e-4  # max|Δ| from padded, float32
        assert "(ran" not in " ".join(cells)  # every layout ran as asked


def test_memory_sweep_prints_both_paths():
    out = _run(
        sys.executable,
        "benchmarks/layout_scoring.py",
        "--cpu-smoke",
        "--memory-sweep",
        "256",
        "--row-tokens",
        "64",
    )
    lines = [x.split() for x in out.splitlines() if re.match(r"\s*256\s", x)]
    assert len(lines) == 1 and len(lines[0]) == 5
    assert all(float(x) >= 0 for x in lines[0][1:])


def test_prepared_real_workloads_run_on_the_cpu(shared_data, tmp_path):
    _run(
        sys.executable,
        "benchmarks/layout_scoring.py",
        "--prepare",
        str(tmp_path),
        "--data-dir",
        str(shared_data),
        "--pairs",
        "3",
        "--groups",
        "1",
        "--prompt-tokens",
        "200",
    )
    out = _run(
        sys.executable,
        "benchmarks/layout_scoring.py",
        "--dir",
        str(tmp_path),
        "--device",
        "cpu",
        "--sizes",
        "tiny",
        "--layouts",
        "padded,shared",
        "--gemm-size",
        "256",
        "--dtype",
        "float32",
    )
    table = _table(out)
    assert set(table) == {(w, x) for w in ("pairs", "grpo") for x in ("padded", "shared")}
    assert int(table[("grpo", "shared")][3]) > 16 * 150  # 16 rows on a long shared prompt

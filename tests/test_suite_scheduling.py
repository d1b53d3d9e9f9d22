"""How ``make test`` spreads the suite over pytest-xdist workers (tests/conftest.py): by file,
with every file that uses Ray in one unit, so two workers never run Ray at once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from xdist_units import RAY_FILES, work_unit

TESTS = Path(__file__).resolve().parent
USES_RAY = re.compile(r"\blocal_ray\b|[\"']--ray[\"']|\bray\.init\(")


def test_every_file_that_uses_ray_is_in_the_ray_unit():
    users = {
        p.name for p in TESTS.rglob("test_*.py") if USES_RAY.search(p.read_text(encoding="utf-8"))
    }
    assert users and users <= RAY_FILES, sorted(users - RAY_FILES)


def test_a_test_is_scheduled_with_its_file_or_with_the_ray_files():
    assert work_unit("tests/test_eval_ray.py::test_cli_eval_ray") == "ray"
    assert work_unit("tests/test_serve_ray.py::test_x[a::b]") == "ray"
    assert work_unit("tests/test_rules_code.py::test_registered") == "tests/test_rules_code.py"
    assert work_unit("tests/adversarial/test_cache.py::T::t") == "tests/adversarial/test_cache.py"


def test_the_tests_of_one_file_run_on_one_worker_in_order():
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
         "--dist", "loadfile", "tests/test_rules_code.py", "tests/test_rules_iou.py"],
        capture_output=True, text=True, cwd=TESTS.parent, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED (tests/[\w/]+\.py)::", proc.stdout)
    workers: dict[str, set[str]] = {}
    for worker, path in ran:
        workers.setdefault(path, set()).add(worker)
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers

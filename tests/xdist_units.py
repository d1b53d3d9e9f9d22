"""How ``make test`` groups the suite into units of work for pytest-xdist (``--dist loadfile``,
tests/conftest.py): one unit per test file, and one for every file that uses Ray."""

from __future__ import annotations

from pathlib import Path

#: Test files that start or use a Ray cluster (the ``local_ray`` fixture, ``--ray`` commands):
#: under pytest-xdist they are one unit of work, run by one worker one after another (a
#: ``ray.init()`` in a second worker could join the first worker's cluster).
RAY_FILES = frozenset(
    {
        "test_eval_ray.py",
        "test_ray_more.py",
        "test_scoring_ray.py",
        "test_serve_ray.py",
        "test_cli_hostile_score_curate.py",
        "test_stop46_cli.py",
    }
)


def work_unit(nodeid: str) -> str:
    """The unit a test is scheduled in under ``--dist loadfile``: its file, or ``"ray"`` for
    every file in :data:`RAY_FILES`."""
    path = nodeid.split("::", 1)[0]
    return "ray" if Path(path).name in RAY_FILES else path

"""Helpers for the adversarial suite: run the real CLI in-process and read what it printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app


@pytest.fixture
def cli():
    """Invoke ``rewardkit ARGS`` in-process; returns (exit code, stdout + stderr)."""
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback would reach the user: fail loudly
        return result.exit_code, result.output

    return invoke


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    """Three valid {prompt, response} rows."""
    path = tmp_path / "rows.jsonl"
    rows = [{"prompt": "q", "response": "a" * (i + 1), "id": i} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def strict_json(line: str):
    """``json.loads`` that refuses NaN / Infinity (not JSON)."""

    def bad(token: str):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(line, parse_constant=bad)

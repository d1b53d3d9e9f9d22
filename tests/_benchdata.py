"""Helpers for the benchmark-format loader tests: write small files, load, expect errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Example


def write(tmp_path: Path, records: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return p


def one(tmp_path: Path, record: dict[str, Any], name: str = "d.jsonl", **kw: Any) -> Example:
    (ex,) = load(write(tmp_path, [record], name), **kw)
    return ex


def err(tmp_path: Path, record: dict[str, Any], **kw: Any) -> DataError:
    with pytest.raises(DataError) as ei:
        load(write(tmp_path, [record]), **kw)
    assert ei.value.line == 1
    return ei.value

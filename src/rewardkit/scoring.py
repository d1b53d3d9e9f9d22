"""Score a JSONL file of (prompt, response) rows: JSONL in, JSONL out with a ``reward`` field."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardkit.errors import DataError
from rewardkit.types import Query, Reward, as_messages

_ROLES = {"system", "user", "assistant", "tool"}


def query_from_row(row: Any, path: str, line: int) -> Query:
    """A :class:`Query` from one input row; errors name the file, line and field."""
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, got {type(row).__name__}", path=path, line=line)
    for name in ("prompt", "response"):
        if name not in row:
            raise DataError("missing required field", path=path, line=line, field=name)
    prompt, response = row["prompt"], row["response"]
    if not isinstance(response, str):
        raise DataError(
            f"expected a string, got {type(response).__name__}",
            path=path,
            line=line,
            field="response",
        )
    if isinstance(prompt, list):
        for i, m in enumerate(prompt):
            if not (
                isinstance(m, dict)
                and isinstance(m.get("content"), str)
                and m.get("role") in _ROLES
            ):
                raise DataError(
                    f"message {i}: expected {{'role': one of {sorted(_ROLES)}, 'content': str}}, got {m!r:.80}",
                    path=path,
                    line=line,
                    field="prompt",
                )
    elif not isinstance(prompt, str):
        raise DataError(
            f"expected a string or a list of messages, got {type(prompt).__name__}",
            path=path,
            line=line,
            field="prompt",
        )
    meta = {k: v for k, v in row.items() if k not in ("prompt", "response", "reference")}
    return Query(as_messages(prompt), response, row.get("reference"), meta)


def read_query_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any], Query]]:
    """(line number, raw row, query) for each non-blank line of a JSONL file."""
    path = str(path)
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path, line=line_no
                ) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, line=line_no
                ) from None
            yield line_no, row, query_from_row(row, path, line_no)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def score_file(
    reward: Reward, in_path: str | Path, out_path: str | Path, chunk_size: int = 2048
) -> dict[str, Any]:
    """Score every row of ``in_path`` and write the rows, each with ``reward`` added, to ``out_path``.

    The whole input is validated before any scoring starts (a bad line fails fast and loses no
    work); rows are scored in chunks of ``chunk_size`` so memory stays flat. A multi-objective
    reward writes a ``{objective: value}`` dict; NaN is written as null.
    """
    rows = list(read_query_rows(in_path))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    stats: dict[str, Any] = {"rows": len(rows), "truncated_rows": 0}
    with tmp.open("w", encoding="utf-8") as out:
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            scores = reward.score([q for _, _, q in chunk])
            last = getattr(reward, "last_stats", None) or {}
            stats["truncated_rows"] += int(last.get("truncated_rows", 0))
            for (_, row, _), value in zip(chunk, scores, strict=True):
                if reward.objectives:
                    row["reward"] = {
                        name: _jsonable(float(v))
                        for name, v in zip(reward.objectives, value, strict=True)
                    }
                else:
                    row["reward"] = _jsonable(float(value))
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out_path)
    return stats

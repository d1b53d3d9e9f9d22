"""Where a record came from (file + line or row), and short descriptions of bad values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewardkit.errors import DataError


@dataclass(frozen=True)
class Location:
    """A record's place: ``line`` is 1-based (JSONL, CSV), ``row`` 0-based (JSON arrays, Parquet,
    datasets). ``name`` is the short file name used in default example ids."""

    path: str
    name: str
    line: int | None = None
    row: int | None = None
    kind: str = "jsonl"  # jsonl | json | csv | parquet | dataset

    @property
    def label(self) -> str:
        """``"<name>:<line-or-row>"``, the default example id."""
        return f"{self.name}:{self.line if self.line is not None else self.row}"

    def error(self, message: str, field: str | None = None) -> DataError:
        """A :class:`DataError` at this location."""
        return DataError(message, path=self.path, line=self.line, row=self.row, field=field)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: Any) -> str:
    """A short, readable description of a found value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if not value:
            return "an empty string"
        if not value.strip():
            return "a whitespace-only string"
        return "text " + _short(repr(value))
    if isinstance(value, list | tuple):
        return "an empty list" if not value else f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        return "an object with keys " + _short(", ".join(repr(str(k)) for k in value))
    return f"a {type(value).__name__}"

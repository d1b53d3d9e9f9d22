"""On-disk score cache keyed by (reward fingerprint, query hash), so killed runs resume.

One SQLite file (WAL journal, committed after every batch): a run killed at any point keeps
every batch it finished, and several processes may share the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    fingerprint TEXT NOT NULL,
    query_key TEXT NOT NULL,
    value BLOB NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (fingerprint, query_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rewards (
    fingerprint TEXT PRIMARY KEY,
    identity TEXT NOT NULL
);
"""


class ScoreCache:
    """Scores stored as float32 vectors (length 1 for a scalar reward, k for k objectives),
    each with a flag saying whether its query was truncated (so reruns report truncation too)."""

    FILENAME = "scores.sqlite"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory).expanduser() / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def register(self, fingerprint: str, identity: dict[str, Any]) -> None:
        """Record what a fingerprint stands for (for people inspecting the cache)."""
        self._db.execute(
            "INSERT OR IGNORE INTO rewards VALUES (?, ?)",
            (fingerprint, json.dumps(identity, sort_keys=True, default=str)),
        )

    def get_many(self, fingerprint: str, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, bool]]:
        """The cached (scores, truncated) among ``keys``."""
        found: dict[str, tuple[np.ndarray, bool]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 900):  # SQLite's bound-parameter limit
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT query_key, value, truncated FROM scores WHERE fingerprint = ? AND query_key IN ({marks})",
                (fingerprint, *chunk),
            )
            for key, blob, truncated in rows:
                found[key] = (np.frombuffer(blob, dtype=np.float32).copy(), bool(truncated))
        return found

    def put_many(self, fingerprint: str, items: Iterable[tuple[str, np.ndarray, bool]]) -> None:
        """Store (key, scores, truncated) in one transaction (durable once this returns)."""
        rows = [
            (
                fingerprint,
                key,
                np.ascontiguousarray(value, dtype=np.float32).reshape(-1).tobytes(),
                int(bool(truncated)),
            )
            for key, value, truncated in items
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)

    def count(self, fingerprint: str | None = None) -> int:
        """How many scores are stored (for one reward, or in all)."""
        if fingerprint is None:
            return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM scores WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()[0]
        )

    def close(self) -> None:
        self._db.close()

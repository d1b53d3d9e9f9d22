"""On-disk score cache keyed by (reward fingerprint, query hash), so killed runs resume.

One SQLite file (WAL journal, committed after every batch): a run killed at any point keeps
every batch it finished, and several processes may share the file.

A damaged file (truncated, overwritten pages, blobs of the wrong size) raises
:class:`CacheCorruptError` naming the file; ``--cache-reset`` (:func:`move_aside`) renames it
beside itself so a new cache starts empty; nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import RewardkitError
from rewardkit.types import stable_hash

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


class CacheLocationError(RewardkitError):
    """The score cache cannot live where it was asked to (a file in the way, no permission)."""


class CacheCorruptError(RewardkitError):
    """The score cache file cannot be read as a score cache."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"score cache {path} is damaged ({reason}); rerun with --cache-reset to move it aside "
            "(it is renamed, not deleted) or with --no-cache"
        )

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # rebuilt from its fields where it crosses processes (Ray workers)
        return type(self), (self.path, self.reason)


FILENAME = "scores.sqlite"


def default_directory() -> Path:
    """Where the CLI keeps its score cache: ``scores/`` in rewardkit's cache directory
    (``$REWARDKIT_CACHE``, else ``~/.cache/rewardkit``), beside the embedded models."""
    from rewardkit.models.embedded import cache_root

    return cache_root() / "scores"


def move_aside(directory: str | Path) -> Path | None:
    """Rename the cache file in ``directory`` (and its WAL/SHM journals) to
    ``scores.sqlite.bad-<UTC time>``; return the new path, or None when there is no cache."""
    path = Path(directory).expanduser() / FILENAME
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm"):
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            journal.rename(target.with_name(target.name + suffix))
    path.rename(target)
    return target


#: Files a folder is stamped by, at most (:func:`files_stamp`).
STAMP_FILES = 5000


def files_stamp(path: str | Path, suffixes: tuple[str, ...] = ()) -> str | None:
    """What an identity keys a file read at scoring time by (a database, not weights): a hash of
    its size, mtime, ctime and inode, and of its SQLite ``-wal`` journal's (rows committed but
    not yet in the file); for a folder, of each file under it ending in ``suffixes`` (the first
    :data:`STAMP_FILES` in sorted order). Stats only, never a read: ctime catches a rewrite with
    its mtime put back and the inode a file renamed over it, as the weights' memo does
    (:mod:`rewardkit.models.fingerprint`). None when nothing is there."""
    root = Path(path)
    if root.is_dir():  # os.walk: symlinked folders are not followed (no loops)
        found = [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]
        files = sorted(f for f in found if f.endswith(suffixes))[:STAMP_FILES]
    else:
        files, root = [str(root)], root.parent
    rows = []
    for name in files:
        for f in (name, name + "-wal"):
            try:
                st = os.stat(f)
            except OSError:
                continue
            rel = os.path.relpath(f, root)
            rows.append([rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return stable_hash(rows) if rows else None


def _use_wal(db: sqlite3.Connection, wait: float = 60.0) -> None:
    """Put the cache file in WAL mode (persistent in the file). Switching needs a moment alone
    with the file and SQLite does not wait for it (its busy timeout does not cover this
    pragma): two processes opening a new cache at once (Ray actors, server replicas) got
    "database is locked". Already in WAL: nothing to do; else retry, backing off, up to
    ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


#: Connections a forked child inherited and replaced, held so they are never closed (a close in
#: the child could release locks the parent holds).
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


#: SQLite result codes (primary) that are the machine's trouble, not a damaged file → errno.
_OS_ERRORS = {
    getattr(sqlite3, "SQLITE_FULL", 13): errno.ENOSPC,
    getattr(sqlite3, "SQLITE_IOERR", 10): errno.EIO,
    getattr(sqlite3, "SQLITE_READONLY", 8): errno.EROFS,
    getattr(sqlite3, "SQLITE_CANTOPEN", 14): errno.EACCES,
    getattr(sqlite3, "SQLITE_PERM", 3): errno.EACCES,
}


#: Truncation flags stored with a score (the ``truncated`` column): the query was cut...
TRUNCATED = 1
#: ...and its response was cut too (so a rerun served from the cache reports both counts).
RESPONSE_CUT = 2


def truncation_flags(prompt_dropped: int, response_dropped: int) -> int:
    """The flags stored with a row's score, from the tokens its truncation dropped."""
    flags = TRUNCATED if prompt_dropped + response_dropped > 0 else 0
    return flags | (RESPONSE_CUT if response_dropped else 0)


def _flags(truncated: bool | int) -> int:
    """The stored flags of a bool (truncated or not) or of flags already."""
    if isinstance(truncated, bool | np.bool_):
        return TRUNCATED if truncated else 0
    flags = int(truncated)
    return flags | TRUNCATED if flags else 0


class ScoreCache:
    """Scores stored as float32 vectors (length 1 for a scalar reward, k for k objectives),
    each with a flag saying whether its query was truncated (so reruns report truncation too)."""

    FILENAME = FILENAME

    def __init__(self, directory: str | Path) -> None:
        folder = Path(directory).expanduser()
        self.path = folder / self.FILENAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission...
            why = "it is a file" if folder.is_file() else exc.strerror or str(exc)
            raise CacheLocationError(
                f"score cache directory {folder} cannot be created ({why}); "
                "give another --cache-dir or use --no-cache"
            ) from None
        if self.path.is_dir():
            raise CacheLocationError(
                f"score cache {self.path} is a directory, not a cache file; give another "
                "--cache-dir or use --no-cache"
            )
        self._pid = os.getpid()
        self._connection = self._connect()

    def _connect(self) -> sqlite3.Connection:
        with self._guard():
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        """This process's connection. A process forked from the one that opened it (a
        ``multiprocessing`` pool) opens its own: SQLite's locks and WAL index do not survive
        ``fork``, and a connection carried across one can corrupt the file. The inherited one is
        left open (closing it in the child could drop the parent's locks)."""
        if os.getpid() != self._pid:
            _INHERITED_CONNECTIONS.append(self._connection)  # kept open: never closed here
            self._pid, self._connection = os.getpid(), self._connect()
        return self._connection

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's "not a database" / "malformed" errors as :class:`CacheCorruptError`; a full
        disk, an I/O or permission error as an ``OSError`` naming the file (a full disk was
        reported as a damaged cache, and ``--cache-reset`` then set the healthy file aside)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            code = getattr(exc, "sqlite_errorcode", None)
            os_errno = _OS_ERRORS.get(code & 0xFF) if isinstance(code, int) else None
            if os_errno is not None:
                raise OSError(
                    os_errno, f"{os.strerror(os_errno)} ({exc})", str(self.path)
                ) from None
            raise CacheCorruptError(self.path, str(exc)) from None

    def register(self, fingerprint: str, identity: dict[str, Any]) -> None:
        """Record what a fingerprint stands for (for people inspecting the cache)."""
        with self._guard():
            self._db.execute(
                "INSERT OR IGNORE INTO rewards VALUES (?, ?)",
                (fingerprint, json.dumps(identity, sort_keys=True, default=str)),
            )

    def get_many(
        self, fingerprint: str, keys: Sequence[str], width: int | None = None
    ) -> dict[str, tuple[np.ndarray, bool]]:
        """The cached (scores, truncated) among ``keys``.

        A blob that is not whole float32 values (or, given ``width``, not ``width`` of them)
        means the file is damaged: :class:`CacheCorruptError`."""
        found = self.get_flagged(fingerprint, keys, width)
        return {k: (v, bool(flags & TRUNCATED)) for k, (v, flags) in found.items()}

    def get_flagged(
        self, fingerprint: str, keys: Sequence[str], width: int | None = None
    ) -> dict[str, tuple[np.ndarray, int]]:
        """The cached (scores, truncation flags: :data:`TRUNCATED` | :data:`RESPONSE_CUT`)
        among ``keys``, as :meth:`get_many`."""
        found: dict[str, tuple[np.ndarray, int]] = {}
        unique = list(dict.fromkeys(keys))
        want = None if width is None else 4 * width
        for start in range(0, len(unique), 900):  # SQLite's bound-parameter limit
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            with self._guard():
                rows = self._db.execute(
                    "SELECT query_key, value, truncated FROM scores "
                    f"WHERE fingerprint = ? AND query_key IN ({marks})",
                    (fingerprint, *chunk),
                ).fetchall()
            for key, blob, truncated in rows:
                size = len(blob) if isinstance(blob, bytes) else -1
                if size <= 0 or size % 4 or (want is not None and size != want):
                    expected = f"{want}" if want else "a positive multiple of 4"
                    raise CacheCorruptError(
                        self.path, f"a stored score is {size} bytes; expected {expected}"
                    )
                found[key] = (np.frombuffer(blob, dtype=np.float32).copy(), int(truncated or 0))
        return found

    def put_many(
        self, fingerprint: str, items: Iterable[tuple[str, np.ndarray, bool | int]]
    ) -> None:
        """Store (key, scores, truncated) in one transaction (durable once this returns);
        ``truncated`` is a bool or the flags of :meth:`get_flagged`."""
        rows = [
            (
                fingerprint,
                key,
                np.ascontiguousarray(value, dtype=np.float32).reshape(-1).tobytes(),
                _flags(truncated),
            )
            for key, value, truncated in items
        ]
        with self._guard(), self._db:
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
        if os.getpid() == self._pid:  # never a connection inherited across a fork
            self._connection.close()

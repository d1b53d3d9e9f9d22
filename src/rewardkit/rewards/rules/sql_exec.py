"""Read-only, bounded SQL execution in worker processes: what ``rule:sql`` runs.

A response's SQL decides how long a query runs, how much memory it takes and what it tries to
touch, so each query runs in a worker process (:mod:`.worker_pool`), never in the scorer:

- only one statement that is a query runs (:func:`is_one_query`: SELECT, WITH or VALUES first;
  a second statement is refused, not run);
- the database is opened read-only by URI (``file:…?mode=ro``, also ``immutable=1`` unless the
  file is in WAL mode with a pending ``-wal`` file, whose rows immutable would skip), with
  ``PRAGMA query_only=ON``, ``temp_store=MEMORY`` (sorts and temporary b-trees stay in the
  capped heap, never on disk) and no attached databases (``SQLITE_LIMIT_ATTACHED`` 0);
- an authorizer (:func:`authorize`) allows reading only: SELECT, reads, functions other than
  :data:`DENIED_FUNCTIONS` (``load_extension``, ``fts3_tokenizer``), recursive CTEs and the
  schema PRAGMAs of :data:`READ_PRAGMAS`; ATTACH (and ``VACUUM INTO``, which attaches),
  DETACH, every write, transaction, other PRAGMA or schema change is refused;
- a time budget: a progress handler stops the statement once ``timeout`` seconds have passed
  (a recursive CTE that never ends included); a row cap (``max_rows``), a size cap on the
  result (``max_bytes``, also SQLite's longest string or blob), a heap cap on SQLite
  (``PRAGMA hard_heap_limit``: process-wide and only ever lowered, so each cap has its own
  workers, :func:`pool`) and an address-space cap on the worker;
- the caller kills a worker that does not answer by its deadline (a stall inside one C call);
  the queries of a killed chunk run again one by one, so only the one that stalls is lost.

A result is ``{"columns": k, "rows": [[value, …], …]}`` (a blob as ``{"b": hex}``) or
``{"error": why, "kind": kind}`` where ``kind`` is ``open``, ``sql`` (the statement failed or
was refused), ``timeout``, ``rows``, ``size``, ``memory`` or ``killed`` (the last five:
:data:`LIMIT_KINDS`). Also here, pure: how a statement is read (:func:`split_statements`,
:func:`top_level_order_by`) and where a row's database is (:func:`find_database`; with a
``db_root``, never outside it).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from rewardkit.rewards.rules.worker_pool import WorkerDidNotStart, WorkerDied, WorkerPool, serve

__all__ = [
    "DB_KEYS",
    "DENIED_FUNCTIONS",
    "LIMIT_KINDS",
    "READ_PRAGMAS",
    "Limits",
    "authorize",
    "cache_key",
    "connect",
    "execute",
    "execute_all",
    "find_database",
    "inside",
    "is_one_query",
    "locate",
    "pool",
    "split_statements",
    "top_level_order_by",
]

#: The SQL workers of this process, one pool per SQLite heap cap (:func:`pool`).
_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()
_MODULE = "rewardkit.rewards.rules.sql_exec"

#: Error kinds where a limit stopped the query (the check was given up, not the SQL wrong).
LIMIT_KINDS = frozenset({"timeout", "rows", "size", "memory", "killed"})

#: Functions no query may call: loading native code, and FTS3's pointer-revealing tokenizer.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})

#: PRAGMAs a query may read as table-valued functions (``pragma_table_info('t')``): schema only.
READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)

#: SQLite virtual-machine steps between two looks at the clock.
PROGRESS_STEPS = 10_000

#: Queries sent to a worker in one call.
CHUNK = 16

#: Seconds a worker call gets beyond its queries' budgets before its worker is killed.
SLACK_S = 5.0

#: Longest SQL text SQLite accepts here (characters).
MAX_SQL_CHARS = 100_000

_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})


# -- reading SQL text (pure) -------------------------------------------------------------------
_TOKEN = re.compile(
    r"(?P<str>'[^']*(?:''[^']*)*(?:'|\Z))"
    r"|(?P<ident>\"[^\"]*(?:\"\"[^\"]*)*(?:\"|\Z)|`[^`]*(?:``[^`]*)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))"
    r"|(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<semi>;)|(?P<open>\()|(?P<close>\))"
    r"|(?P<code>[^'\"`\[;()\-/]+|[-/])",
    re.S,
)
_ORDER_BY = re.compile(r"\border\s+by\b", re.I)
_WORD = re.compile(r"\s*([A-Za-z_]+)")

#: First keywords of a statement that is a query.
QUERY_KEYWORDS = frozenset({"select", "with", "values"})


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` (split at semicolons outside strings, quoted names and
    comments); a piece holding only comments or blanks is none."""
    parts: list[str] = []
    current: list[str] = []
    has_code = False
    for m in _TOKEN.finditer(sql):
        if m.lastgroup == "semi":
            if has_code:
                parts.append("".join(current).strip())
            current, has_code = [], False
            continue
        current.append(m.group())
        has_code = has_code or (m.lastgroup != "comment" and not m.group().isspace())
    if has_code:
        parts.append("".join(current).strip())
    return parts


def _first_keyword(statement: str) -> str:
    for m in _TOKEN.finditer(statement):
        if m.lastgroup == "comment" or m.group().isspace():
            continue
        word = _WORD.match(m.group()) if m.lastgroup == "code" else None
        return word.group(1).lower() if word else ""
    return ""


def is_one_query(sql: str) -> bool:
    """Whether ``sql`` is exactly one statement, a query (SELECT, WITH or VALUES first)."""
    parts = split_statements(sql)
    return len(parts) == 1 and _first_keyword(parts[0]) in QUERY_KEYWORDS


def top_level_order_by(sql: str) -> bool:
    """Whether ``sql`` sorts its result: an ORDER BY outside parentheses, strings, quoted names
    and comments (a window's or a subquery's ORDER BY does not order the result)."""
    depth, code = 0, []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(0, depth - 1)
        elif depth == 0:
            code.append(m.group() if kind == "code" else " x ")
    return _ORDER_BY.search("".join(code)) is not None


# -- running it ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Bounds on one query: ``timeout`` seconds, ``max_rows`` rows, ``max_bytes`` of result
    (strings and blobs by length, other values 8 bytes), ``memory_mb`` of SQLite heap."""

    timeout: float = 5.0
    max_rows: int = 100_000
    max_bytes: int = 64 << 20
    memory_mb: int = 512


def authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, _src: Any) -> int:
    """SQLite authorizer: reads only (see the module's docstring). Creating an eponymous
    virtual table (``json_each``, ``pragma_table_info``) records it in ``main.sqlite_master``,
    which SQLite asks about as an UPDATE of that table: allowed, as SQLite itself refuses a
    real update of it (no ``writable_schema``), and the file is read-only."""
    if action in _ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return (
            sqlite3.SQLITE_DENY if (arg2 or "").lower() in DENIED_FUNCTIONS else sqlite3.SQLITE_OK
        )
    if action == sqlite3.SQLITE_PRAGMA:
        return sqlite3.SQLITE_OK if (arg1 or "").lower() in READ_PRAGMAS else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and db == "main":
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


#: Row fields naming the database, in the order they are read.
DB_KEYS = ("db_path", "db", "db_id")


def find_database(
    sources: Sequence[Mapping[str, Any]], keys: Sequence[str], root: str | None
) -> tuple[str | None, str | None]:
    """The database file a row names (the first of ``keys`` holding text, in the first of
    ``sources`` that has one), located by :func:`locate`; or None and why there is none. With
    ``root``, a value that leads out of it (:func:`inside`) is refused: a row (or a served
    request's reference) cannot make the reward read another file."""
    found = next(
        ((k, s[k]) for s in sources for k in keys if isinstance(s.get(k), str) and s[k].strip()),
        None,
    )
    if found is None:
        return None, (
            f"rule:sql: no database for this row: give the db= option, or a "
            f"{' / '.join(keys)} field (a db_id with db_root=)"
        )
    key, value = found
    if root is None and key == "db_id":
        return None, f"rule:sql: the row's db_id {value!r} needs the db_root= option"
    if root is not None and not inside(value.strip(), root):
        return None, (
            f"rule:sql: the row's {key} {value.strip()!r} names a file outside db_root= "
            f"{root} (an absolute path, '~' or '..'): refused"
        )
    path = locate(value.strip(), root)
    if not os.path.isfile(path):
        return None, f"rule:sql: database not found: {path} (from the row's {key})"
    return path, None


def inside(value: str, root: str) -> bool:
    """Whether a row's value, read under ``root``, stays in it: no ``~``, no NUL, no ``..`` that
    climbs out, an absolute path only under ``root`` (judged on the text, so a symlink the
    owner of ``root`` put there is followed; a row cannot make one)."""
    if "\x00" in value or value.startswith("~"):
        return False
    base = os.path.normpath(root)
    full = os.path.normpath(os.path.join(base, value))
    return full != base and full.startswith(base.rstrip(os.sep) + os.sep)


def locate(value: str, root: str | None) -> str:
    """The database file a row's value names: itself, or under ``root`` as ``<root>/<v>``,
    ``<root>/<v>/<v>.sqlite`` or ``<root>/<v>.sqlite`` (the first that exists; else the
    Spider layout, for the error)."""
    value = os.path.expanduser(value)
    if root is None or os.path.isabs(value):
        return value
    spider = os.path.join(root, value, f"{value}.sqlite")
    for path in (os.path.join(root, value), spider, os.path.join(root, f"{value}.sqlite")):
        if os.path.isfile(path):
            return path
    return spider


def cache_key(db: str, sql: str) -> tuple[Any, ...]:
    """The gold cache's key: the file's path, size, mtime, ctime and inode, the same of its
    ``-wal`` journal (a commit in WAL mode leaves the file itself untouched), and the SQL."""
    stamps: list[Any] = []
    for f in (db, db + "-wal"):
        try:
            st = os.stat(f)
        except OSError:
            stamps.append(None)
            continue
        stamps.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return (os.path.realpath(db), *stamps, sql)


def uri(path: str) -> str:
    """The read-only URI of the database file ``path``; ``immutable=1`` unless the file is in
    WAL mode with a non-empty ``-wal`` file beside it (rows immutable would not see)."""
    absolute = os.path.abspath(path)
    query = "mode=ro" if _pending_wal(absolute) else "mode=ro&immutable=1"
    return f"file:{quote(absolute)}?{query}"


def _pending_wal(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            header = f.read(20)
        return header[18:20] == b"\x02\x02" and os.path.getsize(path + "-wal") > 0
    except OSError:
        return False


def connect(path: str, limits: Limits, own_process: bool = True) -> sqlite3.Connection:
    """A read-only connection to ``path`` with the limits and the authorizer in place;
    ``own_process``: also cap SQLite's heap (process-wide, so only in a worker)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no database file at {path}")
    conn = sqlite3.connect(uri(path), uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.text_factory = lambda b: b.decode("utf-8", "replace")
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        if own_process:
            conn.execute(f"PRAGMA hard_heap_limit={int(limits.memory_mb) << 20}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(1, min(int(limits.max_bytes), 1 << 30)))
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_CHARS)
        conn.setlimit(sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)
        conn.set_authorizer(authorize)
    except BaseException:
        conn.close()
        raise
    return conn


def _value(v: Any) -> tuple[Any, int]:
    """A result value as JSON (a blob as ``{"b": hex}``) and its size in bytes."""
    if isinstance(v, bytes):
        return {"b": v.hex()}, len(v)
    if isinstance(v, str):
        return v, len(v)
    return v, 8


def execute(path: str, sql: str, limits: Limits, own_process: bool = True) -> dict[str, Any]:
    """Run ``sql`` (one statement) on the database at ``path`` within ``limits``: its result
    or its error (the module's docstring). Only the statement :func:`split_statements` finds
    runs (``SELECT 1;; -- done`` runs ``SELECT 1``). Never raises for anything the SQL does."""
    parts = split_statements(sql)
    if len(parts) != 1 or _first_keyword(parts[0]) not in QUERY_KEYWORDS:
        return {"error": "not one query (SELECT, WITH or VALUES)", "kind": "sql"}
    sql = parts[0]  # the statement alone: empty statements and comments around it left out
    deadline = time.monotonic() + float(limits.timeout)
    try:
        conn = connect(path, limits, own_process)
    except Exception as e:
        return {"error": f"cannot open the database {path}: {e}", "kind": "open"}
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
    try:
        cur = conn.execute(sql)
        columns = len(cur.description or ())
        rows: list[list[Any]] = []
        size = 0
        while batch := cur.fetchmany(256):
            for row in batch:
                values = [_value(v) for v in row]
                size += 8 + sum(n for _, n in values)
                rows.append([v for v, _ in values])
            if len(rows) > limits.max_rows:
                return _limit("rows", f"more than {limits.max_rows} rows (max_rows)")
            if size > limits.max_bytes:
                return _limit("size", f"a result of more than {limits.max_bytes} bytes")
            if time.monotonic() > deadline:
                return _limit("timeout", f"did not finish in {limits.timeout:g} s")
        return {"columns": columns, "rows": rows}
    except MemoryError:
        return _limit("memory", f"SQLite ran out of its {limits.memory_mb} MB heap")
    except Exception as e:
        if time.monotonic() > deadline and "interrupt" in str(e):
            return _limit("timeout", f"did not finish in {limits.timeout:g} s")
        if "too big" in str(e):
            return _limit("size", f"a string or blob of more than {limits.max_bytes} bytes")
        return {"error": f"{type(e).__name__}: {e}", "kind": "sql"}
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _limit(kind: str, why: str) -> dict[str, Any]:
    return {"error": why, "kind": kind}


def execute_all(
    jobs: Sequence[tuple[str, str]], limits: Limits, workers: int = 1
) -> list[dict[str, Any]]:
    """:func:`execute` of each ``(database path, sql)`` in worker processes (``workers`` at
    once), in chunks of :data:`CHUNK`; a chunk whose worker died runs again one query at a
    time, and a query whose worker died alone is ``{"kind": "killed"}``. Where no worker can
    start, the queries run here (with the time, row and size limits, not the heap cap)."""
    chunks = [list(jobs[i : i + CHUNK]) for i in range(0, len(jobs), CHUNK)]
    try:
        if len(chunks) > 1 and workers > 1:
            with ThreadPoolExecutor(min(workers, len(chunks))) as pool:
                done = list(pool.map(lambda c: _chunk(c, limits), chunks))
        else:
            done = [_chunk(c, limits) for c in chunks]
    except WorkerDidNotStart as exc:
        pool(limits.memory_mb).warn_no_worker(
            exc, "SQL now runs in this process, without its heap cap"
        )
        return [execute(path, sql, limits, own_process=False) for path, sql in jobs]
    return [r for answers in done for r in answers]


def _chunk(chunk: list[tuple[str, str]], limits: Limits) -> list[dict[str, Any]]:
    try:
        return _ask(chunk, limits)
    except WorkerDied as exc:
        if len(chunk) == 1:
            return [_limit("killed", f"the SQL worker was killed ({exc})")]
    out: list[dict[str, Any]] = []
    for job in chunk:
        try:
            out.extend(_ask([job], limits))
        except WorkerDied as exc:
            out.append(_limit("killed", f"the SQL worker was killed ({exc})"))
    return out


def _ask(chunk: list[tuple[str, str]], limits: Limits) -> list[dict[str, Any]]:
    deadline = len(chunk) * float(limits.timeout) + SLACK_S
    answer = pool(limits.memory_mb).run(
        {"jobs": [list(j) for j in chunk], "limits": asdict(limits)}, deadline
    )
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != len(chunk):
        raise WorkerDied(f"SQL worker: {answer.get('error', 'bad answer')}")
    return results


def pool(memory_mb: int) -> WorkerPool:
    """The workers for queries with a heap cap of ``memory_mb``: SQLite's cap can only be
    lowered in a process, so each cap has workers of its own."""
    with _POOLS_LOCK:
        found = _POOLS.get(memory_mb)
        if found is None:
            found = _POOLS[memory_mb] = WorkerPool(_MODULE, f"SQL ({memory_mb} MB heap)")
        return found


def _cap_address_space(limits: Limits) -> None:
    """A worker's backstop beyond SQLite's heap cap: its address space, at the heap cap plus
    room for the interpreter and a result (never above the hard limit already set)."""
    try:
        import resource

        soft = (int(limits.memory_mb) << 20) * 2 + int(limits.max_bytes) * 8 + (1 << 30)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    """The worker: ``{"jobs": [[path, sql], …], "limits": {…}}`` per stdin line,
    ``{"results": [...]}`` per stdout line (each as :func:`execute`)."""

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        try:
            limits = Limits(**job["limits"])
            _cap_address_space(limits)
            return {"results": [execute(str(p), str(s), limits) for p, s in job["jobs"]]}
        except Exception as exc:  # a malformed job: never end the worker over it
            return {"error": f"{type(exc).__name__}: {exc}"}

    serve(handle)


if __name__ == "__main__":
    main()

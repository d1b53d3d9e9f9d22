"""Hostile responses to ``rule:sql`` (docs/methods/B14-text-to-sql.md): no response may hang,
crash or exhaust the scorer, change the database, reach another file, read the gold, or make
its row "does not apply" (NaN) to drop out of a composite.

Each attack is tried through the reward (where the keyword gate stops most statements first)
and, for the statements the gate stops, straight on a worker's connection, to show the
authorizer refuses them too. One reward per limit set, so the SQL workers are reused."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sqlite3
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.rewards.rules import sql_exec
from rewardkit.rewards.rules.sql import SqlReward
from rewardkit.types import Query

GOLD = "SELECT name FROM emp WHERE dept_id = 1"
RIGHT = "SELECT name FROM emp WHERE dept_id IN (SELECT id FROM dept WHERE name = 'eng')"
FOREVER = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
MANY = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"

#: Statements that write, attach, load code or loosen the connection.
ATTACKS = [
    "ATTACH DATABASE '{other}' AS other",
    "DROP TABLE emp",
    "INSERT INTO emp(name, dept_id) VALUES ('mallory', 1)",
    "UPDATE emp SET dept_id = 1",
    "DELETE FROM emp WHERE dept_id <> 1",
    "WITH x AS (SELECT 1) DELETE FROM emp WHERE dept_id <> 1",
    "CREATE TABLE emp2 AS SELECT * FROM emp",
    "CREATE TEMP VIEW v AS SELECT 1",
    "PRAGMA writable_schema = ON",
    "PRAGMA query_only = OFF",
    "PRAGMA hard_heap_limit = 0",
    "PRAGMA journal_mode = WAL",
    "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
    "SELECT fts3_tokenizer('simple')",
    "VACUUM INTO '{other}'",
    "BEGIN IMMEDIATE",
    "UPDATE sqlite_master SET sql = 'x'",
]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    path = folder / "company.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE dept(id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, dept_id INTEGER);"
        "INSERT INTO dept VALUES (1, 'eng'), (2, 'ops');"
        "INSERT INTO emp VALUES (1, 'ann', 1), (2, 'bob', 1), (3, 'cy', 2);"
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def reward(db):
    return SqlReward(db=str(db), timeout=0.5, max_rows=1000, max_mb=1)


def q(response: str, gold: str = GOLD) -> Query:
    return Query("Who works in eng?", response, reference=gold)


def test_a_query_that_never_ends_stops_within_its_budget(reward):
    started = time.monotonic()
    out = reward.score_full([q(FOREVER), q(RIGHT)])
    elapsed = time.monotonic() - started
    assert out.scores.tolist() == [0.0, 1.0] and elapsed < 4.0
    (entry,) = out.stats["errors"]
    assert (
        entry["index"] == 0
        and entry["score"] == 0.0
        and "did not finish in 0.5 s" in entry["error"]
    )


def test_writes_attach_pragmas_and_extensions_are_refused(reward, db):
    other = db.parent / "stolen.sqlite"
    before, files = digest(db), sorted(os.listdir(db.parent))
    attacks = [a.format(other=other) for a in ATTACKS]
    out = reward.score_full([q(a) for a in attacks] + [q(RIGHT)])
    assert out.scores.tolist() == [0.0] * len(attacks) + [1.0]
    assert digest(db) == before and sorted(os.listdir(db.parent)) == files
    assert not other.exists()
    # the same statements straight on a worker's connection (past the one-query gate): the
    # authorizer and the read-only connection refuse every one
    conn = sql_exec.connect(str(db), sql_exec.Limits(memory_mb=64), own_process=False)
    try:
        for attack in attacks:
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute(attack).fetchall()
        conn.set_authorizer(None)  # "PRAGMA query_only = OFF" above changed nothing
        assert conn.execute("PRAGMA query_only").fetchall() == [(1,)]
    finally:
        conn.close()
    assert digest(db) == before and sorted(os.listdir(db.parent)) == files and not other.exists()


def test_schema_reads_stay_allowed(reward):
    # read-only table-valued functions a real query may use are not refused
    out = reward.score([q("SELECT name FROM pragma_table_info('emp') WHERE name = 'zzz'")])
    assert out.tolist() == [0.0]
    gold = "SELECT value FROM json_each('[1, 2]')"
    assert reward.score([q("SELECT 1 UNION ALL SELECT 2", gold)]).tolist() == [1.0]


def test_results_past_the_caps_score_zero_and_are_named(reward, db):
    out = reward.score_full([q(MANY), q("SELECT randomblob(100000000)"), q(RIGHT)])
    assert out.scores.tolist() == [0.0, 0.0, 1.0]
    errors = {e["index"]: e["error"] for e in out.stats["errors"]}
    assert "more than 1000 rows" in errors[0] and "more than 1048576 bytes" in errors[1]
    heap = SqlReward(db=str(db), timeout=5, memory_mb=8)
    hog = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r LIMIT 2000000) "
    hog += "SELECT count(DISTINCT randomblob(1000)) FROM r"
    res = heap.score_full([q(hog)])
    assert res.scores.tolist() == [0.0] and "8 MB heap" in res.stats["errors"][0]["error"]
    # a gold past a cap is the reward not applying, for every response
    big = reward.score_full([q(MANY, MANY + " LIMIT 5000"), q(RIGHT, MANY + " LIMIT 5000")])
    assert np.isnan(big.scores).all() and "more than 1000 rows" in big.stats["errors"][0]["error"]


def test_a_second_statement_is_a_failure_and_never_runs(reward, db):
    before = digest(db)
    out = reward.score_full([q(f"{RIGHT}; DROP TABLE emp"), q(f"{RIGHT};\n{RIGHT};"), q(RIGHT)])
    assert out.scores.tolist() == [0.0, 0.0, 1.0]
    assert out.stats["pred_runs"] == 1 and out.stats["not_one_query"] == 2
    assert digest(db) == before
    # a long response is not sent at all
    huge = reward.score_full([q("SELECT 1 " + "+ 1 " * 60_000)])
    assert huge.scores.tolist() == [0.0] and huge.stats["pred_runs"] == 0
    assert huge.components["format"].tolist() == [0.0]


def test_a_killed_worker_costs_only_the_query_it_ran(db):
    # a heap cap of its own gives this reward a pool of its own: one worker after the warm-up
    reward = SqlReward(db=str(db), timeout=10, memory_mb=96)
    pool = sql_exec.pool(96)
    reward.score([q(RIGHT)])  # gold cached, a worker started
    done: dict = {}
    thread = threading.Thread(
        target=lambda: done.update(out=reward.score_full([q(FOREVER), q(RIGHT)]))
    )
    started = time.monotonic()
    thread.start()
    killed: set[int] = set()
    for _ in range(2):  # the chunk's worker, then the one running the retried FOREVER
        deadline = time.monotonic() + 20
        while not [w for w in pool.workers() if w.proc.pid not in killed]:
            assert time.monotonic() < deadline, "no SQL worker started"
            time.sleep(0.05)
        time.sleep(0.5)  # RIGHT (milliseconds) is done; FOREVER runs
        for worker in pool.workers():
            if worker.proc.pid not in killed:
                killed.add(worker.proc.pid)
                os.kill(worker.proc.pid, signal.SIGKILL)
    thread.join(30)
    out = done["out"]
    assert out.scores.tolist() == [0.0, 1.0] and time.monotonic() - started < 9
    (entry,) = out.stats["errors"]
    assert entry["index"] == 0 and "killed" in entry["error"] and entry["score"] == 0.0
    assert reward.score([q(RIGHT)]).tolist() == [1.0]  # a fresh worker takes over


def test_the_response_cannot_reach_the_gold_or_its_nan(reward):
    # the gold SQL and its result live in the scorer, never in the database: a response that
    # reads everything it can still does not match, and none of these makes its row NaN
    tries = [
        "SELECT sql FROM sqlite_master",
        "SELECT * FROM sqlite_temp_master",
        "SELECT name FROM pragma_database_list",
        "SELECT readfile('/etc/passwd')",
        "SELECT 1 FROM emp WHERE 1 = (SELECT 1 FROM missing_table)",
        FOREVER,
        "'; DROP TABLE emp; --",
        "\x00SELECT 1",
        "SELECT '\ud800'",
    ]
    out = reward.score_full([q(t) for t in tries] + [q(RIGHT)])
    assert out.scores.tolist() == [0.0] * len(tries) + [1.0]
    assert all("score" in e for e in out.stats["errors"])  # named ones kept their 0.0


def test_a_wal_database_is_read_with_its_pending_rows(tmp_path):
    path = tmp_path / "wal.sqlite"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t(a)")
    writer.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    writer.commit()
    try:
        assert "immutable" not in sql_exec.uri(str(path))
        reward = SqlReward(db=str(path))
        assert reward.score([q("SELECT 3", "SELECT count(*) FROM t")]).tolist() == [1.0]
    finally:
        writer.close()
    assert "immutable=1" in sql_exec.uri(str(path))  # checkpointed on close: safe again


SQLISH = st.lists(
    st.sampled_from(
        [
            "SELECT", " name", " *", " FROM", " emp", " dept", " WHERE", " dept_id = 1", ";",
            "'", '"', "`", "[", "(", ")", "--", "/*", "*/", "\n", " ORDER BY 1", " UNION ",
            "```sql\n", "\n```", "<answer>", "</answer>", "<think>", "</think>", "WITH RECURSIVE",
            " r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r)", " DROP TABLE emp", " ATTACH ",
            " LIMIT 2", "VALUES (1)", "\x00", "é", "\ud800",
        ]
    ),
    max_size=12,
).map("".join)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(SQLISH, st.text(max_size=200)))
def test_any_response_scores_in_range_and_never_chooses_nan(reward, response):
    out = reward.score_full([q(response), q(response, "SELECT nope FROM emp"), q(RIGHT)])
    first, broken, control = out.scores.tolist()
    assert first in (0.0, 1.0) and control == 1.0
    assert math.isnan(broken)  # the gold fails: NaN for every response alike

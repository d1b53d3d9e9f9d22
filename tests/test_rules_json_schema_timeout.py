"""rule:json_schema's time limit: a catastrophic ``pattern`` cannot stall a process."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.rules import json_schema, schema_worker, worker_pool

#: ``(a+)+$`` against "aaaa…!" backtracks 2^40 times in Python's ``re``: hours, holding the GIL.
CATASTROPHIC = "^(a+)+$"
HOSTILE = "a" * 40 + "!"


def q(response: str, reference=None) -> Query:
    return Query(prompt="", response=response, reference=reference)


def schema_reward(schema=None, **options):
    spec = {"type": "rule", "arg": "json_schema", **options}
    if schema is not None:
        spec["schema"] = schema
    return load_reward(spec)


def test_depth_counts_nesting_without_recursion():
    assert schema_worker.depth(1) == 0 and schema_worker.depth([]) == 1
    assert schema_worker.depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert schema_worker.depth(deep) == 100_001


def test_a_catastrophic_pattern_scores_zero_within_the_limit_and_names_the_row():
    reward = schema_reward({"type": "string", "pattern": CATASTROPHIC}, timeout=1)
    queries = [q(json.dumps(HOSTILE)), q('"aaa"'), q('"b"'), q("not json")]
    t0 = time.monotonic()
    res = reward.score_full(queries)
    assert time.monotonic() - t0 < 30
    assert res.scores.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert res.stats["failed"] == 1
    (error,) = res.stats["errors"]
    assert error["index"] == 0 and error["score"] == 0.0
    assert "did not finish in 1 s" in error["error"]
    # the worker gave up that check alone and lives on: the next batch reuses it
    before = schema_worker.POOL.workers()
    assert reward.score([q('"aa"'), q('"ab"')]).tolist() == [1.0, 0.0]
    assert schema_worker.POOL.workers() == before and all(w.alive() for w in before)


def test_a_quadratic_unique_items_check_is_given_up_in_time():
    """uniqueItems on objects is a pairwise loop in jsonschema: 8,000 objects took 42 s."""
    reward = schema_reward({"type": "array", "uniqueItems": True}, timeout=1)
    big = json.dumps([{"a": i} for i in range(20_000)])
    t0 = time.monotonic()
    res = reward.score_full([q(big), q('[{"a": 1}, {"a": 2}]'), q('[{"a": 1}, {"a": 1}]')])
    assert time.monotonic() - t0 < 30
    assert res.scores.tolist() == [0.0, 1.0, 0.0]
    assert [e["index"] for e in res.stats["errors"]] == [0]


RECURSIVE = {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}


@pytest.mark.parametrize("timeout", [5, 0])
def test_a_response_too_deep_to_validate_scores_zero_not_the_schemas_fault(timeout):
    """Before: a 900-deep array against a recursive schema raised RecursionError, read as "the
    schema's $ref chain recurses without end": NaN (the response escaped its 0.0)."""
    reward = schema_reward(RECURSIVE, timeout=timeout)
    deep = "[" * 900 + "]" * 900
    res = reward.score_full([q(deep), q("[[[]]]"), q("[1]")])
    assert res.scores.tolist() == [0.0, 1.0, 0.0]
    (error,) = res.stats["errors"]
    assert error["index"] == 0 and "nests 900 levels deep" in error["error"]
    # a schema whose $ref chain never ends is still the schema's fault, on any response: found
    # before any response is read (a SpecError for the option, NaN for a row's reference)
    with pytest.raises(SpecError, match="without end"):
        schema_reward({"$ref": "#"}, timeout=timeout)
    looping = schema_reward(timeout=timeout).score_full([q("1", {"$ref": "#"})])
    assert math.isnan(looping.scores[0]) and "without end" in looping.stats["errors"][0]["error"]


def test_many_rows_with_their_own_schemas_cross_worker_calls_in_order():
    schemas = [{"type": "integer", "minimum": k} for k in range(5)]
    rows = [q(str(i % 7), schemas[i % 5]) for i in range(2 * worker_pool.BATCH + 9)]
    timed = schema_reward(timeout=5).score(rows)
    assert timed.tolist() == [float(i % 7 >= i % 5) for i in range(len(rows))]
    assert schema_reward(timeout=0).score(rows).tolist() == timed.tolist()


def test_a_worker_that_stops_answering_is_killed_and_its_rows_named(monkeypatch):
    monkeypatch.setattr(worker_pool, "batch_deadline", lambda count, timeout: 0.5)
    reward = schema_reward({"type": "string", "pattern": CATASTROPHIC}, timeout=60)
    res = reward.score_full([q('"aa"'), q(json.dumps(HOSTILE)), q("not json")])
    assert res.scores.tolist() == [0.0, 0.0, 0.0]
    assert [e["index"] for e in res.stats["errors"]] == [0, 1]
    assert all("did not answer in time" in e["error"] for e in res.stats["errors"])
    assert all(w.alive() for w in schema_worker.POOL.workers())


def test_a_hostile_property_name_in_a_thread_cannot_stall_the_process():
    """patternProperties match the response's own keys; a server calls from worker threads."""
    schema = {
        "type": "object",
        "patternProperties": {CATASTROPHIC: {"type": "integer"}},
        "additionalProperties": False,
    }
    reward = schema_reward(timeout=1)
    out: list = []
    items = [q(json.dumps({HOSTILE: 1}), schema), q('{"aa": 1}', schema), q('{"aa": "x"}', schema)]
    worker = threading.Thread(target=lambda: out.append(reward.score_full(items)))
    worker.start()
    ticks = 0
    while worker.is_alive() and ticks < 300:  # this thread keeps running meanwhile
        time.sleep(0.1)
        ticks += 1
    worker.join(timeout=60)
    assert not worker.is_alive() and ticks >= 5
    assert out[0].scores.tolist() == [0.0, 1.0, 0.0]
    assert [e["index"] for e in out[0].stats["errors"]] == [0]


def test_checks_in_workers_equal_checks_in_process():
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]+$"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^#"}},
        },
        "patternProperties": {"^x-": {"type": "number"}},
        "required": ["id"],
        "additionalProperties": False,
    }
    responses = [
        '{"id": "AB-12"}',
        '{"id": "ab-12"}',
        '{"id": "AB-1", "tags": ["#a", "#b"]}',
        '{"id": "AB-1", "tags": ["a"]}',
        '{"id": "AB-1", "x-rate": 0.5}',
        '{"id": "AB-1", "x-rate": "fast"}',
        '{"id": "AB-1", "other": 1}',
        '```json\n{"id": "ZZ-9"}\n```',
        "[]",
        "nope",
    ]
    timed = schema_reward(schema, timeout=5).score([q(r) for r in responses])
    untimed = schema_reward(schema, timeout=0).score([q(r) for r in responses])
    assert timed.tolist() == untimed.tolist() == [1, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    by_reference = schema_reward(timeout=5).score([q(r, schema) for r in responses])
    assert by_reference.tolist() == timed.tolist()


def test_a_schema_error_found_in_a_worker_fails_its_row_alone():
    schema = {"type": "string", "pattern": "^a", "$ref": "#/$defs/missing"}
    reward = schema_reward(timeout=5)
    res = reward.score_full([q('"abc"', schema), q('"abc"', {"pattern": "^a"})])
    assert math.isnan(res.scores[0]) and res.scores[1] == 1.0
    assert res.stats["failed"] == 1 and "cannot be applied" in res.stats["errors"][0]["error"]
    with pytest.raises(DataError, match="cannot be applied"):
        reward.score_one(q('"abc"', schema))


def test_a_list_of_schemas_passes_when_another_schema_is_met_in_time():
    schemas = [{"type": "string", "pattern": CATASTROPHIC}, {"type": "string", "maxLength": 64}]
    res = schema_reward(timeout=1).score_full([q(json.dumps(HOSTILE), schemas)])
    assert res.scores.tolist() == [1.0] and "failed" not in res.stats


def test_timeout_option_and_identity():
    assert schema_reward(timeout=2).options["timeout"] == 2.0
    assert schema_reward().options["timeout"] == json_schema.DEFAULT_TIMEOUT_S
    assert schema_reward(timeout=2).fingerprint() != schema_reward(timeout=3).fingerprint()
    for bad in (-1, "soon"):
        with pytest.raises(SpecError, match="timeout"):
            schema_reward(timeout=bad)
    hostile = json.dumps(HOSTILE)
    schema = {"type": "string", "pattern": CATASTROPHIC}
    assert json_schema.compute_score(hostile, None, schema=schema, timeout=1) == 0.0


def test_without_a_worker_process_the_check_runs_here(monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    pool = schema_worker.WorkerPool("rewardkit.rewards.rules.schema_worker", "JSON Schema")
    monkeypatch.setattr(schema_worker, "POOL", pool)
    reward = schema_reward({"type": "string", "pattern": "^a+$"}, timeout=1)
    with caplog.at_level(logging.WARNING):
        assert reward.score([q('"aaa"'), q('"ab"')]).tolist() == [1.0, 0.0]
    assert "no worker process" in caplog.text
    assert pool.workers() == []


ORPHAN_PARENT = f"""
import json, threading, time
from rewardkit import Query, load_reward
from rewardkit.rewards.rules import schema_worker
spec = {{"type": "rule", "arg": "json_schema", "schema": {{"type": "string", "pattern": {CATASTROPHIC!r}}},
        "timeout": 600}}
reward = load_reward(spec)
hostile = Query(prompt="", response=json.dumps({HOSTILE!r}))
threading.Thread(target=lambda: reward.score([hostile]), daemon=True).start()
while not schema_worker.POOL.workers():
    time.sleep(0.05)
time.sleep(0.5)
print(schema_worker.POOL.workers()[0].proc.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_busy_worker_whose_caller_died_stops():
    """The caller is killed while its worker spins on a catastrophic pattern: the worker, now
    an orphan that will never read its stdin again, exits within about a CPU second."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PARENT],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    try:
        pid = int(parent.stdout.readline())
        assert _running(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _running(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the orphaned worker kept running"

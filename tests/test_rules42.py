"""Rule workers that die while idle, and verl/Search-R1 ``{"target": array([...])}`` references.

A worker killed while idle (the OOM killer, a signal, its own crash after a job) was handed the
next job: the write failed with EPIPE and closing the dead pipe raised ``BrokenPipeError`` out of
the whole batch. Now the pool drops a dead idle worker before a job, and a worker that dies
before it says it got the job was dead already: the job runs once more on a fresh worker; only a
worker that dies after it got the job counts against that job. Real worker processes, killed
with SIGKILL; no timing (process liveness and exit status only).
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.integrations.verl import compute_score
from rewardkit.rewards.rules import math_worker, regex_worker, schema_worker, sql_exec, worker_pool
from rewardkit.rewards.rules._common import references
from rewardkit.rewards.rules.sql import SqlReward


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def kill_idle(pool: worker_pool.WorkerPool) -> list[int]:
    """SIGKILL every worker of ``pool`` and wait until each is dead, without reaping it (only
    the pool's own check may notice)."""
    pids = [w.proc.pid for w in pool.workers()]
    assert pids, "no worker to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return pids


# -- a pool of a test module: what the job did, counted in a file ------------------------------

PROBE = """
import os, sys
from rewardkit.rewards.rules.worker_pool import serve

def handle(job):
    with open(os.environ["RK42_LOG"], "a") as f:
        f.write(job["do"] + "\\n")
    if job["do"] == "die":
        os._exit(3)
    if job["do"] == "noise":
        print("a library's note", flush=True)
    return {"pid": os.getpid(), "echo": job["do"], "items": job.get("items")}

if __name__ == "__main__":
    serve(handle)
"""

#: A worker that says it is ready, then dies as it reads its first job, before it says it got
#: it: what every fresh worker does with a job whose reading ends it.
MUTE = """
import json, os, sys
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()
with open(os.environ["RK42_LOG"], "a") as f:
    f.write("read\\n")
os._exit(4)
"""


@pytest.fixture
def probe_pool(tmp_path, monkeypatch):
    (tmp_path / "rk42_probe_worker.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "rk42_mute_worker.py").write_text(textwrap.dedent(MUTE))
    paths = [str(tmp_path), *sys.path]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    log = tmp_path / "log.txt"
    monkeypatch.setenv("RK42_LOG", str(log))
    pools: list[worker_pool.WorkerPool] = []

    def make(module: str = "rk42_probe_worker") -> worker_pool.WorkerPool:
        pools.append(worker_pool.WorkerPool(module, "probe"))
        return pools[-1]

    yield make, log
    for pool in pools:
        pool.shutdown()


def lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_worker_dead_while_idle_is_replaced_before_the_job(probe_pool):
    make, log = probe_pool
    pool = make()
    first = pool.run({"do": "a"}, timeout=60)["pid"]
    (killed,) = kill_idle(pool)
    assert killed == first
    answer = pool.run({"do": "b"}, timeout=60)
    assert answer["echo"] == "b" and answer["pid"] != first
    assert lines(log) == ["a", "b"]  # the job ran once, on the fresh worker
    assert [w.proc.pid for w in pool.workers()] == [answer["pid"]]


def test_a_worker_that_dies_after_the_check_runs_the_job_on_a_fresh_one(probe_pool, monkeypatch):
    """The worker dies between the pool's check and the job (the check passed it): it never said
    it got the job, so the job runs once more, on a fresh worker, and is answered."""
    make, log = probe_pool
    pool = make()
    first = pool.run({"do": "a"}, timeout=60)["pid"]
    kill_idle(pool)
    monkeypatch.setattr(worker_pool._Worker, "idle_alive", lambda self: True)
    answer = pool.run({"do": "b"}, timeout=60)
    assert answer["echo"] == "b" and answer["pid"] != first
    assert lines(log) == ["a", "b"]


def test_a_job_that_kills_its_worker_fails_once_and_is_not_run_again(probe_pool):
    make, log = probe_pool
    pool = make()
    with pytest.raises(worker_pool.WorkerDied):
        pool.run({"do": "die"}, timeout=60)
    assert lines(log) == ["die"]  # it got the job, then died: the job's doing, not retried
    assert pool.workers() == []
    assert pool.run({"do": "ok"}, timeout=60)["echo"] == "ok"


def test_a_worker_that_prints_to_its_stdout_is_a_worker_failure(probe_pool):
    """A line that is not JSON (something in the worker printed) was a ``JSONDecodeError``
    out of the whole call; now the worker is dropped and the job fails as ``WorkerDied``."""
    make, log = probe_pool
    pool = make()
    with pytest.raises(worker_pool.WorkerDied, match="not JSON"):
        pool.run({"do": "noise"}, timeout=60)
    assert pool.workers() == [] and lines(log) == ["noise"]
    assert pool.run({"do": "ok"}, timeout=60)["echo"] == "ok"


def test_a_job_whose_reading_kills_every_worker_is_tried_on_two_at_most(probe_pool):
    make, log = probe_pool
    pool = make("rk42_mute_worker")
    with pytest.raises(worker_pool.WorkerDied, match="had exited"):
        pool.run({"do": "x"}, timeout=60)
    assert lines(log) == ["read", "read"]
    assert pool.workers() == []


def test_the_batch_call_survives_a_dead_idle_worker(probe_pool):
    """``run_batches`` (the regex and schema workers' path): no row named as died."""
    make, log = probe_pool
    pool = make()
    pool.run({"do": "warm"}, timeout=60)
    kill_idle(pool)

    def job(chunk: list[str]) -> dict:
        return {"do": "batch", "items": chunk}

    died: list = []
    assert pool.run_batches(["x", "y"], job, "items", 1.0, died=died.append) == ["x", "y"]
    assert died == [] and lines(log) == ["warm", "batch"]


# -- every user of the pool: a harmless response after its idle worker was killed --------------


def _in_thread(fn):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_rule_math_scores_a_right_answer_after_its_idle_worker_was_killed():
    reward = load_reward("rule:math?fast=false")
    good = [q("\\boxed{\\frac{2}{4}}", "0.5")]
    assert _in_thread(lambda: reward.score(good).tolist()) == [1.0]  # off the main thread
    kill_idle(math_worker.POOL)
    full = _in_thread(lambda: reward.score_full(good))
    assert full.scores.tolist() == [1.0] and not full.stats.get("errors")
    assert all(w.alive() for w in math_worker.POOL.workers())


def test_rule_format_after_its_idle_worker_was_killed():
    reward = load_reward("rule:format?pattern=^yes")
    assert reward.score([q("yes")]).tolist() == [1.0]
    kill_idle(regex_worker.POOL)
    full = reward.score_full([q("yes"), q("no")])
    assert full.scores.tolist() == [1.0, 0.0] and not full.stats.get("errors")


def test_rule_json_schema_after_its_idle_worker_was_killed():
    reward = load_reward('rule:json_schema?schema={"type":"integer"}')
    assert reward.score([q("5")]).tolist() == [1.0]
    kill_idle(schema_worker.POOL)
    full = reward.score_full([q("5"), q('"x"')])
    assert full.scores.tolist() == [1.0, 0.0] and not full.stats.get("errors")


def test_rule_sql_after_its_idle_worker_was_killed(tmp_path):
    db = tmp_path / "t.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t(a)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    conn.close()
    reward = SqlReward(db=str(db), memory_mb=88)  # a heap cap of its own: a pool of its own
    gold = "SELECT a FROM t"
    assert reward.score([q(gold, gold)]).tolist() == [1.0]
    kill_idle(sql_exec.pool(88))
    full = reward.score_full([q("SELECT a FROM t ORDER BY a", gold)])
    assert full.scores.tolist() == [1.0] and not full.stats.get("errors")


# -- verl / Search-R1 ground truth: {"target": array([...])} ---------------------------------

#: Search-R1's qa_em data: ``reward_model.ground_truth = {"target": golden_answers}``, a numpy
#: array of strings once verl reads the parquet.
TARGET = {"target": np.array(["Paris", "City of Light"], dtype=object)}


def search_r1(spec: str, response: str, truth=TARGET) -> dict[str, float]:
    return compute_score(
        data_source="searchR1_nq",
        solution_str=response,
        ground_truth=truth,
        extra_info={"index": np.int64(0), "split": "train"},
        spec=spec,
    )


@pytest.mark.parametrize(
    "spec",
    ["rule:exact_match?answer_tag=true", "rule:f1?answer_tag=true", "rule:vqa"],
)
def test_search_r1_target_is_read_as_the_answers(spec):
    right = search_r1(spec, "<think>the capital</think><answer>the city of light</answer>")
    assert right == {"score": 1.0, "applies": 1.0, "failed": 0.0}
    wrong = search_r1(spec, "<think>hmm</think><answer>Lyon</answer>")
    assert wrong == {"score": 0.0, "applies": 1.0, "failed": 0.0}


def test_search_r1_target_of_numpy_strings_and_subem():
    truth = {"target": np.array(["New York", "NYC"])}  # a '<U8' array, not object
    hit = search_r1(
        "rule:exact_match?answer_tag=true&match=substring",
        "<answer>it is new york city</answer>",
        truth,
    )
    assert hit["score"] == 1.0 and hit["failed"] == 0.0


def test_search_r1_empty_target_does_not_apply():
    got = search_r1("rule:exact_match", "<answer>Paris</answer>", {"target": np.array([])})
    assert got == {"score": 0.0, "applies": 0.0, "failed": 0.0}
    assert references({"target": np.array(["", "  "], dtype=object)}, strict=True) == []


def test_target_reaches_rule_math_as_the_answer():
    assert references({"target": np.array(["42"])}) == ["42"]
    reward = load_reward("rule:math")
    assert reward.score([q("\\boxed{42}", {"target": np.array(["42"])})]).tolist() == [1.0]
    assert math.isnan(reward.score([q("\\boxed{42}", {"target": np.array([])})])[0])

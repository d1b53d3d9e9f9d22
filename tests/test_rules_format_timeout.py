"""rule:format's time limit: a user ``pattern`` that backtracks without end cannot stall a
process, and searching in the worker finds exactly what ``re`` finds in-process."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import format as format_rule
from rewardkit.rewards.rules import regex_worker, worker_pool

#: An everyday pattern ("words separated by single spaces") that backtracks 2^40 times on
#: forty letters and a "!": hours in Python's ``re``, holding the GIL.
CATASTROPHIC = r"^(\w+\s?)*$"
HOSTILE = "a" * 40 + "!"


def q(response: str) -> Query:
    return Query(prompt="", response=response)


def format_reward(**options):
    return load_reward({"type": "rule", "arg": "format", **options})


def test_a_catastrophic_pattern_gives_up_only_the_slow_response_and_names_it():
    reward = format_reward(pattern=CATASTROPHIC, timeout=1)
    queries = [q("hello world"), q(HOSTILE), q("two words"), q("x!")]
    t0 = time.monotonic()
    res = reward.score_full(queries)
    assert time.monotonic() - t0 < 30
    assert res.scores.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert res.stats["failed"] == 1
    (error,) = res.stats["errors"]
    assert error["index"] == 1 and error["score"] == 0.0
    assert "did not finish in 1 s" in error["error"]
    # the worker gave up one search and lives on: the next batch reuses it
    before = regex_worker.POOL.workers()
    assert reward.score([q("a b"), q("a  b")]).tolist() == [1.0, 0.0]
    assert regex_worker.POOL.workers() == before and all(w.alive() for w in before)


def test_a_hostile_response_scored_in_a_thread_leaves_the_process_responsive():
    """A server scores from worker threads; the caller's GIL stays free while the worker spins."""
    reward = format_reward(pattern=CATASTROPHIC, timeout=3)
    done: list[float] = []
    worker = threading.Thread(target=lambda: done.extend(reward.score([q(HOSTILE)]).tolist()))
    worker.start()
    ticks, t0 = 0, time.monotonic()
    while worker.is_alive() and time.monotonic() - t0 < 60:
        time.sleep(0.01)
        ticks += 1
    worker.join(timeout=60)
    assert done == [0.0]
    assert ticks > 50  # the main thread ran throughout the 3 s search


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.sampled_from(
        [
            r"^<think>.*?</think>\s*<answer>.*?</answer>$",
            r"(?m)\A<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$",
            r"(?i)answer:\s*\d+",
            r"(?a)^\w+$",
            r"\\boxed\{[^}]*\}",
            r"(?m)^- ",
            r"",
        ]
    ),
    texts=st.lists(
        st.lists(st.sampled_from([*"ab1 \n-:<>/\\{}éÅ٣", "<think>", "</answer>"])).map("".join),
        max_size=12,
    ),
)
def test_the_worker_finds_what_re_finds_in_process(pattern, texts):
    timed = format_reward(pattern=pattern, timeout=5)
    untimed = format_reward(pattern=pattern, timeout=0)
    queries = [q(t) for t in texts]
    expected = [1.0 if re.search(pattern, t, re.DOTALL) else 0.0 for t in texts]
    assert timed.score(queries).tolist() == expected
    assert untimed.score(queries).tolist() == expected


def test_many_responses_cross_worker_calls_in_order():
    n = 2 * worker_pool.BATCH + 7
    texts = [f"<answer>{i}</answer>" if i % 3 else f"no {i}" for i in range(n)]
    scores = format_reward(pattern=r"<answer>\d+</answer>").score([q(t) for t in texts])
    assert scores.tolist() == [0.0 if i % 3 == 0 else 1.0 for i in range(n)]


def test_texts_json_cannot_carry_plainly_still_reach_the_worker():
    texts = ["a\x00b", "lone \ud800 surrogate", "\u2028line", "é" * 1000]
    scores = format_reward(pattern=r"\x00|\ud800|\u2028|é{1000}").score([q(t) for t in texts])
    assert scores.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_a_worker_that_stops_answering_is_killed_and_its_rows_named(monkeypatch):
    monkeypatch.setattr(worker_pool, "batch_deadline", lambda count, timeout: 0.5)
    reward = format_reward(pattern=CATASTROPHIC, timeout=60)
    t0 = time.monotonic()
    res = reward.score_full([q("fine"), q(HOSTILE)])
    assert time.monotonic() - t0 < 30
    assert res.scores.tolist() == [0.0, 0.0]
    assert res.stats["failed"] == 2
    assert all("did not answer in time" in e["error"] for e in res.stats["errors"])
    assert all(w.alive() for w in regex_worker.POOL.workers())


def test_timeout_option_identity_and_validation():
    timed = format_reward(pattern="^a$")
    assert timed.identity()["timeout"] == format_rule.DEFAULT_TIMEOUT_S
    assert "timeout" not in format_reward(pattern="^a$", timeout=0).identity()
    # the built-in layouts are linear-time: searched here, identity as before the option
    assert format_reward().identity() == {
        "class": "FormatReward",
        "pattern": format_rule.tags_pattern(format_rule.DEFAULT_TAGS),
    }
    assert format_reward(pattern="^a$", timeout=2).identity() != timed.identity()
    for bad in (-1, "soon"):
        with pytest.raises(SpecError, match="timeout"):
            format_reward(pattern="^a$", timeout=bad)
    with pytest.raises(SpecError, match="not a valid regex"):
        format_reward(pattern="(unclosed")


def test_compute_score_has_the_same_limit():
    t0 = time.monotonic()
    assert format_rule.compute_score(HOSTILE, None, pattern=CATASTROPHIC, timeout=1) == 0.0
    assert format_rule.compute_score("a b", None, pattern=CATASTROPHIC, timeout=1) == 1.0
    assert format_rule.compute_score("<think>x</think><answer>y</answer>") == 1.0
    assert time.monotonic() - t0 < 30


def test_without_a_worker_process_the_search_runs_here(monkeypatch, caplog):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    pool = regex_worker.WorkerPool("rewardkit.rewards.rules.regex_worker", "regex")
    monkeypatch.setattr(regex_worker, "POOL", pool)
    reward = format_reward(pattern="^a+$", timeout=1)
    with caplog.at_level(logging.WARNING):
        assert reward.score([q("aaa"), q("ab")]).tolist() == [1.0, 0.0]
    assert "no worker process" in caplog.text and "without a time limit" in caplog.text
    assert pool.workers() == []


#: The reward forked children inherit, with its worker already started by the parent.
_INHERITED = []


def _mean_in_child(k: int) -> tuple[int, float]:
    texts = [f"yes{i}" if k % 2 == 0 else f"no{i}" for i in range(1500)]
    return k, float(_INHERITED[0].score([q(t) for t in texts]).mean())


def test_forked_children_never_share_the_parents_worker():
    """Children forked after the parent started a worker used it too: their jobs interleaved on
    one pipe and each read the others' answers (means like 0.38 where 1.0 or 0.0 was right)."""
    import multiprocessing

    reward = format_reward(pattern=r"^yes\d+$")
    assert reward.score([q("yes1")]).tolist() == [1.0]  # the parent's worker is running
    _INHERITED[:] = [reward]
    try:
        with multiprocessing.get_context("fork").Pool(3) as pool:
            means = dict(pool.map(_mean_in_child, range(9)))
    finally:
        _INHERITED.clear()
    assert means == {k: 1.0 if k % 2 == 0 else 0.0 for k in range(9)}
    before = regex_worker.POOL.workers()
    assert reward.score([q("yes2"), q("no")]).tolist() == [1.0, 0.0]  # the parent's still works
    assert regex_worker.POOL.workers() == before and all(w.alive() for w in before)

"""Curate and client, round 3: identical preference sides are not exported as trainer rows,
``curate lengths`` prints the one-line JSON summary every verb prints, and the HTTP clients split
a call larger than the server's ``--max-items`` into requests it accepts (a real server on
loopback)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.client import AsyncRewardClient, RewardClient, RewardServerError
from rewardkit.client_batches import Parts
from rewardkit.data import write_jsonl
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import Limits
from rewardkit.types import Example, user

runner = CliRunner()


# -- 1. a pair whose chosen text is its rejected text gives no trainer row ----------------------
@pytest.fixture
def same_sides(tmp_path):
    exs = [
        Example("ok", [user("q1")], ["a full answer", "no"], [0]),
        Example("same", [user("q2")], ["the same text", "the same text"], [0]),
        # three responses: chosen 0 against 1 (identical) and 2 (a real pair)
        Example("multi", [user("q3")], ["yes, 4", "yes, 4", "5"], [0]),
        Example("tie", [user("q4")], ["a", "b"], [0, 1]),
    ]
    path = tmp_path / "in.jsonl"
    write_jsonl(exs, path)
    return path


def _summary(res) -> dict:
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout  # stdout is the one JSON line
    return json.loads(lines[0])


@pytest.mark.parametrize("to", ["trl", "openrlhf"])
def test_export_skips_pairs_with_identical_sides_and_counts_them(same_sides, tmp_path, to):
    out = tmp_path / "o.jsonl"
    args = ["curate", "export", "--data", str(same_sides), "--out", str(out), "--to", to]
    s = _summary(runner.invoke(app, args))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["chosen"][-1]["content"] for r in rows] == ["a full answer", "yes, 4"]
    assert all(r["chosen"] != r["rejected"] for r in rows)
    assert s["written"] == 2 and s["skipped_identical"] == 2 and s["skipped_no_pair"] == 1


def test_export_first_pair_identical_and_jsonl_keeps_the_examples(same_sides, tmp_path):
    out = tmp_path / "o.jsonl"
    base = ["curate", "export", "--data", str(same_sides), "--out", str(out)]
    s = _summary(runner.invoke(app, [*base, "--to", "trl", "--pairs", "first"]))
    assert s["written"] == 1 and s["skipped_identical"] == 2  # "same" and multi's (0, 1)
    s = _summary(runner.invoke(app, [*base, "--to", "jsonl"]))
    assert s["written"] == 4 and s["skipped_identical"] == 0  # data, not trainer rows


def test_other_verbs_with_a_trainer_format_report_identical_pairs(same_sides, tmp_path):
    out = tmp_path / "o.jsonl"
    common = ["--data", str(same_sides), "--out", str(out)]
    dedup = ["curate", "dedup", *common, "--to", "trl", "--keep-degenerate"]
    s = _summary(runner.invoke(app, dedup))
    assert s["degenerate"] == 2 and s["skipped_identical"] == 2 and s["written"] == 2
    top = ["curate", "filter", *common, "--to", "openrlhf", "-r", "rule:length", "--value", "1"]
    s = _summary(runner.invoke(app, top))
    assert s["skipped_identical"] == 2
    assert len(out.read_text().splitlines()) == s["written"] == 2


# -- 2. curate lengths prints the one-line JSON summary ------------------------------------------
def test_lengths_prints_a_one_line_json_summary(tmp_path):
    exs = [
        Example(f"e{i}", [user(f"q{i}")], ["a long and careful answer", "no"], [0], subset="s")
        for i in range(4)
    ]
    data, out = tmp_path / "in.jsonl", tmp_path / "bal.jsonl"
    write_jsonl(exs, data)
    s = _summary(runner.invoke(app, ["curate", "lengths", "--data", str(data)]))
    assert s["examples"] == 4 and s["flagged"] == ["s"]
    assert s["groups"]["s"]["n_pairs"] == 4 and s["groups"]["s"]["length_accuracy"] == 1.0
    s = _summary(runner.invoke(app, ["curate", "lengths", "--data", str(data), "--out", str(out)]))
    assert s["written"] == len(out.read_text().splitlines()) and s["out"] == str(out)


def test_lengths_without_pairs_is_a_summary_too(tmp_path):
    data = tmp_path / "ties.jsonl"
    write_jsonl([Example("t", [user("q")], ["a", "bb"], [0, 1])], data)
    res = runner.invoke(app, ["curate", "lengths", "--data", str(data)])
    s = _summary(res)
    assert s["examples"] == 1 and s["groups"] == {} and s["flagged"] == []
    assert "no labelled pairs in 1 examples" in res.stderr


# -- 3. the client splits a call past the server's --max-items ---------------------------------
ITEMS = [{"id": f"i{k}", "prompt": "q", "response": "x" * (k + 1)} for k in range(20)]
ITEMS[13] = {"id": 13, "response": 5}  # an invalid item: its error stays its own


@pytest.fixture(scope="module")
def servers():
    small = BackgroundServer(
        create_app(
            ServeConfig(
                rewards={"default": "rule:length"},
                limits=Limits(max_items=8, max_body_bytes=4096),
            )
        )
    )
    big = BackgroundServer(create_app(ServeConfig(rewards={"default": "rule:length"})))
    with small, big:
        yield small, big


def _reference(url: str) -> list[dict]:
    with RewardClient(url, retries=0) as rc:
        return rc.score(ITEMS)


def _same(a: list[dict], b: list[dict]) -> bool:
    drop = lambda rs: [{k: v for k, v in r.items() if k != "cached"} for r in rs]  # noqa: E731
    return drop(a) == drop(b)


def test_raw_server_refuses_the_batch_that_the_client_now_splits(servers):
    small, _ = servers
    answer = httpx.post(small.url + "/v1/rewards", json={"items": ITEMS}, timeout=30)
    assert answer.status_code == 413 and "limit of 8" in answer.json()["error"]["message"]


def test_client_learns_the_limit_from_the_413_and_joins_results_in_order(servers):
    small, big = servers
    expected = _reference(big.url)
    with RewardClient(small.url, retries=0) as rc:
        got = rc.score(ITEMS)
        assert rc.max_items == 8  # learned, so the next call sends no oversized request
        again = rc.rewards(ITEMS)
    assert _same(got, expected) and len(got) == 20
    assert [r["id"] for r in got] == [it["id"] for it in ITEMS]
    assert got[13]["error"]["type"] == "invalid_item" and got[13]["reward"] is None
    assert again == [r["reward"] for r in expected]


def test_client_max_items_parameter_splits_up_front(servers):
    small, big = servers
    with RewardClient(small.url, retries=0, max_items=3) as rc:
        assert _same(rc.score(ITEMS), _reference(big.url))
    with pytest.raises(ValueError, match="max_items"):
        RewardClient(small.url, max_items=0)


def test_async_client_splits_too(servers):
    small, big = servers

    async def go() -> tuple[list[dict], int | None]:
        async with AsyncRewardClient(small.url, retries=0) as rc:
            return await rc.score(ITEMS), rc.max_items

    got, learned = asyncio.run(go())
    assert _same(got, _reference(big.url)) and learned == 8


def test_a_body_past_the_byte_limit_is_halved_for_this_call_only(servers):
    small, big = servers
    long = [{"id": k, "response": str(k) * 1000} for k in range(10)]  # ~10 KB > 4,096 bytes
    with RewardClient(big.url, retries=0) as rc:
        expected = rc.score(long)
    with RewardClient(small.url, retries=0) as rc:
        assert _same(rc.score(long), expected)
        assert rc.max_items is None  # a byte limit is not an item limit


def test_a_413_that_smaller_parts_cannot_help_is_raised(servers):
    small, _ = servers
    huge = [{"id": 0, "response": "x" * 5000}]  # one item past max_body_bytes
    with RewardClient(small.url, retries=0) as rc, pytest.raises(RewardServerError) as err:
        rc.score(huge)
    assert err.value.status == 413 and err.value.type == "body_too_large"


def test_an_unstated_item_limit_is_read_from_info_else_halved():
    client = SimpleNamespace(max_items=None)
    unstated = RewardServerError(413, "too_many_items", "too many items")
    parts = Parts([{"id": k} for k in range(20)], client)
    assert next(iter(parts)) == parts.items and parts.asks_info(unstated)
    parts.refused(unstated, {"limits": {"max_items": 6}})
    assert parts.size == client.max_items == 6
    parts.refused(unstated, None)  # the info said 6, and 6 were refused: halve
    assert parts.size == client.max_items == 3
    with pytest.raises(RewardServerError, match="queue_full"):
        parts.refused(RewardServerError(503, "queue_full", "full"))
    one = Parts([{"id": 0}], SimpleNamespace(max_items=None))
    with pytest.raises(RewardServerError, match="too many"):
        one.refused(unstated, {"limits": {"max_items": 4096}})


def test_a_413_for_the_route_queue_is_raised_not_split():
    """More new items than a route's whole queue (``--max-queue``) is the operator's sizing,
    raised as before (docs/serving.md, "Backpressure and shutdown")."""
    queue = RewardServerError(
        413,
        "too_many_items",
        "the request holds 3 new items for route 'default', whose queue holds at most 2 "
        "(max_queue); send at most 2 new items per request",
    )
    parts = Parts([{"id": k} for k in range(3)], SimpleNamespace(max_items=None))
    assert not parts.asks_info(queue)
    with pytest.raises(RewardServerError, match="max_queue"):
        parts.refused(queue)

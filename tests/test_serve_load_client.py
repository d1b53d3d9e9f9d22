"""benchmarks/http_load.py, the cheap client of benchmarks/serve_load.py, against a real server
on loopback: answers match httpx's, connections are kept alive, errors come back as statuses."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from http_load import Connection, percentile, post_session


def test_raw_client_reads_what_httpx_reads_over_one_kept_alive_connection():
    app = create_app(ServeConfig(rewards={"default": "rule:length"}))
    items = [{"id": i, "prompt": "q", "response": "x" * (i + 1)} for i in range(5)]
    with BackgroundServer(app) as srv:
        expected = [
            httpx.post(srv.url + "/v1/rewards", json={"items": [it]}, timeout=30).json()
            for it in items
        ]

        async def go() -> tuple[list, tuple[int, object], int]:
            host, _, port = srv.url.removeprefix("http://").partition(":")
            conn = Connection(host, int(port))
            answers = [await conn.post("/v1/rewards", {"items": [it]}) for it in items]
            writer = conn._writer
            bad = await conn.post("/v1/rewards", {"items": "not a list"})
            same = conn._writer is writer  # one connection for all of them
            await conn.close()
            return answers, bad, same

        answers, bad, same = asyncio.run(go())
    assert [status for status, _ in answers] == [200] * 5
    for (_, body), first in zip(answers, expected, strict=True):
        assert body["results"][0]["cached"] is True  # httpx asked first: from the cache now
        assert body["results"][0] | {"cached": False} == first["results"][0]
    assert bad[0] == 422 and bad[1]["error"]["type"] == "invalid_request"
    assert same


def test_post_session_gives_both_clients_one_signature():
    app = create_app(ServeConfig(rewards={"default": "rule:length"}, cache_bytes=0))
    with BackgroundServer(app) as srv:

        async def go(client: str) -> tuple[int, object]:
            async with post_session(srv.url, 2, client) as post:
                return await post(1, "/v1/rewards", {"items": [{"response": "abc"}]})

        raw, via_httpx = asyncio.run(go("raw")), asyncio.run(go("httpx"))
    assert raw == via_httpx and raw[0] == 200


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0  # rank ceil(0.50 * 100) = 50
    assert percentile(values, 99) == 99.0  # rank 99 (round(99.5) gave 100 before)
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0  # rank ceil(1.5) = 2
    assert percentile([3.0], 99) == 3.0

"""A cheap closed-loop HTTP/1.1 load generator for ``serve_load.py``, and its process measures.

On a 2-core machine the load generator shares the cores with the server it measures, so its own
cost per request is part of what it measures: httpx's async client spent about 5 ms of CPU per
single-item request (2.7 s for 512). This client writes each request by hand on a keep-alive
asyncio stream per worker and reads the answer by ``Content-Length``, about a tenth of that
(``serve_load.py`` prints its CPU seconds beside the server's). Only what the rewardkit server
answers is understood: ``Content-Length`` bodies, ``Connection: close`` honoured by reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any


class HttpError(Exception):
    """The server answered something this client cannot read, or closed the connection."""


class Connection:
    """One keep-alive connection: ``post(path, obj)`` → ``(status, decoded JSON or text)``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, obj: Any) -> tuple[int, Any]:
        body = json.dumps(obj, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(head + body)
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed before an answer: {exc}") from exc
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            await self.close()
            raise HttpError(f"HTTP {status} without Content-Length")
        data = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        if headers.get("content-type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data.decode("utf-8", "replace")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


@contextlib.asynccontextmanager
async def post_session(
    url: str, connections: int, client: str
) -> AsyncIterator[Callable[[int, str, Any], Awaitable[tuple[int, Any]]]]:
    """``post(conn, path, obj) -> (status, body)`` over ``connections`` keep-alive connections."""
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as session:

            async def post_httpx(conn: int, path: str, obj: Any) -> tuple[int, Any]:
                r = await session.post(path, json=obj)
                is_json = r.headers.get("content-type", "").startswith("application/json")
                return r.status_code, r.json() if is_json else r.text

            yield post_httpx
        return
    host, _, port = url.removeprefix("http://").partition(":")
    pool = [Connection(host, int(port)) for _ in range(connections)]
    try:

        async def post_raw(conn: int, path: str, obj: Any) -> tuple[int, Any]:
            return await pool[conn].post(path, obj)

        yield post_raw
    finally:
        for c in pool:
            await c.close()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

"""A fault-injecting HTTP server on loopback, for testing clients against misbehaving endpoints.

It forwards each request to a real ``upstream`` URL, or answers itself with ``handler(path,
body) -> (status, json)``. Before answering it may inject, at set rates: a 429 with
``Retry-After``, a 500, a slow answer (sleeps ``slow_seconds`` first), or a dropped connection
(closes the socket without a response). Which fault a request gets is a seeded function of
(its path and body, how many times that same request was seen before), so a run is
reproducible whatever the arrival order and a retried request can recover. It counts what it
saw and keeps arrival times, so tests can check retry counts and the rate a client achieved.

    with FaultProxy(handler=echo_handler, faults=Faults(rate_429=0.2, seed=1)) as proxy:
        client = HttpClient(proxy.url)
        ...
        proxy.counts["429"], proxy.arrivals
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[str, Any], tuple[int, Any]]

#: Actions the proxy takes, in the order their rates are laid out on [0, 1).
FAULTS = ("429", "500", "slow", "drop")


@dataclass(frozen=True)
class Faults:
    """Rates (each in [0, 1], summing to at most 1) and shapes of injected faults."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_slow: float = 0.0
    rate_drop: float = 0.0
    retry_after: float = 0.05
    slow_seconds: float = 0.3
    seed: int = 0

    def action(self, key: str, nth: int) -> str:
        """The action for the ``nth`` (0-based) arrival of the request ``key``: a fault or "ok"."""
        u = random.Random(f"{self.seed}:{key}:{nth}").random()
        edge = 0.0
        for name, rate in zip(
            FAULTS, (self.rate_429, self.rate_500, self.rate_slow, self.rate_drop), strict=True
        ):
            edge += rate
            if u < edge:
                return name
        return "ok"


def echo_handler(path: str, body: Any) -> tuple[int, Any]:
    """Answers ``{"path", "echo": body, "usage"}`` with a usage block derived from the body."""
    text = json.dumps(body, sort_keys=True)
    return 200, {
        "path": path,
        "echo": body,
        "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": 1},
    }


class FaultProxy:
    """The server (see the module docstring). ``counts``: "seen" plus one entry per action;
    ``paths``: requests per path;
    ``arrivals``: monotonic arrival times; ``log``: (key, nth, action) per request;
    ``authorization``: the Authorization headers received (to check a key was sent)."""

    def __init__(
        self,
        *,
        upstream: str | None = None,
        handler: Handler | None = None,
        faults: Faults | None = None,
        always_fail: Callable[[Any], bool] | None = None,
    ) -> None:
        if (upstream is None) == (handler is None):
            raise ValueError("give exactly one of upstream= or handler=")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.handler = handler
        self.faults = faults or Faults()
        self.always_fail = always_fail
        self.counts: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.arrivals: list[float] = []
        self.log: list[tuple[str, int, str]] = []
        self.authorization: set[str] = set()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._forward: Any = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget counts, arrivals and the per-request history (faults replay from the start)."""
        with self._lock:
            self.counts.clear()
            self.paths.clear()
            self.arrivals.clear()
            self.log.clear()
            self._seen.clear()

    def max_in_window(self, seconds: float) -> int:
        """The largest number of arrivals inside any window of ``seconds``."""
        times = sorted(self.arrivals)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def rate(self) -> float:
        """Requests per second over the run: 1 / the least-squares slope of the sorted arrival
        times against their rank (robust to one late first or early last arrival)."""
        times = sorted(self.arrivals)
        n = len(times)
        if n < 2:
            return 0.0
        mean_i, mean_t = (n - 1) / 2, sum(times) / n
        num = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times))
        den = sum((i - mean_i) ** 2 for i in range(n))
        return den / num if num > 0 else float("inf")

    def _decide(self, path: str, raw: bytes, body: Any) -> str:
        key = hashlib.sha256(path.encode() + b"\0" + raw).hexdigest()[:16]
        with self._lock:
            nth = self._seen[key]
            self._seen[key] += 1
            if self.always_fail is not None and self.always_fail(body):
                action = "500"
            else:
                action = self.faults.action(key, nth)
            self.counts["seen"] += 1
            self.paths[path] += 1
            self.counts[action] += 1
            self.arrivals.append(time.monotonic())
            self.log.append((key, nth, action))
        return action

    def _answer(
        self, method: str, path: str, raw: bytes, body: Any, headers: Any
    ) -> tuple[int, bytes]:
        if self.handler is not None:
            status, payload = self.handler(path, body)  # bytes go as they are (not JSON)
            return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        forward = {
            k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization")
        }
        response = self._forward.request(method, self.upstream + path, content=raw, headers=forward)
        return response.status_code, response.content

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _send(
                self, status: int, payload: bytes, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                auth = self.headers.get("Authorization")
                if auth:
                    with proxy._lock:
                        proxy.authorization.add(auth)
                action = proxy._decide(self.path, raw, body)
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "429":
                    err = {"error": {"type": "rate_limited", "message": "slow down"}}
                    self._send(
                        429,
                        json.dumps(err).encode(),
                        {"Retry-After": f"{proxy.faults.retry_after:g}"},
                    )
                    return
                if action == "500":
                    err = {"error": {"type": "internal", "message": "injected failure"}}
                    self._send(500, json.dumps(err).encode())
                    return
                if action == "slow":
                    time.sleep(proxy.faults.slow_seconds)
                status, payload = proxy._answer(self.command, self.path, raw, body, self.headers)
                try:
                    self._send(status, payload)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    self.close_connection = True

            do_POST = do_GET = do_PUT = _handle

        return _Handler

    def start(self) -> FaultProxy:
        if self.upstream is not None:
            import httpx

            self._forward = httpx.Client(timeout=60.0)

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = _Server(("127.0.0.1", 0), self._make_handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._forward is not None:
            self._forward.close()
            self._forward = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

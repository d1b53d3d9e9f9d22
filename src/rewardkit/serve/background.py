"""Run the app on uvicorn in a background thread (tests, notebooks, benchmarks, adapters).

    with BackgroundServer(create_app(config)) as server:
        RewardClient(server.url).score(...)

A rewardkit app (from ``create_app``) runs with its config's connection limits and deadlines
(:func:`rewardkit.serve.connections.uvicorn_options`), as under ``rewardkit serve``. The socket is
bound before the thread starts (port 0 picks a free port), so ``url`` is valid at
once; :meth:`BackgroundServer.stop` shuts down gracefully (in-flight requests finish first).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` from a daemon thread."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_timeout: float = 30.0,
        log_level: str = "warning",
    ) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        options: dict[str, Any] = {"timeout_graceful_shutdown": graceful_timeout}
        state = getattr(getattr(app, "state", None), "rewardkit", None)
        if state is not None:  # a rewardkit app: its connection limits and deadlines apply
            from rewardkit.serve.connections import uvicorn_options

            options = {
                **uvicorn_options(
                    state.config,
                    state.count_refused_connection,
                    state.count_protocol_answer,
                    state.unsent,
                ),
                **options,
            }
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

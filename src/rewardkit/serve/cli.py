"""Run a :class:`ServeConfig` on uvicorn (one process) or Ray Serve (``--ray --replicas N``)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import check_bind

API_KEY_ENV = "REWARDKIT_API_KEY"


def default_threads() -> int:
    """torch threads for a server: one per core, as offline scoring uses (the event loop's
    per-request work is small beside a model batch; docs/serving.md, "CPU servers")."""
    return max(1, os.cpu_count() or 1)


def parse_routes(reward: str | None, routes: Sequence[str]) -> dict[str, str]:
    """``--reward SPEC`` (the ``default`` route) plus ``--route DATA_SOURCE=SPEC`` pairs."""
    out: dict[str, str] = {}
    if reward:
        out["default"] = reward
    for text in routes:
        name, eq, spec = text.partition("=")
        if not eq or not name.strip() or not spec.strip():
            raise ValueError(f"--route expects DATA_SOURCE=SPEC, got {text!r}")
        if name.strip() in out:
            raise ValueError(f"route {name.strip()!r} is given twice")
        out[name.strip()] = spec.strip()
    if not out:
        raise ValueError("nothing to serve: give --reward SPEC and/or --route DATA_SOURCE=SPEC")
    return out


def resolve_key(api_key: str | None) -> str | None:
    """``--api-key`` or ``$REWARDKIT_API_KEY``; None when neither is set."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    return key if key else None


def _stopped(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler while uvicorn serves: reached only through uvicorn's re-raise after
    its drain (uvicorn handles the signal itself while it runs), so the server has stopped."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ray: bool = False,
    replicas: int = 1,
    log_level: str = "info",
) -> None:
    """Check the bind address, then serve ``config`` until interrupted (SIGINT/SIGTERM drain
    for at most ``config.graceful_timeout`` seconds)."""
    check_bind(host, config.api_key)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    if ray:
        from rewardkit.serve import ray_app

        ray_app.run(config, host=host, port=port, replicas=replicas)
        return
    import uvicorn

    from rewardkit.serve.app import create_app
    from rewardkit.serve.connections import uvicorn_options
    from rewardkit.serve.state import ServeState

    state = ServeState(config)

    class DrainingServer(uvicorn.Server):
        """uvicorn, but a shutdown signal first starts the app's drain, so accepted requests are
        answered (result or JSON 503) before uvicorn's own graceful timeout cancels them."""

        stop_signal: int | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.stop_signal = sig
            grace = config.graceful_timeout
            state.begin_drain(max(0.0, grace - min(1.0, 0.2 * grace)))
            super().handle_exit(sig, frame)

    server = DrainingServer(
        uvicorn.Config(
            create_app(state=state),
            host=host.strip("[]"),  # "[::1]" is written with brackets, bound without
            port=port,
            log_level=log_level,
            **uvicorn_options(
                config, state.count_refused_connection, state.count_protocol_answer, state.unsent
            ),
        )
    )
    # uvicorn re-raises the SIGTERM it drained on once it has shut down, into the handler it
    # found: this one ends the process at once with 0, as `serve --ray` does (the process ended
    # by the signal, -15, where a supervisor counts a clean stop as a failure)
    main = threading.current_thread() is threading.main_thread()  # else uvicorn sets none
    previous = signal.signal(signal.SIGTERM, _stopped) if main else None
    try:
        server.run()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    if server.stop_signal == signal.SIGINT:
        # uvicorn re-raises the signal it stopped on, but not where SIGINT is ignored (a parent
        # that ignores it passes that on): stop as a Ctrl-C does either way (exit 130, said)
        raise KeyboardInterrupt
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
        # a model batch still running in a worker thread: do not wait for it past the timeout
        logging.getLogger("rewardkit.serve").warning("exiting with a batch still running")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

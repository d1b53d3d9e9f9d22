"""``rewardkit serve``: turn command-line options into a :class:`ServeConfig` and run it on
uvicorn (one process) or Ray Serve (``--ray --replicas N``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.security import Limits, check_bind

API_KEY_ENV = "REWARDKIT_API_KEY"


def default_threads() -> int:
    """torch threads for a server: one core fewer than the machine has (at least 1), so the
    event loop never preempts a torch thread in the middle of a parallel op."""
    return max(1, (os.cpu_count() or 2) - 1)


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


def serve(
    *,
    reward: str | None,
    routes: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    engine: dict[str, Any] | None = None,
    max_wait_ms: float = 5.0,
    batch_token_budget: int = 65536,
    max_batch_items: int = 256,
    max_queue: int = 4096,
    length_slack: float = 0.25,
    min_chunk_tokens: int = 2048,
    max_body_bytes: int = 8 * 1024 * 1024,
    max_items: int = 4096,
    max_item_chars: int = 200_000,
    cache_size: int = 100_000,
    cache_dir: str | None = None,
    rule_workers: int = 4,
    nan_reward: float = 0.0,
    log_content: bool = False,
    ray: bool = False,
    replicas: int = 1,
    graceful_timeout: float = 30.0,
    log_level: str = "info",
) -> None:
    """Build the config, check the bind address, and serve until interrupted."""
    from rewardkit.serve.app import ServeConfig

    key = api_key or os.environ.get(API_KEY_ENV) or None
    check_bind(host, key)
    engine = dict(engine or {})
    if engine.get("threads") is None:
        engine["threads"] = default_threads()
    config = ServeConfig(
        rewards=parse_routes(reward, routes),
        engine=engine,
        batch=BatcherConfig(
            token_budget=batch_token_budget,
            max_batch_items=max_batch_items,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            length_slack=length_slack,
            min_chunk_tokens=min_chunk_tokens,
        ),
        limits=Limits(
            max_body_bytes=max_body_bytes, max_items=max_items, max_item_chars=max_item_chars
        ),
        api_key=key,
        cache_size=cache_size,
        cache_dir=cache_dir,
        rule_workers=rule_workers,
        log_content=log_content,
        nan_reward=nan_reward,
    )
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO))
    if ray:
        from rewardkit.serve import ray_app

        ray_app.run(config, host=host, port=port, replicas=replicas)
        return
    import uvicorn

    from rewardkit.serve.app import create_app

    app = create_app(config)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
    )

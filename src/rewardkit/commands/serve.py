"""``rewardkit serve``: the options build a :class:`ServeConfig` directly; every default is read
from :class:`ServeConfig`, :class:`BatcherConfig` and :class:`Limits` (written once, there)."""

from __future__ import annotations

from typing import Annotated

import typer

from rewardkit.cli_errors import finite, nonempty_path, number_in, user_errors
from rewardkit.commands.options import (
    DEFAULT_CACHE,
    DeviceOpt,
    DtypeOpt,
    MaxLengthOpt,
    TokenBudgetOpt,
    TruncationOpt,
    engine_defaults,
)
from rewardkit.engine.config import MAX_THREADS
from rewardkit.serve.batcher import BatcherConfig as B
from rewardkit.serve.config import ServeConfig as S
from rewardkit.serve.security import Limits as L

#: Largest ``--backlog``: listen() takes a C int (2**70 was an OverflowError at bind), and the
#: kernel cuts the queue to net.core.somaxconn (4,096 by default on Linux) anyway.
MAX_BACKLOG = 65535
#: Longest ``--max-wait-ms``: a minute between arrivals (default 5 ms). With 2**70 a lone
#: request waited for company without end: the server started and never answered it.
MAX_WAIT_MS = 60_000.0
#: Longest ``--graceful-timeout``, ``--header-timeout``, ``--body-timeout``, ``--write-timeout``:
#: a day (2**70 s was taken: a timer that never fires turns the slow-client cut-off off).
MAX_SECONDS = 86_400.0
#: Largest ``--body-budget-mb``, ``--unsent-budget-mb`` and ``--cache-mb``: 1 TiB of memory.
MAX_BUDGET_MB = float(2**20)
#: Largest ``--batch-token-budget``: a billion estimated tokens (about 4 GB of text per batch).
MAX_BATCH_TOKENS = 10**9
#: Largest ``--max-batch-items`` and ``--max-queue``: a million items (2**70 was taken).
MAX_QUEUE_ITEMS = 1_000_000
#: Largest ``--max-body-bytes``: 1 TiB, as the memory budgets (2**70 turned the limit off).
MAX_BODY_BYTES = 2**40
#: Largest ``--max-items`` per request: ten million.
MAX_REQUEST_ITEMS = 10_000_000
#: Largest ``--max-item-chars``: a billion characters per item.
MAX_ITEM_CHARS = 10**9


def serve_command(
    reward: Annotated[
        str | None, typer.Option("--reward", "-r", help="Reward spec of the default route.")
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(help="DATA_SOURCE=SPEC (repeatable): items with that data_source use SPEC."),
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address (non-loopback needs --api-key).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Bearer token required on every endpoint but /health "
            "(default: $REWARDKIT_API_KEY)."
        ),
    ] = None,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            callback=number_in(0, MAX_WAIT_MS),
            help=f"Longest gap between arrivals a filling batch waits for (0-{MAX_WAIT_MS:,.0f}).",
        ),
    ] = B.max_wait_ms,
    batch_token_budget: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_BATCH_TOKENS),
            help=f"Estimated tokens per dynamic batch (1-{MAX_BATCH_TOKENS:,}).",
        ),
    ] = B.token_budget,
    max_batch_items: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_QUEUE_ITEMS),
            help=f"Most items per dynamic batch (1-{MAX_QUEUE_ITEMS:,}).",
        ),
    ] = B.max_batch_items,
    max_queue: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_QUEUE_ITEMS),
            help=f"Items waiting per reward before 503 + Retry-After (1-{MAX_QUEUE_ITEMS:,}).",
        ),
    ] = B.max_queue,
    max_body_bytes: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_BODY_BYTES),
            help=f"Largest request body (413 above; 1-{MAX_BODY_BYTES:,}, 1 TiB).",
        ),
    ] = L.max_body_bytes,
    max_items: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_REQUEST_ITEMS),
            help=f"Most items per request (413 above; 1-{MAX_REQUEST_ITEMS:,}).",
        ),
    ] = L.max_items,
    max_item_chars: Annotated[
        int,
        typer.Option(
            callback=number_in(1, MAX_ITEM_CHARS),
            help=f"Most characters per item (a per-item error above; 1-{MAX_ITEM_CHARS:,}).",
        ),
    ] = L.max_item_chars,
    cache_mb: Annotated[
        float,
        typer.Option(
            callback=number_in(0, MAX_BUDGET_MB),
            help=f"In-memory response cache, MiB of memory (0: off; at most {MAX_BUDGET_MB:,.0f}).",
        ),
    ] = S.cache_bytes / 2**20,
    cache_dir: Annotated[
        str | None,
        typer.Option(
            parser=nonempty_path, help="Also keep responses on disk (SQLite) in this directory."
        ),
    ] = None,
    rule_workers: Annotated[
        int, typer.Option(min=1, max=MAX_THREADS, help="Worker threads for rule rewards.")
    ] = S.rule_workers,
    model_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_THREADS,
            help="Batches a model reward runs at once, sharing the torch threads (default: 2 on "
            "a CPU with 2+ threads, 1 on a GPU).",
        ),
    ] = None,
    nan_reward: Annotated[
        float,
        typer.Option(
            callback=finite, help="/get_reward value where a reward is NaN (does not apply)."
        ),
    ] = S.nan_reward,
    failed_reward: Annotated[
        float | None,
        typer.Option(
            callback=finite,
            help="/get_reward value where an item failed (default: the lowest reward of its "
            "call, else --nan-reward).",
        ),
    ] = S.failed_reward,
    log_content: Annotated[
        bool, typer.Option("--log-content", help="Log request items (off by default).")
    ] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Deploy on Ray Serve.")] = False,
    replicas: Annotated[int, typer.Option(min=1, help="Ray Serve replicas (with --ray).")] = 1,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            callback=number_in(0, MAX_SECONDS),
            help="On SIGTERM/SIGINT: seconds to finish accepted requests; the rest get a JSON "
            f"503 that clients retry (0-{MAX_SECONDS:,.0f}).",
        ),
    ] = S.graceful_timeout,
    header_timeout: Annotated[
        float,
        typer.Option(
            callback=number_in(0.001, MAX_SECONDS),
            help="Seconds a connection has to send a request's headers (from opening or the "
            f"last response); then it is closed (slowloris; 0.001-{MAX_SECONDS:,.0f}).",
        ),
    ] = S.header_timeout,
    body_timeout: Annotated[
        float,
        typer.Option(
            callback=number_in(0.001, MAX_SECONDS),
            help="Seconds a request has to send its body once its headers are in (408 after; "
            f"0.001-{MAX_SECONDS:,.0f}).",
        ),
    ] = S.body_timeout,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1,
            help="Open connections at once (lowered to fit ulimit -n); beyond it the oldest idle "
            "one makes room.",
        ),
    ] = S.max_connections,
    backlog: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_BACKLOG,
            help=f"Connections the kernel queues before they are accepted (1-{MAX_BACKLOG:,}).",
        ),
    ] = S.backlog,
    write_timeout: Annotated[
        float,
        typer.Option(
            callback=number_in(0.001, MAX_SECONDS),
            help="Seconds a connection's answers may wait unread by its client; then it is cut "
            f"(0.001-{MAX_SECONDS:,.0f}).",
        ),
    ] = S.write_timeout,
    body_budget_mb: Annotated[
        float,
        typer.Option(
            callback=number_in(0.001, MAX_BUDGET_MB),
            help="MiB of request bodies read at once in the whole server (503 + Retry-After "
            f"beyond; one body always fits; 0.001-{MAX_BUDGET_MB:,.0f}).",
        ),
    ] = S.body_budget_bytes / 2**20,
    unsent_budget_mb: Annotated[
        float,
        typer.Option(
            callback=number_in(0.001, MAX_BUDGET_MB),
            help="MiB of answers held for clients that do not read them, in the whole server "
            f"(503 + Retry-After for new work beyond; 0.001-{MAX_BUDGET_MB:,.0f}).",
        ),
    ] = S.unsent_budget_bytes / 2**20,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_THREADS, help="torch threads (default: one per CPU core)."),
    ] = None,
    device: DeviceOpt = None,
) -> None:
    """Serve rewards over HTTP: /v1/rewards, OpenRLHF's /get_reward, /health, /v1/info, /metrics.

    See docs/serving.md.
    """
    from rewardkit.serve.cli import default_threads, parse_routes, resolve_key, run
    from rewardkit.serve.security import Limits

    engine = engine_defaults(
        token_budget, max_length, truncation, dtype, threads, device, DEFAULT_CACHE, True, True
    )
    if engine["threads"] is None:
        engine["threads"] = default_threads()
    with user_errors(PermissionError):
        config = S(
            rewards=parse_routes(reward, route or []),
            engine=engine,
            batch=B(
                token_budget=batch_token_budget,
                max_batch_items=max_batch_items,
                max_wait_ms=max_wait_ms,
                max_queue=max_queue,
            ),
            limits=Limits(
                max_body_bytes=max_body_bytes, max_items=max_items, max_item_chars=max_item_chars
            ),
            api_key=resolve_key(api_key),
            cache_bytes=int(cache_mb * 2**20),
            cache_dir=cache_dir,
            rule_workers=rule_workers,
            model_workers=model_workers,
            log_content=log_content,
            nan_reward=nan_reward,
            failed_reward=failed_reward,
            graceful_timeout=graceful_timeout,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
            backlog=backlog,
            write_timeout=write_timeout,
            body_budget_bytes=max(1, int(body_budget_mb * 2**20)),
            unsent_budget_bytes=max(1, int(unsent_budget_mb * 2**20)),
        )
        check_listen(host, port)  # before any reward loads (with --ray: Ray's proxy binds it)
        run(config, host=host, port=port, ray=ray, replicas=replicas)


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line, a ``--host``/``--port`` the server could not listen on (the port in
    use, an address this machine does not have, a name that does not resolve), before any
    reward loads (docs/cli/serve.md). Binds as uvicorn does, then lets the socket go."""
    import socket

    name = host.strip("[]")  # "[::1]" is written with brackets, bound without
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((name, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(f"cannot listen on --host {host} --port {port}: {reason}") from None

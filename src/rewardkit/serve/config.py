"""``ServeConfig``: everything one server process needs, with the one copy of each default.

The CLI (``rewardkit serve``) builds it directly from its options, whose defaults are read from
these dataclasses (and from :class:`BatcherConfig` and :class:`Limits`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewardkit.engine.config import MAX_THREADS
from rewardkit.remote.auth import check_api_key
from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.memory import UNSENT_BUDGET
from rewardkit.serve.security import Limits

DEFAULT_ROUTE = "default"

#: Engine settings a server gives model-backed rewards unless ``ServeConfig.engine`` says
#: otherwise: no progress bars or score cache (the server has its own), and batches padded to
#: multiples of 16 tokens, so their shapes, and the native memory kept per shape, stay few
#: (docs/serving.md, "Memory over a long run"); one forward pass at a time inside a batch: the
#: server runs batches at once itself (``--model-workers``; with 1, the passes of its one
#: batch share the threads instead: ``ServeState``).
SERVE_ENGINE_DEFAULTS: Mapping[str, Any] = {
    "progress": False,
    "cache_dir": None,
    "pad_multiple": 16,
    "workers": 1,
}


def default_model_workers(threads: int, on_gpu: bool) -> int:
    """Batches a model-backed route runs at once: two on a CPU with at least two torch threads
    (one batch computes while the clients the other answered come back; each batch gets half the
    threads, and a batch running alone all of them), one on a GPU (docs/serving.md, "CPU
    servers")."""
    return 2 if threads >= 2 and not on_gpu else 1


@dataclass
class ServeConfig:
    """Everything the server needs. ``rewards`` maps a route (a ``data_source`` value, or
    ``default`` for items without one or with an unknown one) to a reward spec or a built
    :class:`Reward`. ``engine`` holds engine defaults for model-backed specs (``threads``,
    ``dtype``…). ``nan_reward`` is what ``/get_reward`` sends where a reward is NaN ("does not
    apply"; OpenRLHF needs a number), ``failed_reward`` where an item failed (None: the lowest
    reward of its call, else ``nan_reward``); such items are flagged in ``extra_logs``.
    ``graceful_timeout``: seconds from a shutdown signal to the process exiting; accepted
    requests not answered by then (less a small margin) get a JSON 503 (clients retry it).

    Slow or idle clients (docs/serving.md, "Slow clients and connection limits"):
    ``header_timeout`` seconds for a connection to send a request's headers (from its opening or
    the previous response; else it is closed), ``body_timeout`` seconds for a request's body
    once its headers are in (else 408), ``max_connections`` open connections at once (more are
    closed as they arrive, so file descriptors stay bounded; also capped below the process's
    open-file limit), ``backlog`` connections the kernel queues before they are accepted,
    ``write_timeout`` seconds a connection's answers may wait unread by its peer (past the
    transport's 64 KiB high-water mark; else it is cut), ``body_budget_bytes`` bytes of request
    bodies read and parsed at once in the whole server (a request whose body does not fit gets
    503 ``server_busy`` with ``Retry-After``; one body is always let through),
    ``unsent_budget_bytes`` bytes of answers the whole server holds for clients that do not read
    them (past it new scoring requests get 503 ``server_busy`` with ``Retry-After`` until those
    clients read or are cut after ``write_timeout``; :class:`rewardkit.serve.memory.UnsentAnswers`)."""

    rewards: Mapping[str, Any] = field(default_factory=lambda: {DEFAULT_ROUTE: "rule:length"})
    engine: Mapping[str, Any] = field(default_factory=dict)
    batch: BatcherConfig = field(default_factory=BatcherConfig)
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    cache_bytes: int = 64 << 20  # in-memory response cache, bytes (0: off)
    cache_dir: str | None = None
    rule_workers: int = 4
    model_workers: int | None = None
    log_content: bool = False
    nan_reward: float = 0.0
    failed_reward: float | None = None
    graceful_timeout: float = 30.0
    strip_eos: bool = True
    watch_disconnect: bool = True
    replica_id: str | None = None
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 2048
    backlog: int = 2048
    write_timeout: float = 30.0
    body_budget_bytes: int = 128 << 20
    unsent_budget_bytes: int = UNSENT_BUDGET

    def __post_init__(self) -> None:
        check_api_key(self.api_key)
        for name in ("cache_bytes",):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.rule_workers <= MAX_THREADS:
            raise ValueError(
                f"rule_workers must be from 1 to {MAX_THREADS}, got {self.rule_workers}"
            )
        if self.model_workers is not None and not 1 <= self.model_workers <= MAX_THREADS:
            raise ValueError(
                f"model_workers must be from 1 to {MAX_THREADS}, got {self.model_workers}"
            )
        if not math.isfinite(self.nan_reward):
            raise ValueError(f"nan_reward must be a finite number, got {self.nan_reward}")
        if self.failed_reward is not None and not math.isfinite(self.failed_reward):
            raise ValueError(f"failed_reward must be a finite number, got {self.failed_reward}")
        if not (math.isfinite(self.graceful_timeout) and self.graceful_timeout >= 0):
            raise ValueError(f"graceful_timeout must be >= 0 seconds, got {self.graceful_timeout}")
        for name in ("header_timeout", "body_timeout", "write_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {value}")
        for name in ("max_connections", "backlog", "body_budget_bytes", "unsent_budget_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

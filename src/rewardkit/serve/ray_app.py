"""The same app on Ray Serve (``rewardkit serve --ray --replicas N``): one reward server per
replica, Ray's proxy spreading requests across them, on one machine or a cluster.

Each replica builds its own :class:`~rewardkit.serve.state.ServeState` (rewards, batchers, cache)
from a picklable :class:`~rewardkit.serve.config.ServeConfig` whose rewards are specs, and names
itself in ``/v1/info`` and the ``X-Rewardkit-Replica`` header. Needs ``pip install
'rewardkit[ray]'``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rewardkit.errors import MissingDependencyError
from rewardkit.serve.config import ServeConfig


def _serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "serving on Ray needs Ray Serve: pip install 'rewardkit[ray]'"
        ) from exc
    return serve


def build_application(
    config: ServeConfig,
    replicas: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_ongoing_requests: int = 256,
) -> Any:
    """A bound Ray Serve application of ``replicas`` reward servers (pass it to ``serve.run``)."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    for name, spec in config.rewards.items():
        if not isinstance(spec, (str, dict)):
            raise ValueError(
                f"route {name!r}: Ray replicas build rewards from specs; pass a spec string or "
                f"dict, not a {type(spec).__name__}"
            )
    serve = _serve()
    # Ray's proxy does not pass client disconnects through the same way; do not watch for them.
    replica_config = replace(config, watch_disconnect=False)

    @serve.deployment(
        name="rewardkit",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_ongoing_requests=max_ongoing_requests,
    )
    @serve.ingress()
    class RewardkitReplica:
        def __init__(self, cfg: ServeConfig) -> None:
            self.cfg = cfg

        def __serve_build_asgi_app__(self) -> Any:
            from rewardkit.serve.app import create_app

            return create_app(self.cfg)

    return RewardkitReplica.bind(replica_config)


def run(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    blocking: bool = True,
) -> None:
    """Start (or join) Ray, deploy ``replicas`` reward servers behind Ray's HTTP proxy."""
    import ray

    serve = _serve()
    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    app = build_application(config, replicas=replicas, num_cpus=num_cpus, num_gpus=num_gpus)
    serve.run(app, name="rewardkit", route_prefix="/", blocking=blocking)

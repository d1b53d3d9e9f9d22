"""The same app on Ray Serve (``rewardkit serve --ray --replicas N``): one reward server per
replica, Ray's proxy spreading requests across them, on one machine or a cluster.

Each replica builds its own :class:`~rewardkit.serve.state.ServeState` (rewards, batchers, cache)
from a picklable :class:`~rewardkit.serve.config.ServeConfig` whose rewards are specs, and names
itself in ``/v1/info`` and the ``X-Rewardkit-Replica`` header. Needs ``pip install
'rewardkit[ray]'``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from rewardkit.errors import MissingDependencyError, RewardkitError
from rewardkit.serve.config import ServeConfig

#: The Ray Serve application name ``rewardkit serve --ray`` deploys (one per cluster).
APP_NAME = "rewardkit"


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
        # a stopping replica finishes its requests in flight for at most --graceful-timeout
        graceful_shutdown_timeout_s=config.graceful_timeout,
    )
    @serve.ingress()
    class RewardkitReplica:
        def __init__(self, cfg: ServeConfig) -> None:
            self.cfg = cfg

        def __serve_build_asgi_app__(self) -> Any:
            from rewardkit.serve.app import create_app

            return create_app(self.cfg)

    return RewardkitReplica.bind(replica_config)


def check_specs(config: ServeConfig) -> ServeConfig:
    """``config`` with each route's spec checked on the driver (parsed, its kind known: a typo
    is one :class:`SpecError`, not a replica's traceback) and a spec file's path made absolute
    (a replica's working directory is not the driver's)."""
    from rewardkit.scoring_ray import driver_spec

    return replace(config, rewards={k: driver_spec(v) for k, v in config.rewards.items()})


def refuse_running(serve: Any) -> None:
    """Refuse to deploy over a ``rewardkit`` app that already runs on this cluster (``serve.run``
    would replace it, and its server would silently answer with the new rewards)."""
    app = serve.status().applications.get(APP_NAME)
    status = str(getattr(app.status, "value", app.status)) if app is not None else "NOT_STARTED"
    if status not in ("DELETING", "NOT_STARTED"):
        raise RewardkitError(
            f"a rewardkit server already runs on this Ray cluster (Serve application "
            f"{APP_NAME!r}, {status}); stop it first (`serve shutdown` or Ctrl-C "
            "on its `rewardkit serve --ray`), or serve from another cluster"
        )


def deploy_error(serve: Any, exc: Exception) -> RewardkitError:
    """A failed deployment as one error: the last ``XError: message`` line of the replicas'
    report (Ray gives only "Deploying application rewardkit failed")."""
    text = str(exc)
    try:
        app = serve.status().applications.get(APP_NAME)
        text = "\n".join([app.message or "", *(d.message or "" for d in app.deployments.values())])
    except Exception:  # the controller may be gone: keep Ray's own line
        pass
    lines = [ln.strip() for ln in text.splitlines() if re.match(r"\s*[\w.]*Error: ", ln)]
    reason = lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "?"
    reason = re.sub(r"^[\w.]*?(\w+Error): ", "", reason)  # the message, as the CLI shows it
    return RewardkitError(f"Ray Serve could not start the reward replicas: {reason}")


def run(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    blocking: bool = True,
) -> None:
    """Start (or join) Ray, deploy ``replicas`` reward servers behind Ray's HTTP proxy; a second
    instance on the same cluster is refused, and a replica that fails to build is one error."""
    config = check_specs(config)
    serve = _serve()
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    refuse_running(serve)
    app = build_application(config, replicas=replicas, num_cpus=num_cpus, num_gpus=num_gpus)
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as exc:
        error = deploy_error(serve, exc)
        serve.delete(APP_NAME)
        raise error from None
    if blocking:
        wait_forever(serve)


def wait_forever(serve: Any) -> None:
    """Block as ``serve.run(blocking=True)`` does, until Ctrl-C / SIGTERM; then delete the app
    (Ray Serve stops its replicas; requests in flight may be cut, docs/serving.md)."""
    import signal
    import time

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        serve.delete(APP_NAME)

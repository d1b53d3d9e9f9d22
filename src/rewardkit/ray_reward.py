"""A reward scored by a Ray Data actor pool: ``rewardkit eval --ray`` and the Python equivalent.

:class:`RayReward` holds a reward *spec*, not a model. It is a :class:`~rewardkit.types.Reward`
like any other, so :func:`rewardkit.evaluate.evaluate` (and anything else that calls
``score_full``) runs unchanged: each call cuts its queries into chunks of ``chunk_rows``, Ray
Data streams them through ``actors`` actors that have each built the reward once (one GPU per
actor when the cluster has one per actor), and the chunks come back in input order
(``preserve_order``) and are joined by :func:`~rewardkit.results.concat_results` — scores,
components, members, truncation flags, and every chunk's ``ScoreResult.stats`` merged (so
``cache_hits`` of an engine-backed reward reaches the driver as a value). With a score cache
(``cache_dir`` in ``engine_defaults``; the CLI default) the actors share one SQLite file, so an
interrupted evaluation rerun with the same arguments computes only what was not stored.

The reward's name, fingerprint, objectives and capabilities are read once, when the
:class:`RayReward` is made, by a Ray task that builds the reward on a worker and returns them as
a value (the driver never loads the model). Scores equal the same reward run in one process
within float error (1e-5 in fp32): the same reward scores the same queries; only the batching
differs. Pairwise and listwise judges are refused: they compare or rank several responses in one
call, which per-row chunks would split; so is a reward that scores each row against the rest of
its call (``Capability.BATCH_RELATIVE``), which chunks would standardise apart.

A :class:`RayReward` pickles (it holds the spec and what :func:`describe` read, not Ray's handle):
a copy unpickled in another process joins the same cluster (``address``) on its first call.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.errors import CapabilityError
from rewardkit.results import Capability, ScoreResult, concat_results
from rewardkit.scoring_ray import CARRIED_ERRORS, error_value, raise_error_value, start_ray
from rewardkit.types import Query, Reward

#: What a :class:`RayReward` passes through from the reward it runs (the ScoreResult fields the
#: chunks are joined on, and the kinds of input); per-token scores, features and engine variants
#: stay with the actors.
PASSED_THROUGH = frozenset(
    {Capability.COMPONENTS, Capability.MEMBERS, Capability.STEPS, Capability.IMAGES}
)
#: Capabilities that judge several responses in one call: per-row chunks would split them.
REFUSED = {
    Capability.PAIRWISE: "judges pairs of responses in one call (compare_many)",
    Capability.LISTWISE: "ranks all responses to a prompt in one call (rank_many)",
    Capability.BATCH_RELATIVE: "scores each row against the rest of its call (an ensemble's "
    "zscore without fixed stats)",
}

#: Default queries per chunk (one actor call).
DEFAULT_CHUNK_ROWS = 256


@dataclass(frozen=True)
class RewardInfo:
    """What the driver needs to know of a reward it does not build (read by :func:`describe`)."""

    name: str
    identity: dict[str, Any]
    fingerprint: str
    objectives: tuple[str, ...] | None
    member_names: tuple[str, ...]
    capabilities: frozenset[Capability]
    uses_meta: bool
    max_length: int | None


def describe(reward: Reward) -> RewardInfo:
    """The :class:`RewardInfo` of a built reward."""
    return RewardInfo(
        name=reward.name,
        identity=reward.identity(),
        fingerprint=reward.fingerprint(),
        objectives=tuple(reward.objectives) if reward.objectives else None,
        member_names=tuple(reward.member_names) if reward.can(Capability.MEMBERS) else (),
        capabilities=frozenset(c for c in Capability if reward.can(c)),
        uses_meta=reward.uses_meta,
        max_length=reward.max_length,
    )


def _describe_spec(spec: Any, engine_defaults: Mapping[str, Any]) -> tuple[RewardInfo | None, str]:
    """Build ``spec`` (on a Ray worker) and describe it; an error comes back as a value."""
    from rewardkit.registry import load_reward

    try:
        return describe(load_reward(spec, engine_defaults=engine_defaults)), ""
    except tuple(CARRIED_ERRORS.values()) as exc:
        return None, error_value(exc)


def check_on_ray(
    ray: Any,
    spec: Any,
    engine_defaults: Mapping[str, Any],
    gpus_per_actor: float,
    refused: Mapping[Capability, str] = REFUSED,
) -> RewardInfo:
    """Build ``spec`` once in a Ray task (where the actors will) and describe it: a build error
    comes back as the repo's error, and a reward Ray cannot spread over actors (``refused``)
    is a :class:`CapabilityError`, before any actor pool starts."""
    task = ray.remote(_describe_spec).options(num_cpus=1, num_gpus=gpus_per_actor)
    info, error = ray.get(task.remote(spec, dict(engine_defaults)))
    raise_error_value(error)
    for cap, why in refused.items():
        if cap in info.capabilities:
            raise CapabilityError(
                f"reward {info.name!r} {why}, which scoring on Ray does not spread over "
                "actors (it scores rows in chunks); run it without --ray"
            )
    return info


class ChunkScorer:
    """A Ray Data actor: builds the reward once, then scores pickled chunks of queries."""

    def __init__(self, spec: Any, engine_defaults: Mapping[str, Any]) -> None:
        from rewardkit.registry import load_reward

        self.reward = load_reward(spec, engine_defaults=engine_defaults)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results, errors = [], []
        for blob in batch["queries"]:
            try:
                full = self.reward.score_full(pickle.loads(bytes(blob)))
                kept = ScoreResult(
                    full.scores,
                    components=full.components,
                    members=full.members,
                    stats=full.stats,
                    truncated=full.truncated,
                    steps=full.steps,
                )
                results.append(pickle.dumps(kept))
                errors.append("")
            except tuple(CARRIED_ERRORS.values()) as exc:
                results.append(b"")
                errors.append(error_value(exc))
        return {"result": np.array(results, dtype=object), "error": np.array(errors, dtype=object)}


class RayReward(Reward):
    """The reward ``spec`` scored on a Ray Data actor pool (module docstring).

    ``engine_defaults`` go to every actor's :func:`~rewardkit.registry.load_reward` (set
    ``cache_dir`` to resume); ``address``: a Ray cluster to join (None: ``RAY_ADDRESS`` or a new
    local one; an initialised Ray is used as it is); ``gpus_per_actor``: None gives one GPU per
    actor when the cluster has one per actor. Paths inside ``spec`` must be readable at the same
    place on every node.
    """

    def __init__(
        self,
        spec: Any,
        *,
        engine_defaults: Mapping[str, Any] | None = None,
        address: str | None = None,
        actors: int = 2,
        gpus_per_actor: float | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: bool = False,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.spec = spec
        self.engine_defaults = dict(engine_defaults or {})
        self.address = address
        self.actors = actors
        self.chunk_rows = chunk_rows
        self.progress = progress
        ray, self.gpus_per_actor = start_ray(address, actors, gpus_per_actor, progress)
        info = check_on_ray(ray, spec, self.engine_defaults, self.gpus_per_actor)
        self.info = info
        self.name = info.name
        self.objectives = info.objectives
        self.uses_meta = info.uses_meta
        self.max_length = info.max_length

    def can(self, cap: Capability) -> bool:
        return cap in PASSED_THROUGH and cap in self.info.capabilities

    @property
    def member_names(self) -> tuple[str, ...]:
        return self.info.member_names

    def identity(self) -> dict[str, Any]:
        return self.info.identity

    def fingerprint(self) -> str:
        return self.info.fingerprint

    def _ray(self) -> Any:
        """Ray, initialised (joining ``address`` when this copy was unpickled elsewhere)."""
        return start_ray(self.address, self.actors, self.gpus_per_actor, self.progress)[0]

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        ray = self._ray()
        n = len(queries)
        items = [
            {"queries": pickle.dumps(list(queries[a : a + self.chunk_rows]))}
            for a in range(0, n, self.chunk_rows)
        ]
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ChunkScorer,
            fn_constructor_kwargs={"spec": self.spec, "engine_defaults": self.engine_defaults},
            batch_size=1,
            concurrency=min(self.actors, len(items)),
            num_cpus=1,
            num_gpus=self.gpus_per_actor,
        )
        parts: list[ScoreResult] = []
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for blob, error in zip(batch["result"], batch["error"], strict=True):
                raise_error_value(error)
                parts.append(pickle.loads(bytes(blob)))
        return concat_results(parts)

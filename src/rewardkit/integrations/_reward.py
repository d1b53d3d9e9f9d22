"""An adapter's reward: built once from a spec, its outputs named for a trainer's logs
(components, one key each), and the checks of the reward against one call (a one-item call of a
batch-relative reward, data sources a route reward does not take)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.registry import load_reward
from rewardkit.types import Capability, Query, Reward, ScoreResult

RewardSpec = Reward | str | Mapping[str, Any]

log = logging.getLogger("rewardkit.integrations")


def as_reward(spec: RewardSpec, engine_defaults: Mapping[str, Any] | None = None) -> Reward:
    """A :class:`Reward` from a Reward, a spec string/dict or a spec file."""
    if isinstance(spec, Reward):
        return spec
    return load_reward(spec, engine_defaults=engine_defaults)


def log_key(name: str, empty: str = "component") -> str:
    """A trainer-log-safe key for a reward or component name (at most 60 characters); a longer
    name keeps a hash of the whole, so two long model paths never share a key."""
    key = re.sub(r"[^0-9A-Za-z_.:-]+", "_", name).strip("_") or empty
    if len(key) > 60:
        key = f"{key[:51]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return key


def log_keys(
    names: Sequence[str],
    reserved: Sequence[str] = (),
    empty: str = "component",
    safe: bool = True,
) -> dict[str, str]:
    """:func:`log_key` of each name (``safe=False``: the name as it is), made one key per name:
    a key that is ``reserved`` (an adapter's own ``score``, ``applies``…) or that an earlier
    name took gets the first free suffix ``_2``, ``_3``… in the names' order
    (``rule:format?pattern=^a+$`` and ``…^a*$`` both give ``rule:format_pattern_a``: the second
    is ``rule:format_pattern_a_2``)."""
    taken = set(reserved)
    out: dict[str, str] = {}
    for name in names:
        base = log_key(name, empty) if safe else name
        key, k = base, 1
        while key in taken:
            k += 1
            suffix = f"_{k}"
            key = (base[: 60 - len(suffix)] if safe else base) + suffix
        taken.add(key)
        out[name] = key
    return out


def components(reward: Reward, result: ScoreResult) -> dict[str, np.ndarray]:
    """The per-component scores behind one :meth:`~rewardkit.types.Reward.score_full` call.

    Ensembles and weighted sums give their members (``result.members``), hybrids and other
    rewards with parts their ``components``; any other reward gives itself.
    """
    if result.members:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.members.items()}
    if result.components:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.components.items()}
    return {reward.name: np.asarray(result.scores, dtype=np.float64)}


def agreeing_members(result: ScoreResult) -> tuple[str, ...]:
    """Names of the members expected to agree (an ensemble's, not a weighted sum's parts),
    whose disagreement a monitor reports; empty when there are fewer than two."""
    if result.stats.get("aggregate") == "weighted" or len(result.members) < 2:
        return ()
    return tuple(result.members)


_UNROUTED: set[tuple[str, str]] = set()


def warn_unrouted(reward: Reward, queries: Sequence[Query], where: str) -> None:
    """Warn once per ``where`` and data source when a route reward without ``default`` has no
    route for a query's source: those responses get NaN ("does not apply"), which verl and
    OpenRLHF turn into ``nan_score`` (0.0) and TRL into ``None``. A misspelt source (verl's
    ``openai/gsm8k`` against a route ``gsm8k``) trained every response on 0 without a word."""
    from rewardkit.rewards.composite.route import RouteReward

    if not isinstance(reward, RouteReward) or reward.default is not None:
        return
    key = reward.key
    sources = {str(q.meta[key]) if key in q.meta else f"<no {key}>" for q in queries}
    new = sorted(s for s in sources - set(reward.routes) if (where, s) not in _UNROUTED)
    if not new:
        return
    if len(_UNROUTED) < 10_000:
        _UNROUTED.update((where, s) for s in new)
    log.warning(
        "%s: no route for data source(s) %s and no 'default' (routes: %s): those responses "
        "get NaN, sent as the NaN score; add a 'default' route or fix the %s values",
        where,
        [s[:80] for s in new[:10]],
        ", ".join(sorted(reward.routes)),
        key,
    )


def refuse_batch_relative(reward: Reward, n: int, where: str, instead: str) -> None:
    """ValueError for a one-item call of a reward whose scores depend on the rest of the call
    (``Capability.BATCH_RELATIVE``): scored alone, every item gets the same meaningless score."""
    if n == 1 and reward.can(Capability.BATCH_RELATIVE):
        raise ValueError(
            f"{where}: {reward.name!r} scores each item against the rest of its call, and this "
            f"call has one item; give the ensemble fixed stats= or {instead}"
        )

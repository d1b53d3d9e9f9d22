"""Ensembles of trained reward models: k members differing by seed (and optionally backbone),
saved as one loadable ensemble reward, plus the ensemble vote of docs/methods/E1-preference-strength.md.

docs/methods/C5-reward-ensembles.md — Reward-model ensembles ("Helping or Herding?"); E1 — preference strength by
ensemble voting ("Secrets of RLHF Part II"). ``output_dir/ensemble.yaml`` is a registry spec
(``load_reward("out/ens/ensemble.yaml")``) whose members are the member directories;
``output_dir/votes.json`` maps each training example id to its mean reward difference across the
members (feed it back as ``vote_file`` to drop, down-weight or flip weak pairs).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardkit.errors import DataError, SpecError
from rewardkit.outputs import atomic_json, atomic_text
from rewardkit.train.common import TrainResult, load_examples
from rewardkit.train.config import TrainConfig
from rewardkit.types import Example


def member_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One config per member: seed + i, and backbone i when ``ensemble_backbones`` is given."""
    backbones = cfg.ensemble_backbones or [cfg.model]
    k = max(cfg.ensemble_size, len(backbones))
    out = []
    for i in range(k):
        out.append(
            dataclasses.replace(
                cfg,
                model=backbones[i % len(backbones)],
                seed=cfg.seed + i,
                ensemble_size=1,
                ensemble_backbones=None,
                output_dir=str(Path(cfg.output_dir) / f"member_{i}"),
            )
        )
    return out


def check_distinct_ids(examples: Sequence[Example], data: str) -> None:
    """``votes.json`` maps example ids to strengths: two examples with one id would share one
    vote (the last), and ``vote_file`` would then drop or keep the wrong pairs. DataError
    naming the first repeated id (default ids are ``FILE:LINE``, which two data folders holding
    files of the same name repeat)."""
    seen: dict[str, int] = {}
    for ex in examples:
        seen[ex.id] = seen.get(ex.id, 0) + 1
    twice = [(i, n) for i, n in seen.items() if n > 1]
    if twice:
        first, n = twice[0]
        raise DataError(
            f"train data {data!r}: example id {first!r} names {n} examples ({len(twice)} "
            "ids repeat); votes.json keys each vote by example id, so give every example a "
            "distinct 'id'",
            field="id",
        )


def member_spec(member_dir: Path) -> str:
    """The reward spec a trained member loads with (its ``rewardkit_train.json``
    ``load_with``: ``classifier:DIR``, ``default:DIR`` for a frozen head, the BT output of a
    ``bt+regression`` head, ``judge:DIR`` for a generative one)."""
    meta = json.loads((member_dir / "rewardkit_train.json").read_text())
    return str(meta["load_with"])


def ensemble_refusal(cfg: TrainConfig) -> str | None:
    """Why ``cfg`` cannot train an ensemble (None when it can)."""
    if cfg.objective in ("regression", "gated", "prm"):
        return (
            f"train config: ensemble_size needs members with one scalar reward per response; "
            f"objective {cfg.objective!r} gives several outputs (or step scores), which "
            "ensemble.yaml cannot average (docs/methods/C5-reward-ensembles.md)"
        )
    return None


def train_ensemble(cfg: TrainConfig, aggregate: str = "mean") -> TrainResult:
    """Train every member, write ``ensemble.yaml`` and ``votes.json``."""
    import yaml

    from rewardkit.curate.strength import preference_strength
    from rewardkit.models.loading import resolve_model
    from rewardkit.registry import load_reward
    from rewardkit.train.run import train
    from rewardkit.train.runstate import claim_output_dir

    refusal = ensemble_refusal(cfg)
    if refusal:
        raise SpecError(refusal)
    claim_output_dir(cfg)  # --overwrite: the earlier ensemble's members and ensemble.yaml go first
    check_distinct_ids(load_examples(cfg)[0], cfg.data)  # before any member trains
    configs = member_configs(cfg)
    for name in dict.fromkeys(m.model for m in configs):  # a missing backbone failed only
        resolve_model(name)  # after the members before it had trained
    results = [train(m) for m in configs]
    out = Path(cfg.output_dir)
    members = [member_spec(Path(r.output_dir).resolve()) for r in results]
    spec = {"ensemble": members, "aggregate": aggregate}
    with atomic_text(out / "ensemble.yaml", what="ensemble.yaml") as fh:  # never half a spec
        fh.write(yaml.safe_dump(spec, sort_keys=False))
    train_ex, _ = load_examples(cfg)
    pairs = [
        (ex.id, q)
        for ex in train_ex
        if len(ex.responses) == 2 and not ex.is_tie
        for q in [ex.queries()]
    ]
    deltas = []
    for spec_i in members:
        rew = load_reward(spec_i)
        flat = [q for _, qs in pairs for q in qs]
        s = np.asarray(rew.score(flat), dtype=np.float64).reshape(-1, 2)
        chosen = np.array(
            [ex.chosen[0] for ex in train_ex if len(ex.responses) == 2 and not ex.is_tie]
        )
        deltas.append(s[np.arange(len(s)), chosen] - s[np.arange(len(s)), 1 - chosen])
    mean, _std = preference_strength(np.stack(deltas, axis=1)) if deltas else (np.array([]), None)
    votes = {pid: float(m) for (pid, _), m in zip(pairs, mean, strict=True)}
    atomic_json(out / "votes.json", votes, indent=0)
    metrics = {f"member_{i}_{k}": v for i, r in enumerate(results) for k, v in r.metrics.items()}
    return TrainResult(out, metrics, [])

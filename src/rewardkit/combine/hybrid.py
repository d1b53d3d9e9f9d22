"""methods.md C10 — Hybrid rule + model rewards with multi-aspect terms ("Beyond Monolithic Rewards").

``r = c·r_rule + (1 − c)·r_model + Σ_j w_j r_aspect,j + w_len·r_len`` (``[design]``; the paper names
the parts, not the combination). ``c ∈ [0, 1]`` is the rule verifier's confidence: 1 when the rule
parsed and checked the answer, 0 when it does not apply (the rule returned NaN), so the model
reward takes over. A NaN aspect or length term contributes nothing; a row where neither rule nor
model applies is NaN. Rules are routed by task type (``query.meta[task_key]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.combine.route import route_indices
from rewardkit.types import Capability, Query, Reward


def hybrid_combine(
    r_rule: Any,
    r_model: Any,
    confidence: Any = 1.0,
    aspects: Any = None,
    aspect_weights: Any = None,
    r_len: Any = None,
    w_len: float = 0.0,
) -> np.ndarray:
    """Card C10 — ``c·r_rule + (1−c)·r_model + Σ w_j aspect_j + w_len·r_len`` (NaN rule → c = 0)."""
    rule = np.asarray(r_rule, dtype=np.float64).reshape(-1)
    model = np.broadcast_to(np.asarray(r_model, dtype=np.float64), rule.shape)
    c = np.broadcast_to(np.asarray(confidence, dtype=np.float64), rule.shape)
    if np.any((c < 0) | (c > 1)):
        raise ValueError("rule confidence must lie in [0, 1]")
    c = np.where(np.isnan(rule), 0.0, c)
    c = np.where(np.isnan(model) & ~np.isnan(rule), 1.0, c)  # model abstains: the rule alone
    out = np.where(c > 0, c * np.nan_to_num(rule), 0.0) + np.where(
        c < 1, (1 - c) * np.nan_to_num(model), 0.0
    )
    out[np.isnan(rule) & np.isnan(model)] = np.nan
    if aspects is not None:
        A = np.asarray(aspects, dtype=np.float64).reshape(len(rule), -1)
        w = np.ones(A.shape[1]) if aspect_weights is None else np.asarray(aspect_weights, float)
        if w.shape != (A.shape[1],):
            raise ValueError(f"aspect_weights must have {A.shape[1]} values; got {w.shape}")
        out = out + np.nan_to_num(A) @ w
    if r_len is not None and w_len:
        out = out + w_len * np.nan_to_num(np.asarray(r_len, dtype=np.float64).reshape(-1))
    return out


class HybridReward(Reward):
    """Card C10 as a :class:`Reward`: rules by task type, a model reward, aspects and a length term.

    ``rules`` maps a task type (``query.meta[task_key]``; ``"*"`` for every task) to a rule reward;
    ``confidence`` is c for a rule that applies (a number, or a callable ``(query, score) → c``);
    ``aspects`` maps a name to ``(reward, weight)``; ``length`` is ``(reward, weight)``.
    The component scores of the last call are kept in ``last_components`` (name → (n,) array).
    """

    uses_meta = True
    # members decide about images (a text member rejects image responses)
    capabilities = frozenset({Capability.IMAGES})

    def __init__(
        self,
        rules: Mapping[str, Reward],
        model: Reward,
        aspects: Mapping[str, tuple[Reward, float]] | None = None,
        length: tuple[Reward, float] | None = None,
        *,
        confidence: float | Callable[[Query, float], float] = 1.0,
        task_key: str = "task",
        name: str | None = None,
    ) -> None:
        self.rules = dict(rules)
        self.model = model
        self.aspects = dict(aspects or {})
        self.length = length
        self.confidence = confidence
        self.task_key = task_key
        self.name = name or f"hybrid({', '.join(self.rules)} | {model.name})"
        self.last_components: dict[str, np.ndarray] = {}

    def identity(self) -> dict[str, Any]:
        return {
            "class": "HybridReward",
            "rules": {k: r.fingerprint() for k, r in sorted(self.rules.items())},
            "model": self.model.fingerprint(),
            "aspects": {k: [r.fingerprint(), w] for k, (r, w) in sorted(self.aspects.items())},
            "length": None
            if self.length is None
            else [self.length[0].fingerprint(), self.length[1]],
            "confidence": self.confidence
            if not callable(self.confidence)
            else repr(self.confidence),
            "task_key": self.task_key,
        }

    def _rule_scores(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.full(len(queries), np.nan)
        tasks = [str(q.meta.get(self.task_key, "")) for q in queries]
        for task, idx in route_indices(tasks, [t for t in self.rules if t != "*"]).items():
            out[idx] = self.rules[task].score([queries[i] for i in idx])
        if "*" in self.rules:
            rest = np.flatnonzero(np.isnan(out) & ~np.isin(tasks, list(self.rules)))
            if len(rest):
                out[rest] = self.rules["*"].score([queries[i] for i in rest])
        return out

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        rule = self._rule_scores(queries)
        model = np.asarray(self.model.score(queries), dtype=np.float64)
        if callable(self.confidence):
            conf = np.array(
                [self.confidence(q, float(s)) for q, s in zip(queries, rule, strict=True)]
            )
        else:
            conf = np.full(len(queries), float(self.confidence))
        comps: dict[str, np.ndarray] = {"rule": rule, "model": model}
        aspects = weights = None
        if self.aspects:
            cols = [
                np.asarray(r.score(queries), dtype=np.float64) for r, _ in self.aspects.values()
            ]
            comps.update(dict(zip(self.aspects, cols, strict=True)))
            aspects = np.column_stack(cols)
            weights = [w for _, w in self.aspects.values()]
        r_len, w_len = None, 0.0
        if self.length is not None:
            r_len = np.asarray(self.length[0].score(queries), dtype=np.float64)
            w_len = float(self.length[1])
            comps["length"] = r_len
        self.last_components = comps
        return hybrid_combine(rule, model, conf, aspects, weights, r_len, w_len)

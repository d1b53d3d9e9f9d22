"""docs/methods/C10-hybrid-rewards.md as a reward: rules by task type, a model reward, aspects and a length term,
combined by :func:`rewardkit.combine.hybrid.hybrid_combine` (the formula lives there)."""

from __future__ import annotations

import copy
import hashlib
import math
import types
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from rewardkit.combine.hybrid import hybrid_combine
from rewardkit.combine.route import route_indices
from rewardkit.data.trained_on import union_of
from rewardkit.results import INHERITED_CAPABILITIES, failed_rows, failure_entries
from rewardkit.types import Capability, Query, Reward, ScoreResult


def callable_identity(fn: Callable[..., Any]) -> str:
    """What a confidence callable computes, for the fingerprint: a digest of its code,
    constants, defaults and closure values (``repr(fn)`` was its memory address, which the next
    function reuses: 200 different confidences shared one fingerprint, so one's cached scores
    were served for another). A callable whose parts cannot be written down reproducibly (no
    code, a value shown by address) gets a token of its own, never shared: its scores are
    never cached under another's key."""
    code = getattr(fn, "__code__", None)
    parts: list[str] = []
    if code is not None:
        cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
        parts = [
            f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}",
            _code_digest(code),
            repr(getattr(fn, "__defaults__", None)),
            repr(getattr(fn, "__kwdefaults__", None)),
            repr(cells),
        ]
    if code is None or any(" at 0x" in p for p in parts):
        return f"unreproducible:{uuid.uuid4().hex}"
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _code_digest(code: types.CodeType) -> str:
    """A digest of a code object: bytecode, names and constants (nested code by its digest)."""
    consts = [_code_digest(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    text = "\x00".join([code.co_code.hex(), repr(code.co_names), repr(code.co_varnames), *consts])
    return hashlib.sha256(text.encode()).hexdigest()


def _mapping(x: Any, where: str) -> Mapping[Any, Any]:
    if not isinstance(x, Mapping):
        raise TypeError(f"HybridReward: {where} must be a mapping, got {type(x).__name__}")
    return x


def _task(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"HybridReward: a rules key must be a task name (text), got {key!r}")
    return key


def _reward_part(x: Any, where: str) -> Reward:
    """A part of the hybrid: a :class:`Reward`, or a spec text built with ``load_reward``."""
    if isinstance(x, str):
        from rewardkit.registry import load_reward

        return load_reward(x)
    if not isinstance(x, Reward):
        raise TypeError(
            f"HybridReward: {where} must be a Reward or a reward spec, got {type(x).__name__}"
        )
    return x


def _weighted_part(x: Any, where: str) -> tuple[Reward, float]:
    """``(reward, weight)`` with a finite number as the weight (card C10's w_k, λ)."""
    if not isinstance(x, tuple | list) or len(x) != 2:
        raise TypeError(f"HybridReward: {where} must be a (reward, weight) pair, got {x!r:.80}")
    w = x[1]
    if isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w):
        raise ValueError(f"HybridReward: {where}'s weight must be a finite number, got {w!r:.80}")
    return _reward_part(x[0], f"{where}[0]"), float(w)


def _confidence(c: Any) -> float | Callable[[Query, float], float]:
    """A number in [0, 1] or a callable ``(query, score) → c`` (checked per row when scored)."""
    if callable(c):
        return c
    if isinstance(c, bool) or not isinstance(c, Real) or not 0 <= c <= 1:
        raise ValueError(
            f"HybridReward: confidence must be a number in [0, 1] or a callable, got {c!r:.80}"
        )
    return float(c)


class HybridReward(Reward):
    """Card C10 as a :class:`Reward`: rules by task type, a model reward, aspects and a length term.

    ``rules`` maps a task type (``query.meta[task_key]``; ``"*"`` for every task) to a rule reward;
    ``confidence`` is c for a rule that applies (a number, or a callable ``(query, score) → c``);
    ``aspects`` maps a name to ``(reward, weight)``; ``length`` is ``(reward, weight)``.
    ``score_full`` returns the component scores (``rule``, ``model``, each aspect, ``length``)
    as ``components``.
    """

    uses_meta = True
    # Reads images when a part does (can()); each part decides about its own.
    capabilities = frozenset({Capability.COMPONENTS})

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
        self.rules = {
            _task(k): _reward_part(r, f"rules[{k!r}]") for k, r in _mapping(rules, "rules").items()
        }
        self.model = _reward_part(model, "model")
        self.aspects = {
            str(k): _weighted_part(v, f"aspects[{k!r}]")
            for k, v in _mapping(aspects or {}, "aspects").items()
        }
        self.length = None if length is None else _weighted_part(length, "length")
        self.confidence = _confidence(confidence)
        #: ``confidence`` as the fingerprint holds it (computed once: a callable's may be a token)
        self._confidence_key = callable_identity(confidence) if callable(confidence) else confidence
        if not isinstance(task_key, str) or not task_key:
            raise TypeError(f"HybridReward: task_key must be a non-empty text, got {task_key!r}")
        self.task_key = task_key
        self.name = name or f"hybrid({', '.join(self.rules)} | {model.name})"

    def _parts(self) -> list[Reward]:
        parts = [*self.rules.values(), self.model, *(r for r, _ in self.aspects.values())]
        return parts + ([] if self.length is None else [self.length[0]])

    def trained_prompts(self) -> np.ndarray | None:
        """The union of the parts' training-prompt records (None when no part has one)."""
        return union_of(r.trained_prompts() for r in self._parts())

    def can(self, cap: Capability) -> bool:
        """Its own capabilities, plus MODEL_BACKED, BATCH_RELATIVE or IMAGES when any part has it."""
        if cap in INHERITED_CAPABILITIES:
            return any(r.can(cap) for r in self._parts())
        return super().can(cap)

    def engine_variant(self, **changes: Any) -> HybridReward:
        """A twin whose parts are their own engine variants."""
        twin = copy.copy(self)
        twin.rules = {k: r.engine_variant(**changes) for k, r in self.rules.items()}
        twin.model = self.model.engine_variant(**changes)
        twin.aspects = {k: (r.engine_variant(**changes), w) for k, (r, w) in self.aspects.items()}
        if self.length is not None:
            twin.length = (self.length[0].engine_variant(**changes), self.length[1])
        return twin

    def identity(self) -> dict[str, Any]:
        return {
            "class": "HybridReward",
            "rules": {k: r.fingerprint() for k, r in sorted(self.rules.items())},
            "model": self.model.fingerprint(),
            "aspects": {k: [r.fingerprint(), w] for k, (r, w) in sorted(self.aspects.items())},
            "length": None
            if self.length is None
            else [self.length[0].fingerprint(), self.length[1]],
            "confidence": self._confidence_key,
            "task_key": self.task_key,
        }

    def _rule_scores(self, queries: Sequence[Query], failed: _Failures) -> np.ndarray:
        out = np.full(len(queries), np.nan)
        tasks = [str(q.meta.get(self.task_key, "")) for q in queries]
        for task, idx in route_indices(tasks, [t for t in self.rules if t != "*"]).items():
            out[idx] = _part(
                self.rules[task], [queries[i] for i in idx], f"rule {task}", failed, idx
            )
        if "*" in self.rules:
            rest = np.flatnonzero(np.isnan(out) & ~np.isin(tasks, list(self.rules)))
            if len(rest):
                where = [int(i) for i in rest]
                out[rest] = _part(
                    self.rules["*"], [queries[i] for i in where], "rule *", failed, where
                )
        return out

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        failed = _Failures()
        rule = self._rule_scores(queries, failed)
        model_failed = _Failures()
        model = _part(self.model, queries, "model", model_failed)
        if callable(self.confidence):
            conf = np.array(
                [self.confidence(q, float(s)) for q, s in zip(queries, rule, strict=True)]
            )
        else:
            conf = np.full(len(queries), float(self.confidence))
        # the model's failure fails a row only where the model counts: not where a rule
        # applies with confidence 1 (a judge outage took a right answer's rule score)
        for i, err in model_failed.errors.items():
            if not (np.isfinite(rule[i]) and conf[i] == 1.0):
                failed.errors.setdefault(i, err)
                if i in model_failed.lost:
                    failed.lost.add(i)
        comps: dict[str, np.ndarray] = {"rule": rule, "model": model}
        aspects = weights = None
        if self.aspects:
            cols = [  # a zero-weight aspect never counts: its failures stay its own
                _part(r, queries, f"aspect {name}", failed if w else _Failures())
                for name, (r, w) in self.aspects.items()
            ]
            comps.update(dict(zip(self.aspects, cols, strict=True)))
            aspects = np.column_stack(cols)
            weights = [w for _, w in self.aspects.values()]
        r_len, w_len = None, 0.0
        if self.length is not None:
            r_len = _part(
                self.length[0], queries, "length", failed if self.length[1] else _Failures()
            )
            w_len = float(self.length[1])
            comps["length"] = r_len
        values = hybrid_combine(rule, model, conf, aspects, weights, r_len, w_len)
        if failed.errors:  # a part's failure is not its abstention (EnsembleReward's rule)
            values = values.copy()
            values[sorted(failed.lost)] = np.nan
            errors = failure_entries(failed.errors, failed.lost, values)
            stats = {"failed": len(failed.errors), "errors": errors}
            return ScoreResult(values, components=comps, stats=stats)
        return ScoreResult(values, components=comps)


@dataclass
class _Failures:
    """The rows some part failed alone (row → error) and those where a failing part has no
    score (the row is NaN; a part that scored its failure, ``rule:math``'s 0, keeps it)."""

    errors: dict[int, str] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)


def _part(
    reward: Reward,
    queries: Sequence[Query],
    label: str,
    failed: _Failures,
    index: Sequence[int] | None = None,
) -> np.ndarray:
    """One part's scores (float64), its failed items recorded in ``failed`` by row (``index``
    maps the part's queries to rows: a rule scores only its task's)."""
    full = reward.score_full(queries)
    scores = np.asarray(full.scores, dtype=np.float64)
    rows = list(range(len(queries))) if index is None else [int(i) for i in index]
    for i, err in failed_rows(full.stats, scores).items():
        failed.errors.setdefault(rows[i], f"{label}: {err}")
        if np.isnan(scores[i]):
            failed.lost.add(rows[i])
    return scores

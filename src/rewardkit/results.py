"""What a reward declares and returns: :class:`Capability`, and the result values
:class:`ScoreResult` (with :class:`TokenScores`), :class:`PairwiseResult` and
:class:`ListwiseResult`, with the pure formulas they use (Bradley–Terry probability, position
bias). numpy only; :mod:`rewardkit.types` re-exports every name here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Capability(enum.StrEnum):
    """What a reward can do beyond :meth:`Reward.score`; callers ask :meth:`Reward.can`."""

    #: Natively judges pairs: :meth:`Reward.compare_many` is its own P(a ≻ b), both orders.
    PAIRWISE = "pairwise"
    #: Natively ranks k responses to one prompt in one call: :meth:`Reward.rank_many`.
    LISTWISE = "listwise"
    #: :meth:`Reward.features` gives the model's (n, d) representation of each query.
    FEATURES = "features"
    #: :attr:`ScoreResult.components` is filled (named per-query parts).
    COMPONENTS = "components"
    #: :attr:`ScoreResult.members` is filled (composite/ensemble member scores).
    MEMBERS = "members"
    #: Runs a model through the engine (engine config, budget, cache, ``max_length``).
    MODEL_BACKED = "model"
    #: :attr:`ScoreResult.steps` is filled: (n, S) per-step scores.
    STEPS = "steps"
    #: :attr:`ScoreResult.tokens` is filled: per-token scores with character offsets.
    TOKENS = "tokens"
    #: Reads images. A reward without it sees prompt images as ``<image>`` and refuses a
    #: response that holds an image (:func:`text_queries`).
    IMAGES = "images"
    #: Scores depend on the other queries of the same call (an ensemble standardising its
    #: members over the batch without fixed ``stats``): one item scored alone means nothing.
    BATCH_RELATIVE = "batch_relative"


#: Capabilities a composite (ensemble, route, hybrid) has when any of its parts has them: a part
#: that runs a model, scores against the rest of its call or reads images makes the whole do so
#: too. A composite of text rewards alone is a text reward (it sees prompt images as
#: ``<image>``, as each of its parts would, and is handed no images by the RL adapters).
INHERITED_CAPABILITIES = frozenset(
    {Capability.MODEL_BACKED, Capability.BATCH_RELATIVE, Capability.IMAGES}
)


@dataclass(frozen=True)
class TokenScores:
    """Per-token scores of n responses, padded to the longest.

    ``values`` (n, T) float32, NaN past each row's length; ``offsets`` (n, T, 2) int64
    character ``[start, end)`` spans into the response text, −1 past the row's length.
    """

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        if values.ndim != 2 or offsets.shape != (*values.shape, 2):
            raise ValueError(
                f"TokenScores: values must be (n, T) and offsets (n, T, 2); got "
                f"{values.shape} and {offsets.shape}"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "offsets", offsets)


@dataclass(frozen=True)
class ScoreResult:
    """What one :meth:`Reward.score_full` call produced, as a value.

    ``scores`` is what :meth:`Reward.score` returns, (n,) or (n, k) float32. The other fields
    carry per-call details that used to live in mutable attributes: ``components`` (name → (n,)
    extra columns), ``members`` (member name → (n,) member scores), ``stats`` (counters: queries,
    computed, cache_hits, truncated_rows, unparsed, failed, retries, usage...), ``truncated``
    ((n,) bool), ``steps`` ((n, S) float32, NaN past a row's steps) and ``tokens``.
    A field is filled exactly when the reward declares the matching :class:`Capability`.
    Counters mean one thing in every reward: ``unique`` distinct queries of the call,
    ``cache_hits`` those whose score came from the score cache with no model work, ``computed``
    those that needed it (an embedding reward's per-text counts are under ``texts``);
    ``failed``/``errors`` items that failed alone (:func:`failed_items`).
    """

    scores: np.ndarray
    components: Mapping[str, np.ndarray] = field(default_factory=dict)
    members: Mapping[str, np.ndarray] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    truncated: np.ndarray | None = None
    steps: np.ndarray | None = None
    tokens: TokenScores | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", float32_scores(self.scores))
        for name in ("components", "members"):
            cols = {str(k): _float_array(v) for k, v in getattr(self, name).items()}
            object.__setattr__(self, name, cols)
        object.__setattr__(self, "stats", dict(self.stats))
        if self.truncated is not None:
            object.__setattr__(self, "truncated", np.asarray(self.truncated, dtype=bool))
        if self.steps is not None:
            object.__setattr__(self, "steps", np.asarray(self.steps, dtype=np.float32))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def float32_scores(values: Any, who: str = "a reward") -> np.ndarray:
    """``values`` as the float32 scores a reward returns; a :class:`ValueError` naming ``who``
    and the first row for a finite number past float32's range (±3.4e38), which the cast would
    make ±inf and the writers null ("does not apply"). NaN and ±inf pass as they are."""
    a = np.asarray(values)
    if a.dtype.kind != "f" or a.dtype.itemsize <= 4:
        return np.asarray(a, dtype=np.float32)
    with np.errstate(over="ignore"):
        out = a.astype(np.float32)
    over = np.flatnonzero(np.isinf(out) & np.isfinite(a))
    if len(over):
        i = int(over[0])
        row = np.unravel_index(i, a.shape)[0]
        raise ValueError(
            f"{who}: score {a.flat[i]:.6g} (row {row}) is past float32's range (±3.4e38), "
            f"where scores are float32 ({len(over)} such value(s)); scale the reward down "
            "(smaller weights)"
        )
    return out


def failed_items(stats: Mapping[str, Any] | None) -> tuple[int, list[tuple[int, str]]]:
    """Items of one scoring call that failed alone: the ``failed`` count and the ``(index,
    error)`` pairs of the ``errors`` list (``{"index", "error"}`` entries, with ``"score"`` when
    the item got a number rather than NaN, see :func:`failed_values`) that a reward records in
    :attr:`ScoreResult.stats` (``rule:code``, ``rule:math``, endpoint rewards, ``route``)."""
    if not stats:
        return 0, []
    errors = [
        (int(e["index"]), str(e.get("error", "")))
        for e in stats.get("errors") or []
        if isinstance(e, Mapping) and isinstance(e.get("index"), int)
    ]
    n = stats.get("failed")
    count = int(n) if isinstance(n, int | float) and not isinstance(n, bool) else len(errors)
    return max(count, len(errors)), sorted(errors)


def failed_rows(stats: Mapping[str, Any] | None, scores: Any = None) -> dict[int, str]:
    """Index → error of each item one call failed alone (:func:`failed_items`). When the count
    exceeds the listed entries and ``scores`` are given, the NaN-scored items not listed count as
    failed too: a failure must never pass for "does not apply"."""
    failed, listed = failed_items(stats)
    rows = dict(listed)
    if failed > len(listed) and scores is not None:
        for i in np.flatnonzero(np.isnan(np.asarray(scores, dtype=np.float64).reshape(-1))):
            rows.setdefault(int(i), "failed (the reward counted it without naming the item)")
    return rows


def failure_entries(errors: Mapping[int, str], lost: set[int], values: Any) -> list[dict[str, Any]]:
    """The ``errors`` list of a composite's stats: ``{"index", "error"}`` per failed row, with the
    ``"score"`` it kept where a part scored its failure (rows in ``lost`` have none: NaN)."""
    return [
        {"index": i, "error": e} | ({} if i in lost else {"score": float(values[i])})
        for i, e in sorted(errors.items())
    ]


def failed_values(stats: Mapping[str, Any] | None) -> set[float | None]:
    """The scores the failed items of one call got: None for NaN (the usual outcome; an
    ``errors`` entry without a ``score``, and failed items beyond the listed ones), a number for
    a reward that scores a failure, e.g. ``rule:math``'s 0.0 on a math-verify timeout."""
    failed, listed = failed_items(stats)
    if not failed:
        return set()
    values: set[float | None] = set()
    for e in (stats or {}).get("errors") or []:
        if isinstance(e, Mapping) and isinstance(e.get("index"), int):
            v = e.get("score")
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            values.add(float(v) if ok else None)
    if failed > len(listed):
        values.add(None)
    return values


def failure_outcome(
    values: Iterable[float | None], nan: str = "score NaN", number: str = "score {:g}"
) -> str:
    """What :func:`failed_values` says failed items got, in words: ``nan`` for NaN, ``number``
    filled in for a number, joined with "or" when they differ."""
    values = set(values)
    words = [nan] if None in values or not values else []
    words += [number.format(v) for v in sorted(v for v in values if v is not None)]
    return " or ".join(words)


def failure_note(
    failed: int, total: int, what: str, first: str | None, outcome: str = "score NaN"
) -> str:
    """``"3 of 1,000 rows failed alone and score NaN (first: row 17: ...)"``, or ``""`` when none
    failed: a run's success line never hides items that failed."""
    if not failed:
        return ""
    head = f"{failed:,} of {total:,} {what} failed alone and {outcome}"
    if not first:
        return head
    first = " ".join(first.split())
    return head + f" (first: {first[:197] + '...' if len(first) > 200 else first})"


def _float_array(v: Any) -> np.ndarray:
    a = np.asarray(v)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def order_flips(p_forward: Sequence[float], p_reverse: Sequence[float]) -> np.ndarray:
    """Per pair: whether the verdict (above/below 0.5) changes when the order flips."""
    f = np.asarray(p_forward, dtype=np.float64) - 0.5
    r = np.asarray(p_reverse, dtype=np.float64) - 0.5
    return f * r < 0


def position_bias(p_forward: Sequence[float], p_reverse: Sequence[float]) -> float:
    """Fraction of pairs whose verdict flips when the order flips (docs/methods/B6-llm-judge.md).

    ``p_forward[i]`` / ``p_reverse[i]`` are P(a ≻ b) judged with a first / second. A verdict is
    "a" above 0.5 and "b" below; a pair flips when the two verdicts differ (the judge followed
    the slot, not the response). Pairs with an exact 0.5 or NaN on either side are left out of
    numerator and denominator; NaN when none is left. (0.8, 0.3) flips; (0.8, 0.6) does not.
    """
    f = np.asarray(p_forward, dtype=np.float64)
    r = np.asarray(p_reverse, dtype=np.float64)
    ok = np.isfinite(f) & np.isfinite(r) & (f != 0.5) & (r != 0.5)
    if not ok.any():
        return math.nan
    return float(order_flips(f[ok], r[ok]).mean())


@dataclass(frozen=True)
class PairwiseResult:
    """The result of judging n pairs (a, b): what :meth:`Reward.compare_many` returns.

    ``p`` = P(a ≻ b). A pairwise-native judge (:attr:`Capability.PAIRWISE`) judges both orders:
    ``p_forward`` / ``p_reverse`` = P(a ≻ b) with a in the first / second slot, and
    ``logit_forward`` / ``logit_reverse`` the raw slot logits (positive: the judge prefers the
    first slot). The Bradley–Terry default from pointwise scores leaves them None.
    ``stats`` and ``truncated`` ((n,) bool: either order was cut) describe the call.
    """

    p: np.ndarray
    p_forward: np.ndarray | None = None
    p_reverse: np.ndarray | None = None
    logit_forward: np.ndarray | None = None
    logit_reverse: np.ndarray | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    truncated: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", dict(self.stats))

    @property
    def both_orders(self) -> bool:
        """Whether each pair was judged in both orders (``p_forward``/``p_reverse`` exist)."""
        return self.p_forward is not None and self.p_reverse is not None

    @property
    def flipped(self) -> np.ndarray:
        """Per pair: whether the verdict changes with the order (see :func:`position_bias`)."""
        if self.p_forward is None or self.p_reverse is None:
            return np.zeros(len(self.p), dtype=bool)
        return order_flips(self.p_forward, self.p_reverse)

    @property
    def position_bias(self) -> float | None:
        """Fraction of these pairs whose verdict flips with the order; None without orders."""
        if self.p_forward is None or self.p_reverse is None:
            return None
        return position_bias(self.p_forward, self.p_reverse)


@dataclass(frozen=True)
class ListwiseResult:
    """What :meth:`Reward.rank_many` returns: per prompt, one score per candidate (higher is
    better; the ranking is the descending order), plus the call's ``stats``."""

    scores: tuple[np.ndarray, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = tuple(np.asarray(s, dtype=np.float64) for s in self.scores)
        object.__setattr__(self, "scores", rows)
        object.__setattr__(self, "stats", dict(self.stats))

    def rankings(self) -> list[np.ndarray]:
        """Candidate indices per prompt, best first (NaN last, stable on ties)."""
        return [np.argsort(np.where(np.isnan(s), np.inf, -s), kind="stable") for s in self.scores]


def bt_probability(d: np.ndarray) -> np.ndarray:
    """Bradley–Terry P(a ≻ b) = σ(r_a − r_b) for score differences ``d``
    (docs/methods/A1-bradley-terry.md); NaN stays NaN, d < −700 gives exactly 0."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(over="ignore"):
        p = np.where(d >= -700, 1.0 / (1.0 + np.exp(-d)), 0.0)
    p[np.isnan(d)] = np.nan
    return p


def merge_stats(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The counters of several :attr:`ScoreResult.stats` of disjoint batches of one run, as one.

    A key is kept only when every part has it (a counter some part did not report is unknown,
    not 0): numbers are summed, nested mappings merged the same way, other values kept when all
    parts agree. Rates (``*_per_second``) are not additive and are left out; ``unique`` becomes
    the sum of the parts' distinct rows.
    """
    parts = [p for p in parts if p]
    if not parts:
        return {}
    out: dict[str, Any] = {}
    for key in parts[0]:
        if key.endswith("_per_second") or any(key not in p for p in parts):
            continue
        values = [p[key] for p in parts]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = sum(values)
        elif all(isinstance(v, Mapping) for v in values):
            out[key] = merge_stats(values)
        elif all(v == values[0] for v in values):
            out[key] = values[0]
    return out


def concat_results(parts: Sequence[ScoreResult]) -> ScoreResult:
    """The :class:`ScoreResult` of consecutive batches scored separately, in order: scores,
    components, members and truncation flags concatenated, steps padded with NaN to the widest
    batch, stats merged (:func:`merge_stats`). Per-token scores are not joined (``tokens`` is
    None)."""
    if not parts:
        raise ValueError("concat_results needs at least one result")

    def joined(name: str) -> dict[str, np.ndarray]:
        keys = list(getattr(parts[0], name))
        return {k: np.concatenate([getattr(p, name)[k] for p in parts]) for k in keys}

    truncated = None
    if any(p.truncated is not None for p in parts):
        truncated = np.concatenate(
            [p.truncated if p.truncated is not None else np.zeros(len(p), bool) for p in parts]
        )
    steps = None
    if any(p.steps is not None for p in parts):
        width = max(p.steps.shape[1] for p in parts if p.steps is not None)
        steps = np.full((sum(len(p) for p in parts), width), np.nan, dtype=np.float32)
        row = 0
        for p in parts:
            if p.steps is not None:
                steps[row : row + len(p), : p.steps.shape[1]] = p.steps
            row += len(p)
    return ScoreResult(
        np.concatenate([p.scores for p in parts]),
        components=joined("components"),
        members=joined("members"),
        stats=merge_stats([p.stats for p in parts]),
        truncated=truncated,
        steps=steps,
    )

"""Card E7 — Luce (K-wise Bradley–Terry) choice among K candidates
(docs/methods/E7-curated-self-consuming.md).

A user shown K samples keeps ``x_k`` with probability ``P(k) = e^{r(x_k)/T} / Σ_j e^{r(x_j)/T}``
(T = 1 in the paper). Rules shared by every function here, chosen to agree with ``select_best``:

- NaN (the reward does not apply) gets probability 0 and is never drawn;
- +inf: the +inf candidates share all the probability equally (the limit of their rewards
  growing together); −inf gets 0 unless every scored candidate is −inf, then they share it
  equally (equal rewards, equal chances);
- every reward NaN: the choice is undefined; like ``select_best`` the first candidate is kept,
  so the probabilities are ``(1, 0, …, 0)`` and the caller marks the pick unscored
  (:func:`unscored`);
- T must be a finite number > 0. As T → 0 the draw tends to the argmax; tied maxima keep equal
  shares at every T (a Luce choice is symmetric), so the deterministic "ties → first" rule is
  ``select_best`` (``bon --select best``), not a limit of this one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rewardkit.types import Message, stable_hash

#: ``bon --select`` values: the argmax (card F1) or a Luce draw (card E7).
SELECT_MODES = ("best", "luce")


def check_temperature(temperature: Any) -> float:
    """``temperature`` as a float, or a ValueError saying what is wrong with it."""
    ok = isinstance(temperature, int | float | np.floating | np.integer) and not isinstance(
        temperature, bool | np.bool_
    )
    try:
        t = float(temperature) if ok else math.nan
    except OverflowError:  # an int past 1.8e308 (10**400): not a finite float
        t = math.inf
    if not math.isfinite(t) or not t > 0:
        raise ValueError(f"Luce temperature must be a finite number > 0, got {temperature!r}")
    return t


def _as_floats(rewards: Any) -> np.ndarray:
    """``rewards`` as a float64 array, or a ValueError naming what is not a number."""
    try:
        return np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # text, complex, ragged rows, None inside
        raise ValueError(f"Luce choice needs numeric rewards (NaN where none): {exc}") from None


def _rewards(rewards: Any, ndim: int) -> np.ndarray:
    r = _as_floats(rewards)
    if r.ndim != ndim:
        want = "a 1-D list of rewards" if ndim == 1 else "a 2-D array (rows of rewards)"
        raise ValueError(f"Luce choice needs {want}, got shape {r.shape}")
    if r.shape[-1] == 0:
        raise ValueError("Luce choice needs at least one candidate")
    return r


def _probs_rows(r: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise Luce probabilities of a 2-D float64 array (the rules of the module docstring)."""
    scored = ~np.isnan(r)
    filled = np.where(scored, r, -np.inf)
    top = filled.max(axis=1, keepdims=True)
    out = np.zeros_like(r)
    # rows whose top is ±inf: equal shares among the candidates at the top
    inf_top = np.isinf(top[:, 0]) & scored.any(axis=1)
    if inf_top.any():
        at_top = (filled == top) & scored
        out[inf_top] = at_top[inf_top] / at_top[inf_top].sum(axis=1, keepdims=True)
    finite = np.isfinite(top[:, 0])
    if finite.any():
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            f, t = filled[finite], top[finite]
            gap = f - t  # ≤ 0, −inf for NaN and −inf
            # rewards over 1.8e308 apart: the gap overflowed to −inf (P = (1, 0) at every T);
            # halved, divided, then doubled it is the right z
            over = np.isneginf(gap) & np.isfinite(f)
            z = np.where(over, (f / 2 - t / 2) / temperature * 2, gap / temperature)
        e = np.exp(z)  # the top is exp(0) = 1, so the sum is ≥ 1
        out[finite] = e / e.sum(axis=1, keepdims=True)
    none = ~scored.any(axis=1)
    out[none, 0] = 1.0  # every reward NaN: the first candidate, as select_best keeps
    return out


def luce_probs(rewards: Any, temperature: float = 1.0) -> np.ndarray:
    """Card E7 (docs/methods/E7-curated-self-consuming.md): the probability of keeping each
    candidate, ``softmax(r / T)`` computed stably; rows of a 2-D array are independent choices.

    NaN → 0; ±inf and all-NaN as the module docstring says (all NaN → ``(1, 0, …, 0)``)."""
    t = check_temperature(temperature)
    r = _as_floats(rewards)
    if r.ndim == 2:
        return _probs_rows(_rewards(r, 2), t)
    return _probs_rows(_rewards(r, 1)[None, :], t)[0]


def _draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws, one per row of ``p``; an index of probability 0 is never returned."""
    c = np.cumsum(p, axis=1)
    idx = (c <= (u * c[:, -1])[:, None]).sum(axis=1)
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)  # last index with p > 0
    return np.minimum(idx, last)


def luce_select(rewards: Any, rng: np.random.Generator, temperature: float = 1.0) -> int:
    """Card E7 (docs/methods/E7-curated-self-consuming.md): the index kept by one Luce choice
    among the candidates, drawn with ``rng`` (one ``rng.random()``); all NaN → 0 (as
    ``select_best``; check :func:`unscored`)."""
    p = luce_probs(_rewards(rewards, 1), temperature)
    return int(_draw(p[None, :], np.array([rng.random()]))[0])


def luce_select_rows(
    rewards: Any, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """One Luce choice per row of a 2-D array (vectorised :func:`luce_select`: with the same
    ``rng`` state it returns what ``luce_select`` row by row would)."""
    p = luce_probs(_rewards(rewards, 2), temperature)
    return _draw(p, rng.random(p.shape[0]))


def unscored(rewards: Any) -> bool:
    """True when no candidate has a reward (all NaN): the pick is the first, unscored."""
    return bool(np.isnan(_as_floats(rewards)).all())


def selection_rng(seed: int, prompt: list[Message]) -> np.random.Generator:
    """The generator of a prompt's Luce draw: from the run seed and the prompt's content (as its
    candidates are sampled), so a resumed or reordered run keeps the same picks."""
    return np.random.default_rng(int(stable_hash(["luce", seed, prompt])[:15], 16))


def luce_pick(
    scores: Any, seed: int, prompt: list[Message], temperature: float
) -> tuple[int, float]:
    """``bon --select luce`` for one prompt: the kept index (drawn with :func:`selection_rng`)
    and its Luce probability (NaN when no candidate is scored: the first is kept, unscored)."""
    k = luce_select(scores, selection_rng(seed, prompt), temperature)
    return k, math.nan if unscored(scores) else float(luce_probs(scores, temperature)[k])

"""Semi-synthetic heterogeneous preferences: simulated users who weight measurable attributes of
real responses differently (the persona construction of docs/methods/A10-pal.md).

Each persona is a weight vector over documented attributes (:data:`ATTRIBUTES`, z-scored over the
pool of responses); a user is a persona plus a little per-user jitter; a user's label for a pair
of responses to one prompt is drawn from ``P(a ≻ b) = σ(β · wᵀ(z(a) − z(b)))``. Pure numpy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from rewardkit.combine.transform import sigmoid
from rewardkit.errors import DataError
from rewardkit.types import Example

_MARKDOWN = re.compile(r"^[^\S\n]*+(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|\|)|\*\*|`", re.M)
_HEDGE = re.compile(r"\b(?:sorry|apologi[sz]e|might|may|perhaps|possibly|not sure|i think)\b", re.I)


def words(text: str) -> float:
    """log(1 + number of whitespace-separated words)."""
    return math.log1p(len(text.split()))


def markdown(text: str) -> float:
    """Markdown marks (list items, headers, tables, bold, code) per line."""
    lines = max(1, text.count("\n") + 1)
    return len(_MARKDOWN.findall(text)) / lines


def hedging(text: str) -> float:
    """Hedging and apology words per 100 words."""
    return 100.0 * len(_HEDGE.findall(text)) / max(1, len(text.split()))


#: The measurable attributes personas weight (name → function of the response text).
ATTRIBUTES: dict[str, Callable[[str], float]] = {
    "length": words,
    "markdown": markdown,
    "hedging": hedging,
}

#: Default personas: weights over z-scored attributes, plus ``labelled`` (the source data's own
#: chosen flag, +1 chosen / 0 not) so every persona still cares about the original preference.
PERSONAS: dict[str, dict[str, float]] = {
    "concise": {"length": -1.0, "markdown": -0.5, "labelled": 0.5},
    "thorough": {"length": 1.0, "markdown": 0.5, "labelled": 0.5},
    "cautious": {"hedging": 1.0, "labelled": 0.5},
}


#: Most pairs one call may make (personas × users per persona × pairs per user): each is an
#: example holding its texts, so a million would take gigabytes before a line is written.
MAX_PAIRS = 200_000


def check_pair_count(n_personas: int, users_per_persona: int, pairs_per_user: int) -> int:
    """The number of pairs asked for; a ValueError naming the product when it is above
    :data:`MAX_PAIRS` (checked before anything is made)."""
    n = n_personas * users_per_persona * pairs_per_user
    if n > MAX_PAIRS:
        raise ValueError(
            f"{n_personas} personas × {users_per_persona:,} users per persona × "
            f"{pairs_per_user:,} pairs per user = {n:,} pairs, more than the {MAX_PAIRS:,} one "
            "run may make; ask for fewer users per persona or pairs per user"
        )
    return n


def check_weights(personas: Mapping[str, Mapping[str, float]]) -> None:
    """Refuse no personas, and a weight that is not a finite number (NaN would make every label
    the same side: σ(NaN) < u is never true)."""
    if not personas:
        raise ValueError("persona pairs need at least one persona (None: the defaults)")
    for pname, weights in personas.items():
        for attr, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
                raise ValueError(f"persona {pname!r}: weight of {attr!r} must be finite, got {w!r}")


def attribute_matrix(texts: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """(n, len(names)) z-scored attribute values of ``texts`` (a constant column stays 0)."""
    raw = np.array([[ATTRIBUTES[a](t) for a in names] for t in texts], dtype=np.float64)
    sd = raw.std(axis=0)
    return (raw - raw.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def persona_pairs(
    examples: Sequence[Example],
    personas: Mapping[str, Mapping[str, float]] | None = None,
    users_per_persona: int = 5,
    pairs_per_user: int = 40,
    beta: float = 3.0,
    jitter: float = 0.1,
    seed: int = 0,
) -> list[Example]:
    """Pairs labelled by simulated users: each user draws ``pairs_per_user`` pairs of responses
    to one prompt from ``examples`` (each needs ≥ 2 text responses) and labels them with its
    persona's noisy BT choice. The records carry ``meta`` ``user``, ``persona`` and the
    attribute differences. A user's weights depend only on ``seed`` and its persona and
    number, so two calls with one seed on different examples label with the same users.
    ``beta`` and ``jitter`` are finite numbers ≥ 0, the weights finite, the counts ≥ 1; at most
    :data:`MAX_PAIRS` pairs in all."""
    for name, value in (("beta", beta), ("jitter", jitter)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value < math.inf
        ):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    for name, count in (
        ("users_per_persona", users_per_persona),
        ("pairs_per_user", pairs_per_user),
    ):
        if isinstance(count, bool) or not isinstance(count, Integral) or count < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {count!r}")
    personas = dict(PERSONAS if personas is None else personas)
    check_weights(personas)
    check_pair_count(len(personas), users_per_persona, pairs_per_user)
    names = sorted({a for p in personas.values() for a in p if a != "labelled"})
    unknown = [a for a in names if a not in ATTRIBUTES]
    if unknown:
        raise DataError(f"unknown persona attributes {unknown}; known: {sorted(ATTRIBUTES)}")
    pool = [ex for ex in examples if len(ex.responses) >= 2 and not ex.is_tie]
    pool = [ex for ex in pool if all(isinstance(r, str) for r in ex.responses)]
    if not pool:
        raise DataError("persona pairs need examples with at least two text responses")
    texts = [r for ex in pool for r in ex.responses]
    z = attribute_matrix(texts, names)
    starts = np.cumsum([0] + [len(ex.responses) for ex in pool])
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for p_index, (pname, pw) in enumerate(personas.items()):
        base = np.array([pw.get(a, 0.0) for a in names])
        for u in range(users_per_persona):
            # A user's weights depend on (seed, persona, user) only, so the same users label
            # pairs drawn from different example sets (train and held-out prompts).
            user_rng = np.random.default_rng((seed, p_index, u))
            w = base + jitter * user_rng.normal(size=base.shape)
            w_lab = pw.get("labelled", 0.0)
            user = f"{pname}-{u}"
            for k in range(pairs_per_user):
                e = int(rng.integers(len(pool)))
                ex = pool[e]
                i, j = (int(v) for v in rng.choice(len(ex.responses), 2, replace=False))
                zi, zj = z[starts[e] + i], z[starts[e] + j]
                lab = w_lab * ((i in ex.chosen) - (j in ex.chosen))
                p = float(sigmoid(beta * (float(w @ (zi - zj)) + lab)))
                first = i if rng.random() < p else j
                second = j if first == i else i
                out.append(_pair(ex, first, second, user, pname, k, names, z, starts[e]))
    return out


def _pair(
    ex: Example,
    a: int,
    b: int,
    user: str,
    persona: str,
    k: int,
    names: list[str],
    z: np.ndarray,
    start: int,
) -> Example:
    diff = {n: round(float(z[start + a, c] - z[start + b, c]), 4) for c, n in enumerate(names)}
    meta: dict[str, Any] = {"user": user, "persona": persona, "source_id": ex.id, "z_diff": diff}
    return Example(
        id=f"{user}:{k}",
        prompt=ex.prompt,
        responses=[ex.responses[a], ex.responses[b]],
        chosen=[0],
        source=ex.source,
        meta=meta,
    )

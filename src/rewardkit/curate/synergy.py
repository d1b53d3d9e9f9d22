"""Card E2 — Human–AI synergistic curation ("Skywork-Reward-V2"), scaled down:
docs/methods/E2-synergistic-curation.md.

One round: a reward model's errors on a small human-verified gold set (:func:`seed_errors`) seed
a k-nearest-neighbour search of a large pool (:func:`knn_retrieve`, exact cosine over
normalised sentence embeddings); several judges (any rewardkit rewards) then vote on each
retrieved pair (:func:`agreement_decisions`): it is kept when at least ``min_agree`` judges
prefer its chosen response, flipped when at least ``min_agree`` judges prefer the rejected one
by more than ``flip_margin``, dropped otherwise. :func:`curate_round` ties the steps together;
the next round retrains the reward model on gold + curated pairs and runs again.

Worked example (min_agree 2, flip_margin 0.5; judges × pairs margins ``r(y_c) − r(y_r)``)::

    J1  0.8  −0.9   0.3  −0.2
    J2  0.4  −0.7  −0.6  −0.3
    J3 −0.1  −0.5   0.0   NaN      → keep, flip, drop, drop
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rewardkit.content import content_text
from rewardkit.curate.noise import flip
from rewardkit.curate.scores import deltas_from_scores, labelled_pair, pair_deltas, response_scores
from rewardkit.types import Example, Reward, prompt_text

FIELDS = ("prompt", "pair")
DECISIONS = ("keep", "flip", "drop")
#: ``meta`` keys a retrieved pool pair gets (the seed it came from).
SEED_KEYS = ("seed_id", "seed_similarity", "seed_hits")
#: ``meta`` keys a judged pair gets (votes as read, before a flip).
AGREE_KEYS = ("agree_decision", "agree_for", "agree_against", "agree_abstain", "agree_margins")
#: Similarity rows computed at once: (seeds in a chunk) × (pool) stays under this many cells.
_CHUNK_CELLS = 1 << 22

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class SeedErrors:
    """The gold pairs the reward ranks wrongly (``Δ = r(y_c) − r(y_r) ≤ 0``), by index."""

    indices: list[int]
    deltas: np.ndarray  # (n,) Δ of each gold example; NaN: not scored
    counts: dict[str, int] = field(default_factory=dict)


def seed_errors(examples: Sequence[Example], scores: Sequence[np.ndarray]) -> SeedErrors:
    """Card E2 — the gold pairs whose labelled pair the reward ranks rejected ≥ chosen.

    ``scores`` are per-response scores (:func:`~rewardkit.curate.scores.response_scores`). A
    pair the reward does not score (NaN, a tie, unlabelled, one response) is not an error; the
    counts hold it as ``unscored``. Nor is a pair whose chosen and rejected responses are the
    same text (HH-RLHF holds a few): any reward ties them, which says nothing of its judgement;
    the counts hold it as ``identical``."""
    if len(scores) != len(examples):
        raise ValueError(f"{len(scores)} score lists for {len(examples)} gold examples")
    d = deltas_from_scores(examples, scores)
    scored = ~np.isnan(d)
    same = np.array([_identical_pair(ex) for ex in examples], dtype=bool).reshape(-1)
    errors = np.flatnonzero(scored & ~same & (np.nan_to_num(d, nan=1.0) <= 0))
    counts = {
        "gold": len(examples),
        "scored": int(scored.sum()),
        "errors": len(errors),
        "unscored": int((~scored).sum()),
        "identical": int((scored & same).sum()),
    }
    return SeedErrors([int(i) for i in errors], d, counts)


def _identical_pair(ex: Example) -> bool:
    """Whether the example's labelled pair is one text twice (a labelling slip, no preference)."""
    pair = labelled_pair(ex)
    return pair is not None and ex.responses[pair[0]] == ex.responses[pair[1]]


def example_texts(ex: Example, field: str = "prompt") -> list[str]:
    """The texts an example is embedded from: its prompt (``prompt``), or its prompt and every
    response (``pair``); images as ``<image>``."""
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    texts = [prompt_text(ex.prompt)]
    if field == "pair":
        texts += [content_text(r) for r in ex.responses]
    return texts


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays 0: cosine 0 with everything)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def embed_examples(
    groups: Sequence[Sequence[Example]], embed: Embed, field: str = "prompt"
) -> list[np.ndarray]:
    """Unit vectors (n, d) of each group's examples from one ``embed`` call over their distinct
    texts: an example's vector is the normalised mean of its texts' normalised embeddings."""
    per = [[example_texts(ex, field) for ex in g] for g in groups]
    texts = list(dict.fromkeys(t for g in per for ts in g for t in ts))
    if not texts:
        return [np.zeros((0, 1)) for _ in groups]
    emb = np.asarray(embed(texts), dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"embed returned shape {emb.shape} for {len(texts)} texts")
    if not np.isfinite(emb).all():
        raise ValueError("embed returned a non-finite embedding")
    emb = _unit(emb)
    at = {t: i for i, t in enumerate(texts)}
    return [
        _unit(np.stack([emb[[at[t] for t in ts]].mean(axis=0) for ts in g]))
        if g
        else np.zeros((0, emb.shape[1]))
        for g in per
    ]


@dataclass(frozen=True)
class Neighbour:
    """A retrieved pool pair: its index, its best cosine, the seed that gave it (an index
    into ``seeds``) and how many seeds retrieved it."""

    index: int
    similarity: float
    seed: int
    hits: int = 1


def _check_knn(k: int, min_similarity: float | None) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:  # NaN fails too
        raise ValueError(f"min_similarity (a cosine) must be in [-1, 1], got {min_similarity}")


def nearest(
    seed_vecs: np.ndarray,
    pool_vecs: np.ndarray,
    k: int,
    min_similarity: float | None = None,
    exclude: Collection[int] = (),
) -> list[Neighbour]:
    """:func:`knn_retrieve` over unit vectors: each seed's ``k`` most similar pool rows (cosines
    compared at 12 decimals; ties: the lower pool index), merged across seeds (a row keeps its
    highest similarity; ties: the earlier seed); ordered by similarity, then pool index."""
    _check_knn(k, min_similarity)
    n_pool = len(pool_vecs)
    allowed = np.ones(n_pool, dtype=bool)
    allowed[[i for i in exclude if 0 <= i < n_pool]] = False
    k = min(int(k), int(allowed.sum()))
    best: dict[int, Neighbour] = {}
    if not len(seed_vecs) or k == 0:
        return []
    step = max(1, _CHUNK_CELLS // max(n_pool, 1))
    for start in range(0, len(seed_vecs), step):
        # rounded to 1e-12: a product's last bit depends on the BLAS path (chunk shape), and
        # equal texts must tie exactly, so that the lower pool index wins everywhere
        sims = np.round(np.clip(seed_vecs[start : start + step] @ pool_vecs.T, -1.0, 1.0), 12)
        sims[:, ~allowed] = -np.inf
        for row, s in enumerate(sims):
            kth = np.partition(s, n_pool - k)[n_pool - k]
            cand = np.flatnonzero(s >= kth)  # every tie at the k-th value
            top = cand[np.lexsort((cand, -s[cand]))][:k]
            for i in (int(i) for i in top):
                sim = float(s[i])
                if min_similarity is not None and sim < min_similarity:
                    continue
                old = best.get(i)
                if old is None or sim > old.similarity:  # ties: the earlier seed stays
                    best[i] = Neighbour(i, sim, start + row, old.hits + 1 if old else 1)
                else:
                    best[i] = replace(old, hits=old.hits + 1)
    return sorted(best.values(), key=lambda nb: (-nb.similarity, nb.index))


def knn_retrieve(
    seeds: Sequence[Example],
    pool: Sequence[Example],
    embed: Embed,
    k: int = 10,
    field: str = "prompt",
    min_similarity: float | None = None,
    exclude: Collection[int] = (),
) -> list[Neighbour]:
    """Card E2 — the pool pairs nearest to the seed errors: for each seed its ``k`` most
    cosine-similar pool examples (all of them when ``k`` exceeds the pool), over ``field``
    (``prompt``, or ``pair``: prompt and responses), deduplicated across seeds.

    ``embed`` maps texts to (n, d) embeddings (the MiniLM encoder's ``embed``, or any). Pool
    indices in ``exclude`` (pairs an earlier round curated) are never retrieved; a neighbour
    below ``min_similarity`` is left out. No seeds or an empty pool: no neighbours."""
    _check_knn(k, min_similarity)
    if not seeds or not pool:
        return []
    seed_vecs, pool_vecs = embed_examples([seeds, pool], embed, field)
    return nearest(seed_vecs, pool_vecs, k, min_similarity, exclude)


def annotate_retrieved(
    pool: Sequence[Example], seeds: Sequence[Example], neighbours: Sequence[Neighbour]
) -> list[Example]:
    """Copies of the retrieved pool examples, in retrieval order, with ``meta`` ``seed_id``,
    ``seed_similarity`` and ``seed_hits``."""
    return [
        replace(
            pool[nb.index],
            meta={
                **pool[nb.index].meta,
                "seed_id": seeds[nb.seed].id,
                "seed_similarity": nb.similarity,
                "seed_hits": nb.hits,
            },
        )
        for nb in neighbours
    ]


@dataclass
class Decisions:
    """Per pair: ``keep``, ``flip`` or ``drop``, and the judges' votes behind it."""

    decisions: list[str]
    votes_for: np.ndarray  # judges with Δ > 0
    votes_against: np.ndarray  # judges with Δ < −flip_margin
    abstain: np.ndarray  # judges with NaN
    counts: dict[str, int] = field(default_factory=dict)


def _check_agree(n_judges: int, min_agree: int, flip_margin: float | None) -> None:
    if isinstance(min_agree, bool) or not isinstance(min_agree, int | np.integer) or min_agree < 1:
        raise ValueError(f"min_agree must be an integer >= 1, got {min_agree!r}")
    if n_judges and min_agree > n_judges:
        raise ValueError(
            f"min_agree {min_agree} is more than the {n_judges} judge(s): no pair could be kept"
        )
    if flip_margin is not None and not (math.isfinite(flip_margin) and flip_margin >= 0):
        raise ValueError(f"flip_margin must be a finite number >= 0, got {flip_margin}")


def agreement_decisions(
    margins: np.ndarray, min_agree: int = 2, flip_margin: float | None = None
) -> Decisions:
    """Card E2 — the agreement filter over a (judges × pairs) matrix of ``Δ = r(y_c) −
    r(y_r)``.

    ``F`` = judges with Δ > 0, ``A`` = judges with Δ < −flip_margin (NaN abstains; 0 and weak
    inversions count for neither): keep when ``F ≥ min_agree > A``, flip when
    ``A ≥ min_agree > F``, drop otherwise (too few votes, or both sides reach ``min_agree``).
    ``flip_margin=None`` (the default) never flips: ``A`` counts Δ < 0 and an inverted pair is
    dropped."""
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"margins must be (judges, pairs), got shape {m.shape}")
    _check_agree(m.shape[0], min_agree, flip_margin)
    if np.isinf(m).any():
        raise ValueError("margins must be finite, or NaN where a judge abstains")
    ok = ~np.isnan(m)
    z = np.where(ok, m, 0.0)
    votes_for = (z > 0).sum(axis=0)
    votes_against = (z < -(flip_margin or 0.0)).sum(axis=0)
    abstain = (~ok).sum(axis=0)
    keep = (votes_for >= min_agree) & (votes_against < min_agree)
    flipped = (votes_against >= min_agree) & (votes_for < min_agree) & (flip_margin is not None)
    decisions = [
        "keep" if k else "flip" if f else "drop" for k, f in zip(keep, flipped, strict=True)
    ]
    counts = {
        "pairs": m.shape[1],
        "keep": int(keep.sum()),
        "flip": int(flipped.sum()),
        "drop": int(m.shape[1] - keep.sum() - flipped.sum()),
        "conflict": int(((votes_for >= min_agree) & (votes_against >= min_agree)).sum()),
        "abstained": int((abstain == m.shape[0]).sum()) if m.shape[0] else m.shape[1],
    }
    return Decisions(decisions, votes_for, votes_against, abstain, counts)


def apply_decisions(
    examples: Sequence[Example], margins: np.ndarray, dec: Decisions
) -> list[Example]:
    """The kept and flipped examples (input order) with ``meta`` ``agree_decision``,
    ``agree_for``, ``agree_against``, ``agree_abstain`` and ``agree_margins`` (one Δ per judge,
    None where it abstained; votes and margins as read, before a flip). A flip is card E1's
    (:func:`~rewardkit.curate.noise.flip`: ``meta.flipped``, margin/strength negated)."""
    m = np.asarray(margins, dtype=np.float64)
    if len(dec.decisions) != len(examples) or m.shape[1:] != (len(examples),):
        raise ValueError(f"decisions/margins do not match the {len(examples)} examples")
    out = []
    for i, (ex, d) in enumerate(zip(examples, dec.decisions, strict=True)):
        if d == "drop":
            continue
        votes = {
            "agree_decision": d,
            "agree_for": int(dec.votes_for[i]),
            "agree_against": int(dec.votes_against[i]),
            "agree_abstain": int(dec.abstain[i]),
            "agree_margins": [None if math.isnan(x) else float(x) for x in m[:, i]],
        }
        ex = replace(ex, meta={**ex.meta, **votes})
        out.append(flip(ex) if d == "flip" else ex)
    return out


def judge_margins(examples: Sequence[Example], judges: Sequence[Reward]) -> np.ndarray:
    """(judges × pairs) ``Δ`` of each example's labelled pair under each judge (card E1's
    :func:`~rewardkit.curate.scores.pair_deltas`, transposed); NaN where there is no pair."""
    if not examples:
        return np.zeros((len(judges), 0))
    return pair_deltas(examples, judges).T


@dataclass
class RoundResult:
    """One curation round: the seed errors, what was retrieved and what the judges decided."""

    seeds: SeedErrors
    neighbours: list[Neighbour]
    retrieved: list[Example]  # annotated with seed_* keys, in retrieval order
    decisions: Decisions
    examples: list[Example]  # kept + flipped retrieved pairs
    counts: dict[str, Any] = field(default_factory=dict)


def curate_round(
    gold: Sequence[Example],
    pool: Sequence[Example],
    reward: Reward,
    judges: Sequence[Reward],
    embed: Embed,
    *,
    k: int = 10,
    field: str = "prompt",
    min_similarity: float | None = None,
    min_agree: int = 2,
    flip_margin: float | None = None,
    exclude: Collection[int] = (),
) -> RoundResult:
    """Card E2 — one round: ``reward``'s errors on ``gold``, their ``k`` nearest pool pairs,
    the judges' agreement filter on those. Inputs are not changed; ``exclude`` holds the pool
    indices earlier rounds curated."""
    if not judges:
        raise ValueError("curate_round needs at least one judge")
    _check_agree(len(judges), min_agree, flip_margin)
    seeds = seed_errors(gold, response_scores(gold, reward) if gold else [])
    seed_exs = [gold[i] for i in seeds.indices]
    neighbours = knn_retrieve(seed_exs, pool, embed, k, field, min_similarity, exclude)
    retrieved = annotate_retrieved(pool, seed_exs, neighbours)
    margins = judge_margins(retrieved, judges)
    dec = agreement_decisions(margins, min_agree, flip_margin)
    kept = apply_decisions(retrieved, margins, dec)
    no_pair = sum(labelled_pair(ex) is None for ex in retrieved)
    counts = {
        **{f"gold_{k_}": v for k_, v in seeds.counts.items()},
        "pool": len(pool),
        "retrieved": len(retrieved),
        "no_pair": no_pair,
        **{k_: v for k_, v in dec.counts.items() if k_ != "pairs"},
    }
    return RoundResult(seeds, neighbours, retrieved, dec, kept, counts)

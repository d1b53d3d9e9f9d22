"""Underspecification of a reward ensemble: do its members agree in distribution and part ways
on policy samples? docs/methods/D9-overoptimization.md (protocol step 5, after Gao et al.,
arXiv 2210.10760, and Eisenstein et al., "Helping or Herding?", arXiv 2312.09244; members and
their disagreement: docs/methods/C5-reward-ensembles.md).

Every function here is pure. An example is an ``(n_responses, M)`` array: one row per response,
one column per member. NaN means the member does not score that response (it is left out); a
±inf member score has no order against another ±inf and is left out as NaN too.

- **Order agreement**: for every response pair ``(i, j)`` of an example and every member pair
  ``(a, b)`` that scores both responses, ``c = 1`` when ``sign(s_a(i) − s_a(j))`` and
  ``sign(s_b(i) − s_b(j))`` are the same non-zero sign, ``0`` when opposite, ``½`` when either
  member ties; the pair's agreement is the mean ``c`` over its member pairs, and the reported
  agreement the mean over all response pairs (a pair with fewer than two members left out).
- **Unanimous** (labelled data): the share of (chosen, rejected) pairs that every member scoring
  both orders the same strict way (a tie in any member is no unanimity).
- **Member std**: card C5's :func:`~rewardkit.combine.aggregate.disagreement` (population std)
  per response, averaged over responses with at least two members.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.combine.aggregate import disagreement
from rewardkit.evaluate.result import EvalResult, count_value
from rewardkit.evaluate.rows import Table, fmt
from rewardkit.types import Example

#: Fewest responses of a policy pool (best-of-N samples); 2-response examples are the
#: in-distribution (human-labelled) pairs.
MIN_POOL = 3
#: Agreement keys that :func:`underspecification` reports a drop for (in-distribution − policy).
DROP_KEYS = ("order_agreement", "unanimous")


def _examples(member_scores: Sequence[Any]) -> list[np.ndarray]:
    """Each example as a float64 ``(n, M)`` matrix with ±inf as NaN; one M for all."""
    out = []
    for k, s in enumerate(member_scores):
        x = np.array(s, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(
                f"member_scores[{k}] must be an (n_responses, M) matrix, got shape {x.shape}"
            )
        if out and x.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"member_scores[{k}] has {x.shape[1]} members, the first example "
                f"{out[0].shape[1]}: every example needs the same members"
            )
        x[np.isinf(x)] = np.nan
        out.append(x)
    return out


def pair_signs(x: np.ndarray) -> np.ndarray:
    """``(P, M)``: each member's ``sign(s(i) − s(j))`` for every response pair ``i < j``."""
    i, j = np.triu_indices(x.shape[0], 1)
    return np.sign(x[i] - x[j])


def order_concordance(signs: np.ndarray) -> np.ndarray:
    """``(P,)``: the share of member pairs ordering each response pair the same way (a tie in
    either member ½); NaN where fewer than two members score the pair."""
    a, b = np.triu_indices(signs.shape[1], 1)
    prod = signs[:, a] * signs[:, b]
    valid = ~np.isnan(prod)
    c = np.where(prod > 0, 1.0, np.where(prod < 0, 0.0, 0.5))
    n = valid.sum(axis=1)
    out = np.full(signs.shape[0], np.nan)
    np.divide(np.where(valid, c, 0.0).sum(axis=1), n, out=out, where=n > 0)
    return out


def unanimous(signs: np.ndarray) -> np.ndarray:
    """``(P,)``: 1 where every member scoring the pair orders it the same strict way, else 0;
    NaN where fewer than two members score it."""
    k = (~np.isnan(signs)).sum(axis=1)
    same = ((signs == 1).sum(axis=1) == k) | ((signs == -1).sum(axis=1) == k)
    return np.where(k >= 2, same.astype(np.float64), np.nan)


def _labelled(x: np.ndarray, chosen: Sequence[int], k: int) -> np.ndarray:
    """``(L, M)`` member signs of every (chosen, rejected) pair of example ``k``."""
    n = x.shape[0]
    picks = sorted({int(c) for c in chosen})
    if any(c < 0 or c >= n for c in picks):
        raise ValueError(f"chosen[{k}] = {list(chosen)} names a response outside 0..{n - 1}")
    rejected = [r for r in range(n) if r not in picks]
    pairs = [(c, r) for c in picks for r in rejected]
    if not pairs:
        return np.zeros((0, x.shape[1]))
    c, r = np.array(pairs).T
    return np.sign(x[c] - x[r])


def _mean(values: list[np.ndarray]) -> tuple[float, int]:
    """Mean of the non-NaN entries of ``values`` and how many there are."""
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[~np.isnan(v)]
    return (float(v.mean()) if v.size else math.nan), int(v.size)


def member_agreement(
    member_scores: Sequence[Any], chosen: Sequence[Sequence[int] | None] | None = None
) -> dict[str, Any]:
    """How much an ensemble's members agree over ``member_scores`` (one ``(n_responses, M)``
    array per example; ``chosen``: each example's chosen indices, or None where unlabelled).

    ``order_agreement`` over ``n_response_pairs``; ``unanimous`` over ``n_labelled_pairs``
    (NaN without labels); ``member_std`` over ``n_responses`` (those with ≥ 2 members)."""
    xs = _examples(member_scores)
    if chosen is not None and len(chosen) != len(xs):
        raise ValueError(f"chosen has {len(chosen)} entries for {len(xs)} examples")
    order = [order_concordance(pair_signs(x)) for x in xs]
    labels = chosen if chosen is not None else [None] * len(xs)
    agree = [
        unanimous(_labelled(x, c, k)) for k, (x, c) in enumerate(zip(xs, labels, strict=True)) if c
    ]
    d = disagreement(np.concatenate(xs)) if xs else None
    std = [d.std[d.n_contributing >= 2]] if d is not None else []
    out: dict[str, Any] = {"n_examples": len(xs), "n_members": xs[0].shape[1] if xs else 0}
    out["order_agreement"], out["n_response_pairs"] = _mean(order)
    out["unanimous"], out["n_labelled_pairs"] = _mean(agree)
    out["member_std"], out["n_responses"] = _mean(std)
    return out


def underspecification(
    in_dist: Sequence[Any],
    policy: Sequence[Any],
    *,
    in_dist_chosen: Sequence[Sequence[int] | None] | None = None,
    policy_chosen: Sequence[Sequence[int] | None] | None = None,
) -> dict[str, Any]:
    """:func:`member_agreement` on in-distribution examples (human-labelled pairs) and on
    policy-generated ones (best-of-N pools), each None when it has no example, and ``drop``
    (when both exist): in-distribution − policy for each of :data:`DROP_KEYS` and
    ``member_std_rise`` = policy − in-distribution (card D9: members that agree in distribution
    and diverge under the policy's shift are underspecified)."""
    a = member_agreement(in_dist, in_dist_chosen) if len(in_dist) else None
    b = member_agreement(policy, policy_chosen) if len(policy) else None
    drop = None
    if a is not None and b is not None:
        if a["n_members"] != b["n_members"]:
            raise ValueError(
                f"in_dist has {a['n_members']} members and policy {b['n_members']}: "
                "compare the same ensemble"
            )
        drop = {k: a[k] - b[k] for k in DROP_KEYS}
        drop["member_std_rise"] = b["member_std"] - a["member_std"]
    return {"in_distribution": a, "policy": b, "drop": drop}


def underspecification_analysis(
    members: Mapping[str, np.ndarray], examples: Sequence[Example], rules: Sequence[str]
) -> dict[str, Any] | None:
    """The ``underspecification`` analysis of one ensemble column of ``evaluate``: ``members``
    (member name → one score per response, in example order, from the scoring pass itself);
    in-distribution = the 2-response examples, policy = pools of :data:`MIN_POOL`+ responses
    (an RM-Bench style matrix, ``rules[k] == "style_matrix"``, is neither). None without
    either."""
    names = list(members)
    x = np.column_stack([np.asarray(members[n], dtype=np.float64) for n in names])
    offsets = np.cumsum([0, *(len(ex.responses) for ex in examples)])
    if x.shape[0] != offsets[-1]:
        raise ValueError(f"members hold {x.shape[0]} scores for {offsets[-1]} responses")
    pairs: list[int] = []
    pools: list[int] = []
    for k, ex in enumerate(examples):
        n = len(ex.responses)
        if n == 2:
            pairs.append(k)
        elif n >= MIN_POOL and rules[k] != "style_matrix":
            pools.append(k)
    if not pairs and not pools:
        return None
    rows = [x[offsets[k] : offsets[k + 1]] for k in range(len(examples))]
    out = underspecification(
        [rows[k] for k in pairs],
        [rows[k] for k in pools],
        in_dist_chosen=[examples[k].chosen for k in pairs],
        policy_chosen=[examples[k].chosen for k in pools],
    )
    return {**out, "members": names}


# -- the report table ------------------------------------------------------------------------

_SIDES = (("in_distribution", "pairs (2 responses)"), ("policy", f"pools ({MIN_POOL}+ responses)"))


def _number(x: Any, field: str, low: float = 0.0, high: float = 1.0) -> float:
    """A number of a read-back analysis: null (NaN) or a number in [low, high]; anything else
    (a text, a list, a value out of range) is a ValueError naming ``field``."""
    if x is None:
        return math.nan
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{field!r} must be a number, got {type(x).__name__}")
    if not math.isnan(x) and not low <= x <= high:
        raise ValueError(f"{field!r} must lie in [{low:g}, {high:g}], got {x!r}")
    return float(x)


def _side_cells(a: Any, where: str) -> list[str]:
    """Cells of one side, its numbers checked (a hand-edited report.json is named, not printed)."""
    if not isinstance(a, dict):
        raise ValueError(f"{where!r} must be an object, got {type(a).__name__}")
    counts = ("n_examples", "n_members", "n_response_pairs", "n_labelled_pairs")
    n = {k: count_value(a.get(k, 0), f"{where}.{k}") for k in counts}
    share = {k: _number(a.get(k), f"{where}.{k}") for k in DROP_KEYS}
    std = _number(a.get("member_std"), f"{where}.member_std", 0.0, math.inf)
    return [
        str(n["n_examples"]),
        str(n["n_members"]),
        f"{fmt(share['order_agreement'], True)} ({n['n_response_pairs']})",
        f"{fmt(share['unanimous'], True)} ({n['n_labelled_pairs']})",
        fmt(std),
    ]


def _drop_cells(d: Any, where: str) -> list[str]:
    if not isinstance(d, dict):
        raise ValueError(f"{where!r} must be an object, got {type(d).__name__}")
    drop = [_number(d.get(k), f"{where}.{k}", -1.0, 1.0) for k in DROP_KEYS]
    rise = _number(d.get("member_std_rise"), f"{where}.member_std_rise", -math.inf, math.inf)
    return ["", "", *(fmt(v, True) for v in drop), fmt(rise)]


def _rows(name: str, a: Any) -> list[list[str]]:
    where = "analyses.underspecification"
    if not isinstance(a, dict):
        raise ValueError(f"{where!r} must be an object, got {type(a).__name__}")
    rows = [
        [name, label, *_side_cells(a[key], f"{where}.{key}")]
        for key, label in _SIDES
        if a.get(key) is not None
    ]
    if a.get("drop") is not None:
        rows.append([name, "drop (std: rise)", *_drop_cells(a["drop"], f"{where}.drop")])
    return rows


def underspecification_table(result: EvalResult) -> Table | None:
    """Member agreement of every ensemble column on pairs and pools, and the drop
    (docs/methods/D9-overoptimization.md); None without an ensemble."""
    rows = [
        row
        for r in result.rewards
        if "underspecification" in r.analyses
        for row in _rows(r.name, r.analyses["underspecification"])
    ]
    if not rows:
        return None
    return Table(
        "Underspecification (docs/methods/D9-overoptimization.md)",
        ["reward", "data", "examples", "members", "order agreement (response pairs)",
         "all members agree (labelled pairs)", "member std"],
        rows,
        "Ensemble members' agreement from the same scoring pass. Order agreement: over every "
        "response pair, the share of member pairs ordering it the same way (a tie in either "
        "member ½); all members agree: chosen vs each rejected ordered the same strict way by "
        "every member; member std: population std per response (card C5). The split is by "
        "shape: pairs are 2-response examples, pools 3+ responses; the drop (pairs − pools, "
        "percentage points; std rise: pools − pairs) reads as underspecification when the "
        "pools are a policy's own samples (best-of-N data) and the pairs are like the "
        "members' training data. Raw member scales: std mixes them.",
    )  # fmt: skip

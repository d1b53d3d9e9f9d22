"""Context use and reversal consistency of a reward (docs/methods/A11-context-aware.md).

Rows that carry a context (``meta["criterion"]``, put in front of the prompt by
:mod:`rewardkit.data.context`) are scored twice: as loaded (with the context) and with the
context taken out of the prompt. Over the pairs (two responses, one chosen) that carry one:

- ``accuracy_with`` / ``accuracy_without``: pairwise accuracy of the same pairs (a tie counts as
  the run's ``ties`` rule says: ½ or 0), ``context_gain`` their difference; a pair with a NaN
  score under either is left out and counted (``n_nan``);
- reversal pairs: two rows with the same prompt (context taken out) and the same two responses
  (an unordered pair), under two different contexts, with opposite chosen responses (the RPR
  design). ``consistency``: the share whose preferred response flips when the context flips (a
  tie or NaN under either context flips nothing; NaN pairs are counted apart); ``both_correct``:
  the share where both contexts' preferences are the labelled ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from rewardkit.data.context import (
    DEFAULT_TEMPLATE,
    context_key,
    example_context,
    without_context,
)
from rewardkit.evaluate.outcomes import pairwise_outcome
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rows import Table, fmt
from rewardkit.example_context import map_prompts, pair_prompt
from rewardkit.types import Capability, Example, Reward, stable_hash

#: Said in the report when the rows carry contexts but no pair appears under two of them.
NO_REVERSAL = (
    "no reversal pairs: no prompt and pair of responses appears under two contexts with "
    "opposite preferred responses, so reversal consistency is not measured"
)


def _is_pair(ex: Example) -> bool:
    return len(ex.responses) == 2 and len(set(ex.chosen)) == 1


def context_pairs(examples: Sequence[Example], template: str = DEFAULT_TEMPLATE) -> dict[int, str]:
    """``{index: context}`` of the examples that are pairs (two responses, one chosen) whose
    prompt holds their context (:func:`~rewardkit.data.context.example_context`)."""
    out = {}
    for i, ex in enumerate(examples):
        c = example_context(ex, template)
        if c is not None and _is_pair(ex):
            out[i] = c
    return out


def _margin(ex: Example, scores: Sequence[float]) -> float:
    """chosen − rejected score of a pair (NaN when either is NaN)."""
    c = ex.chosen[0]
    return float(scores[c]) - float(scores[1 - c])


def _preferred(ex: Example, scores: Sequence[float]) -> str | None:
    """The hash of the response a reward scores higher; ``"nan"`` when a score is NaN, None on a
    tie."""
    a, b = float(scores[0]), float(scores[1])
    if math.isnan(a) or math.isnan(b):
        return "nan"
    if a == b:
        return None
    return stable_hash(ex.responses[0 if a > b else 1])


def reversal_pairs(
    examples: Sequence[Example], contexts: Mapping[int, str], template: str = DEFAULT_TEMPLATE
) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of reversal pairs among ``contexts``' examples: the same prompt
    once the context is taken out, the same two (different) responses in any order, two
    different contexts (:func:`~rewardkit.data.context.context_key`: spacing and case aside)
    and opposite chosen responses."""
    groups: dict[str, list[int]] = {}
    for i, c in contexts.items():
        ex = examples[i]
        sides = sorted(stable_hash(r) for r in ex.responses)
        if sides[0] == sides[1]:
            continue  # the same response twice: no preference to reverse
        key = stable_hash([without_context(ex.prompt, c, template), sides])
        groups.setdefault(key, []).append(i)
    out = []
    for members in groups.values():
        for i, j in combinations(sorted(members), 2):
            a, b = examples[i], examples[j]
            if context_key(contexts[i]) == context_key(contexts[j]):
                continue  # one criterion spelled twice: opposite labels contradict, not reverse
            if stable_hash(a.responses[a.chosen[0]]) != stable_hash(b.responses[b.chosen[0]]):
                out.append((i, j))
    return out


def reversal_report(
    examples: Sequence[Example],
    scores: Mapping[int, Sequence[float]],
    pairs: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    """Reversal consistency of ``scores`` (``{index: the pair's two scores}``) over ``pairs``
    (:func:`reversal_pairs`): ``n_pairs``, ``n_nan`` (a NaN score: left out), ``consistency``
    and ``both_correct`` (None without a pair to measure)."""
    flips = right = n = n_nan = 0
    for i, j in pairs:
        a, b = examples[i], examples[j]
        pa, pb = _preferred(a, scores[i]), _preferred(b, scores[j])
        if "nan" in (pa, pb):
            n_nan += 1
            continue
        n += 1
        flips += pa is not None and pb is not None and pa != pb
        right += pa == stable_hash(a.responses[a.chosen[0]]) and pb == stable_hash(
            b.responses[b.chosen[0]]
        )
    return {
        "n_pairs": n,
        "n_nan": n_nan,
        "consistency": flips / n if n else None,
        "both_correct": right / n if n else None,
    }


def context_use_report(
    examples: Sequence[Example],
    with_scores: Mapping[int, Sequence[float]],
    without_scores: Mapping[int, Sequence[float]],
    *,
    ties: str = "half",
    template: str = DEFAULT_TEMPLATE,
) -> dict[str, Any] | None:
    """The context-use analysis (module docstring) from each context pair's two scores with its
    context (``with_scores``) and without (``without_scores``), keyed by example index; None
    when no example is a pair carrying a context."""
    contexts = context_pairs(examples, template)
    if not contexts:
        return None
    idx = sorted(contexts)
    m_with = np.asarray([_margin(examples[i], with_scores[i]) for i in idx])
    m_without = np.asarray([_margin(examples[i], without_scores[i]) for i in idx])
    ok = ~(np.isnan(m_with) | np.isnan(m_without))
    n = int(ok.sum())
    acc_with = float(np.mean(pairwise_outcome(m_with[ok], 0.0, ties))) if n else None
    acc_without = float(np.mean(pairwise_outcome(m_without[ok], 0.0, ties))) if n else None
    pairs = reversal_pairs(examples, contexts, template)
    out: dict[str, Any] = {
        "n_pairs": n,
        "n_nan": len(idx) - n,
        "n_contexts": len({context_key(c) for c in contexts.values()}),
        "accuracy_with": acc_with,
        "accuracy_without": acc_without,
        "context_gain": None if acc_with is None else acc_with - acc_without,  # type: ignore[operator]
        "reversal": reversal_report(examples, with_scores, pairs),
    }
    if not pairs:
        out["note"] = NO_REVERSAL
    return out


def pair_scores(reward: Reward, pairs: Sequence[Example]) -> np.ndarray:
    """The two responses' scores of each pair: shape (n, 2), or (n, 2, k) for a reward of k
    objectives; a pairwise judge gives each side its ``P(side ≻ the other)``
    (``compare_many``), NaN to a pair whose sides answer different histories
    (:func:`~rewardkit.example_context.pair_prompt`: no one conversation to judge them in)."""
    if reward.can(Capability.PAIRWISE):
        prompts = [pair_prompt(ex, 0, 1) for ex in pairs]
        judgeable = [i for i, prompt in enumerate(prompts) if prompt is not None]
        p = np.full(len(pairs), np.nan)
        if judgeable:
            judged = reward.compare_many(
                [prompts[i] for i in judgeable],
                [pairs[i].responses[0] for i in judgeable],
                [pairs[i].responses[1] for i in judgeable],
            )
            p[judgeable] = np.asarray(judged.p, dtype=np.float64)
        return np.stack([p, 1.0 - p], axis=1)
    full = reward.score_full([q for ex in pairs for q in ex.queries()])
    scores = np.asarray(full.scores, dtype=np.float64)
    return scores.reshape(len(pairs), 2, *scores.shape[1:])


def _bare(examples: Sequence[Example], contexts: Mapping[int, str], template: str) -> list:
    """The context pairs (in index order) with their context taken out of the prompt (and out
    of response 1's own history, :func:`~rewardkit.example_context.map_prompts`)."""
    return [
        map_prompts(examples[i], lambda p, c=contexts[i]: without_context(p, c, template))
        for i in sorted(contexts)
    ]


def add_context_use(
    result: EvalResult,
    examples: Sequence[Example],
    rewards: Sequence[Reward],
    template: str = DEFAULT_TEMPLATE,
) -> None:
    """Put the context-use analysis in ``analyses["context_use"]`` of every column of ``result``
    (``rewards`` in column order, as :func:`~rewardkit.evaluate.run.evaluate` made them); each
    reward scores the context pairs once more, without their context. Nothing when no example is
    a pair carrying a context."""
    contexts = context_pairs(examples, template)
    if not contexts:
        return
    ties = str(result.settings.get("ties", "half"))
    pos = 0
    bare = _bare(examples, contexts, template)
    for reward in rewards:
        without = pair_scores(reward, bare)
        k = 1 if without.ndim == 2 else without.shape[2]
        for j, col in enumerate(result.rewards[pos : pos + k]):
            if col.fingerprint != reward.fingerprint():
                continue  # not this reward's column (never expected: evaluate's column order)
            w = without if without.ndim == 2 else without[:, :, j]
            report = context_use_report(
                examples,
                {i: col.examples[i].scores for i in contexts},
                {i: w[n] for n, i in enumerate(sorted(contexts))},
                ties=ties,
                template=template,
            )
            if report is not None:
                col.analyses["context_use"] = report
        pos += k


def reversal_consistency(
    reward: Reward, examples: Sequence[Example], template: str = DEFAULT_TEMPLATE
) -> float:
    """The share of ``examples``' reversal pairs whose preferred response ``reward`` (a scalar
    reward or a pairwise judge) flips when the context flips (:func:`reversal_report`); NaN
    when there is no reversal pair."""
    contexts = context_pairs(examples, template)
    pairs = reversal_pairs(examples, contexts, template)
    if not pairs:
        return math.nan
    idx = sorted({i for p in pairs for i in p})
    got = pair_scores(reward, [examples[i] for i in idx])
    if got.ndim != 2:
        raise ValueError(
            f"reward {reward.name!r} has {got.shape[2]} objectives; reversal_consistency takes "
            "a scalar reward (evaluate reports each objective's)"
        )
    scores = {i: got[n] for n, i in enumerate(idx)}
    value = reversal_report(examples, scores, pairs)["consistency"]
    return math.nan if value is None else float(value)


def context_use_table(result: EvalResult) -> Table | None:
    """The report table of the context-use analysis (one row per reward); None without one."""
    named = [
        (r.name, r.analyses["context_use"]) for r in result.rewards if "context_use" in r.analyses
    ]
    if not named:
        return None
    rows = [
        [
            name,
            fmt(a["n_pairs"]),
            fmt(a["accuracy_with"], True),
            fmt(a["accuracy_without"], True),
            fmt(a["context_gain"], True),
            fmt(a["reversal"]["n_pairs"]),
            fmt(a["reversal"]["consistency"], True),
            fmt(a["reversal"]["both_correct"], True),
        ]
        for name, a in named
    ]
    note = (
        "Pairs carrying a context (criterion), scored with it and with it taken out of the "
        "prompt; gain = with − without. Reversal pairs: the same prompt and two responses under "
        "two contexts with opposite preferred responses; consistency = % whose preferred "
        "response flips with the context, both right = % preferred as labelled under both."
    )
    if any("note" in a for _, a in named):
        note += " " + NO_REVERSAL[0].upper() + NO_REVERSAL[1:] + "."
    return Table(
        "Context use (A11)",
        [
            "reward",
            "pairs",
            "acc with context",
            "acc without",
            "gain",
            "reversal pairs",
            "consistency",
            "both right",
        ],
        rows,
        note,
    )


def context_use_text(a: Mapping[str, Any]) -> str:
    """One line for the terminal (``rewardkit eval``): accuracy with/without, reversal."""
    rev = a["reversal"]
    text = (
        f"context acc {fmt(a['accuracy_with'], True)} with / {fmt(a['accuracy_without'], True)} "
        f"without (n={a['n_pairs']})"
    )
    if rev["n_pairs"]:
        return text + f", reversal consistency {fmt(rev['consistency'], True)} (n={rev['n_pairs']})"
    return text + ", no reversal pairs"

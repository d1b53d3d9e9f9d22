"""Listwise (groupwise) judging: k responses to one prompt ranked in one call
(docs/methods/B7-listwise-judge.md; RewardBench 2's 4-way format, GRPO groups).

The template's ``{responses}`` slot becomes ``[1]\\n{response_1}\\n\\n[2]\\n{response_2}…``. Each
group is shown in a seeded random order (:func:`permutation`: the same responses and seed give
the same order on every run and backend, whatever order they came in), so no response profits
from a slot; the judge's per-label
scores are mapped back to the responses::

    shown[j] = group[π(j)];  score(group[π(j)]) = s_j
    s = softmax(ℓ_[1] … ℓ_[k])   (logits / logprobs of the first answer token: P(best))
    s_j = b_j / Σ b,  b_j = (k − 1 − rank_j) / (k − 1)   (a parsed text ranking: normalised
                                                         Borda; the best alone: 1 and 0s)

Higher is better; scores compare responses within their group. ``score(queries)`` ranks the
queries that share a prompt (and ``meta["example_id"]`` when set, so each evaluated example —
RewardBench 2's 4-way rows, RM-Bench's 3×3 — is its own group) as one group; a group of one is
NaN: nothing to compare with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rewardkit.rewards.judges import verdict
from rewardkit.rewards.judges.failures import reindex_errors
from rewardkit.types import (
    Content,
    ListwiseResult,
    Message,
    Query,
    ScoreResult,
    as_messages,
    stable_hash,
)

SLOT = "{responses}"
Group = tuple[list[Message], list[Content]]


def expand_template(text: str, k: int) -> tuple[str, tuple[str, ...]]:
    """The template with ``{responses}`` spelled out for k responses, and its slots."""
    if text.count(SLOT) != 1:
        raise ValueError(f"a listwise judge template needs exactly one {SLOT}")
    slots = tuple(f"{{response_{i}}}" for i in range(1, k + 1))
    block = "\n\n".join(f"[{i}]\n{slot}" for i, slot in enumerate(slots, start=1))
    return text.replace(SLOT, block), ("{conversation}", *slots)


def label_classes(k: int) -> tuple[tuple[str, ...], ...]:
    """The answer classes of a group of k: the labels 1…k (with a leading-space spelling)."""
    return tuple((str(i), f" {i}") for i in range(1, k + 1))


#: The largest group whose labels are one digit each, so that each is its own first token.
ONE_DIGIT_LABELS = 9


def first_token_labels(k: int) -> bool:
    """Whether the first answer token tells the labels 1…k apart: up to 9 (one digit each). From
    10 on, a server whose tokenizer spells "12" as "1" "2" gives label 1 the mass of 12, so the
    HTTP judge reads the text ranking instead (docs/judges.md, HTTP limits)."""
    return k <= ONE_DIGIT_LABELS


def permutation(seed: int, prompt: Any, group: Sequence[Content]) -> np.ndarray:
    """The seeded shown order π of a group: shown[j] = group[π[j]].

    Responses are sorted by a seeded hash of (prompt, response), so the order is random across
    groups, the same on every run and backend, and independent of the order the group came in.
    """
    keys = [stable_hash(["listwise", seed, prompt, r]) for r in group]
    return np.asarray(sorted(range(len(group)), key=lambda i: keys[i]), dtype=np.int64)


def weighted_pair_accuracy(pred: Mapping[str, float], gold: Mapping[str, float]) -> float:
    """RewardAnything's listwise accuracy: over response pairs with weight w = 1 + |g_a − g_b|, a
    reversed order costs w and a predicted tie where the gold differs costs w/2;
    ``max(0, 1 − Σ cost / Σ w)``. gold {A:5,B:3,C:1}, pred {A:4,B:4,C:1} → 1 − 1.5/11 = 0.863636.
    A pair the prediction does not order (a response it leaves out or scores NaN) costs w, as a
    reversed one: it never counts as right. Pairs with a NaN gold do not apply (left out; NaN
    when no pair is left)."""
    names = [n for n in gold if not np.isnan(gold[n])]
    cost = total = 0.0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            w = 1.0 + abs(gold[a] - gold[b])
            total += w
            g, p = np.sign(gold[a] - gold[b]), np.sign(pred.get(a, np.nan) - pred.get(b, np.nan))
            if g != 0 and (p == -g or np.isnan(p)):
                cost += w
            elif g != 0 and p == 0:
                cost += 0.5 * w
    return max(0.0, 1.0 - cost / total) if total else float("nan")


class ListwiseJudging:
    """Mixin of the listwise judges (a class that uses it declares :attr:`Capability.LISTWISE`);
    a backend provides :meth:`shown_scores`."""

    #: Seed of the shown orders.
    seed: int = 0
    #: The largest group a backend reads in one call.
    max_group: ClassVar[int] = 9

    #: Tag hashed into the row keys of shown groups.
    list_tag: ClassVar[str] = "list"

    def shown_scores(self, groups: Sequence[Group]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Per-label scores (k,) of each shown group (NaN when unread), and the call's stats.

        This default runs the groups through the scoring engine of a local backend (its
        ``run_rows`` and ``encode_groups``, whose rows give the log-scores of the labels 1…9);
        the HTTP backend has its own."""
        keys = [stable_hash([self.list_tag, m, list(shown)]) for m, shown in groups]
        engine: Any = self
        run = engine.run_rows(list(groups), keys, engine.encode_groups)
        table = run.values.astype(np.float64)
        scores = [verdict.softmax(table[i, : len(g[1])]) for i, g in enumerate(groups)]
        return scores, dict(run.stats)

    def rank_many(
        self, prompts: Sequence[Any], groups: Sequence[Sequence[Content]]
    ) -> ListwiseResult:
        """Rank each group of responses to its prompt in one judge call per group: per-response
        scores in the group's own order (NaN where unread; a group of one is NaN) and stats."""
        if len(prompts) != len(groups):
            raise ValueError(f"{len(prompts)} prompts but {len(groups)} groups")
        msgs = [as_messages(p) for p in prompts]
        perms, shown, index = [], [], []
        for i, (m, g) in enumerate(zip(msgs, groups, strict=True)):
            k = len(g)
            if k > self.max_group:
                raise ValueError(f"a listwise judge here ranks at most {self.max_group} responses")
            perm = permutation(self.seed, m, g)
            perms.append(perm)
            if k >= 2:
                index.append(i)
                shown.append((m, [g[j] for j in perm]))
        label_scores, stats = self.shown_scores(shown) if shown else ([], {"computed": 0})
        out = [np.full(len(g), np.nan) for g in groups]
        for i, s in zip(index, label_scores, strict=True):
            out[i][perms[i]] = s
        stats = reindex_errors(stats, [[i] for i in index])  # shown group → its group
        return ListwiseResult(tuple(out), {**stats, "groups": len(index)})

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """Each query's score within the group of queries sharing its prompt (NaN alone)."""
        by_prompt: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            group = q.meta.get("example_id")  # an evaluated example's responses are one group
            by_prompt.setdefault(stable_hash([q.prompt, group]), []).append(i)
        members = list(by_prompt.values())
        judged = self.rank_many(
            [queries[m[0]].prompt for m in members],
            [[queries[i].response for i in m] for m in members],
        )
        out = np.full(len(queries), np.nan)
        for m, s in zip(members, judged.scores, strict=True):
            out[m] = s
        stats = reindex_errors(judged.stats, members)  # a failed group fails its queries
        return ScoreResult(out, stats={**stats, "queries": len(queries)})

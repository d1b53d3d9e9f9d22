"""Decontamination: training rows whose prompt also appears in an evaluation set.

A reward model scored on prompts it was trained on reports memory, not judgement. Two tests,
both on :func:`~rewardkit.curate.dedup.normalize_text` (case, quotes, presentation punctuation
and whitespace do not hide a copy):

- **exact**: the row's conversation (every non-system turn, roles included) equals an
  evaluation row's after normalization;
- **n-gram**: the row's text shares at least ``min_shared`` word n-grams (``n`` = 13 by default,
  the window GPT-3's paper used to decontaminate its benchmarks) with one evaluation row. A text
  shorter than ``n`` words has no n-gram: a short prompt is caught by the exact test, and a short
  answer ("Yes.") is no evidence of a copy.

System turns are left out of both tests: one boilerplate system prompt shared by a training set
and a benchmark would otherwise mark every row. With ``responses=True`` the responses are tested
too (a training pair holding a benchmark's answer word for word), each against the evaluation
set's responses. Every input row is either kept or listed in ``removed`` with the evaluation set,
the row it matched, the test and the number of shared n-grams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.content_parts import content_text
from rewardkit.curate.dedup import normalize_text
from rewardkit.types import Example, Message

#: GPT-3's decontamination window ("Language Models are Few-Shot Learners", appendix C).
DEFAULT_N = 13


def turns_text(prompt: Sequence[Message]) -> str:
    """The prompt's non-system turns as one normalized text, each turn prefixed by its role."""
    return "\n".join(
        f"{m.get('role', '')}: {normalize_text(content_text(m.get('content', ''), None))}"
        for m in prompt
        if m.get("role") != "system"
    )


def ngrams(text: str, n: int) -> set[str]:
    """The word n-grams of normalized ``text`` (none for a text of fewer than ``n`` words)."""
    words = normalize_text(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class EvalIndex:
    """One evaluation set's exact keys and n-grams, each mapped to the first row holding it."""

    name: str
    n: int
    exact: dict[str, str] = field(default_factory=dict)
    grams: dict[str, str] = field(default_factory=dict)
    response_grams: dict[str, str] = field(default_factory=dict)
    rows: int = 0


def build_index(name: str, examples: Iterable[Example], n: int = DEFAULT_N) -> EvalIndex:
    """The :class:`EvalIndex` of an evaluation set's examples."""
    if n < 1:
        raise ValueError(f"n-gram size must be at least 1, got {n}")
    index = EvalIndex(name, n)
    for ex in examples:
        index.rows += 1
        text = turns_text(ex.prompt)
        if text:
            index.exact.setdefault(text, ex.id)
        for g in ngrams(_words_only(ex.prompt), n):
            index.grams.setdefault(g, ex.id)
        for r in ex.responses:
            for g in ngrams(content_text(r, None), n):
                index.response_grams.setdefault(g, ex.id)
    return index


def _words_only(prompt: Sequence[Message]) -> str:
    """The non-system turns' text without role names (n-grams span turn boundaries)."""
    return "\n".join(
        content_text(m.get("content", ""), None) for m in prompt if m.get("role") != "system"
    )


def _best_hit(grams: set[str], table: dict[str, str]) -> tuple[str, int] | None:
    """The evaluation row sharing the most of ``grams`` and how many it shares."""
    counts: dict[str, int] = {}
    for g in grams:
        row = table.get(g)
        if row is not None:
            counts[row] = counts.get(row, 0) + 1
    if not counts:
        return None
    row = max(counts, key=lambda r: counts[r])
    return row, counts[row]


def match(
    ex: Example, index: EvalIndex, min_shared: int = 1, responses: bool = False
) -> dict[str, Any] | None:
    """Why ``ex`` is contaminated by ``index`` (``{eval, eval_id, kind, shared}``), or None."""
    text = turns_text(ex.prompt)
    if text and text in index.exact:
        return {"eval": index.name, "eval_id": index.exact[text], "kind": "exact", "shared": None}
    hit = _best_hit(ngrams(_words_only(ex.prompt), index.n), index.grams)
    if hit is not None and hit[1] >= min_shared:
        return {"eval": index.name, "eval_id": hit[0], "kind": "ngram", "shared": hit[1]}
    if responses:
        for r in ex.responses:
            hit = _best_hit(ngrams(content_text(r, None), index.n), index.response_grams)
            if hit is not None and hit[1] >= min_shared:
                return {
                    "eval": index.name,
                    "eval_id": hit[0],
                    "kind": "response_ngram",
                    "shared": hit[1],
                }
    return None


@dataclass
class DecontaminationResult:
    """Kept rows; ``removed`` (``{index, id, eval, eval_id, kind, shared}``) for the others;
    ``counts`` per evaluation set and in all."""

    examples: list[Example]
    removed: list[dict[str, Any]]
    counts: dict[str, int]


def decontaminate(
    examples: Sequence[Example],
    indexes: Sequence[EvalIndex],
    min_shared: int = 1,
    responses: bool = False,
) -> DecontaminationResult:
    """Drop the rows of ``examples`` that any of ``indexes`` contaminates (the first set that
    matches is named)."""
    if min_shared < 1:
        raise ValueError(f"min_shared must be at least 1, got {min_shared}")
    kept: list[Example] = []
    removed: list[dict[str, Any]] = []
    counts = {"rows": len(examples), **{f"removed_by_{ix.name}": 0 for ix in indexes}}
    for i, ex in enumerate(examples):
        why = next(
            (m for ix in indexes if (m := match(ex, ix, min_shared, responses)) is not None),
            None,
        )
        if why is None:
            kept.append(ex)
            continue
        removed.append({"index": i, "id": ex.id, **why})
        counts[f"removed_by_{why['eval']}"] += 1
    counts["removed"] = len(removed)
    counts["kept"] = len(kept)
    return DecontaminationResult(kept, removed, counts)

"""Deduplication and length-balance checks for preference data.

Two examples are duplicates when they have the same prompt and the same responses with the same
labels — compared exactly (``level="exact"``) or after :func:`normalize_text` (Unicode NFKC,
case-folded, punctuation dropped but a number's minus sign and decimal point kept, whitespace
collapsed; ``level="normalized"``). Response order
does not matter: (A ≻ B) listed as [A, B] or [B, A] is one pair. Groups with the same prompt and
responses but *different* labels are conflicts. Pairs whose chosen and rejected texts are equal
(after normalization) are degenerate.

The length-balance check reuses the length-degenerate-subset rule of
:mod:`rewardkit.evaluate.lengthbias`: a subset (or source) where "the longer response wins" is
≥ ``threshold`` (or ≤ 1 − ``threshold``) accurate can be solved by length alone.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.content import ImageRef
from rewardkit.evaluate.lengthbias import DEGENERATE_AT, length_degenerate_subsets, pairs_of
from rewardkit.types import Example, stable_hash

LEVELS = ("exact", "normalized")
ON_CONFLICT = ("majority", "drop", "keep_first")
_WS = re.compile(r"\s+")
#: A minus sign or decimal point that is part of a number: "-" or "." right before a digit and
#: not right after a letter ("-5", "3.14", "(-.5)"; not "covid-19", "e.g.5").
_NUMBER_MARK = re.compile(r"(?<![^\W\d_])(?:-(?=\.?\d)|\.(?=\d))")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, Unicode punctuation removed except a number's minus sign and decimal
    point (``"-5"`` ≠ ``"5"``, ``"3.14"`` ≠ ``"314"``), whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    keep = {m.start() for m in _NUMBER_MARK.finditer(text)}
    text = "".join(
        ch for i, ch in enumerate(text) if i in keep or not unicodedata.category(ch).startswith("P")
    )
    return _WS.sub(" ", text).strip()


def _norm(text: str, level: str) -> str:
    return text if level == "exact" else normalize_text(text)


def content_form(content: Any, level: str = "normalized") -> str:
    """Text compared for duplicates: the (normalized) text, or for content parts each text part
    (normalized) and each image by the sha256 of its bytes (:meth:`ImageRef.digest`), so the
    same image named on two lines or by two paths compares equal."""
    if isinstance(content, str):
        return _norm(content, level)
    parts = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append("t:" + _norm(str(part.get("text", "")), level))
        elif isinstance(part, dict) and isinstance(part.get("image"), ImageRef):
            parts.append("i:" + part["image"].digest())
        else:
            parts.append("o:" + _norm(str(part), level))
    return stable_hash(parts)


def content_key(ex: Example, level: str = "normalized") -> str:
    """Hash of the prompt and the set of responses (labels left out)."""
    prompt = [(m["role"], content_form(m["content"], level)) for m in ex.prompt]
    return stable_hash([prompt, sorted(content_form(r, level) for r in ex.responses)])


def label_key(ex: Example, level: str = "normalized") -> str:
    """Hash of which (normalized) responses are chosen."""
    return stable_hash(sorted(content_form(ex.responses[i], level) for i in set(ex.chosen)))


@dataclass
class DedupResult:
    """Kept examples and what was removed, with reasons: every input row is either in
    ``examples`` or in ``removed`` (``{index, id, reason, of}``; reason ``duplicate``,
    ``conflict`` or ``degenerate``; ``of`` the id of the kept example it duplicates or loses to)."""

    examples: list[Example]
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # {id, duplicate_of}
    conflicts: list[list[str]] = field(default_factory=list)  # ids of each conflicting group
    degenerate: list[str] = field(default_factory=list)  # chosen text == rejected text
    counts: dict[str, int] = field(default_factory=dict)
    removed: list[dict[str, Any]] = field(default_factory=list)

    def removed_counts(self) -> dict[str, int]:
        """Rows removed per reason; with ``counts["kept"]`` they add up to the input rows."""
        out = {"duplicate": 0, "conflict": 0, "degenerate": 0}
        for row in self.removed:
            out[row["reason"]] += 1
        return out


def _conflict_winners(labels: list[str], on_conflict: str) -> str | None:
    """The label kept in a conflicting group (None: the whole group is dropped)."""
    if on_conflict == "drop":
        return None
    if on_conflict == "keep_first":
        return labels[0]
    top = Counter(labels).most_common()
    return None if len(top) > 1 and top[0][1] == top[1][1] else top[0][0]


def dedup(
    examples: Sequence[Example],
    level: str = "normalized",
    on_conflict: str = "majority",
    drop_degenerate: bool = True,
) -> DedupResult:
    """Remove duplicate examples (first occurrence kept, input order kept).

    ``on_conflict`` — same prompt and responses, different labels: ``majority`` keeps the first
    example of the most frequent label and drops the group when the top labels tie; ``drop``
    drops the whole group; ``keep_first`` keeps the first example. ``drop_degenerate`` drops
    pairs whose chosen and rejected texts are equal after normalization. Every dropped row is
    listed in ``removed`` with its reason.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be one of {ON_CONFLICT}, got {on_conflict!r}")
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(content_key(ex, level), []).append(i)
    keep: set[int] = set()
    res = DedupResult([])

    def drop(i: int, reason: str, of: int | None) -> None:
        of_id = examples[of].id if of is not None else None
        res.removed.append({"index": i, "id": examples[i].id, "reason": reason, "of": of_id})

    for members in groups.values():
        labels = [label_key(examples[i], level) for i in members]
        winner = labels[0]
        if len(set(labels)) > 1:
            res.conflicts.append([examples[i].id for i in members])
            winner = _conflict_winners(labels, on_conflict)  # type: ignore[assignment]
        same = [i for i, lab in zip(members, labels, strict=True) if lab == winner]
        first = same[0] if same else None
        if first is not None:
            keep.add(first)
        for i, lab in zip(members, labels, strict=True):
            if i == first:
                continue
            if lab == winner:
                res.duplicates.append({"id": examples[i].id, "duplicate_of": examples[first].id})  # type: ignore[index]
                drop(i, "duplicate", first)
            else:
                drop(i, "conflict", first)
    for i in sorted(keep):
        ex = examples[i]
        texts = {content_form(r) for r in ex.responses}
        if len(ex.responses) > 1 and len(texts) < len(ex.responses):
            res.degenerate.append(ex.id)
            if drop_degenerate:
                drop(i, "degenerate", None)
                continue
        res.examples.append(ex)
    res.removed.sort(key=lambda row: row["index"])
    res.counts = {
        "examples": len(examples),
        "duplicates": len(res.duplicates),
        "conflict_groups": len(res.conflicts),
        "degenerate": len(res.degenerate),
        "kept": len(res.examples),
    }
    return res


def _group(ex: Example, by: str) -> str:
    value = ex.subset if by == "subset" else ex.source
    return value or "(none)"


def length_balance(
    examples: Sequence[Example], by: str = "subset", threshold: float = DEGENERATE_AT
) -> dict[str, dict[str, Any]]:
    """Per group (``subset`` or ``source``): the accuracy of "the longer response (characters)
    wins" (ties ½) over chosen/rejected pairs, and a ``flag`` ("longer wins" / "shorter wins")
    where a length baseline solves the group."""
    if by not in ("subset", "source"):
        raise ValueError(f"by must be 'subset' or 'source', got {by!r}")
    if isinstance(threshold, bool) or not (
        isinstance(threshold, int | float) and 0.5 <= threshold <= 1.0
    ):
        raise ValueError(
            f"threshold (a length accuracy; ≤ 1 − it flags 'shorter wins') must be in "
            f"[0.5, 1], got {threshold!r}"
        )
    usable = [ex for ex in examples if ex.chosen and ex.rejected and not ex.is_tie]
    return length_degenerate_subsets(
        [_group(ex, by) for ex in usable],
        [[len(r) for r in ex.responses] for ex in usable],
        [ex.chosen for ex in usable],
        [True] * len(usable),
        threshold,
    )


def rebalance(examples: Sequence[Example], by: str = "subset", seed: int = 0) -> list[Example]:
    """Subsample each group so that "chosen longer" and "chosen shorter" pairs are equally many
    (seeded; pairs of equal length and unlabelled examples are always kept)."""
    rng = random.Random(seed)
    direction: list[int] = []
    for ex in examples:
        pairs = pairs_of(ex.chosen, len(ex.responses)) if not ex.is_tie else []
        if not pairs:
            direction.append(0)
            continue
        c, r = pairs[0]
        diff = len(ex.responses[c]) - len(ex.responses[r])
        direction.append((diff > 0) - (diff < 0))
    drop: set[int] = set()
    for g in dict.fromkeys(_group(ex, by) for ex in examples):
        longer = [i for i, ex in enumerate(examples) if _group(ex, by) == g and direction[i] > 0]
        shorter = [i for i, ex in enumerate(examples) if _group(ex, by) == g and direction[i] < 0]
        big, small = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
        drop.update(rng.sample(big, len(big) - len(small)))
    return [ex for i, ex in enumerate(examples) if i not in drop]

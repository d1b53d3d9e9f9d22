"""Deduplication and length-balance checks for preference data.

Two examples are duplicates when they have the same prompt and the same responses with the same
labels — compared exactly (``level="exact"``) or after :func:`normalize_text` (``level=
"normalized"``: only presentation is dropped — case, whitespace, quotes, sentence punctuation,
markdown emphasis — while what can change the meaning stays: operators between operands as in
``6/3``, ``x-1``, ``2:30``, ``a * b``, and ``%``, brackets, a number's sign and decimal point).
Response order does not matter: (A ≻ B) listed as [A, B] or [B, A] is one pair. Groups with the
same prompt and responses but *different* labels are conflicts. An example in which a chosen
text equals a rejected text (at the same level) is degenerate; two equal responses on the same
side (both chosen, or both rejected) are not, and the example is kept as it is.

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
#: not right after a letter ("-5", "3.14", "(-.5)").
_NUMBER_MARK = re.compile(r"(?<![^\W\d_])(?:-(?=\.?\d)|\.(?=\d))")
#: Punctuation kept wherever it stands (it changes what a text says).
_ALWAYS = set("%&@\\")
#: Punctuation kept between two operands ("6/3", "x-1", "2:30", "a * b", "snake_case"); a run
#: touching an operand on one side only is presentation ("**bold**", "Answer: 4", "- item").
_BETWEEN = set("-/*:_·‐‑‒–—−")
#: Punctuation kept between two digits ("3.14", "1,5").
_IN_NUMBER = set(".,")


def _side(text: str, i: int, step: int) -> tuple[str, int]:
    """The first character from ``i`` in direction ``step`` that is not a space, and how many
    spaces were skipped ('' at either end)."""
    gap = 0
    while 0 <= i < len(text) and text[i] in " \t":
        i, gap = i + step, gap + 1
    return (text[i] if 0 <= i < len(text) else ""), gap


def _operand(ch: str, left: bool) -> bool:
    """Whether ``ch`` can end (``left``) or start an operand: a letter, digit or bracket."""
    cat = unicodedata.category(ch) if ch else ""
    return ch.isalnum() or cat == ("Pe" if left else "Ps") or (left and ch in ("%", "!"))


def _kept_run(text: str, start: int, end: int) -> bool:
    """Whether the punctuation run ``text[start:end]`` (one repeated character) is kept."""
    ch = text[start]
    if ch in _ALWAYS or unicodedata.category(ch) in ("Ps", "Pe"):
        return True
    before, gap_b = _side(text, start - 1, -1)
    after, gap_a = _side(text, end, 1)
    if ch in _IN_NUMBER and end - start == 1:
        return gap_b == gap_a == 0 and before.isdigit() and after.isdigit()
    if ch in _BETWEEN:
        operands = _operand(before, True) and (_operand(after, False) or after in ("-", "+", "."))
        if operands and (gap_b > 0) == (gap_a > 0):
            return True
        # a sign glued to what it negates: "y = -x + 1", "e^{-x}", "-π" (not a "- item" bullet)
        return ch in _MINUSES and end - start == 1 and gap_a == 0 and _signed(after)
    if ch == "!":  # a factorial ("n!", "10!") or "!=", not an exclamation ("Hello!")
        single = start == 1 or (start >= 2 and not text[start - 2].isalpha())
        if after == "=" and gap_a == 0:
            return True
        ends = after in ("", ".", "!", "?")  # "It is 5!": an exclamation ends the sentence
        return gap_b == 0 and not ends and (before.isdigit() or (before.isalpha() and single))
    if ch == "'":  # a derivative "f'(x)", not an apostrophe ("don't")
        return end - start <= 3 and gap_b == gap_a == 0 and before.isalpha() and after == "("
    return False


#: The minus signs a sign can be written with.
_MINUSES = set("-‐‑‒–−")


def _signed(ch: str) -> bool:
    """Whether ``ch`` can follow a sign: a letter, digit, opening bracket or a math symbol."""
    return bool(ch) and (ch.isalnum() or unicodedata.category(ch) in ("Ps", "Sm", "So"))


def _invisible(ch: str) -> bool:
    """An invisible format character (zero-width space and joiners, soft hyphen, byte-order
    mark, direction marks: Unicode category Cf) or an emoji/text variation selector."""
    return unicodedata.category(ch) == "Cf" or "\ufe00" <= ch <= "\ufe0f"


#: Arabic tatweel (kashida): it stretches a word for display, the letters stay the same.
_TATWEEL = "\u0640"


def _superscripts(text: str) -> str:
    """Each run of superscript characters as ``^`` and its NFKC form (``"x²"`` → ``"x^2"``,
    ``"10⁻¹²"`` → ``"10^-12"``): NFKC alone makes ``"x²"`` the different ``"x2"``."""
    if text.isascii():
        return text
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if ch > "\x7f" and unicodedata.decomposition(ch).startswith("<super>"):
            run.append(ch)
            continue
        if run:
            out.append("^" + "".join(run))
            run = []
        out.append(ch)
    if run:
        out.append("^" + "".join(run))
    return "".join(out)


def normalize_text(text: str) -> str:
    """NFKC, case-folded, invisible format characters dropped (``"Pa\u200bris"`` =
    ``"Paris"``), presentation punctuation dropped, whitespace collapsed and stripped.
    Superscripts become ``^`` powers first (``"x²"`` = ``"x^2"`` ≠ ``"x2"``; subscripts are
    NFKC's: ``"H₂O"`` = ``"H2O"``); the minus sign U+2212 is ``-`` (``"−5"`` = ``"-5"``); the
    Arabic tatweel is dropped (``"القـــاهرة"`` = ``"القاهرة"``).

    Kept: operators between operands (``"6/3"`` ≠ ``"6*3"``, ``"x-1"`` ≠ ``"x1"``, ``"2:30"`` ≠
    ``"230"``), ``% & @ \\``, brackets, symbols (``+ = ^ < >``), a number's sign and decimal point
    (``"-5"`` ≠ ``"5"``, ``"3.14"`` ≠ ``"314"``), a sign glued to what it negates (``"-x"``,
    ``"e^{-x}"``), a factorial and ``!=`` (``"n!"``, ``"10! = …"``), a derivative's prime
    (``"f'(x)"``). Dropped: quotes, sentence punctuation
    (``"Paris."`` = ``"paris"``), markdown emphasis (``"**Paris**"`` = ``"Paris"``).
    """
    text = unicodedata.normalize("NFKC", _superscripts(text)).casefold().replace("\u2212", "-")
    text = "".join(ch for ch in text if not _invisible(ch) and ch != _TATWEEL)
    marks = {m.start() for m in _NUMBER_MARK.finditer(text)}
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if not unicodedata.category(ch).startswith("P"):
            out.append(ch)
            i += 1
            continue
        end = i + 1
        while end < len(text) and text[end] == ch:
            end += 1
        if i in marks or _kept_run(text, i, end):
            out.append(text[i:end])
        i = end
    return _WS.sub(" ", "".join(out)).strip()


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


def degenerate(ex: Example, level: str = "normalized") -> bool:
    """Whether a chosen response of ``ex`` equals one of its rejected responses at ``level``
    (two equal responses on the same side are not degenerate)."""
    chosen = {content_form(ex.responses[i], level) for i in set(ex.chosen)}
    return any(content_form(ex.responses[i], level) in chosen for i in ex.rejected)


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
    examples in which a chosen text equals a rejected text at ``level`` (:func:`degenerate`).
    Every dropped row is listed in ``removed`` with its reason.
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
        if degenerate(ex, level):
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


def text_responses(ex: Example) -> bool:
    """Whether every response of ``ex`` is text (an image response has no length in
    characters: a content list's ``len`` counts its parts)."""
    return all(isinstance(r, str) for r in ex.responses)


def length_balance(
    examples: Sequence[Example], by: str = "subset", threshold: float = DEGENERATE_AT
) -> dict[str, dict[str, Any]]:
    """Per group (``subset`` or ``source``): the accuracy of "the longer response (characters)
    wins" (ties ½) over chosen/rejected pairs, and a ``flag`` ("longer wins" / "shorter wins")
    where a length baseline solves the group. Examples with an image response are left out
    (:func:`text_responses`)."""
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
    usable = [ex for ex in usable if text_responses(ex)]  # an image has no length to compare
    return length_degenerate_subsets(
        [_group(ex, by) for ex in usable],
        [[len(r) for r in ex.responses] for ex in usable],
        [ex.chosen for ex in usable],
        [True] * len(usable),
        threshold,
    )


def rebalance(examples: Sequence[Example], by: str = "subset", seed: int = 0) -> list[Example]:
    """Subsample each group so that "chosen longer" and "chosen shorter" pairs are equally many
    (seeded; pairs of equal length, unlabelled examples and examples with an image response
    are always kept)."""
    rng = random.Random(seed)
    direction: list[int] = []
    for ex in examples:
        usable = not ex.is_tie and text_responses(ex)
        pairs = pairs_of(ex.chosen, len(ex.responses)) if usable else []
        if not pairs:
            direction.append(0)
            continue
        c, r = pairs[0]
        diff = len(ex.responses[c]) - len(ex.responses[r])
        direction.append((diff > 0) - (diff < 0))
    groups: dict[str, tuple[list[int], list[int]]] = {}  # one pass: linear in the groups
    for i, ex in enumerate(examples):
        longer, shorter = groups.setdefault(_group(ex, by), ([], []))
        if direction[i]:
            (longer if direction[i] > 0 else shorter).append(i)
    drop: set[int] = set()
    for longer, shorter in groups.values():
        big, small = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
        drop.update(rng.sample(big, len(big) - len(small)))
    return [ex for i, ex in enumerate(examples) if i not in drop]

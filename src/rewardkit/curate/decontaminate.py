"""Decontamination: training rows whose prompt also appears in an evaluation set.

A reward model scored on prompts it was trained on reports memory, not judgement. Two tests,
both on :func:`fold`: :func:`~rewardkit.curate.dedup.normalize_text` (case, quotes, presentation
punctuation, whitespace, zero-width and direction marks do not hide a copy) with the remaining
invisible characters dropped and Cyrillic/Greek look-alikes read as the Latin letters they
imitate (``"Pаris"`` with a Cyrillic ``а`` is ``"Paris"``) and accents dropped
(:func:`strip_accents`: ``"café"``, precomposed or decomposed, is ``"cafe"``):

- **exact**: the row's conversation (every non-system turn, roles included) equals an
  evaluation row's after normalization;
- **n-gram**: the row's text shares at least ``min_shared`` word n-grams (``n`` = 13 by default,
  the window GPT-3's paper used to decontaminate its benchmarks) with one evaluation row. A text
  shorter than ``n`` words has no n-gram: a short prompt is caught by the exact test, and a short
  answer ("Yes.") is no evidence of a copy.

An n-gram that more than :func:`common_limit` evaluation rows hold (at least 50 rows and 5% of
the set) is the set's boilerplate — a shared instruction or rubric template — and is not
counted: it is evidence of a template, not of a copied item, and counting it made every row that
uses the template "contaminated" by the set's first row, at a cost per training row that grew
with the set. A copy of an item is still caught by its own n-grams and by the exact test.

System turns are left out of both tests: one boilerplate system prompt shared by a training set
and a benchmark would otherwise mark every row. With ``responses=True`` the responses are tested
too (a training pair holding a benchmark's answer word for word), each against the evaluation
set's responses. Every input row is either kept or listed in ``removed`` with the evaluation set,
the row it matched, the test and the number of shared n-grams.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.content import ImageRef
from rewardkit.content_parts import content_text
from rewardkit.curate.dedup import normalize_text
from rewardkit.types import Example, Message

#: GPT-3's decontamination window ("Language Models are Few-Shot Learners", appendix C).
DEFAULT_N = 13
#: An n-gram held by more rows than both of these (a count and a share of the set) is boilerplate.
COMMON_MIN_ROWS = 50
COMMON_FRACTION = 0.05


#: Invisible characters :func:`normalize_text` keeps (it drops format characters, category Cf):
#: the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian free
#: variation selectors and the supplementary variation selectors.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\uffa0\U000e0100-\U000e01ef]"
)
#: Cyrillic, Greek and Latin-extension letters drawn like a Latin letter (a homoglyph hides a copy
#: from an exact comparison); the braille blank is drawn as a space. Applied before
#: normalization (case kept: Cyrillic ``Н`` looks like ``H``, ``н`` like nothing) and after it
#: (the lower-case entries, for the forms NFKC produces, e.g. a mathematical bold Greek alpha).
_LOOKALIKE = str.maketrans(
    "АВЕКМНОРСТХЅІЈҮԚԜаеорсухѕіјһԁԛԝӏүΑΒΕΖΗΙΚΜΝΟΡΤΥΧαονικρυχıɡɑ\u2800",
    "ABEKMHOPCTXSIJYQWaeopcyxsijhdqwlyABEZHIKMNOPTYXaovikpuxiga ",
)


#: Marks that are accents, not letters: the combining diacritics NFKD splits off Latin, Greek
#: and Cyrillic letters (and their extension and half-mark blocks), Hebrew points and Arabic
#: harakat. The marks of Indic, Thai or Tibetan letters and the kana voicing marks have their
#: own code points and are kept: there they tell letters apart (``"कुल"`` ≠ ``"कल"``, ``"が"`` ≠
#: ``"か"``). Dropped only after a letter (``"≠"`` is ``"="`` + U+0338 under NFKD: kept).
_ACCENTS = re.compile(
    r"(?<=[^\W\d_])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\ufe20-\ufe2f"
    r"\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u064b-\u065f\u0670]+"
)
#: Letters whose stroke NFKD does not split off, read as the plain letter, and the ligatures
#: NFKC keeps (case-folded text: lower case only).
_UNSTROKED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "æ": "ae", "œ": "oe"})


def strip_accents(text: str) -> str:
    """``text`` (normalized: NFKC, case-folded) without its accents: NFKD, the :data:`_ACCENTS`
    after a letter dropped, the :data:`_UNSTROKED` letters plain, recomposed (NFC: Hangul, kana
    voicing). ``"Café"`` (U+00E9, or ``e`` + U+0301), ``"CAFE"`` and ``"ｃａｆé"`` all read
    ``"cafe"``."""
    if text.isascii():
        return text
    bare = _ACCENTS.sub("", unicodedata.normalize("NFKD", text)).translate(_UNSTROKED)
    return unicodedata.normalize("NFC", bare)


def fold(text: str) -> str:
    """The form both tests compare, the one function every exact and n-gram path reads text
    through: ``text`` without the invisible characters normalization keeps, look-alike letters
    as Latin (:data:`_LOOKALIKE`), :func:`~rewardkit.curate.dedup.normalize_text` (NFKC,
    case-folded: fullwidth letters and ligatures are plain letters), accents dropped
    (:func:`strip_accents`). Two texts that fold alike look alike up to accents; a training row
    that disguises a benchmark item this way, or copies it with its accents lost, is caught."""
    text = normalize_text(_IGNORABLE.sub("", text).translate(_LOOKALIKE))
    return strip_accents(text).translate(_LOOKALIKE)


def common_limit(rows: int) -> int:
    """The most evaluation rows an n-gram may be held by and still count (see the docstring)."""
    return max(COMMON_MIN_ROWS, int(COMMON_FRACTION * rows))


def turn_form(content: Any) -> str:
    """A turn as the exact test compares it: its folded text (:func:`fold`; where it leaves
    nothing, a text of punctuation only such as ``"!!!"``, the text with white space collapsed:
    ``"!!!"`` is no copy of ``"..."``), then each image as the sha256 of its bytes (two prompts
    asking "Describe." of two images are not one prompt)."""
    raw = content_text(content, None)
    text = fold(raw) or " ".join(raw.split())
    parts = content if isinstance(content, list) else []
    images = [
        f"<image {p['image'].digest()}>"
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("image"), ImageRef)
    ]
    return " ".join([text, *images]) if images else text


def turns_text(prompt: Sequence[Message]) -> str:
    """The prompt's non-system turns as one normalized text, each turn prefixed by its role
    (:func:`turn_form`)."""
    return "\n".join(
        f"{m.get('role', '')}: {turn_form(m.get('content', ''))}"
        for m in prompt
        if m.get("role") != "system"
    )


def ngrams(text: str, n: int) -> set[str]:
    """The word n-grams of ``text`` (:func:`fold`; none for a text of fewer than ``n`` words)."""
    words = fold(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


#: An n-gram table: each n-gram to the evaluation row holding it (its position), or to the
#: ascending positions of every row holding it when several do.
GramTable = dict[str, int | list[int]]


@dataclass
class EvalIndex:
    """One evaluation set's exact keys (each mapped to the first row holding it) and n-grams
    (each mapped to every row holding it: a copy of row 50 that shares a benchmark's common
    instruction with row 1 shares all its n-grams with row 50, not some with each)."""

    name: str
    n: int
    exact: dict[str, str] = field(default_factory=dict)
    grams: GramTable = field(default_factory=dict)
    response_grams: GramTable = field(default_factory=dict)
    rows: int = 0
    ids: list[str] = field(default_factory=list)  # the evaluation rows' ids, by position
    common: int = 0  # boilerplate n-grams left out (:func:`common_limit`)


def _add(table: GramTable, grams: Iterable[str], row: int) -> None:
    for g in grams:
        held = table.get(g)
        if held is None:
            table[g] = row
        elif isinstance(held, int):
            table[g] = [held, row]
        else:
            held.append(row)


def build_index(name: str, examples: Iterable[Example], n: int = DEFAULT_N) -> EvalIndex:
    """The :class:`EvalIndex` of an evaluation set's examples."""
    if n < 1:
        raise ValueError(f"n-gram size must be at least 1, got {n}")
    index = EvalIndex(name, n)
    for row, ex in enumerate(examples):
        index.rows += 1
        index.ids.append(ex.id)
        text = turns_text(ex.prompt)
        if text:
            index.exact.setdefault(text, ex.id)
        _add(index.grams, ngrams(prompt_words(ex.prompt), n), row)
        answers = (ngrams(content_text(r, None), n) for r in ex.responses)
        _add(index.response_grams, set().union(*answers), row)
    limit = common_limit(index.rows)
    for table in (index.grams, index.response_grams):
        common = [g for g, held in table.items() if not isinstance(held, int) and len(held) > limit]
        for g in common:
            del table[g]
        index.common += len(common)
    return index


def prompt_words(prompt: Sequence[Message]) -> str:
    """The non-system turns' text without role names (n-grams span turn boundaries)."""
    return "\n".join(
        content_text(m.get("content", ""), None) for m in prompt if m.get("role") != "system"
    )


def _best_hit(grams: set[str], table: GramTable, ids: Sequence[str]) -> tuple[str, int] | None:
    """The evaluation row sharing the most of ``grams`` (ties: the first row) and how many it
    shares."""
    held = [table[g] for g in grams if g in table]
    if not held:
        return None
    rows = np.fromiter(
        (r for h in held for r in ((h,) if isinstance(h, int) else h)), dtype=np.int64
    )
    found, counts = np.unique(rows, return_counts=True)  # by position: ties to the first
    best = int(np.argmax(counts))
    return ids[int(found[best])], int(counts[best])


def match(
    ex: Example, index: EvalIndex, min_shared: int = 1, responses: bool = False
) -> dict[str, Any] | None:
    """Why ``ex`` is contaminated by ``index`` (``{eval, eval_id, kind, shared}``), or None."""
    text = turns_text(ex.prompt)
    if text and text in index.exact:
        return {"eval": index.name, "eval_id": index.exact[text], "kind": "exact", "shared": None}
    hit = _best_hit(ngrams(prompt_words(ex.prompt), index.n), index.grams, index.ids)
    if hit is not None and hit[1] >= min_shared:
        return {"eval": index.name, "eval_id": hit[0], "kind": "ngram", "shared": hit[1]}
    if responses:
        for r in ex.responses:
            hit = _best_hit(ngrams(content_text(r, None), index.n), index.response_grams, index.ids)
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

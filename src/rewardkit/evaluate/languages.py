"""Per-language scores (docs/methods/D3-m-rewardbench.md — M-RewardBench): per language, subset accuracy, section
score = count-weighted mean of its subsets (published RewardBench counts in a section whose
subsets all have one, else the number of examples), language score = unweighted mean of sections; and the
gap of each language to English."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from rewardkit.evaluate.benchmarks import (
    mean_of_sections,
    published_where_whole,
    rewardbench1_counts,
    section_scores,
)

ENGLISH = ("en", "eng", "english", "eng_latn", "en-us", "en_us")
#: The language given to RewardBench (v1) rows, which carry none, beside M-RewardBench rows.
REWARDBENCH_LANGUAGE = "en"


def example_languages(languages: Sequence[str | None], formats: Sequence[str]) -> list[str | None]:
    """docs/methods/D3-m-rewardbench.md — each example's language for the per-language scores.

    M-RewardBench's English reference is RewardBench (v1) itself, whose rows have no
    ``language``: when some rows have one, rows in the ``rewardbench`` format without one are
    English. Other rows without a language stay None (left out)."""
    if not any(languages):
        return list(languages)
    return [
        lang if lang else (REWARDBENCH_LANGUAGE if fmt == "rewardbench" else None)
        for lang, fmt in zip(languages, formats, strict=True)
    ]


def per_language_scores(
    languages: Sequence[str | None],
    subsets: Sequence[str],
    sections: Sequence[str],
    outcomes: Sequence[float],
) -> dict[str, object]:
    """docs/methods/D3-m-rewardbench.md — ``{"languages": {lang: {"score", "sections", "n"}}, "english",
    "gap_to_english": {lang: score − English score}, "mean_non_english"}``. NaN outcomes and
    examples without a language are left out. English rows labelled several ways (``en`` for
    RewardBench rows beside M-RewardBench's ``eng_Latn``) are one language, under the first
    label met: as two, the gap to English compared English with English."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    sec_of: dict[str, str] = {}
    english_label: str | None = None
    for lang, sub, sec, o in zip(languages, subsets, sections, outcomes, strict=True):
        if lang is None or o is None or (isinstance(o, float) and math.isnan(o)):
            continue
        key = str(lang)
        if key.lower() in ENGLISH:
            english_label = english_label or key
            key = english_label
        acc[key][sub].append(float(o))
        sec_of[sub] = sec
    published = rewardbench1_counts()
    out: dict[str, dict] = {}
    for lang in sorted(acc):
        subs = acc[lang]
        sub_acc = {s: float(np.mean(v)) for s, v in subs.items()}
        counts = {s: float(len(v)) for s, v in subs.items()}
        weights: Mapping[str, float] = published_where_whole(counts, sec_of, published)
        secs = section_scores(sub_acc, weights, sec_of)
        out[lang] = {
            "score": float(mean_of_sections(secs)),
            "sections": secs,
            "n": sum(len(v) for v in subs.values()),
        }
    english = english_label
    gap = {}
    if english is not None:
        gap = {k: v["score"] - out[english]["score"] for k, v in out.items() if k != english}
    non_en = [v["score"] for k, v in out.items() if k != english]
    return {
        "languages": out,
        "english": english,
        "gap_to_english": gap,
        "mean_non_english": float(np.mean(non_en)) if non_en else math.nan,
    }

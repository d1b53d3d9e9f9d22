"""Per-language scores (docs/methods/D3-m-rewardbench.md — M-RewardBench): per language, subset accuracy, section
score = count-weighted mean of its subsets (published RewardBench counts when every subset is in
that table, else the number of examples), language score = unweighted mean of sections; and the
gap of each language to English."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from rewardkit.evaluate.benchmarks import (
    mean_of_sections,
    rewardbench1_counts,
    section_scores,
)

ENGLISH = ("en", "eng", "english", "eng_latn", "en-us", "en_us")


def per_language_scores(
    languages: Sequence[str | None],
    subsets: Sequence[str],
    sections: Sequence[str],
    outcomes: Sequence[float],
) -> dict[str, object]:
    """docs/methods/D3-m-rewardbench.md — ``{"languages": {lang: {"score", "sections", "n"}}, "english",
    "gap_to_english": {lang: score − English score}, "mean_non_english"}``. NaN outcomes and
    examples without a language are left out."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    sec_of: dict[str, str] = {}
    for lang, sub, sec, o in zip(languages, subsets, sections, outcomes, strict=True):
        if lang is None or o is None or (isinstance(o, float) and math.isnan(o)):
            continue
        acc[str(lang)][sub].append(float(o))
        sec_of[sub] = sec
    published = rewardbench1_counts()
    out: dict[str, dict] = {}
    for lang in sorted(acc):
        subs = acc[lang]
        sub_acc = {s: float(np.mean(v)) for s, v in subs.items()}
        if set(subs) <= set(published):
            weights: Mapping[str, float] = {s: float(published[s]) for s in subs}
        else:
            weights = {s: float(len(v)) for s, v in subs.items()}
        secs = section_scores(sub_acc, weights, sec_of)
        out[lang] = {
            "score": float(mean_of_sections(secs)),
            "sections": secs,
            "n": sum(len(v) for v in subs.values()),
        }
    english = next((k for k in out if k.lower() in ENGLISH), None)
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

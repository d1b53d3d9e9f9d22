"""``rule:exact_match`` — SQuAD-style normalised exact match, max over references.

Both strings are normalised as the SQuAD v1.1 evaluation script does: lowercase, remove
punctuation, remove the articles *a*, *an*, *the*, collapse whitespace. 1.0 if the normalised
response equals a normalised reference, else 0.0; NaN without a reference.
"""

from __future__ import annotations

from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    ReferenceTextRule,
    references,
    squad_normalize,
)


def exact_match(prediction: str, refs: list[str]) -> float:
    """1.0 if ``prediction`` matches any reference after SQuAD normalisation."""
    pred = squad_normalize(prediction)
    return 1.0 if any(pred == squad_normalize(r) for r in refs) else 0.0


class ExactMatchReward(ReferenceTextRule):
    """``rule:exact_match`` — normalised exact match (1/0), max over references.

    Option ``answer_tag`` (default false): compare only the inside of ``<answer>…</answer>``.
    """

    rule = "exact_match"

    def metric(self, text: str, refs: list[str]) -> float:
        return exact_match(text, refs)


def compute_score(solution: str, ground_truth: Any) -> float:
    """verl-style ``compute_score``: SQuAD-normalised exact match (1.0/0.0) of ``solution``
    against ``ground_truth`` (a string or list of strings); NaN without a reference."""
    refs = references(ground_truth, strict=True)
    return exact_match(solution, refs) if refs else NAN

"""``rule:f1`` — SQuAD token F1, max over references.

After SQuAD normalisation (see ``rule:exact_match``), with ``common`` the multiset intersection
of the whitespace tokens: ``P = |common|/|pred|``, ``R = |common|/|ref|``, ``F1 = 2PR/(P+R)``
(0 when nothing is shared). When either side normalises to no tokens, F1 is 1 if both do, else 0
(the SQuAD v2.0 script's rule). NaN without a reference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    ReferenceTextRule,
    references,
    squad_normalize,
)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of one prediction against one reference."""
    pred = squad_normalize(prediction).split()
    gold = squad_normalize(reference).split()
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(gold)
    return 2 * precision * recall / (precision + recall)


class F1Reward(ReferenceTextRule):
    """``rule:f1`` — SQuAD token F1 in [0, 1], max over references.

    Option ``answer_tag`` (default false): score only the inside of ``<answer>…</answer>``.
    """

    rule = "f1"

    def metric(self, text: str, refs: list[str]) -> float:
        return max(token_f1(text, r) for r in refs)


def compute_score(solution: str, ground_truth: Any) -> float:
    """verl-style ``compute_score``: SQuAD token F1 of ``solution``, max over ``ground_truth``
    (a string or list of strings); NaN without a reference."""
    refs = references(ground_truth, strict=True)
    return max(token_f1(solution, r) for r in refs) if refs else NAN

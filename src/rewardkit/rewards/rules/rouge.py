"""``rule:rouge_l`` — ROUGE-L F-measure (Google's ``rouge-score``), max over references.

ROUGE-L (Lin 2004) scores the longest common subsequence (LCS) of tokens:
``P = LCS/len(hyp)``, ``R = LCS/len(ref)``, ``F = 2PR/(P+R)``. Tokens are ``rouge-score``'s:
lowercased, non-alphanumeric characters replaced by spaces, optional Porter stemming. ``variant``
may also be ``rougeLsum`` (summary-level, newline-separated sentences), ``rouge1`` or ``rouge2``.
Empty response → 0; NaN without a reference.
"""

from __future__ import annotations

from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import NAN, RuleReward, as_bool, references
from rewardkit.types import Query

VARIANTS = ("rougeL", "rougeLsum", "rouge1", "rouge2")


def _scorer(variant: str, stemmer: bool) -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([variant], use_stemmer=stemmer)


class RougeLReward(RuleReward):
    """``rule:rouge_l`` — ROUGE-L F1 in [0, 1], max over references.

    Options: ``stemmer`` (Porter stemming, default false, as HF ``evaluate``), ``variant``
    (``rougeL`` default, ``rougeLsum``, ``rouge1``, ``rouge2``).
    """

    rule = "rouge_l"

    def __init__(self, stemmer: bool = False, variant: str = "rougeL") -> None:
        if variant not in VARIANTS:
            raise SpecError(f"rule:rouge_l variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(stemmer=as_bool("stemmer", self.rule, stemmer), variant=variant)
        self._scorer = _scorer(variant, self.options["stemmer"])

    def score_one(self, query: Query) -> float:
        refs = references(query.reference)
        if not refs:
            return NAN
        if not query.response.strip():
            return 0.0
        v = self.options["variant"]
        return max(self._scorer.score(r, query.response)[v].fmeasure for r in refs)


def compute_score(solution: str, ground_truth: Any, stemmer: bool = False) -> float:
    """verl-style ``compute_score``: ROUGE-L F1 of ``solution``, max over ``ground_truth``
    (a string or list of strings); NaN without a reference."""
    refs = references(ground_truth)
    if not refs:
        return NAN
    if not solution.strip():
        return 0.0
    scorer = _scorer("rougeL", stemmer)
    return max(scorer.score(r, solution)["rougeL"].fmeasure for r in refs)

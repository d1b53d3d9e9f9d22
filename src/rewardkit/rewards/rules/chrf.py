"""``rule:chrf`` — sentence chrF (sacrebleu) against one or more references, in [0, 1].

chrF (Popović 2015) is the F_β score (β = 2) of character n-gram (n = 1..6) precision and
recall, averaged over orders; ``word_order=2`` gives chrF++. sacrebleu's ``CHRF.sentence_score``
is used as is, divided by 100; with several references it keeps the best-scoring one (so the
reward is the max over references). Empty response → 0; NaN without a reference.
"""

from __future__ import annotations

from typing import Any

from rewardkit.rewards.rules._common import NAN, RuleReward, as_bool, as_number, references
from rewardkit.types import Query


def _chrf(char_order: int, word_order: int, beta: int, lowercase: bool) -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase)


class ChrfReward(RuleReward):
    """``rule:chrf`` — sacrebleu sentence chrF / 100, max over references.

    Options: ``char_order`` (6), ``word_order`` (0; 2 = chrF++), ``beta`` (2), ``lowercase``
    (false).
    """

    rule = "chrf"

    def __init__(
        self, char_order: int = 6, word_order: int = 0, beta: int = 2, lowercase: bool = False
    ) -> None:
        super().__init__(
            char_order=int(as_number("char_order", self.rule, char_order, minimum=1)),
            word_order=int(as_number("word_order", self.rule, word_order, minimum=0)),
            beta=int(as_number("beta", self.rule, beta, minimum=1)),
            lowercase=as_bool("lowercase", self.rule, lowercase),
        )
        self._metric = _chrf(**self.options)

    def score_one(self, query: Query) -> float:
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN
        if not query.response.strip():
            return 0.0
        return self._metric.sentence_score(query.response, refs).score / 100.0


def compute_score(solution: str, ground_truth: Any, word_order: int = 0) -> float:
    """verl-style ``compute_score``: sentence chrF (``word_order=2``: chrF++) in [0, 1] of
    ``solution`` against ``ground_truth`` (a string or list of strings); NaN without one."""
    refs = references(ground_truth, strict=True)
    if not refs:
        return NAN
    if not solution.strip():
        return 0.0
    return _chrf(6, word_order, 2, False).sentence_score(solution, refs).score / 100.0

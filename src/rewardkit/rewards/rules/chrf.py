"""``rule:chrf`` — sentence chrF (sacrebleu) against one or more references, in [0, 1].

chrF (Popović 2015) is the F_β score (β = 2) of character n-gram (n = 1..6) precision and
recall, averaged over orders; ``word_order=2`` gives chrF++. sacrebleu's ``CHRF.sentence_score``
is used as is, divided by 100; with several references it keeps the best-scoring one (so the
reward is the max over references). Empty response → 0; NaN without a reference.

Cost cap (option ``max_chars``, default :data:`MAX_CHARS`): sacrebleu counts every character
n-gram of the response in Python dictionaries, so one hostile 8.5 MB response took 15 s and
549 MB. A response longer than ``max_chars`` characters is not counted: it scores 0.0 and is
named as a failure of its call (``stats["failed"]``/``["errors"]``) with the reason. 0.0 is a
lower bound, so the cap cannot be used to score higher: each order's precision of a response of
length L against references of at most R characters is at most R/L, and chrF at most
5p/(4p + 1) with p = R/L (about 0.05 for a 1,000-character reference and L = 100,000).
``max_chars=0`` removes the cap. Up to the cap, time and memory grow linearly with the length
(about 0.3 s and a few MB at 100,000 characters).
"""

from __future__ import annotations

import logging
from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    RuleReward,
    as_bool,
    as_count,
    as_number,
    references,
)
from rewardkit.types import Query

log = logging.getLogger(__name__)

#: Characters of a response chrF counts by default; a longer one scores 0.0.
MAX_CHARS = 100_000


def _chrf(char_order: int, word_order: int, beta: int, lowercase: bool) -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase)


def _too_long(response: str, max_chars: int) -> str | None:
    """Why ``response`` is not scored (longer than ``max_chars``), or None."""
    if max_chars and len(response) > max_chars:
        return (
            f"rule:chrf: the response has {len(response):,} characters, more than max_chars="
            f"{max_chars:,}: not counted, scored 0.0"
        )
    return None


class ChrfReward(RuleReward):
    """``rule:chrf`` — sacrebleu sentence chrF / 100, max over references.

    Options: ``char_order`` (6), ``word_order`` (0; 2 = chrF++), ``beta`` (2), ``lowercase``
    (false), ``max_chars`` (a longer response scores 0.0, named as a failure; default
    100,000; 0: no cap).
    """

    rule = "chrf"

    def __init__(
        self,
        char_order: int = 6,
        word_order: int = 0,
        beta: int = 2,
        lowercase: bool = False,
        max_chars: int = MAX_CHARS,
    ) -> None:
        super().__init__(
            char_order=int(as_number("char_order", self.rule, char_order, minimum=1)),
            word_order=int(as_number("word_order", self.rule, word_order, minimum=0)),
            beta=int(as_number("beta", self.rule, beta, minimum=1)),
            lowercase=as_bool("lowercase", self.rule, lowercase),
            max_chars=as_count("max_chars", self.rule, max_chars, minimum=0),
        )
        metric = {k: v for k, v in self.options.items() if k != "max_chars"}
        self._metric = _chrf(**metric)

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The score, and why when the response was too long to count (then 0.0)."""
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN, None
        if not query.response.strip():
            return 0.0, None
        why = _too_long(query.response, self.options["max_chars"])
        if why is not None:
            return 0.0, why
        return self._metric.sentence_score(query.response, refs).score / 100.0, None


def compute_score(
    solution: str, ground_truth: Any, word_order: int = 0, max_chars: int = MAX_CHARS
) -> float:
    """verl-style ``compute_score``: sentence chrF (``word_order=2``: chrF++) in [0, 1] of
    ``solution`` against ``ground_truth`` (a string or list of strings); NaN without one; 0.0
    (with a warning) for a solution longer than ``max_chars`` characters."""
    refs = references(ground_truth, strict=True)
    if not refs:
        return NAN
    if not solution.strip():
        return 0.0
    why = _too_long(solution, max_chars)
    if why is not None:
        log.warning("%s", why)
        return 0.0
    return _chrf(6, word_order, 2, False).sentence_score(solution, refs).score / 100.0

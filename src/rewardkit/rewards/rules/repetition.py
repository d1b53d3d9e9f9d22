"""``rule:repetition`` — n-gram repetition penalty in [max_penalty, 0] (default [−1, 0]).

The sequence-level form of *Demystifying Long Chain-of-Thought Reasoning in LLMs* (Yeo et al.
2025, arXiv 2502.03373, Appendix C.2) as ported by open-r1 (``get_repetition_penalty_reward``):
words are the lowercased words of the response (:func:`~._common.words`: its whitespace split,
each Han / Kana / Hangul character a word of its own, invisible format characters and CJK
punctuation separating words), ``G`` its list of word n-grams (``len(words) − n + 1`` of them,
n = 3 by default)::

    penalty = (1 − |set(G)| / |G|) · max_penalty        (max_penalty < 0, default −1)

i.e. the fraction of n-grams that repeat an earlier one, made negative. An empty response, or
one with fewer than n words, scores 0. Never NaN. A Chinese sentence repeated 2,000 times, or
English words glued with zero-width spaces, were one "word" for a whitespace split and scored 0;
they score about −1 now. English (ASCII) text is split exactly as before. In other text each
word is read in its NFKC form (after the split, so CJK punctuation still separates words): a
copy in look-alike letters (fullwidth ``ｔｈｅ``, the mathematical alphabets ``𝐭𝐡𝐞``, ``𝒕𝒉𝒆`` …)
repeats the plain one, where 13 styled copies of a sentence scored 0.0. Letters of another
script that only look alike (Cyrillic ``а``) still differ. A run of more than
:data:`~._common.LONG_RUN` (32) characters without a break is read as its 32-character pieces:
``"!" * 200_000`` or ``"ha" * 100_000`` (a degenerate loop) was one word and scored 0; about −1
now.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward, as_count, as_number, words
from rewardkit.types import Query


def repetition_penalty(text: str, n: int = 3, max_penalty: float = -1.0) -> float:
    """``(1 − unique n-grams / n-grams) · max_penalty`` over the lowercased words
    (:func:`~._common.words`), each in its NFKC form."""
    tokens = words(text.lower())
    if not text.isascii():
        tokens = _nfkc_words(tokens)
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0
    unique = len(set(zip(*(tokens[i:] for i in range(n)), strict=False)))
    return (1.0 - unique / total) * max_penalty


def _nfkc_words(tokens: list[str]) -> list[str]:
    """Each word in its lowercased NFKC form (look-alike letters as the plain ones)."""
    seen: dict[str, str] = {}
    out = []
    for t in tokens:
        folded = seen.get(t)
        if folded is None:
            folded = seen[t] = t if t.isascii() else unicodedata.normalize("NFKC", t).lower()
        out.append(folded)
    return out


class RepetitionReward(RuleReward):
    """``rule:repetition`` — options ``n`` (n-gram size, default 3) and ``max_penalty`` (the
    penalty of a response that is all repeats, negative, default −1)."""

    rule = "repetition"

    def __init__(self, n: int = 3, max_penalty: float = -1.0) -> None:
        n = as_count("n", self.rule, n)
        max_penalty = as_number("max_penalty", self.rule, max_penalty)
        if max_penalty > 0:
            raise SpecError(f"rule:repetition max_penalty must be ≤ 0, got {max_penalty}")
        super().__init__(n=n, max_penalty=float(max_penalty))

    def score_one(self, query: Query) -> float:
        return repetition_penalty(query.response, self.options["n"], self.options["max_penalty"])


def compute_score(
    solution: str, ground_truth: Any = None, n: int = 3, max_penalty: float = -1.0
) -> float:
    """verl-style ``compute_score``: the n-gram repetition penalty of ``solution``;
    ``ground_truth`` is ignored."""
    return repetition_penalty(solution, n, max_penalty)

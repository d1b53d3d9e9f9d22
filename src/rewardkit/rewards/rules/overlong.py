"""``rule:overlong`` — DAPO soft overlong punishment (card C8), a length penalty in [−1, 0].

With ``L`` the response length, ``L_max = max_len`` and ``L_cache = cache_len``::

    R(L) = 0                                  if L ≤ L_max − L_cache
    R(L) = (L_max − L_cache − L) / L_cache    if L_max − L_cache < L ≤ L_max
    R(L) = −1                                 if L > L_max

as in DAPO's "overlong reward shaping" (arXiv 2503.14476), TRL's ``get_soft_overlong_punishment(max_completion_len,
soft_punish_cache)`` and ReFine-RFT's ``soft_overlong_punishment``: ``max_len`` is the hard
generation limit, ``cache_len`` the soft "punish cache" just below it, so the penalty ramps
linearly from 0 at ``max_len − cache_len`` to −1 at ``max_len``. Card vector: ``max_len=50``,
``cache_len=15``: L = 30, 40, 50, 60 → 0, −0.333333, −1, −1. Defaults are DAPO's paper values
(20480 / 4096 tokens); set them to your generation limit.

``L`` is counted in ``unit``: ``words`` (default — model-free: the whitespace split, each Han /
Kana / Hangul character a word, invisible format characters separating words, as
:func:`~._common.word_count`; 60,000 Chinese characters were one "word", and so was a run of
200,000 ``"!"``: a run longer than 32 characters counts one word per 32), ``chars``, or
``tokens`` with ``tokenizer=NAME_OR_PATH`` (a Hugging Face tokenizer, no special tokens; loads
``transformers``). Never NaN.
"""

from __future__ import annotations

from typing import Any

from rewardkit.combine.length import soft_overlong as overlong_penalty
from rewardkit.engine.special_tokens import escape_texts
from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward, as_count, word_count
from rewardkit.types import Query

UNITS = ("words", "chars", "tokens")


def _check(max_len: Any, cache_len: Any) -> tuple[int, int]:
    max_len = as_count("max_len", "overlong", max_len)
    cache_len = as_count("cache_len", "overlong", cache_len)
    if cache_len > max_len:
        raise SpecError(f"rule:overlong cache_len ({cache_len}) must be ≤ max_len ({max_len})")
    return max_len, cache_len


class OverlongReward(RuleReward):
    """``rule:overlong`` — DAPO soft overlong punishment.

    Options: ``max_len`` (20480), ``cache_len`` (4096), ``unit`` (``words``, ``chars`` or
    ``tokens``), ``tokenizer`` (a Hugging Face tokenizer name or path; implies ``unit=tokens``).
    """

    rule = "overlong"

    def __init__(
        self,
        max_len: int = 20480,
        cache_len: int = 4096,
        unit: str | None = None,
        tokenizer: str | None = None,
    ) -> None:
        max_len, cache_len = _check(max_len, cache_len)
        if unit is None:
            unit = "tokens" if tokenizer else "words"
        if unit not in UNITS:
            raise SpecError(f"rule:overlong unit must be one of {UNITS}, got {unit!r}")
        if unit == "tokens" and not tokenizer:
            raise SpecError("rule:overlong unit=tokens needs tokenizer=NAME_OR_PATH")
        super().__init__(
            max_len=max_len,
            cache_len=cache_len,
            unit=unit,
            tokenizer=tokenizer if unit == "tokens" else None,
        )
        self._tok: Any = None

    def length(self, text: str) -> int:
        """The length of ``text`` in this reward's unit."""
        unit = self.options["unit"]
        if unit == "words":
            return word_count(text)
        if unit == "chars":
            return len(text)
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.options["tokenizer"])
        text = escape_texts(self._tok, [text])[0]  # "<|endoftext|>" is 13 characters, not 1
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    def score_one(self, query: Query) -> float:
        return overlong_penalty(
            self.length(query.response), self.options["max_len"], self.options["cache_len"]
        )


def compute_score(
    solution: str, ground_truth: Any = None, max_len: int = 20480, cache_len: int = 4096
) -> float:
    """verl-style ``compute_score``: DAPO soft overlong punishment of ``solution``'s word count
    (:func:`~._common.word_count`); ``ground_truth`` is ignored."""
    max_len, cache_len = _check(max_len, cache_len)
    return overlong_penalty(word_count(solution), max_len, cache_len)

"""``rule:rouge_l`` — ROUGE-L F-measure (Google's ``rouge-score``), max over references.

ROUGE-L (Lin 2004) scores the longest common subsequence (LCS) of tokens:
``P = LCS/len(hyp)``, ``R = LCS/len(ref)``, ``F = 2PR/(P+R)``. Tokens are ``rouge-score``'s:
lowercased, non-alphanumeric characters replaced by spaces, optional Porter stemming. ``variant``
may also be ``rougeLsum`` (summary-level, newline-separated sentences), ``rouge1`` or ``rouge2``.
Empty response → 0; NaN without a reference. rouge-score's tokenizer keeps only ``a–z0–9``, so
a reference in another script (Chinese, Cyrillic, …) or of punctuation alone has no token: it
counts as no reference (NaN, "does not apply") rather than scoring every response 0.

``rougeL`` computes the LCS length bit-parallel (:func:`lcs_length`) instead of with rouge-score's
full dynamic-programming table, which takes ``|hyp|·|ref|`` Python steps and list cells: a hostile
100,000-word response against a 1,000-word reference meant ~10^8 cells (gigabytes, minutes). The
numbers are identical (same tokens, same LCS, same F formula).

``rougeLsum`` still uses rouge-score's table for every (reference sentence, response sentence)
pair (its union LCS needs rouge-score's own backtracking), so its cost is
``|hyp tokens|·|ref tokens|``: a 500,000-character one-line response against a 420-word
reference took 8 s and 450 MB, growing with the response. Option ``max_chars`` (default
20,000, about 4,000 words, 0.6 s against that reference; 0: no cap; ``rougeLsum`` only): a
longer response is not scored, it gets **0.0** and is named in the call's ``stats["errors"]``.
0.0 is a lower bound, so the cap never raises a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import NAN, RuleReward, as_bool, as_count, references
from rewardkit.types import Query

VARIANTS = ("rougeL", "rougeLsum", "rouge1", "rouge2")
#: Characters of a response ``rougeLsum`` scores by default; a longer one scores 0.0.
MAX_CHARS = 20_000


def _scorer(variant: str, stemmer: bool) -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([variant], use_stemmer=stemmer)


@lru_cache(maxsize=2)
def _tokenizer(stemmer: bool = False) -> Any:
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=stemmer)


def _has_tokens(text: str) -> bool:
    """Whether rouge-score's default tokenizer finds a token in ``text``."""
    return bool(_tokenizer().tokenize(text))


def lcs_length(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel (Allison–Dix /
    Hyyrö): one big-integer step per hypothesis token, ``O(|ref|)`` memory."""
    masks: dict[str, int] = {}
    for i, tok in enumerate(ref):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(ref)) - 1
    v = full
    for tok in hyp:
        m = masks.get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(ref) - v.bit_count()


def rouge_l_f(ref_tokens: Sequence[str], hyp_tokens: Sequence[str]) -> float:
    """rouge-score's ``_score_lcs`` F-measure: ``P = LCS/|hyp|``, ``R = LCS/|ref|``."""
    if not ref_tokens or not hyp_tokens:
        return 0.0
    lcs = lcs_length(ref_tokens, hyp_tokens)
    precision, recall = lcs / len(hyp_tokens), lcs / len(ref_tokens)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def rouge_max(
    scorer: Any, variant: str, response: str, refs: list[str], stemmer: bool = False
) -> float:
    """The best F-measure of ``response`` over the references that have a rouge-score token
    (NaN when none has; 0.0 for an empty response)."""
    refs = [r for r in refs if _has_tokens(r)]
    if not refs:
        return NAN
    if not response.strip():
        return 0.0
    if variant == "rougeL":
        tokenize = _tokenizer(stemmer).tokenize
        hyp = tokenize(response)
        return max(rouge_l_f(tokenize(r), hyp) for r in refs)
    return float(max(scorer.score(r, response)[variant].fmeasure for r in refs))


class RougeLReward(RuleReward):
    """``rule:rouge_l`` — ROUGE-L F1 in [0, 1], max over references.

    Options: ``stemmer`` (Porter stemming, default false, as HF ``evaluate``), ``variant``
    (``rougeL`` default, ``rougeLsum``, ``rouge1``, ``rouge2``), ``max_chars`` (``rougeLsum``
    only: a longer response scores 0.0, named as a failure; default 20,000; 0: no cap).
    """

    rule = "rouge_l"

    def __init__(
        self, stemmer: bool = False, variant: str = "rougeL", max_chars: int | None = None
    ) -> None:
        if variant not in VARIANTS:
            raise SpecError(f"rule:rouge_l variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(stemmer=as_bool("stemmer", self.rule, stemmer), variant=variant)
        if variant == "rougeLsum":
            cap = MAX_CHARS if max_chars is None else max_chars
            self.options["max_chars"] = as_count("max_chars", self.rule, cap, minimum=0)
        elif max_chars is not None:
            raise SpecError(
                f"rule:rouge_l max_chars applies to variant=rougeLsum only (the other variants "
                f"are linear in the response), got variant={variant}"
            )
        self._scorer = _scorer(variant, self.options["stemmer"])

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The score, and why when the response was too long to score (then 0.0)."""
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN, None
        o = self.options
        cap = o.get("max_chars", 0)
        if cap and len(query.response) > cap and any(_has_tokens(r) for r in refs):
            return 0.0, (
                f"rule:rouge_l: the response has {len(query.response):,} characters, more than "
                f"max_chars={cap:,} (rougeLsum is quadratic): not scored, 0.0"
            )
        return rouge_max(self._scorer, o["variant"], query.response, refs, o["stemmer"]), None


def compute_score(solution: str, ground_truth: Any, stemmer: bool = False) -> float:
    """verl-style ``compute_score``: ROUGE-L F1 of ``solution``, max over ``ground_truth``
    (a string or list of strings); NaN without a reference."""
    refs = references(ground_truth, strict=True)
    if not refs:
        return NAN
    return rouge_max(_scorer("rougeL", stemmer), "rougeL", solution, refs, stemmer)

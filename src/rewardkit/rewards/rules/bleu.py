"""``rule:bleu`` — sentence BLEU against one or more references, as an RL reward (card B8, BLEUBERI).

Default (``method=bleuberi``) is the formula BLEUBERI trains with (HF ``evaluate`` "bleu", i.e.
tensorflow/nmt ``compute_bleu``, with ``smooth=True``), on 13a tokens (sacrebleu's tokenizer)::

    BLEU = BP · exp( (1/N) Σ_{n=1..N} log p_n ),    N = max_order = 4
    p_n  = (m_n + 1) / (c_n + 1)                       add-one on every order (smooth=true)
    m_n  = Σ_g min(count_hyp(g), max_r count_r(g))     clipped against the union of references
    c_n  = max(0, len(hyp) − n + 1)
    BP   = 1 if len(hyp) > r else exp(1 − r / len(hyp)),   r = the shortest reference length

It reproduces the card's worked numbers: "the cat sat on the mat" against "the cat is on the mat"
→ 0.488923, and with "a cat sat on the mat" added → 0.880112. sacrebleu's own sentence BLEU
cannot: its ``add-k`` smoothing skips unigrams (0.485492 for the first), and its default ``exp``
smoothing gives 0.379918 / 0.840896. ``method=sacrebleu`` gives sacrebleu's sentence BLEU
(``effective_order=True``, ``smooth_method`` option, closest reference length) divided by 100.

As in BLEUBERI, when the response holds ``<answer>…</answer>`` only the inside is scored
(``answer_tag=false`` turns this off), and an empty response scores 0. NaN without a reference.
Scores are in [0, 1].
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import (
    NAN,
    RuleReward,
    answer_tag_content,
    as_bool,
    as_count,
    references,
)
from rewardkit.types import Query

METHODS = ("bleuberi", "sacrebleu")
#: An option left at its method's default (``None`` is the spec grammar's ``none``).
_UNSET: Any = object()
TOKENIZERS = ("13a", "none")


# mteval-v13a tokenisation, as sacrebleu's ``Tokenizer13a`` (and HF ``evaluate``'s copy of it)
# does it, minus two costs: sacrebleu memoises every line it sees in two 65,536-entry LRU caches
# (unbounded-looking memory growth over a training run, and inflated timings on repeated text),
# and its first rule pads every space to three spaces, which the final split throws away. Here
# spaces are left out of that rule — identical tokens (checked against sacrebleu in
# tests/test_rules_text.py), about twice as fast.
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\`!-\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash preceded by a digit
)


def tokenize_13a(line: str) -> list[str]:
    """Tokens of ``line`` under sacrebleu's 13a tokenizer (the WMT / mteval-v13a standard)."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return line.split()


def _tokenizer(name: str) -> Callable[[str], list[str]]:
    """``text -> tokens`` for a ``tokenize`` option value."""
    return str.split if name == "none" else tokenize_13a


NgramCounts = list[Counter[tuple[str, ...]]]  # one Counter per order, index n - 1


def _ngram_counts(tokens: Sequence[str], max_order: int) -> NgramCounts:
    """Counts of the n-grams of each order 1..max_order (zip-built: C speed)."""
    return [
        Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) for n in range(1, max_order + 1)
    ]


def bleu_from_tokens(
    hyp: Sequence[str],
    ref_counts: NgramCounts,
    ref_len: int,
    max_order: int = 4,
    smooth: bool = True,
) -> float:
    """BLEUBERI / nmt ``compute_bleu`` for one hypothesis (see the module docstring).

    ``ref_counts[n - 1]`` holds the max count of each n-gram over the references; ``ref_len`` is
    the shortest reference length.
    """
    if not hyp:
        return 0.0
    log_sum = 0.0
    for n, (hyp_n, ref_n) in enumerate(
        zip(_ngram_counts(hyp, max_order), ref_counts, strict=True), 1
    ):
        common = hyp_n.keys() & ref_n.keys()  # C-level set intersection; few n-grams remain
        matches = sum(min(hyp_n[g], ref_n[g]) for g in common)
        possible = max(0, len(hyp) - n + 1)
        if smooth:
            p = (matches + 1.0) / (possible + 1.0)
        else:
            p = matches / possible if possible > 0 else 0.0
        if p <= 0.0:
            return 0.0
        log_sum += math.log(p) / max_order
    ratio = len(hyp) / ref_len if ref_len > 0 else math.inf
    bp = 1.0 if ratio > 1.0 else math.exp(1.0 - 1.0 / ratio)
    return bp * math.exp(log_sum)


def _reference_stats(
    refs: Sequence[str], tokenize: Callable[[str], list[str]], max_order: int
) -> tuple[NgramCounts, int] | None:
    """Max count of each n-gram over the references (per order), and the shortest length.

    A reference with no tokens (``"<skipped>"`` or ``"-\n"`` under 13a) is left out, as a blank
    one is: nmt ``compute_bleu`` would set the brevity penalty of every response to 0 for it.
    None when no reference has a token (the rule does not apply).
    """
    merged: NgramCounts = [Counter() for _ in range(max_order)]
    lengths = []
    for ref in refs:
        tokens = tokenize(ref)
        if not tokens:
            continue
        lengths.append(len(tokens))
        for n, counts in enumerate(_ngram_counts(tokens, max_order)):
            merged[n] |= counts
    return (merged, min(lengths)) if lengths else None


def bleuberi_bleu(
    hypothesis: str,
    refs: Sequence[str],
    max_order: int = 4,
    smooth: bool = True,
    tokenize: str = "13a",
) -> float:
    """Sentence BLEU of ``hypothesis`` against ``refs`` with BLEUBERI's settings (no tag
    handling); NaN when no reference has a token."""
    tok = _tokenizer(tokenize)
    stats = _reference_stats(refs, tok, max_order)
    if stats is None:
        return NAN
    return bleu_from_tokens(tok(hypothesis), *stats, max_order, smooth)


class BleuReward(RuleReward):
    """``rule:bleu`` — sentence BLEU in [0, 1] against ``Query.reference`` (a string or a list).

    Options: ``method`` (``bleuberi``, default, or ``sacrebleu``), ``max_order`` (4), ``smooth``
    (add-one on every order, default true; bleuberi), ``smooth_method`` (sacrebleu: ``exp``,
    ``add-k``, ``floor``, ``none``; default ``exp``), ``tokenize`` (``13a`` or ``none``;
    bleuberi), ``answer_tag`` (score only the inside of ``<answer>…</answer>``, default true).
    An option of the other method is refused (sacrebleu tokenizes with 13a and smooths by
    ``smooth_method``: ``tokenize``/``smooth`` would change nothing). Reference n-gram
    statistics are cached per distinct reference.
    """

    rule = "bleu"

    def __init__(
        self,
        method: str = "bleuberi",
        max_order: int = 4,
        smooth: Any = _UNSET,
        smooth_method: Any = _UNSET,
        tokenize: Any = _UNSET,
        answer_tag: bool = True,
    ) -> None:
        if method not in METHODS:
            raise SpecError(f"rule:bleu method must be one of {METHODS}, got {method!r}")
        other = ("smooth", "tokenize") if method == "sacrebleu" else ("smooth_method",)
        given = {"smooth": smooth, "tokenize": tokenize, "smooth_method": smooth_method}
        unused = [name for name in other if given[name] is not _UNSET]
        if unused:
            raise SpecError(
                f"rule:bleu option {unused[0]} does nothing with method={method} (bleuberi takes "
                "smooth and tokenize; sacrebleu takes smooth_method and tokenizes with 13a)"
            )
        smooth = True if smooth is _UNSET else smooth
        tokenize = "13a" if tokenize is _UNSET else tokenize
        smooth_method = "exp" if smooth_method is _UNSET else smooth_method
        # a spec string's "none" arrives as None (the spec grammar's null)
        tokenize = "none" if tokenize is None else tokenize
        smooth_method = "none" if smooth_method is None else smooth_method
        if tokenize not in TOKENIZERS:
            raise SpecError(f"rule:bleu tokenize must be one of {TOKENIZERS}, got {tokenize!r}")
        if smooth_method not in ("exp", "add-k", "floor", "none"):
            raise SpecError(f"rule:bleu smooth_method {smooth_method!r} is not a sacrebleu one")
        max_order = as_count("max_order", self.rule, max_order)
        options: dict[str, Any] = {
            "method": method,
            "max_order": max_order,
            "answer_tag": as_bool("answer_tag", self.rule, answer_tag),
        }
        if method == "bleuberi":
            options.update(smooth=as_bool("smooth", self.rule, smooth), tokenize=tokenize)
        else:
            options.update(smooth_method=smooth_method)
        super().__init__(**options)
        self._refs: OrderedDict[tuple[str, ...], tuple[NgramCounts, int] | None] = OrderedDict()
        self._sacrebleu: Any = None

    def _ref_stats(self, refs: list[str]) -> tuple[NgramCounts, int] | None:
        key = tuple(refs)
        if key in self._refs:
            return self._refs[key]
        tokenize = _tokenizer(self.options.get("tokenize", "13a"))
        hit = _reference_stats(refs, tokenize, self.options["max_order"])
        self._refs[key] = hit
        if len(self._refs) > 4096:
            self._refs.popitem(last=False)
        return hit

    def score_one(self, query: Query) -> float:
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN
        text = query.response
        if self.options["answer_tag"]:
            text = answer_tag_content(text)
        stats = self._ref_stats(refs)
        if stats is None:
            return NAN
        if not text.strip():
            return 0.0
        if self.options["method"] == "sacrebleu":
            if self._sacrebleu is None:
                from sacrebleu.metrics import BLEU

                self._sacrebleu = BLEU(
                    effective_order=True,
                    smooth_method=self.options["smooth_method"],
                    max_ngram_order=self.options["max_order"],
                )
            kept = [r for r in refs if tokenize_13a(r)]
            # sacrebleu's percentage can exceed 100 by a rounding ulp (1.0000000000000004)
            return min(1.0, self._sacrebleu.sentence_score(text, kept).score / 100.0)
        counts, ref_len = stats
        tokens = _tokenizer(self.options["tokenize"])(text)
        return bleu_from_tokens(
            tokens, counts, ref_len, self.options["max_order"], self.options["smooth"]
        )


def compute_score(
    solution: str,
    ground_truth: Any,
    max_order: int = 4,
    smooth: bool = True,
    answer_tag: bool = True,
) -> float:
    """verl-style ``compute_score``: BLEUBERI sentence BLEU in [0, 1] of ``solution`` against
    ``ground_truth`` (a string or list of strings); NaN when there is no reference."""
    refs = references(ground_truth, strict=True)
    if not refs:
        return NAN
    text = answer_tag_content(solution) if answer_tag else solution
    if _reference_stats(refs, tokenize_13a, max_order) is None:
        return NAN
    if not text.strip():
        return 0.0
    return bleuberi_bleu(text, refs, max_order=max_order, smooth=smooth)

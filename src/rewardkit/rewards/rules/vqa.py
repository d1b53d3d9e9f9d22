"""``rule:vqa`` — answer match for visual question answering (card B9, Mixed-R1's matching and
chart rewards).

The answer is read from the response (the inside of ``<answer>…</answer>`` when there is one)
and compared with each reference; the reward is 1.0/0.0, max over references, NaN without one.
How it compares depends on the reference (``mode=auto``) or on ``mode``:

- ``choice`` — a reference that is one option letter (``"B"``, ``"(B)"``, ``"B."``): the
  response's option letter (:func:`extract_choice`: a bare letter, ``(B)``, ``B.``/``B)`` at the
  start, or "answer/option is B"; the last stated wins) must equal it.
- ``number`` — a numeric reference: the response's number (:func:`~rewardkit.rewards.rules.
  gsm8k.extract_answer`: ``####``, ``\\boxed{}``, else the last number) must lie within a
  relative tolerance, ``|pred − gold| ≤ tol·|gold|`` (``tol`` = 0.05, the card's ``[design]``
  chart rule; exact for a zero reference).
- ``text`` — SQuAD-normalised exact match (:func:`~rewardkit.rewards.rules.exact_match.
  exact_match`); a yes/no reference compares with the response's leading yes/no word.

With ten references (the VQAv2 / VizWiz ``answers`` schema; ``aggregate=auto``) or with
``aggregate=vqa``, the reward is instead the official VQA accuracy (:func:`vqa_accuracy`):
``min(1, #matching humans / 3)`` averaged over the leave-one-out subsets, on answers normalised as
the official evaluation does (:func:`vqa_normalize`). ``aggregate=max`` keeps the 1/0 max.

Images in the prompt are rendered as ``<image>`` for this rule (it reads text only); a response
that is an image is refused by :meth:`~rewardkit.types.Reward.score`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import (
    NAN,
    RuleReward,
    answer_tag_content,
    as_bool,
    as_number,
    plain_text,
    references,
    squad_normalize,
)
from rewardkit.rewards.rules.exact_match import exact_match
from rewardkit.rewards.rules.gsm8k import extract_answer, parse_number
from rewardkit.rewards.rules.hidden import visible
from rewardkit.types import Query

MODES = ("auto", "choice", "number", "text")
AGGREGATES = ("auto", "max", "vqa")
#: How many human answers a VQA-family question carries (VQAv2, VizWiz, TextVQA, OK-VQA).
VQA_ANSWERS = 10
_LETTER_REF = re.compile(r"^\s*+\(?([A-Za-z])\)?\s*+[.):]?\s*+$")
_CHOICE_ONLY = re.compile(r"^\s*+\(?([A-Z])\)?\s*+[.):]?\s*+$")
_CHOICE_START = re.compile(r"^\s*\(?([A-Z])[.)]\s")
# "answer/option/choice (is|:|=) X": an upper-case letter, a letter in parentheses, or a
# lower-case letter that ends the statement ("Answer: a") — not the article of "the answer is a
# dog", which is no option letter.
_CHOICE_STATED = re.compile(
    r"(?i:answer|option|choice)\s*+(?i:is|:|=)?\s*+(?i:option\s*+)?"
    r"(?:\(([A-Za-z])\)|([A-Z])\)?(?![A-Za-z])|([a-z])(?=\s*+(?:[.,;:!?)]|$)))"
)
_CHOICE_PAREN = re.compile(r"\(([A-Z])\)")
_NUMERIC_REF = re.compile(r"^\s*+[-+]?[$]?\s*+[\d.,]++\s*+(?:/\s*+\d++)?\s*+%?\s*+$")


def extract_choice(text: str) -> str | None:
    """The option letter a response gives (upper case), or None."""
    only = _CHOICE_ONLY.match(text)
    if only:
        return only.group(1)
    stated = _CHOICE_STATED.findall(text)
    if stated:  # a stated answer beats a label at the start ("(A) is wrong. The answer is C")
        return "".join(stated[-1]).upper()
    start = _CHOICE_START.match(text)
    if start:
        return start.group(1)
    paren = _CHOICE_PAREN.findall(text)
    return paren[-1] if paren else None


# The official VQA evaluation's answer normalisation (vqaEval.py: processPunctuation, then
# processDigitArticle), written out; its contraction table is not applied (see docs/rules.md).
_VQA_PUNCT = ";:/'[]\"()=+\\_><@`,?"
_VQA_DIGIT_COMMA = re.compile(r"\d,\d")
_VQA_PERIOD = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLE_WORDS = frozenset(("a", "an", "the"))


def vqa_normalize(text: str) -> str:
    """An answer as the official VQA evaluation compares it: punctuation dropped (glued to a
    space or a digit-comma-digit) or made a space, periods not before a digit dropped,
    lowercased, number words zero…ten (and "none") as digits, articles dropped; non-ASCII text
    first in one form (:func:`~._common.plain_text`: NFC, fullwidth as ASCII, no invisible
    characters)."""
    if not text.isascii():
        text = plain_text(text)
    text = text.replace("\n", " ").replace("\t", " ").strip()
    glued = _VQA_DIGIT_COMMA.search(text) is not None
    out = text
    for p in _VQA_PUNCT:
        drop = glued or f"{p} " in text or f" {p}" in text
        out = out.replace(p, "" if drop else " ")
    out = _VQA_PERIOD.sub("", out)
    words = (_NUMBER_WORDS.get(w, w) for w in out.lower().split())
    return " ".join(w for w in words if w not in _ARTICLE_WORDS)


def vqa_accuracy(response: str, answers: list[str]) -> float:
    """Official VQA accuracy: ``min(1, #matching humans / 3)`` averaged over the ``n`` subsets
    of ``n − 1`` human answers (10-choose-9 for VQA's ten)."""
    pred = vqa_normalize(response)
    m = sum(vqa_normalize(a) == pred for a in answers)
    n = len(answers)
    return (m * min(1.0, (m - 1) / 3) + (n - m) * min(1.0, m / 3)) / n


def reference_mode(ref: str) -> str:
    """``choice`` for a one-letter reference, ``number`` for a numeric one, else ``text``."""
    if _LETTER_REF.match(ref):
        return "choice"
    if _NUMERIC_REF.match(ref) and parse_number(ref) is not None:
        return "number"
    return "text"


# Both answers at the start ("Yes and no.", "yes no", "Yes/No", "No or yes?"): no answer (the
# leading "yes" scored 1.0 against "yes"); "Yes, no doubt" is yes
_BOTH = re.compile(r"\W*(yes|no)\b\W*(?:(?:and|or)\b\W*)?(yes|no)\b(?![ \t]+\w)", re.I)


def _yes_no(text: str) -> str | None:
    both = _BOTH.match(text)
    if both and both.group(1).lower() != both.group(2).lower():
        return None
    words = squad_normalize(text).split()
    return words[0] if words and words[0] in ("yes", "no") else None


def _digits_for_words(text: str) -> str:
    """A response with no digit at all gets its number words as digits ("two" → "2", as VQA's
    evaluation maps them); one with digits is left alone ("the left one has 5" stays 5)."""
    if any(c.isdigit() for c in text):
        return text
    return " ".join(_NUMBER_WORDS.get(w.strip(".,;:!?").lower(), w) for w in text.split())


def answer_match(response: str, ref: str, mode: str = "auto", tol: float = 0.05) -> float:
    """1.0 when ``response`` answers ``ref`` under ``mode`` (see the module doc), else 0.0."""
    mode = reference_mode(ref) if mode == "auto" else mode
    if mode == "choice":
        want = _LETTER_REF.match(ref)
        got = extract_choice(response)
        return 1.0 if want and got == want.group(1).upper() else 0.0
    if mode == "number":
        gold = parse_number(ref.replace("%", ""))
        pred = extract_answer(_digits_for_words(response).replace("%", ""))
        if gold is None or pred is None:
            return 0.0
        return 1.0 if abs(pred - gold) <= Fraction(str(tol)) * abs(gold) else 0.0
    if _yes_no(ref) is not None and len(squad_normalize(ref).split()) == 1:
        return 1.0 if _yes_no(response) == _yes_no(ref) else 0.0
    return exact_match(response, [ref])


class VqaAnswerReward(RuleReward):
    """``rule:vqa`` — options ``mode`` (auto/choice/number/text), ``tol`` (relative, numbers),
    ``aggregate`` (auto/max/vqa: several references), ``answer_tag`` (read inside ``<answer>``
    when present, default true)."""

    rule = "vqa"

    def __init__(
        self,
        mode: str = "auto",
        tol: float = 0.05,
        answer_tag: bool = True,
        aggregate: str = "auto",
    ) -> None:
        if mode not in MODES:
            raise SpecError(f"rule:vqa mode must be one of {MODES}, got {mode!r}")
        if aggregate not in AGGREGATES:
            raise SpecError(f"rule:vqa aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        super().__init__(
            mode=mode,
            tol=as_number("tol", self.rule, tol, minimum=0),
            answer_tag=as_bool("answer_tag", self.rule, answer_tag),
            aggregate=aggregate,
        )

    def score_one(self, query: Query) -> float:
        o = self.options
        return _score(
            str(query.response),
            query.reference,
            o["mode"],
            o["tol"],
            o["answer_tag"],
            o["aggregate"],
        )


def vqa_references(ground_truth: Any) -> list[str]:
    """The references as strings; VQA-style answer records (``{"answer": "yes", …}``, as the
    VQAv2 / VizWiz ``answers`` lists hold them) give their ``answer``, repeats kept (they are
    the human counts of the VQA accuracy)."""
    return references(ground_truth, strict=True)


def _score(
    solution: str,
    ground_truth: Any,
    mode: str,
    tol: float,
    answer_tag: bool,
    aggregate: str = "auto",
) -> float:
    refs = vqa_references(ground_truth)
    if not refs:
        return NAN
    solution = visible(solution)  # "<!-- yes --> no" read "yes"
    text = answer_tag_content(solution) if answer_tag else solution
    if aggregate == "vqa" or (aggregate == "auto" and len(refs) == VQA_ANSWERS):
        return vqa_accuracy(text, refs)
    return max(answer_match(text, r, mode, tol) for r in refs)


def compute_score(
    solution: str, ground_truth: Any, mode: str = "auto", tol: float = 0.05, aggregate: str = "auto"
) -> float:
    """verl-style ``compute_score``: visual-QA answer match of ``solution`` against
    ``ground_truth`` (a string or list of strings): 1.0/0.0, or the VQA accuracy for ten human
    answers (``aggregate``); NaN without a reference."""
    return _score(solution, ground_truth, mode, tol, True, aggregate)

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
    references,
    squad_normalize,
)
from rewardkit.rewards.rules.exact_match import exact_match
from rewardkit.rewards.rules.gsm8k import extract_answer, parse_number
from rewardkit.types import Query

MODES = ("auto", "choice", "number", "text")
_LETTER_REF = re.compile(r"^\s*\(?([A-Za-z])\)?\s*[.):]?\s*$")
_CHOICE_ONLY = re.compile(r"^\s*\(?([A-Z])\)?\s*[.):]?\s*$")
_CHOICE_START = re.compile(r"^\s*\(?([A-Z])[.)]\s")
_CHOICE_STATED = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:|=)?\s*(?:option\s*)?\(?([A-Z])\)?(?![A-Za-z])", re.I
)
_CHOICE_PAREN = re.compile(r"\(([A-Z])\)")
_NUMERIC_REF = re.compile(r"^\s*[-+]?[$]?\s*[\d.,]+\s*(?:/\s*\d+)?\s*%?\s*$")


def extract_choice(text: str) -> str | None:
    """The option letter a response gives (upper case), or None."""
    for pattern in (_CHOICE_ONLY, _CHOICE_START):
        m = pattern.match(text)
        if m:
            return m.group(1)
    stated = _CHOICE_STATED.findall(text)
    if stated:
        return stated[-1].upper()
    paren = _CHOICE_PAREN.findall(text)
    return paren[-1] if paren else None


def reference_mode(ref: str) -> str:
    """``choice`` for a one-letter reference, ``number`` for a numeric one, else ``text``."""
    if _LETTER_REF.match(ref):
        return "choice"
    if _NUMERIC_REF.match(ref) and parse_number(ref) is not None:
        return "number"
    return "text"


def _yes_no(text: str) -> str | None:
    words = squad_normalize(text).split()
    return words[0] if words and words[0] in ("yes", "no") else None


def answer_match(response: str, ref: str, mode: str = "auto", tol: float = 0.05) -> float:
    """1.0 when ``response`` answers ``ref`` under ``mode`` (see the module doc), else 0.0."""
    mode = reference_mode(ref) if mode == "auto" else mode
    if mode == "choice":
        want = _LETTER_REF.match(ref)
        got = extract_choice(response)
        return 1.0 if want and got == want.group(1).upper() else 0.0
    if mode == "number":
        gold = parse_number(ref.replace("%", ""))
        pred = extract_answer(response.replace("%", ""))
        if gold is None or pred is None:
            return 0.0
        return 1.0 if abs(pred - gold) <= Fraction(str(tol)) * abs(gold) else 0.0
    if _yes_no(ref) is not None and len(squad_normalize(ref).split()) == 1:
        return 1.0 if _yes_no(response) == _yes_no(ref) else 0.0
    return exact_match(response, [ref])


class VqaAnswerReward(RuleReward):
    """``rule:vqa`` — options ``mode`` (auto/choice/number/text), ``tol`` (relative, numbers),
    ``answer_tag`` (read inside ``<answer>`` when present, default true)."""

    rule = "vqa"

    def __init__(self, mode: str = "auto", tol: float = 0.05, answer_tag: bool = True) -> None:
        if mode not in MODES:
            raise SpecError(f"rule:vqa mode must be one of {MODES}, got {mode!r}")
        super().__init__(
            mode=mode,
            tol=as_number("tol", self.rule, tol, minimum=0),
            answer_tag=as_bool("answer_tag", self.rule, answer_tag),
        )

    def score_one(self, query: Query) -> float:
        return _score(
            str(query.response),
            query.reference,
            self.options["mode"],
            self.options["tol"],
            self.options["answer_tag"],
        )


def _score(solution: str, ground_truth: Any, mode: str, tol: float, answer_tag: bool) -> float:
    refs = references(ground_truth)
    if not refs:
        return NAN
    text = answer_tag_content(solution) if answer_tag else solution
    return max(answer_match(text, r, mode, tol) for r in refs)


def compute_score(solution: str, ground_truth: Any, mode: str = "auto", tol: float = 0.05) -> float:
    """verl-style ``compute_score``: 1.0/0.0 visual-QA answer match of ``solution`` against
    ``ground_truth`` (a string or list of strings); NaN without a reference."""
    return _score(solution, ground_truth, mode, tol, True)

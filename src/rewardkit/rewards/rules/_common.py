"""Helpers shared by the rule rewards: per-query scoring, reference lists, text normalisation."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.errors import DataError, SpecError, switch
from rewardkit.results import ScoreResult
from rewardkit.rewards.tags import last_block
from rewardkit.types import Query, Reward

NAN = math.nan


class RuleReward(Reward):
    """A rule scored one query at a time by :meth:`score_one` (a float; NaN where not applicable).

    Subclasses set ``self.options`` (a dict of the options that change scores: it is the identity)
    and implement :meth:`score_one`.
    """

    #: The rule's name in :data:`rewardkit.rewards.rules.RULES`.
    rule: str = "rule"

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = options
        self.name = f"rule:{self.rule}"

    def identity(self) -> dict[str, Any]:
        return {"class": type(self).__qualname__, **self.options}

    @abstractmethod
    def score_one(self, query: Query) -> float:
        """The reward of one query."""

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The reward of one query and, where the rule could not finish checking it (a check
        past its time limit), why: that row then counts as a failure of its call, with the
        score it got."""
        return self.score_one(query), None

    def verdicts(self, queries: Sequence[Query]) -> list[tuple[float, str | None] | BadReference]:
        """:meth:`verdict` of each query, or the :class:`BadReference` it raised (that row alone
        fails). A rule that checks many rows in one go (one worker call) overrides this."""
        out: list[tuple[float, str | None] | BadReference] = []
        for query in queries:
            try:
                out.append(self.verdict(query))
            except BadReference as exc:
                out.append(exc)
        return out

    def _score(self, queries: Sequence[Query]) -> np.ndarray | ScoreResult:
        """Each query by :meth:`verdicts`; a row whose reference cannot be read
        (:class:`BadReference`) fails alone: NaN, named in ``stats["errors"]``; a row the rule
        could not finish checking keeps its score and is named there too."""
        scores = np.full(len(queries), np.nan, dtype=np.float64)
        errors: list[dict[str, Any]] = []
        for i, verdict in enumerate(self.verdicts(queries)):
            if isinstance(verdict, BadReference):
                errors.append({"index": i, "error": str(verdict)})
                continue
            scores[i], problem = verdict
            if problem is not None:
                errors.append({"index": i, "error": problem, "score": float(scores[i])})
        if not errors:
            return scores
        return ScoreResult(
            scores, stats={"queries": len(queries), "failed": len(errors), "errors": errors}
        )


class BadReference(DataError):
    """A row's reference that no rule could read (an unknown mapping): that row alone fails."""


#: Keys of an answer record whose values are the answer texts: SQuAD / Hugging Face ``answers``
#: (``{"text": [...], "answer_start": [...]}``), VQA answer records (``{"answer": ...}``),
#: TriviaQA (``{"value": ..., "aliases": [...]}``), nested ``answers``, and verl/Search-R1's
#: ``ground_truth`` (``{"target": array([...])}``: its QA data's gold answers).
ANSWER_KEYS = ("text", "answer", "answers", "value", "aliases", "target")


def references(reference: Any, strict: bool = False) -> list[str]:
    """A reference given as a string or a list of strings, as a list of non-blank strings.

    ``None``, a NaN (:func:`is_missing`), ``""``, ``[]`` and ``[""]`` give ``[]`` (the rule then
    returns NaN: it does not apply); a numpy array (what verl's ``ground_truth`` can be) counts as
    the list it holds, bytes the UTF-8 text they hold. An answer record (a mapping) gives the
    texts under :data:`ANSWER_KEYS`
    (SQuAD's ``{"text": [...], "answer_start": [...]}`` → its texts); a mapping with none of
    them is a :class:`BadReference` with ``strict`` (its ``str()`` is no answer), else read as
    its ``str()`` (what rules outside this check, such as ``rule:math``, always did).
    """
    if isinstance(reference, np.ndarray):
        reference = reference.tolist()
    if isinstance(reference, bytes | bytearray):  # a binary column: its text, not its bytes
        reference = _text(reference)
    if is_missing(reference):
        return []
    if isinstance(reference, str):
        return [reference] if reference.strip() else []
    if isinstance(reference, Mapping):
        keys = [k for k in ANSWER_KEYS if k in reference]
        if not keys and not strict:
            return [str(reference)]
        if not keys:
            raise BadReference(
                f"the reference is a mapping with keys {sorted(map(str, reference))[:8]}, none "
                f"of {', '.join(ANSWER_KEYS)}: give the answer text(s)",
                field="reference",
            )
        return [t for k in keys for t in references(reference[k], strict)]
    if isinstance(reference, Sequence):
        out: list[str] = []
        for r in reference:
            if isinstance(r, Mapping | np.ndarray | list | tuple):
                out.extend(references(r, strict))
            elif not is_missing(r) and str(r).strip():
                out.append(_text(r))
        return out
    return [_text(reference)]


def _text(value: Any) -> str:
    """A scalar reference as text; a whole float is written as an integer (pandas stores an
    integer column with a missing cell as float64: the answer 18 arrives as 18.0, whose text
    "18.0" the response "18" would not match); bytes (a binary column) as the UTF-8 text they
    hold (``b"Paris"`` was the list of its byte values, so the response "80" matched ``b"P"``)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_missing(value: Any) -> bool:
    """``None``, a float NaN or pandas' ``NA``/``NaT``: how tables store "no value" (a NaN
    reference is no reference, never the text ``"nan"``)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def no_reference(reference: Any) -> bool:
    """Whether ``reference`` gives a rule nothing to check against (:func:`references` is
    empty): the rule does not apply (NaN), which is not a failure. A mapping is something (a
    JSON Schema, an answer record)."""
    if isinstance(reference, Mapping):
        return False
    return not references(reference)


def answer_tag_content(text: str) -> str:
    """The inside of the last ``<answer>…</answer>`` block when there is one, else ``text``
    (linear time: :mod:`rewardkit.rewards.tags`)."""
    found = last_block(text, "<answer>", "</answer>")
    return text if found is None else found


# Words, as word-count tools count them: a run of text between whitespace, except that each
# Han, Kana or Hangul character is a word of its own (Chinese and Japanese are written without
# spaces), CJK and fullwidth punctuation separates words like a space, and so do characters
# that show nothing: Unicode's default-ignorable code points (zero-width space / joiners, word
# joiner, BOM, soft hyphen, bidi marks, variation selectors, the combining grapheme joiner,
# Mongolian selectors, Hangul fillers, tags), the interlinear annotation marks, the Egyptian
# format controls and the blank braille pattern (drawn as a space): deleting them would glue
# the words they separate into one, and keeping them inside a word made a repeated word new.
_CJK_CHARS = (
    "\u1100-\u115e\u1161-\u11ff\u2e80-\u2fdf\u3040-\u309f\u30a0-\u30ff\u3100-\u312f"
    "\u3130-\u3163\u3165-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_WORD_BREAKS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
#: Characters of a run without a break read as one word: a longer run is read as its pieces of
#: this many characters (``"!" * 200_000``, ``"ha" * 100_000`` were one word: no repetition
#: penalty, no overlong penalty counted in words). Longer than almost any word or identifier.
LONG_RUN = 32
_CJK_CHAR = re.compile(f"[{_CJK_CHARS}]")
_WORD_BREAK = re.compile(f"[{_WORD_BREAKS}]")
_WORD = re.compile(f"[{_CJK_CHARS}]|[^\\s{_CJK_CHARS}{_WORD_BREAKS}]{{1,{LONG_RUN}}}")


def words(text: str) -> list[str]:
    """The words of ``text``: its whitespace split, with each Han / Kana / Hangul character a
    word of its own and invisible format characters and CJK punctuation as separators
    (``"这是 test"`` → ``["这", "是", "test"]``; ``"the\\u200banswer"`` → two words), and a run
    longer than :data:`LONG_RUN` characters as its pieces of that length. ASCII text without
    such a run is split exactly as ``str.split`` does."""
    if text.isascii():
        split = text.split()
        if all(len(w) <= LONG_RUN for w in split):
            return split
        return [w[i : i + LONG_RUN] for w in split for i in range(0, len(w), LONG_RUN)]
    return _WORD.findall(text)


def word_count(text: str) -> int:
    """``len(words(text))`` without building the list of single characters."""
    if text.isascii():
        split = text.split()
    else:
        spaced, cjk = _CJK_CHAR.subn(" ", text)
        split = _WORD_BREAK.sub(" ", spaced).split()
        if cjk:
            return cjk + _pieces(split)
    return _pieces(split)


def _pieces(split: list[str]) -> int:
    """Words in a whitespace split, a run longer than :data:`LONG_RUN` counted in pieces."""
    return sum(1 if len(w) <= LONG_RUN else -(-len(w) // LONG_RUN) for w in split)


# SQuAD v1.1 official normalisation (evaluate-v1.1.py): lower, drop punctuation, drop articles,
# collapse whitespace.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
#: Fullwidth ASCII forms (U+FF01–FF5E) and the ideographic space as the ASCII they stand for.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def plain_text(text: str) -> str:
    """Non-ASCII text in one form: canonical composition (NFC: ``"e\\u0301"`` is ``"é"``),
    fullwidth ASCII as ASCII (``"１２"`` is ``"12"``), and without the characters that show
    nothing (category Cf: zero-width space and joiners, soft hyphen, bidi marks, BOM), so
    ``"Pa\\u200bris"`` reads as what it shows. Compatibility forms that change a value stay
    (``"2⁵"`` is not ``"25"``)."""
    text = unicodedata.normalize("NFC", text).translate(_FULLWIDTH)
    if text.isascii():
        return text
    return "".join(c for c in text if c.isascii() or unicodedata.category(c) != "Cf")


def _no_punct(text: str) -> str:
    """``text`` without ASCII punctuation (SQuAD's) and, past ASCII, without any Unicode
    punctuation (category P: ``"。"``, ``"«"``, ``"¿"``, as MLQA's evaluation drops it)."""
    text = text.translate(_PUNCT)
    if text.isascii():
        return text
    return "".join(c for c in text if c.isascii() or not unicodedata.category(c).startswith("P"))


def squad_normalize(text: str) -> str:
    """SQuAD answer normalisation: lowercase, strip punctuation and articles, squeeze spaces.

    Unlike SQuAD's script, a text that has something to say never normalises to nothing: when
    stripping articles (the answer "A", a choice letter) or then punctuation ("?") leaves it
    empty, the last non-empty stage is kept, so an empty or punctuation-only response cannot
    match it. Non-ASCII text is first put in one form (:func:`plain_text`) and loses Unicode
    punctuation too (:func:`_no_punct`), so the same answer written in decomposed accents,
    fullwidth letters or with CJK punctuation matches."""
    if not text.isascii():
        text = plain_text(text)
    lowered = text.lower()
    no_punct = _no_punct(lowered)
    for stage in (_ARTICLES.sub(" ", no_punct), no_punct, lowered):
        words = stage.split()
        if words:
            return " ".join(words)
    return ""


def as_bool(name: str, rule: str, value: Any) -> bool:
    """An option read as a boolean (:func:`rewardkit.errors.switch`)."""
    return switch(name, value, f"rule:{rule}")


def as_choice(name: str, rule: str, value: Any, choices: Sequence[str]) -> str:
    """An option read as one of ``choices`` (``think=require``)."""
    if not isinstance(value, str) or value not in choices:
        raise SpecError(
            f"rule:{rule} option {name} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value


#: ``think=`` values of the answer rules (math, gsm8k, exact_match): ``whole`` reads the whole
#: response (the default); ``require`` reads only what follows the last ``</think>``, and a
#: response that never closes its reasoning has no answer (TRL's ``reasoning_accuracy_reward``,
#: verifiers' ``ThinkParser``).
THINK_MODES = ("whole", "require")
THINK_END = "</think>"


def after_think(text: str, think: str) -> str | None:
    """The part of a response that ``think`` reads: all of it (``whole``), or with ``require``
    the text after the last ``</think>`` (written exactly so, as the peers split), and None when
    there is none: the reasoning did not finish, so no answer was given."""
    if think == "whole":
        return text
    cut = text.rfind(THINK_END)
    return None if cut < 0 else text[cut + len(THINK_END) :]


def as_text(name: str, rule: str, value: Any) -> str:
    """An option read as text: a number is written back (``pattern=123``), true/false are no
    text (``pattern=yes`` is the text "yes"; ``pattern=true`` was the regex "True")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"rule:{rule} option {name} must be text, got {value!r}")
    return str(value)


def as_count(name: str, rule: str, value: Any, *, minimum: int = 1) -> int:
    """An option read as a whole number ≥ ``minimum`` (``5.0`` is 5; ``5.9`` is refused, not
    cut to 5)."""
    number = as_number(name, rule, value, minimum=minimum)
    if not float(number).is_integer():
        raise SpecError(f"rule:{rule} option {name} must be a whole number, got {value!r}")
    return int(number)


def as_number(name: str, rule: str, value: Any, *, minimum: float | None = None) -> float:
    """An option read as a number, optionally with a lower bound."""
    if isinstance(value, bool):  # 'max_chars=true' is not 1
        raise SpecError(f"rule:{rule} option {name} must be a number, got {value!r}")
    if not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"rule:{rule} option {name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise SpecError(f"rule:{rule} option {name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"rule:{rule} option {name} must be ≥ {minimum}, got {value!r}")
    return value


class ReferenceTextRule(RuleReward):
    """A text-vs-references rule: :meth:`metric` of the response (optionally only the inside of
    ``<answer>…</answer>``) against the query's references; NaN without a reference.

    Option ``answer_tag`` (default false): score only the inside of ``<answer>…</answer>``.
    """

    def __init__(self, answer_tag: bool = False) -> None:
        super().__init__(answer_tag=as_bool("answer_tag", self.rule, answer_tag))

    @abstractmethod
    def metric(self, text: str, refs: list[str]) -> float:
        """The score of ``text`` against the (non-empty) references."""

    def score_one(self, query: Query) -> float:
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN
        text = query.response
        if self.options["answer_tag"]:
            text = answer_tag_content(text)
        return self.metric(text, refs)

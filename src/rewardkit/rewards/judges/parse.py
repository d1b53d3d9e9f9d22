"""Reading a judge's answer from an API: ``top_logprobs`` when the server returns them, else text.

Both readers return the kind's *class log-scores* (:mod:`rewardkit.rewards.judges.verdict`), so
the verdict of an HTTP judge goes through the same reader as a local one.

**Log-probabilities.** At the first generated token that spells an answer class (after any
``[[``, ``**``, spaces…), the ``top_logprobs`` entries are grouped by class (a token counts for
a class when, stripped of spaces, it is one of the class's spellings) and log-sum-exp'd; a class
absent from the top entries gets −∞ (its probability is below every listed one). This gives
P(Yes), the expected rating and P(A) as the local judges read them from logits.

**Text** (documented formats; anything else is *unparsed*, which the judge scores NaN and counts,
never 0 or a tie). The verdict is read from the judge's own words: a ``<think>`` block is left
out (after a ``</think>``, only what follows it counts), verbatim copies of the judged texts are
cut out (:func:`judge_words`; short ones where a verdict remains without them), and where a format
matches several times the **last** match counts
(a judge that quotes the response before its verdict, or restates the template's example,
cannot have the quote read as its verdict; a response holding ``[[Yes]]`` or ``Rating: 10``
forged nothing):

- yes/no: ``[[Yes]]``; ``Answer: No`` / ``Verdict: yes`` / ``Judgement: **No**``; an answer whose
  first word is yes or no (``Yes.``, ``**No**, because…``); else exactly one of the two words in
  the text.
- rating: ``[[7]]``; ``Rating: 7`` / ``Score: 8.5``; ``7/10`` / ``7 out of 10``; an answer that
  starts with the number. Out of 1–10 is unparsed.
- pairwise: ``[[A]]`` / ``[[B]]`` (MT-Bench, reward-bench), ``[[C]]`` or ``tie`` = an explicit tie;
  ``Answer: B`` / ``Verdict: Response A`` / ``Better response: (a)``; a first word ``A``/``B``
  (``A.``, ``**B**``); else exactly one of ``Response A`` / ``Response B`` (or ``Assistant A``…).
- listwise (k responses): RewardAnything's JSON ``{"best-to-worst": ["model-2", "model-1", …]}``
  (``<think>`` blocks, code fences and trailing commas tolerated); a chain ``2 > 1 > 3`` (``[2] > [1] > [3]``, ``2, 1, 3``, ``≻``, ``>>``)
  of distinct labels 1…k — the full ranking, or k − 1 of them and the last inferred; else one
  label: ``Best: [2]`` / ``Response 2 is the best`` / an answer that starts with ``2`` — the best
  response only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.rewards.judges.verdict import RATING_SCALE
from rewardkit.rewards.tags import strip_blocks

_NEG = -math.inf
_MARKUP = " \t\n*_`'\"[]()<>:.,!"


@dataclass(frozen=True)
class Reading:
    """A parsed answer: class log-scores (``scores``; None when unparsed) and how it was read
    (``"logprobs"``, ``"text"`` or ``"unparsed"``)."""

    scores: np.ndarray | None
    source: str

    @property
    def parsed(self) -> bool:
        return self.scores is not None


def one_hot(index: int, n: int) -> np.ndarray:
    """Class log-scores of a text verdict: 0 for the named class, −∞ for the others."""
    out = np.full(n, _NEG)
    out[index] = 0.0
    return out


#: Judged texts shorter than this are cut out of an answer only where a verdict remains without
#: them (a response "Yes" must not take the judge's own "Yes" with it): :func:`text_reading`.
MIN_QUOTE_CHARS = 24


def judge_words(text: str, quoted: Sequence[str] = ()) -> str:
    """The part of an answer that is the judge's own: after the last ``</think>`` (a ``<think>``
    that opens the answer and never closes dropped with what follows; one elsewhere is the
    judge writing about a tag), with verbatim copies of ``quoted`` (the judged texts, when at
    least :data:`MIN_QUOTE_CHARS` long) cut out."""
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    elif text.lstrip().startswith("<think>"):
        return ""  # a reasoning answer cut off before its verdict
    for q in sorted({str(q).strip() for q in quoted}, key=len, reverse=True):
        if len(q) >= MIN_QUOTE_CHARS:
            text = text.replace(q, " ")
    return text


def without_short_quotes(text: str, quoted: Sequence[str] = ()) -> str:
    """``text`` with whole-word copies of the judged texts shorter than :data:`MIN_QUOTE_CHARS`
    cut out (``No. It only says "Final answer: yes".`` → ``No. It only says "".``)."""
    for q in sorted({str(q).strip() for q in quoted}, key=len, reverse=True):
        if q and len(q) < MIN_QUOTE_CHARS:
            text = re.sub(rf"(?<!\w){re.escape(q)}(?!\w)", " ", text)
    return text


def _last(*patterns: str, text: str) -> re.Match[str] | None:
    """The match of any of ``patterns`` that starts last in ``text`` (case-insensitive): the
    judge's verdict follows what it quotes, whichever documented format each uses."""
    found = None
    for pattern in patterns:
        for m in re.finditer(pattern, text, re.I):
            if found is None or m.start() > found.start():
                found = m
    return found


def _first_word(text: str) -> str:
    words = text.strip(_MARKUP).split()
    return words[0].strip(_MARKUP).lower() if words else ""


_LABELLED = r"(?:final\s++)?(?:answer|verdict|judge?ment|decision|choice|better\s++response|winner)"

# The verdict formats (module docstring). Possessive quantifiers (``\s*+``, ``\d++``) and digit
# runs read from their first digit keep every scan linear: with plain ``\s*(?:is)?\s*…\s*``, a
# judge answer of "verdict" and a few hundred spaces took seconds (cubic backtracking), and a long
# run of digits quadratic time.
YES_NO_PATTERNS = (
    r"\[\[\s*+(yes|no)\s*+\]\]",
    _LABELLED + r"\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+(yes|no)\b",
)
RATING_PATTERNS = (
    r"\[\[\s*+(\d++(?:\.\d++)?)\s*+\]\]",
    r"(?:rating|score)\s*+(?:is)?\s*+[:=]?\s*+\**+\s*+(\d++(?:\.\d++)?)",
    r"(?<!\d)(\d++(?:\.\d++)?)\s*+(?:/|out\s++of)\s*+10\b",
)
CHOICE_PATTERNS = (
    r"\[\[\s*+([ABC])\s*+\]\]",
    _LABELLED
    + r"\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+(?:response|assistant|output)?\s*+\(?\s*+([ab])\b\)?",
)
BEST_PATTERNS = (
    r"(?:best|winner|answer)\s*+(?:response)?\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+\[?(\d++)\]?",
    r"(?:response|answer)\s*+\[?(\d++)\]?\s*+is\s*+(?:the\s++)?best",
)


def parse_yes_no(text: str) -> int | None:
    """0 (yes), 1 (no) or None, from the formats in the module docstring."""
    m = _last(*YES_NO_PATTERNS, text=text)
    if m is not None:
        return 0 if m.group(1).lower() == "yes" else 1
    first = _first_word(text)
    if first in ("yes", "no"):
        return 0 if first == "yes" else 1
    found = {w.lower() for w in re.findall(r"\b(yes|no)\b", text, re.I)}
    return (0 if "yes" in found else 1) if len(found) == 1 else None


def parse_rating(text: str, scale: Sequence[int] = RATING_SCALE) -> float | None:
    """The rating in the text (within ``scale``), or None."""
    text = text.strip()
    m = _last(*RATING_PATTERNS, text=text)
    if m is None:
        m = re.match(r"^\W*+(\d++(?:\.\d++)?)\b", text)
    if m is None:
        return None
    value = float(m.group(1))
    return value if min(scale) <= value <= max(scale) else None


def parse_choice(text: str) -> int | None:
    """0 (A), 1 (B), 2 (an explicit tie) or None, from the formats in the module docstring."""
    m = _last(*CHOICE_PATTERNS, text=text)
    if m is not None:  # a verdict wins over the word "tie" elsewhere ("tie the laces")
        return "ABC".index(m.group(1).upper())
    if re.search(r"\b(?:tie|draw)\b", text, re.I) and not re.search(
        r"\btie\s*+breaker", text, re.I
    ):
        return 2
    first = _first_word(text)
    if first in ("a", "b") and text.strip(_MARKUP)[:1] in ("A", "B"):
        return "ab".index(first)
    found = {
        w.upper() for w in re.findall(r"\b(?:response|assistant|output)\s*+\(?([AB])\b", text, re.I)
    }
    return "AB".index(found.pop()) if len(found) == 1 else None


_CHAIN = re.compile(r"(?<!\d)\[?(\d++)\]?(?:\s*+(?:>>|>|≻|,|;|then)\s*+\[?(\d++)\]?)+")


def _label(digits: str) -> int:
    """A 1-based label written as ``digits``; a number too long to be one (over 9 digits, where
    ``int`` may refuse it) reads as 0, which no ranking accepts."""
    return int(digits) if len(digits) <= 9 else 0


def _json_ranking(text: str, k: int) -> list[int] | None:
    """The ``best-to-worst`` list of a RewardAnything-style JSON answer, as 0-based labels."""
    text = strip_blocks(text, "<think>", "</think>")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    raw = re.sub(r",\s*([}\]])", r"\1", text[start : end + 1])  # trailing commas
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    order = next(
        (obj[key] for key in ("best-to-worst", "best-to-worse", "ranking") if key in obj), None
    )
    if not isinstance(order, list):
        return None
    labels = []
    for item in order:
        m = re.search(r"\d+", str(item))
        if m is None or not 1 <= _label(m.group(0)) <= k or _label(m.group(0)) - 1 in labels:
            return None
        labels.append(_label(m.group(0)) - 1)
    return labels or None


def parse_ranking(text: str, k: int) -> tuple[list[int], bool] | None:
    """(0-based labels best first, complete) or None; ``complete`` False = the best one only."""
    best: list[int] = _json_ranking(text, k) or []
    for m in _CHAIN.finditer(text):
        labels = [_label(x) - 1 for x in re.findall(r"\d+", m.group(0))]
        valid = len(set(labels)) == len(labels) and all(0 <= x < k for x in labels)
        if valid and len(labels) >= len(best):  # of equal chains, the last (the verdict)
            best = labels
    if len(best) >= k - 1 and best:
        if len(best) == k - 1:
            best.append(next(x for x in range(k) if x not in best))
        return best, True
    if best:
        return best[:1], False
    m = _last(*BEST_PATTERNS, text=text)
    if m is None:
        m = re.match(r"^\W*+(\d++)\b", text.strip())
    if m is not None and 1 <= _label(m.group(1)) <= k:
        return [_label(m.group(1)) - 1], False
    return None


def ranking_scores(order: Sequence[int], complete: bool, k: int) -> np.ndarray:
    """Per-label scores of a text ranking: Borda (k − 1 − position) / (k − 1) for a complete one,
    1 for the best and 0 for the others when only the best was named."""
    out = np.zeros(k)
    if complete:
        for pos, label in enumerate(order):
            out[label] = (k - 1 - pos) / (k - 1)
    else:
        out[order[0]] = 1.0
    return out


def text_reading(kind: str, text: str, k: int = 2, quoted: Sequence[str] = ()) -> Reading:
    """Class log-scores of a text answer for a judge kind (listwise: the log of
    :func:`ranking_scores`, so that softmax gives the normalised Borda scores), read from the
    judge's own words (:func:`judge_words`; ``quoted``: the judged texts). A short judged text
    quoted by the judge is cut out too when the judge's verdict can be read without it (a
    response "Final answer: yes" quoted after the judge's "No" is not the verdict); when nothing
    can, the answer is read with it (the judge's bare "Yes" about a response "Yes")."""
    text = judge_words(text, quoted)
    cut = without_short_quotes(text, quoted)
    if cut != text:
        reading = _text_reading(kind, cut, k)
        if reading.parsed:
            return reading
    return _text_reading(kind, text, k)


def _text_reading(kind: str, text: str, k: int) -> Reading:
    if kind == "yes_no":
        c = parse_yes_no(text)
        return Reading(
            None if c is None else one_hot(c, 2), "text" if c is not None else "unparsed"
        )
    if kind == "pairwise":
        c = parse_choice(text)
        if c is None:
            return Reading(None, "unparsed")
        return Reading(np.zeros(2) if c == 2 else one_hot(c, 2), "text")
    if kind == "rating":
        r = parse_rating(text)
        if r is None:
            return Reading(None, "unparsed")
        # an exact rating: all the mass on it (a fractional one on its two neighbours)
        lo = math.floor(r)
        p = np.zeros(len(RATING_SCALE))
        p[lo - 1] = 1.0 - (r - lo)
        if r > lo:
            p[lo] = r - lo
        with np.errstate(divide="ignore"):
            return Reading(np.log(p), "text")
    ranked = parse_ranking(text, k)
    if ranked is None:
        return Reading(None, "unparsed")
    with np.errstate(divide="ignore"):
        return Reading(np.log(ranking_scores(ranked[0], ranked[1], k)), "text")


def _norm(token: str) -> str:
    return token.strip().strip("*[]()").strip()


def top_logprobs(body: Any) -> list[tuple[str, dict[str, float]]] | None:
    """(generated token, {candidate token: logprob}) per position of an OpenAI-style answer
    (chat ``logprobs.content[*].top_logprobs`` or completions ``logprobs.top_logprobs``), or
    None when the server returned none."""
    try:
        choice = body["choices"][0]
        lp = choice.get("logprobs")
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(lp, Mapping):
        return None
    out: list[tuple[str, dict[str, float]]] = []
    if isinstance(lp.get("content"), list):
        for entry in lp["content"]:
            tops = {str(t["token"]): float(t["logprob"]) for t in entry.get("top_logprobs") or []}
            tops.setdefault(str(entry.get("token", "")), float(entry.get("logprob", _NEG)))
            out.append((str(entry.get("token", "")), tops))
    elif isinstance(lp.get("top_logprobs"), list):
        tokens = lp.get("tokens") or []
        for i, tops in enumerate(lp["top_logprobs"]):
            tok = str(tokens[i]) if i < len(tokens) else max(tops, key=tops.get)
            out.append((tok, {str(t): float(v) for t, v in (tops or {}).items()}))
    return out or None


def quoted_until(
    text: str, quoted: Sequence[str] = (), classes: Sequence[Sequence[str]] = ()
) -> int:
    """Where the judge's own words start for the logprob reader: the end of the last ``<think>``
    block or verbatim copy of a judged text in ``text`` (a copy :data:`MIN_QUOTE_CHARS` or
    longer, or a shorter one holding a word that spells one of ``classes``: "5 Yes"); 0 when
    there is none."""
    end = text.rfind("</think>") + len("</think>") if "</think>" in text else 0
    spellings = {_norm(x).lower() for c in classes for x in c}
    for q in {str(q).strip() for q in quoted}:
        long_enough = len(q) >= MIN_QUOTE_CHARS
        verdict_like = any(_norm(w).lower() in spellings for w in q.split())
        if q and (long_enough or verdict_like) and q in text:
            end = max(end, text.rfind(q) + len(q))
    return end


#: The largest log-probability read as one (servers round log 1 to a hair above 0); above it, or
#: NaN, the answer is broken and fails rather than give a verdict.
MAX_LOGPROB = 1e-3


def logprob_reading(
    body: Any, classes: Sequence[Sequence[str]], skip_chars: int = 0
) -> Reading | None:
    """Class log-scores from ``top_logprobs`` at the first position whose generated token spells
    a class, among the tokens that start at or after character ``skip_chars`` of the answer
    (:func:`quoted_until`: a quoted response's "Yes" is not the verdict); None when the answer
    has no logprobs or no such position. A NaN or positive log-probability at that position, or
    none for any class there, raises ValueError (the answer is broken: a failure, not a verdict
    nor a NaN that would pass for "does not apply")."""
    positions = top_logprobs(body)
    if positions is None:
        return None
    spellings = [{_norm(s) for s in c} for c in classes]
    at = 0
    for token, tops in positions:
        start, at = at, at + len(token)
        if start < skip_chars or not any(_norm(token) in s for s in spellings):
            continue
        if any(math.isnan(v) or v > MAX_LOGPROB for v in tops.values()):
            bad = next(v for v in tops.values() if math.isnan(v) or v > MAX_LOGPROB)
            raise ValueError(f"the answer's top_logprobs hold {bad} (a log-probability is ≤ 0)")
        scores = np.full(len(classes), _NEG)
        for j, names in enumerate(spellings):
            values = [v for t, v in tops.items() if _norm(t) in names]
            if values:
                scores[j] = float(np.logaddexp.reduce(np.asarray(values, dtype=np.float64)))
        if np.isneginf(scores).all():
            raise ValueError(
                f"the answer's top_logprobs give no answer class a probability at {token!r}"
            )
        return Reading(scores, "logprobs")
    return None


def answer_text(body: Any) -> str | None:
    """The generated text of an OpenAI-style answer (chat or completions), or None."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        return None
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if isinstance(message, Mapping) and isinstance(message.get("content"), str):
        return message["content"]
    text = choice.get("text") if isinstance(choice, Mapping) else None
    return text if isinstance(text, str) else None

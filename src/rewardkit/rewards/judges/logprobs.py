"""Reading a judge's verdict from the ``top_logprobs`` of an OpenAI-style answer.

The text reader (:mod:`rewardkit.rewards.judges.parse`) finds *where* the judge's verdict is —
the offset of its class word in the answer, after the reasoning and the quotes; this module reads
*how sure* it was: the ``top_logprobs`` of the generated token at that offset, grouped by class
(a token counts for a class when, stripped of spaces and ``*[]()``, it is one of the class's
spellings) and log-sum-exp'd. This gives P(Yes), the expected rating and P(A) as the local
judges read them from logits.

A class absent from the listed candidates has at most the probability of the least listed one,
and all absent classes together at most the mass the list leaves unlisted: each gets
``min(p_min, (1 − Σ p_listed) / n_absent)`` (−∞ when nothing is left), so a two-class margin
stays finite where the server's numbers allow it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_NEG = -math.inf

#: The largest log-probability read as one (servers round log 1 to a hair above 0); above it, or
#: NaN, the answer is broken and fails rather than give a verdict.
MAX_LOGPROB = 1e-3

Positions = list[tuple[str, dict[str, float]]]


#: The word-start marks of raw tokenizer pieces, which some servers list in place of the space
#: or line break they stand for: SentencePiece's ``▁`` anywhere, byte-level BPE's ``Ġ`` (space)
#: and ``Ċ`` (line break) at a token's start (elsewhere they are letters: Maltese ``Ġ``).
_PIECE_START = re.compile("\\A[\u0120\u010a]+")


def piece_text(token: str) -> str:
    """A token as the text it spells: ``▁Yes`` and ``ĠYes`` as `` Yes``, ``Ċ`` as a line break."""
    token = token.replace("\u2581", " ")
    return _PIECE_START.sub(
        lambda m: m.group(0).replace("\u0120", " ").replace("\u010a", "\n"), token
    )


def norm_token(token: str) -> str:
    """A generated token as a class spelling: its piece marks as spaces (:func:`piece_text`),
    without spaces and ``*[]()`` around it."""
    return piece_text(token).strip().strip("*[]()").strip()


def _logprob(value: Any) -> float:
    """A listed log-probability as a float: a JSON number only (``false`` or ``"-0.01"`` is a
    broken answer, not 0 or −0.01)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"the answer's top_logprobs hold {str(value)[:40]!r}, not a number")
    return float(value)


def _entry(value: Any, where: str) -> Mapping[str, Any]:
    """A logprobs entry, which must be a JSON object (else a broken answer naming ``where``)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"the answer's {where} is {str(value)[:40]!r}, not an object")
    return value


def top_logprobs(body: Any) -> Positions | None:
    """(generated token, {candidate token: logprob}) per position of an OpenAI-style answer
    (chat ``logprobs.content[*].top_logprobs`` or completions ``logprobs.top_logprobs``), or
    None when the server returned none. Raises ValueError, naming the place, for a
    log-probability that is not a number or an entry that is not an object."""
    try:
        choice = body["choices"][0]
        lp = choice.get("logprobs")
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(lp, Mapping):
        return None
    out: Positions = []
    if isinstance(lp.get("content"), list):
        for i, entry in enumerate(lp["content"]):
            where = f"logprobs.content[{i}]"
            listed = _entry(entry, where).get("top_logprobs") or []
            if not isinstance(listed, list):
                raise ValueError(f"the answer's {where}.top_logprobs is not a list")
            tops = {}
            for j, t in enumerate(listed):
                t = _entry(t, f"{where}.top_logprobs[{j}]")
                if "token" not in t or "logprob" not in t:
                    raise ValueError(f"the answer's {where}.top_logprobs[{j}] has no token/logprob")
                tops[str(t["token"])] = _logprob(t["logprob"])
            tops.setdefault(str(entry.get("token", "")), _logprob(entry.get("logprob", _NEG)))
            out.append((str(entry.get("token", "")), tops))
    elif isinstance(lp.get("top_logprobs"), list):
        tokens = lp.get("tokens") or []
        for i, listed in enumerate(lp["top_logprobs"]):
            listed = _entry(listed or {}, f"logprobs.top_logprobs[{i}]")
            tops = {str(t): _logprob(v) for t, v in listed.items()}
            tok = str(tokens[i]) if i < len(tokens) else max(tops, key=tops.__getitem__, default="")
            out.append((tok, tops))
    return out or None


def has_logprobs(body: Any) -> bool:
    """Whether an OpenAI-style answer carries any per-token logprobs (a non-empty chat
    ``logprobs.content`` or completions ``logprobs.top_logprobs`` list), whatever their values.
    False for a server that accepts ``logprobs`` and drops it (`transformers serve` 5.25 answers
    without the field), sends ``"logprobs": null``, or an empty list."""
    try:
        lp = body["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return False
    if not isinstance(lp, Mapping):
        return False
    return any(isinstance(lp.get(k), list) and lp[k] for k in ("content", "top_logprobs"))


#: Why an answer's verdict was read from its text although logprobs were asked for (stats).
NO_LOGPROBS = (
    "{n} of {total} answers came without logprobs although the request asked for top_logprobs "
    "(logprobs=true): their verdicts were read from the answer text, so their scores are the "
    "text's verdict (P = 1 or 0, the rating written, a listwise ranking), not the "
    "judge's probability. The server did not return them (transformers serve 5.25 accepts the "
    "field and drops it); for graded scores use one that returns top_logprobs (vLLM, SGLang, "
    "llama.cpp), or set logprobs=false to ask for text verdicts only"
)


def missing_logprobs(n: int, answers: int) -> dict[str, Any]:
    """The stats of ``n`` of ``answers`` answers without logprobs although asked for:
    ``logprobs_missing``, and ``logprobs_note`` (:data:`NO_LOGPROBS`, why) when there are any."""
    note = {"logprobs_note": NO_LOGPROBS.format(n=n, total=answers)} if n else {}
    return {"logprobs_missing": n, **note}


class Unaligned(Exception):
    """The answer's tokens do not spell its text (:func:`token_spans`): no token can be told to
    hold the verdict, so the verdict is read from the text (and counted)."""


def _solid(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and the offset in ``text`` of each character kept."""
    at = [i for i, c in enumerate(text) if not c.isspace()]
    return "".join(text[i] for i in at), at


#: A token that stands for part of a character (partial UTF-8), as servers write it: "", U+FFFD,
#: ``bytes:…`` or ``\xf0\x9f``.
_OPAQUE = re.compile(r"\A(?:|.*\ufffd.*|bytes:.*|(?:\\x[0-9a-fA-F]{2})++)\Z", re.S)

#: Where the tokens sit in the text: (start, end) per token (None outside it) and the text
#: offset from which on they spell it.
Spans = tuple[list[tuple[int, int] | None], int]


def _from_the_end(tokens: Sequence[str], target: str) -> tuple[list[tuple[int, int] | None], int]:
    """Each token's (start, end) in ``target`` (the text without whitespace), placed from the
    last token back while the tokens spell the text's end, and where that stops. Tokens of
    partial characters (:data:`_OPAQUE`) stand for part of a run of non-ASCII characters."""
    out: list[tuple[int, int] | None] = [None] * len(tokens)
    pos, opaque = len(target), False
    for i in range(len(tokens) - 1, -1, -1):
        token = tokens[i]
        solid = _solid(token)[0]
        if _OPAQUE.match(token):
            opaque = True
            continue
        if not solid:
            continue
        n, end = len(solid), pos
        while target[end - n : end] != solid:
            if not (opaque and end > 0 and not target[end - 1].isascii()):
                return out, pos  # the tokens before this one are not the text's
            end -= 1
        out[i], pos, opaque = (end - n, end), end - n, False
    return out, pos


def token_spans(tokens: Sequence[str], text: str) -> Spans:
    """Where each generated token is in the answer text, by the characters other than
    whitespace (servers trim or add spaces): placed from the end while the tokens spell the
    text's end (SGLang #25055 lists the reasoning's tokens before the answer's; partial
    characters may stand for a non-ASCII run), else where they spell one part of it that occurs
    once (a server that lists only the verdict token). Raises :class:`Unaligned` when neither
    places a token."""
    target, offsets = _solid(text)
    tokens = [piece_text(t) for t in tokens]
    spans, pos = _from_the_end(tokens, target)
    if pos == len(target) and not any(_OPAQUE.match(t) for t in tokens):
        solids = [_solid(t)[0] for t in tokens]
        joined = "".join(solids)
        if joined and target.count(joined) == 1:
            pos = at = target.find(joined)
            for i, solid in enumerate(solids):
                spans[i] = (at, at + len(solid)) if solid else None
                at += len(solid)
    if all(span is None for span in spans):
        raise Unaligned(f"the answer's {len(tokens)} logprob tokens do not spell its text")
    start = offsets[pos] if pos < len(offsets) else len(text)
    return [None if s is None else (offsets[s[0]], offsets[s[1] - 1] + 1) for s in spans], start


def verdict_position(
    positions: Positions, spellings: Sequence[set[str]], at: int | None, text: str | None
) -> int | None:
    """The index of the position to read: the token covering character ``at`` of ``text`` when
    it spells a class (``at`` None: the first token that does); None when there is none. Raises
    :class:`Unaligned` when ``at`` is where the tokens cannot be placed in ``text``."""
    tokens = [t for t, _ in positions]
    spells = [any(norm_token(t) in s for s in spellings) for t in tokens]
    if at is None or text is None:
        return next((i for i, ok in enumerate(spells) if ok), None)
    spans, start = token_spans(tokens, text)
    for i, span in enumerate(spans):
        if span is not None and span[0] <= at < span[1]:
            return i if spells[i] else None
    if at < start:
        raise Unaligned("the answer's logprob tokens do not reach its verdict")
    return None


def class_logprobs(tops: Mapping[str, float], spellings: Sequence[set[str]]) -> np.ndarray:
    """Class log-scores from one position's candidates (module docstring: absent classes get
    the bound). Raises ValueError for a NaN or positive log-probability, or when no class has a
    probability above 0 in float64 (−∞, or −1e308 for each: a broken answer, a failure — not a
    verdict, nor a made-up tie)."""
    bad = [v for v in tops.values() if math.isnan(v) or v > MAX_LOGPROB]
    if bad:
        raise ValueError(f"the answer's top_logprobs hold {bad[0]} (a log-probability is ≤ 0)")
    scores = np.full(len(spellings), _NEG)
    for j, names in enumerate(spellings):
        values = [v for t, v in tops.items() if norm_token(t) in names]
        if values:
            scores[j] = float(np.logaddexp.reduce(np.asarray(values, dtype=np.float64)))
    absent = np.exp(scores) == 0.0  # −∞, or so low it underflows (−1e308 for each class)
    if absent.all():
        raise ValueError("the answer's top_logprobs give no answer class a probability")
    listed = np.exp([min(v, 0.0) for v in tops.values() if v > _NEG])
    rest = max(0.0, 1.0 - float(listed.sum()))
    bound = min(float(listed.min()), rest / int(absent.sum())) if absent.any() else 0.0
    if bound > 0.0:
        scores[absent] = math.log(bound)
    return scores


def logprob_scores(
    body: Any,
    classes: Sequence[Sequence[str]],
    at: int | None = None,
    text: str | None = None,
) -> np.ndarray | None:
    """Class log-scores from ``top_logprobs`` at the verdict's token (:func:`verdict_position`),
    or None when the answer has no logprobs or no class token there. Raises :class:`Unaligned`
    when the tokens do not spell the text, ValueError for broken log-probabilities."""
    positions = top_logprobs(body)
    if positions is None:
        return None
    spellings = [{norm_token(s) for s in c} for c in classes]
    index = verdict_position(positions, spellings, at, text)
    if index is None:
        return None
    token, tops = positions[index]
    try:
        return class_logprobs(tops, spellings)
    except ValueError as exc:
        raise ValueError(f"{exc} at {token!r}") from None

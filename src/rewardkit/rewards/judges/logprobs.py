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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_NEG = -math.inf

#: The largest log-probability read as one (servers round log 1 to a hair above 0); above it, or
#: NaN, the answer is broken and fails rather than give a verdict.
MAX_LOGPROB = 1e-3

Positions = list[tuple[str, dict[str, float]]]


def norm_token(token: str) -> str:
    """A generated token as a class spelling: without spaces and ``*[]()`` around it."""
    return token.strip().strip("*[]()").strip()


def top_logprobs(body: Any) -> Positions | None:
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
    out: Positions = []
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


#: How far past the previous token a token is looked for when the tokens do not spell the text.
_WINDOW = 32


def token_starts(tokens: Sequence[str], text: str | None) -> list[int | None]:
    """Where each generated token starts in the answer text: exactly when the tokens spell the
    text; else each token found in order after the previous one (within a short window; a
    server that lists only some tokens, or trims spaces), None where it is not found."""
    if text is None or "".join(tokens) == text:
        ends = np.cumsum([0, *(len(t) for t in tokens)])
        return [int(x) for x in ends[:-1]]
    out: list[int | None] = []
    pos = 0
    for token in tokens:
        core = token.strip()
        found = text.find(core, pos, pos + len(core) + _WINDOW) if core else -1
        if found < 0:
            out.append(None)
            continue
        out.append(found - (len(token) - len(token.lstrip())))
        pos = found + len(core)
    return out


def verdict_position(
    positions: Positions, spellings: Sequence[set[str]], at: int | None, text: str | None
) -> int | None:
    """The index of the position to read: the token covering character ``at`` of ``text`` when
    it spells a class (``at`` None: the first token that does); None when there is none."""
    tokens = [t for t, _ in positions]
    spells = [any(norm_token(t) in s for s in spellings) for t in tokens]
    if at is None:
        return next((i for i, ok in enumerate(spells) if ok), None)
    for i, start in enumerate(token_starts(tokens, text)):
        if start is not None and start <= at < start + len(tokens[i]):
            return i if spells[i] else None
    return None


def class_logprobs(tops: Mapping[str, float], spellings: Sequence[set[str]]) -> np.ndarray:
    """Class log-scores from one position's candidates (module docstring: absent classes get
    the bound). Raises ValueError for a NaN or positive log-probability, or when no class has
    a finite one (a broken answer: a failure, not a verdict)."""
    bad = [v for v in tops.values() if math.isnan(v) or v > MAX_LOGPROB]
    if bad:
        raise ValueError(f"the answer's top_logprobs hold {bad[0]} (a log-probability is ≤ 0)")
    scores = np.full(len(spellings), _NEG)
    for j, names in enumerate(spellings):
        values = [v for t, v in tops.items() if norm_token(t) in names]
        if values:
            scores[j] = float(np.logaddexp.reduce(np.asarray(values, dtype=np.float64)))
    absent = np.isneginf(scores)
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
    or None when the answer has no logprobs or no class token there."""
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

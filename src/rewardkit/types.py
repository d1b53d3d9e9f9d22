"""Core types shared by every part of rewardkit: ``Message``, ``Query``, ``Example`` and ``Reward``.

This module imports nothing heavier than numpy, so data, rules, combining and evaluation stay fast
to import. Model-backed rewards subclass :class:`Reward` in their own modules and import torch there.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import numpy as np

from rewardkit.multimodal.content import (
    ImageContentError,
    content_text,
    has_images,
    json_default,
)

#: Message or response content: text, or a list of text/image parts
#: (:mod:`rewardkit.multimodal.content`).
Content = str | list[dict[str, Any]]


class Message(TypedDict):
    """One chat turn in OpenAI form. ``content`` is text or a list of text/image parts."""

    role: str
    content: Content


def user(content: Content) -> Message:
    """A user message."""
    return {"role": "user", "content": content}


def assistant(content: Content) -> Message:
    """An assistant message."""
    return {"role": "assistant", "content": content}


def as_messages(prompt: str | Sequence[Mapping[str, Any]]) -> list[Message]:
    """Normalise a prompt given as plain text or as a message list into a list of messages."""
    if isinstance(prompt, str):
        return [user(prompt)]
    return [{"role": str(m["role"]), "content": m["content"]} for m in prompt]


def prompt_text(prompt: Sequence[Message]) -> str:
    """Plain-text rendering of a prompt, for rewards that do not use a chat template.

    Images render as ``<image>`` (:func:`~rewardkit.multimodal.content.content_text`)."""
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return content_text(prompt[0]["content"])
    return "\n\n".join(f"{m['role'].capitalize()}: {content_text(m['content'])}" for m in prompt)


@dataclass(frozen=True)
class Query:
    """One thing to score: a response to a prompt (the conversation so far).

    ``reference`` is a gold answer for rules (a math answer, a BLEU reference, unit tests);
    ``meta`` carries source-specific fields (data source, ids). ``meta`` is not part of the
    cache key unless a reward says it reads it (:attr:`Reward.uses_meta`).
    """

    prompt: list[Message]
    response: Content
    reference: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    def key(self, with_meta: bool = False) -> str:
        """A stable content hash of this query (sha256 of its canonical JSON)."""
        payload: dict[str, Any] = {
            "p": self.prompt,
            "r": self.response,
            "ref": self.reference,
        }
        if with_meta:
            payload["m"] = self.meta
        return stable_hash(payload)


@dataclass
class Example:
    """One unit of preference data; one type covers every public format.

    - a pair: two ``responses`` with ``chosen=[0]`` (or ``[1]``);
    - RewardBench 2: four responses, one chosen; its Ties subset has several chosen;
    - a human tie: every response is in ``chosen`` (no preference; evaluation skips it);
    - ratings: one dict of attribute ratings per response (HelpSteer2, UltraFeedback).
    """

    id: str
    prompt: list[Message]
    responses: list[Content]
    chosen: list[int]
    ratings: list[dict[str, float]] | None = None
    subset: str | None = None
    source: str | None = None
    language: str | None = None
    reference: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_tie(self) -> bool:
        """True when every response is marked chosen: a labelled tie, no preference."""
        return len(self.responses) > 1 and len(set(self.chosen)) == len(self.responses)

    @property
    def rejected(self) -> list[int]:
        """Indices of the responses not marked chosen."""
        chosen = set(self.chosen)
        return [i for i in range(len(self.responses)) if i not in chosen]

    def queries(self) -> list[Query]:
        """One :class:`Query` per response, in response order."""
        meta = {"example_id": self.id, **({"source": self.source} if self.source else {})}
        return [
            Query(prompt=self.prompt, response=r, reference=self.reference, meta=dict(meta))
            for r in self.responses
        ]


def text_messages(prompt: Sequence[Message]) -> list[Message]:
    """``prompt`` with part-list contents rendered as text (images as ``<image>``); the same
    list object when every content is already text."""
    if all(isinstance(m["content"], str) for m in prompt):
        return prompt  # type: ignore[return-value]
    return [{**m, "content": content_text(m["content"])} for m in prompt]  # type: ignore[typeddict-item]


def text_queries(queries: Sequence[Query], reward: str = "this reward") -> list[Query]:
    """Queries as a text-only reward sees them: part lists rendered as text (images in the prompt
    as ``<image>``). A response holding an image raises
    :class:`~rewardkit.multimodal.content.ImageContentError` naming ``reward``. Text queries are
    returned as they are (same objects, same cache keys)."""
    out = list(queries)
    for i, q in enumerate(out):
        if isinstance(q.response, str) and all(isinstance(m["content"], str) for m in q.prompt):
            continue
        if not isinstance(q.response, str) and has_images(q.response):
            raise ImageContentError(
                f"reward {reward!r} reads text only, but the response of query {i}"
                + (f" (example {q.meta['example_id']!r})" if "example_id" in q.meta else "")
                + " is an image; score images with clip:, vlm-judge:, vlm-judge-pairwise: or an "
                "image reward model"
            )
        out[i] = replace(q, prompt=text_messages(q.prompt), response=content_text(q.response))
    return out


def stable_hash(obj: Any) -> str:
    """sha256 (hex, 32 chars) of the canonical JSON of ``obj``; stable across runs and machines.

    An image (:class:`~rewardkit.multimodal.content.ImageRef`) hashes as ``{"image": digest}``,
    so a file and the same encoded bytes give the same key wherever the file lies."""
    text = json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=json_default
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Reward(ABC):
    """Anything that turns queries into numbers.

    Subclasses implement :meth:`_score` (a batch of queries to a float array) and
    :meth:`identity` (what makes two instances score identically: model, revision or weights
    hash, template, options). :meth:`score` checks shapes and casts to float32; evaluation,
    serving, combining and curation call only :meth:`score`, :meth:`compare` and
    :meth:`fingerprint`.

    A reward that does not apply to a query returns NaN for it, never 0.
    """

    #: Short name used in reports (the spec it was built from, when built by the registry).
    name: str = "reward"
    #: Names of the k columns when ``score`` returns an (n, k) array; None for a scalar reward.
    objectives: tuple[str, ...] | None = None
    #: Whether the reward reads ``Query.meta`` (then meta is part of the cache key).
    uses_meta: bool = False
    #: Whether the reward reads images (CLIP, VLM judges, image reward models, composites that
    #: pass queries on). For a text-only reward :meth:`score` renders prompt images as
    #: ``<image>`` and raises :class:`~rewardkit.multimodal.content.ImageContentError` on a
    #: response that holds an image, instead of scoring a part list as if it were text.
    accepts_images: bool = False

    def identity(self) -> dict[str, Any]:
        """What determines this reward's scores; hashed by :meth:`fingerprint`."""
        return {"class": type(self).__qualname__, "name": self.name}

    def fingerprint(self) -> str:
        """A stable id of the reward (model, revision/hash, template, options)."""
        return stable_hash(self.identity())

    @abstractmethod
    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        """Score a batch; subclasses implement this (callers use :meth:`score`)."""

    def score(self, queries: Sequence[Query]) -> np.ndarray:
        """Scores of ``queries`` as float32: shape (n,), or (n, k) with :attr:`objectives`."""
        queries = list(queries)
        if not queries:
            k = len(self.objectives) if self.objectives else 0
            return np.zeros((0, k) if k else (0,), dtype=np.float32)
        if not self.accepts_images:
            queries = text_queries(queries, self.name)
        out = np.asarray(self._score(queries), dtype=np.float32)
        expected_cols = len(self.objectives) if self.objectives else None
        if out.shape[0] != len(queries) or (
            (expected_cols is None and out.ndim != 1)
            or (expected_cols is not None and out.shape[1:] != (expected_cols,))
        ):
            raise ValueError(
                f"{type(self).__name__}.score returned shape {out.shape} for {len(queries)} "
                f"queries; expected ({len(queries)},"
                + (f" {expected_cols})" if expected_cols else ")")
            )
        return out

    def compare(self, prompt: Sequence[Message], a: Content, b: Content) -> float:
        """P(a better than b). Default: Bradley–Terry, σ(r(a) − r(b)) on scalar scores.

        Pairwise-native judges override this with their own probability.
        """
        s = self.score([Query(list(prompt), a), Query(list(prompt), b)])
        if s.ndim != 1:
            raise ValueError(f"{self.name}: compare needs a scalar reward; reduce objectives first")
        d = float(s[0]) - float(s[1])
        if math.isnan(d):
            return math.nan
        return 1.0 / (1.0 + math.exp(-d)) if d >= -700 else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

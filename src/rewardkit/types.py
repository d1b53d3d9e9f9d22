"""Core types shared by every part of rewardkit: ``Message``, ``Query``, ``Example`` and ``Reward``.

This module imports nothing heavier than numpy, so data, rules, combining and evaluation stay fast
to import. Model-backed rewards subclass :class:`Reward` in their own modules and import torch there.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypedDict

import numpy as np

from rewardkit.content import (
    ImageContentError,
    content_images,
    content_text,
    has_images,
    json_default,
)
from rewardkit.errors import CapabilityError
from rewardkit.results import (
    Capability,
    ListwiseResult,
    PairwiseResult,
    ScoreResult,
    TokenScores,
    bt_probability,
    failed_items,
    failed_values,
    failure_note,
    failure_outcome,
    order_flips,
    position_bias,
)

#: Message or response content: text, or a list of text/image parts
#: (:mod:`rewardkit.content`).
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


#: OpenAI tool-use keys a message keeps next to ``role``/``content`` (``name`` on ``tool``
#: messages only); every reading path keeps them, so a tool-call prompt has one cache key.
TOOL_KEYS = ("tool_calls", "tool_call_id", "name")


def as_messages(prompt: str | Sequence[Mapping[str, Any]]) -> list[Message]:
    """Normalise a prompt given as plain text or as a message list into a list of messages
    (the :data:`TOOL_KEYS` a message has, not null, are kept)."""
    if isinstance(prompt, str):
        return [user(prompt)]
    return [
        {  # type: ignore[misc]
            "role": str(m["role"]),
            "content": m["content"],
            **{
                k: m[k]
                for k in TOOL_KEYS
                if m.get(k) is not None and (k != "name" or m["role"] == "tool")
            },
        }
        for m in prompt
    ]


def prompt_text(prompt: Sequence[Message]) -> str:
    """Plain-text rendering of a prompt, for rewards that do not use a chat template.

    Images render as ``<image>`` (:func:`~rewardkit.content.content_text`)."""
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

    def __post_init__(self) -> None:
        """Check the shape at construction, so a mistake is named here rather than deep in a
        tokenizer; a prompt given as a string becomes one user message."""
        prompt: Any = self.prompt
        if isinstance(prompt, str):
            object.__setattr__(self, "prompt", [user(prompt)])
        elif isinstance(prompt, tuple):
            object.__setattr__(self, "prompt", list(prompt))
        elif not isinstance(prompt, list):
            raise TypeError(
                "Query.prompt must be a list of messages ({'role': ..., 'content': ...}) or a "
                f"string; got {type(prompt).__name__}"
            )
        for i, m in enumerate(self.prompt):
            if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
                raise TypeError(
                    f"Query.prompt[{i}] must be a message with a string 'role'; got {_brief(m)}"
                )
            if "content" not in m:
                raise TypeError(f"Query.prompt[{i}] has no 'content': {_brief(m)}")
            _check_content(m["content"], f"Query.prompt[{i}]['content']")
        _check_content(self.response, "Query.response")
        if not isinstance(self.meta, dict):
            raise TypeError(f"Query.meta must be a dict; got {type(self.meta).__name__}")

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


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_content(content: Any, where: str) -> None:
    """Content is text or a list of parts (dicts, :mod:`rewardkit.content`)."""
    if isinstance(content, str):
        return
    if isinstance(content, list) and all(isinstance(p, Mapping) for p in content):
        return
    raise TypeError(
        f"{where} must be text (str) or a list of content parts (dicts); got "
        f"{type(content).__name__} {_brief(content)}"
    )


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

    def prompt_for(self, i: int) -> list[Message]:
        """The history response ``i`` answers: ``meta["prompt_b"]`` for response 1 of a pair
        whose two sides have different histories (Arena multi-turn, MT-Bench turn 2), else
        :attr:`prompt` (:func:`rewardkit.example_context.own_prompt`)."""
        from rewardkit.example_context import own_prompt

        return own_prompt(self, i)

    def queries(self) -> list[Query]:
        """One :class:`Query` per response, in response order, each after its own history
        (:meth:`prompt_for`). Its meta holds the example's other fields (``meta``: a row's extra
        columns, as ``score`` passes them), then ``example_id`` and ``source``, so a reward that
        reads meta (a route, DMoERM's category) sees in ``eval`` what it sees in ``score``."""
        ids = {"example_id": self.id, **({"source": self.source} if self.source else {})}
        meta = {**self.meta, **ids}
        return [
            Query(prompt=self.prompt_for(i), response=r, reference=self.reference, meta=dict(meta))
            for i, r in enumerate(self.responses)
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
    :class:`~rewardkit.content.ImageContentError` naming ``reward``. Text queries are
    returned as they are (same objects, same cache keys)."""
    out = list(queries)
    for i, q in enumerate(out):
        if isinstance(q.response, str) and all(isinstance(m["content"], str) for m in q.prompt):
            continue
        if not isinstance(q.response, str) and has_images(q.response):
            origin = next((im.origin for im in content_images(q.response) if im.origin), None)
            where = f"{origin}: " if origin else ""
            which = "the response" if origin else f"the response of query {i}"
            raise ImageContentError(
                f"{where}reward {reward!r} reads text only, but {which}"
                + (f" (example {q.meta['example_id']!r})" if "example_id" in q.meta else "")
                + " is an image; score images with clip:, vlm-judge:, vlm-judge-pairwise: or an "
                "image reward model"
            )
        out[i] = replace(q, prompt=text_messages(q.prompt), response=content_text(q.response))
    return out


def _hash_default(obj: Any) -> Any:
    """:func:`~rewardkit.content.json_default`, but a numpy array as every value it holds:
    its ``str()`` shows 1,000 values at most (``0 1 2 ... 1999``) and floats to 8 digits, so two
    arrays that differ got one key (a reference or a meta field from a parquet column)."""
    if isinstance(obj, np.ndarray):
        return {"ndarray": obj.tolist()}
    return json_default(obj)


def stable_hash(obj: Any) -> str:
    """sha256 (hex, 32 chars) of the canonical JSON of ``obj``; stable across runs and machines.

    An image (:class:`~rewardkit.content.ImageRef`) hashes as ``{"image": digest}``,
    so a file and the same encoded bytes give the same key wherever the file lies; a numpy
    array as ``{"ndarray": its values}`` (never its abbreviated text)."""
    text = json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_hash_default
    )
    # surrogatepass: a lone surrogate in a text (not Unicode, but a Python str) still hashes
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


#: Which ScoreResult field each output capability fills.
_OUTPUT_FIELDS = {
    Capability.COMPONENTS: "components",
    Capability.MEMBERS: "members",
    Capability.STEPS: "steps",
    Capability.TOKENS: "tokens",
}


class Reward(ABC):
    """Anything that turns queries into numbers.

    Subclasses implement :meth:`_score` (a batch of queries to a float array, or to a
    :class:`ScoreResult` with per-call details) and :meth:`identity` (what makes two instances
    score identically: model, revision or weights hash, template, options), and declare what
    else they can do in :attr:`capabilities`. :meth:`score_full` validates shapes against the
    declaration; :meth:`score` is its ``scores``. Callers check :meth:`can` before calling an
    optional method (:meth:`compare_many` of a pairwise judge, :meth:`rank_many`,
    :meth:`features`); nothing is found by attribute probing, and no result is kept on the
    instance.

    A reward that does not apply to a query returns NaN for it, never 0.
    """

    #: Short name used in reports (the spec it was built from, when built by the registry).
    name: str = "reward"
    #: Names of the k columns when ``score`` returns an (n, k) array; None for a scalar reward.
    objectives: tuple[str, ...] | None = None
    #: Whether the reward reads ``Query.meta`` (then meta is part of the cache key).
    uses_meta: bool = False
    #: What this kind of reward can do (:class:`Capability`); :meth:`can` answers per instance.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Longest token sequence the reward's model reads (None: no model, or no single limit).
    max_length: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "accepts_images" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__}: 'accepts_images' is gone; declare "
                "capabilities = frozenset({Capability.IMAGES, ...}) instead"
            )

    def can(self, cap: Capability) -> bool:
        """Whether this reward can do ``cap`` (a composite may answer from its members)."""
        return cap in type(self).capabilities

    def identity(self) -> dict[str, Any]:
        """What determines this reward's scores; hashed by :meth:`fingerprint`."""
        return {"class": type(self).__qualname__, "name": self.name}

    def fingerprint(self) -> str:
        """A stable id of the reward (model, revision/hash, template, options)."""
        return stable_hash(self.identity())

    @abstractmethod
    def _score(self, queries: Sequence[Query]) -> np.ndarray | ScoreResult:
        """Score a batch; subclasses implement this (callers use :meth:`score_full`)."""

    def score_full(self, queries: Sequence[Query]) -> ScoreResult:
        """Scores of ``queries`` with the call's details, checked against :attr:`capabilities`.

        ``scores`` is float32 of shape (n,), or (n, k) with :attr:`objectives`.
        """
        queries = list(queries)
        if not queries:
            k = len(self.objectives) if self.objectives else 0
            empty = np.zeros((0, k) if k else (0,), dtype=np.float32)
            return ScoreResult(empty, stats={"queries": 0})  # nothing was run
        if not self.can(Capability.IMAGES):
            queries = text_queries(queries, self.name)
        out = self._score(queries)
        result = out if isinstance(out, ScoreResult) else ScoreResult(np.asarray(out))
        self._check_result(result, len(queries))
        return result

    def score(self, queries: Sequence[Query]) -> np.ndarray:
        """Scores of ``queries`` as float32: shape (n,), or (n, k) with :attr:`objectives`."""
        return self.score_full(queries).scores

    def _check_result(self, result: ScoreResult, n: int) -> None:
        out = result.scores
        who = f"{type(self).__name__}.score"
        expected_cols = len(self.objectives) if self.objectives else None
        if out.shape[:1] != (n,) or (
            (expected_cols is None and out.ndim != 1)
            or (expected_cols is not None and out.shape[1:] != (expected_cols,))
        ):
            raise ValueError(
                f"{who} returned shape {out.shape} for {n} queries; expected ({n},"
                + (f" {expected_cols})" if expected_cols else ")")
            )
        for cap, field_name in _OUTPUT_FIELDS.items():
            value = getattr(result, field_name)
            filled = bool(value) if isinstance(value, Mapping) else value is not None
            if filled != self.can(cap):
                raise CapabilityError(
                    f"{who}: {'filled' if filled else 'left empty'} ScoreResult.{field_name} "
                    f"but {'does not declare' if filled else 'declares'} "
                    f"Capability.{cap.name}"
                )
        for field_name in ("components", "members"):
            for key, col in getattr(result, field_name).items():
                if col.shape != (n,):
                    raise ValueError(
                        f"{who}: {field_name}[{key!r}] has shape {col.shape}; expected ({n},)"
                    )
        if result.truncated is not None and result.truncated.shape != (n,):
            raise ValueError(
                f"{who}: truncated has shape {result.truncated.shape}; expected ({n},)"
            )
        if result.steps is not None and (result.steps.ndim != 2 or len(result.steps) != n):
            raise ValueError(f"{who}: steps has shape {result.steps.shape}; expected ({n}, S)")
        if result.tokens is not None and len(result.tokens.values) != n:
            raise ValueError(f"{who}: tokens has {len(result.tokens.values)} rows; expected {n}")

    # -- optional capabilities: callers check can(...) first --------------------------------
    @property
    def member_names(self) -> tuple[str, ...]:
        """Names of :attr:`ScoreResult.members`, in order (empty without
        :attr:`Capability.MEMBERS`); known before scoring, for column layouts."""
        return ()

    def engine_variant(self, **changes: Any) -> Reward:
        """This reward with engine settings changed (``token_budget``, ``cache_dir``,
        ``progress``…; fields of :class:`~rewardkit.engine.config.EngineConfig`), sharing the
        loaded model, for checks such as batch-size invariance. A reward that runs no model
        through the engine (not :attr:`Capability.MODEL_BACKED`) returns itself."""
        return self

    def compare_many(
        self,
        prompts: Sequence[str | Sequence[Mapping[str, Any]]],
        a: Sequence[Content],
        b: Sequence[Content],
    ) -> PairwiseResult:
        """P(a[i] ≻ b[i]) for n pairs. Default: Bradley–Terry, σ(r(a) − r(b)) on scalar scores
        from one :meth:`score_full` call (docs/methods/A1-bradley-terry.md). A pairwise-native
        judge (:attr:`Capability.PAIRWISE`) overrides this with its own probability."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]
        n = len(msgs)
        queries = [Query(m, x) for m, x in zip(msgs, a, strict=True)]
        queries += [Query(m, y) for m, y in zip(msgs, b, strict=True)]
        result = self.score_full(queries)
        s = result.scores
        if s.ndim != 1:
            raise ValueError(f"{self.name}: compare needs a scalar reward; reduce objectives first")
        d = s[:n].astype(np.float64) - s[n:].astype(np.float64)
        t = result.truncated
        return PairwiseResult(
            p=bt_probability(d),
            stats=result.stats,
            truncated=None if t is None else t[:n] | t[n:],
        )

    def compare(self, prompt: str | Sequence[Message], a: Content, b: Content) -> float:
        """P(a better than b) for one pair: ``compare_many([prompt], [a], [b]).p[0]``."""
        return float(self.compare_many([prompt], [a], [b]).p[0])

    def rank_many(
        self,
        prompts: Sequence[str | Sequence[Mapping[str, Any]]],
        candidates: Sequence[Sequence[Content]],
    ) -> ListwiseResult:
        """Rank the candidates of each prompt in one call (:attr:`Capability.LISTWISE` only)."""
        raise CapabilityError(
            f"reward {self.name!r} does not rank lists natively (no Capability.LISTWISE); "
            "score the candidates with score() instead"
        )

    def trained_prompts(self) -> np.ndarray | None:
        """The 64-bit hashes of the prompts this reward's model was trained on, where its
        training run recorded them (:mod:`rewardkit.data.trained_on`), else None: an evaluation
        on data holding them says so."""
        return None

    def features(self, queries: Sequence[Query]) -> np.ndarray:
        """The model's (n, d) float representation of each query (:attr:`Capability.FEATURES`
        only), e.g. the hidden state a probe or a frozen-feature head reads."""
        raise CapabilityError(
            f"reward {self.name!r} exposes no features (hidden states or embeddings; no "
            "Capability.FEATURES); probing needs a model-backed reward such as judge:, "
            "similarity:, default, clip: or image-rm:"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


__all__ = [
    "TOOL_KEYS",
    "Capability",
    "Content",
    "Example",
    "ListwiseResult",
    "Message",
    "PairwiseResult",
    "Query",
    "Reward",
    "ScoreResult",
    "TokenScores",
    "as_messages",
    "assistant",
    "bt_probability",
    "failed_items",
    "failed_values",
    "failure_note",
    "failure_outcome",
    "order_flips",
    "position_bias",
    "prompt_text",
    "stable_hash",
    "text_messages",
    "text_queries",
    "user",
]

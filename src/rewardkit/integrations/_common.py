"""What the trainer adapters share: building the reward once, reading components, NaN handling."""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.content import image_part
from rewardkit.content_parts import PartError, is_text_part, part_text, read_text_parts
from rewardkit.data.checks import MessageError, message_at, reasoning_of, with_reasoning
from rewardkit.data.tool_text import with_tool_calls
from rewardkit.registry import load_reward
from rewardkit.results import failed_rows
from rewardkit.types import Capability, Message, Query, Reward, ScoreResult

#: Columns tried, in order, for ``Query.reference`` when no ``reference_column`` is given.
REFERENCE_COLUMNS = ("reference", "ground_truth", "solution", "answer", "label")

RewardSpec = Reward | str | Mapping[str, Any]


def as_reward(spec: RewardSpec, engine_defaults: Mapping[str, Any] | None = None) -> Reward:
    """A :class:`Reward` from a Reward, a spec string/dict or a spec file."""
    if isinstance(spec, Reward):
        return spec
    return load_reward(spec, engine_defaults=engine_defaults)


def log_key(name: str, empty: str = "component") -> str:
    """A trainer-log-safe key for a reward or component name (at most 60 characters); a longer
    name keeps a hash of the whole, so two long model paths never share a key."""
    key = re.sub(r"[^0-9A-Za-z_.:-]+", "_", name).strip("_") or empty
    if len(key) > 60:
        key = f"{key[:51]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return key


def log_keys(
    names: Sequence[str], reserved: Sequence[str] = (), empty: str = "component"
) -> dict[str, str]:
    """:func:`log_key` of each name, made one key per name: a key that is ``reserved`` (an
    adapter's own ``score``, ``applies``…) or that an earlier name took gets the first free
    suffix ``_2``, ``_3``… in the names' order (``rule:format?pattern=^a+$`` and ``…^a*$``
    both give ``rule:format_pattern_a``: the second is ``rule:format_pattern_a_2``)."""
    taken = set(reserved)
    out: dict[str, str] = {}
    for name in names:
        key, k = log_key(name, empty), 1
        while key in taken:
            k += 1
            suffix = f"_{k}"
            key = log_key(name, empty)[: 60 - len(suffix)] + suffix
        taken.add(key)
        out[name] = key
    return out


def components(reward: Reward, result: ScoreResult) -> dict[str, np.ndarray]:
    """The per-component scores behind one :meth:`~rewardkit.types.Reward.score_full` call.

    Ensembles and weighted sums give their members (``result.members``), hybrids and other
    rewards with parts their ``components``; any other reward gives itself.
    """
    if result.members:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.members.items()}
    if result.components:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.components.items()}
    return {reward.name: np.asarray(result.scores, dtype=np.float64)}


def agreeing_members(result: ScoreResult) -> tuple[str, ...]:
    """Names of the members expected to agree (an ensemble's, not a weighted sum's parts),
    whose disagreement a monitor reports; empty when there are fewer than two."""
    if result.stats.get("aggregate") == "weighted" or len(result.members) < 2:
        return ()
    return tuple(result.members)


def text_of(content: Any, where: str = "content") -> str:
    """Text of a message content: a string, or its text parts (``text``, the Responses API's
    ``input_text``/``output_text``, ``refusal``, bare strings) joined with ``"\n"`` as
    ``rewardkit score`` joins them (``#### 4`` and ``2 attempts`` never merge into ``#### 42``),
    image parts skipped; ``None`` (a tool-call turn) is ``""``. A TypeError names ``where`` for
    anything else: a dict in place of the list, a part that is neither text nor a dict, a text
    part whose ``text`` is not a string, a part of another type (``thinking``, ``tool_use``:
    skipped as if an image, where ``rewardkit score`` and the server refuse it)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        raise TypeError(
            f"{where} is {type(content).__name__}: message content is text or a list of parts "
            '(e.g. [{"type": "text", "text": "..."}])'
        )
    for k, p in enumerate(content):
        kind = p.get("type") if isinstance(p, Mapping) else None
        if isinstance(kind, str) and not is_text_part(p) and kind not in IMAGE_PART_TYPES:
            raise TypeError(f"{where}[{k}] is a {kind!r} part: a content part is text or an image")
    try:
        return read_text_parts(content, on_image="skip")
    except PartError as e:
        if e.problem == "not_a_part":
            raise TypeError(
                f"{where}[{e.index}] is {type(e.part).__name__}: a content part is text or a "
                "dict with a type"
            ) from None
        raise TypeError(
            f"{where}[{e.index}] is a text part whose text is "
            f"{type(e.part.get('text')).__name__}, not a string"
        ) from None


def as_prompt(prompt: Any, where: str = "prompt") -> list[Message]:
    """A TRL/verl prompt (text or a list of chat messages) as rewardkit messages, each read by
    :func:`rewardkit.data.checks.read_message` as ``rewardkit score`` and the server read it
    (role case and aliases, ShareGPT, refusals, tool-use keys kept); ``where`` names the prompt
    in errors (``prompts[3][1].role: expected a role in …``): a message that is not a dict, has
    no ``role`` or an unknown one is refused rather than scored as something else."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence):
        out: list[Message] = []
        for j, m in enumerate(prompt):
            msg = message_at(m, f"{where}[{j}]", "conversational prompt")
            msg["content"] = text_of(msg["content"], f"{where}[{j}].content")
            out.append(msg)  # type: ignore[arg-type]
        return out
    raise TypeError(f"{where} must be text or a list of chat messages; got {type(prompt).__name__}")


#: Content part types that hold an image (HF ``image``, OpenAI ``image_url``, Responses API).
IMAGE_PART_TYPES = ("image", "image_url", "input_image")


def _is_placeholder(part: Mapping[str, Any]) -> bool:
    """An image part without its image: TRL's ``{"type": "image"}`` slot for a column image."""
    return not any(part.get(k) is not None for k in ("image", "path", "url", "image_url"))


def _image_content(
    content: Any, fill: list[Any], where: str, lead: list[Any]
) -> str | list[dict[str, Any]]:
    """A message content with its images as canonical parts: filled image parts are read as
    they are, each placeholder takes the next of ``fill``; ``lead`` images go before the text
    (TRL's ``prepare_multimodal_messages`` for a prompt without placeholders). Text-only
    content comes back as the text :func:`text_of` gives."""
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    if not lead and (isinstance(content, str) or content is None):
        return text_of(content, where)
    text = text_of(parts, where)  # checks every text part, as for a text reward
    out: list[dict[str, Any]] = []
    for k, x in enumerate([*lead, *parts]):
        if k < len(lead):
            out.append(_image_part(x, f"{where} (image column)"))
        elif isinstance(x, str) or not isinstance(x, Mapping):
            out.append({"type": "text", "text": x})
        elif is_text_part(x):  # text, input_text, output_text, refusal
            out.append({"type": "text", "text": part_text(x)})
        elif x.get("type") in IMAGE_PART_TYPES and _is_placeholder(x):
            if not fill:
                raise ValueError(
                    f"{where}[{k - len(lead)}] is an image placeholder ({{'type': 'image'}}) but "
                    "TRL passed no image for it: the dataset needs an 'image' or 'images' "
                    "column with one image per placeholder"
                )
            out.append(_image_part(fill.pop(0), f"{where}[{k - len(lead)}]"))
        elif x.get("type") in IMAGE_PART_TYPES:
            out.append(_image_part(x, f"{where}[{k - len(lead)}]"))
    if not any(p["type"] == "image" for p in out):
        return text
    return out


def _image_part(x: Any, where: str) -> dict[str, Any]:
    """An image part; an image it cannot read is an ImageError whose origin is ``where``."""
    return image_part(x, origin=where)


def count_placeholders(prompt: Any) -> tuple[int, int]:
    """(image placeholders, filled image parts) in a conversational prompt (0, 0 for text)."""
    empty = filled = 0
    if isinstance(prompt, str) or not isinstance(prompt, Sequence):
        return 0, 0
    for m in prompt:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, str) or not isinstance(content, Sequence):
            continue
        for p in content:
            if isinstance(p, Mapping) and p.get("type") in IMAGE_PART_TYPES:
                empty, filled = (empty + 1, filled) if _is_placeholder(p) else (empty, filled + 1)
    return empty, filled


def as_image_prompt(prompt: Any, images: Sequence[Any], where: str = "prompt") -> list[Message]:
    """A TRL prompt as rewardkit messages *with* its images, for a reward that reads them
    (``Capability.IMAGES``); :func:`as_prompt` (images dropped) is what a text reward gets.

    ``images`` are the row's ``images`` (or ``[image]``) column values, as TRL's
    ``prepare_multimodal_messages`` uses them: TRL 1.x passes the prompt with its image parts
    filled (the column then holds the same images and is not read again); older versions
    pass ``{"type": "image"}`` placeholders, filled here from the column in order; a prompt
    with neither gets the column images before its first user message's text, as TRL does.
    A placeholder with no column image left is a ValueError naming it; so is a count of
    column images that does not match the placeholders."""
    fill = [im for im in images if im is not None]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    msgs = as_prompt(prompt, where)  # the same refusals as for a text reward
    empty, filled = count_placeholders(prompt)
    if empty and fill and empty != len(fill):
        raise ValueError(
            f"{where} has {empty} image placeholder(s) but TRL passed {len(fill)} image(s) for "
            "it; one image per placeholder"
        )
    lead_at = None
    if fill and not empty and not filled:
        lead_at = next((j for j, m in enumerate(msgs) if m["role"] == "user"), None)
    out: list[Message] = []
    for j, (m, raw) in enumerate(zip(msgs, prompt, strict=True)):
        lead = fill if j == lead_at else []
        parts = raw.get("content")  # image parts as given; text as read (a refusal, ShareGPT)
        parts = (
            parts if isinstance(parts, Sequence) and not isinstance(parts, str) else m["content"]
        )
        content = _image_content(parts, fill, f"{where}[{j}].content", lead)
        out.append({**m, "content": content})  # type: ignore[typeddict-item]
    return out


def as_response(completion: Any, where: str = "completion") -> str:
    """A completion as text: a string, or the assistant turns of a conversational completion.

    A conversational completion is a list of chat messages (dicts; no ``role`` means
    assistant), read as ``rewardkit score`` reads one: each assistant turn's text with its
    separated reasoning (``reasoning_content``…) put back as a ``<think>`` block
    (:func:`~rewardkit.data.checks.with_reasoning`) and its ``tool_calls`` as the ``<tool_call>``
    blocks the model wrote (:func:`~rewardkit.data.tool_text.with_tool_calls`: TRL's parsed
    tool-call turn reads as verl's decoded text), tool results skipped, turns with text joined with ``"\n"``
    (``#### 4`` then ``2 attempts`` never merge into ``#### 42``). Refused,
    naming ``where`` (``completions[3]``) and the message: an item that is not a dict, an
    assistant message without content (unless it calls a tool), a user or system turn (it
    belongs in the prompt; it was skipped), and a list with no assistant message."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, Sequence):
        raise TypeError(
            f"{where} must be text or a list of chat messages; got {type(completion).__name__}"
        )
    parts, seen = [], False
    for j, raw in enumerate(completion):
        here = f"{where}[{j}]"
        m = message_at(raw, here, "conversational completion", role="assistant")
        if m["role"] == "tool":
            continue
        if m["role"] != "assistant":
            raise ValueError(
                f"{here}.role is {m['role']!r}: a completion holds the assistant's turns and "
                "tool results; the conversation before them is the prompt"
            )
        seen = True
        if m["content"] is None:
            raise ValueError(
                f"{here} is an assistant message without content; got keys {sorted(map(str, raw))}"
            )
        try:
            reasoning = reasoning_of(raw)
            text = with_tool_calls(text_of(m["content"], f"{here}.content"), m.get("tool_calls"))
        except MessageError as e:
            raise ValueError(f"{here}{e.sub}: {e.reason}") from None
        text = with_reasoning(text, reasoning)
        if text:
            parts.append(text)
    if not seen:
        raise ValueError(
            f"{where} has no assistant message (roles: "
            f"{[m.get('role') if isinstance(m, Mapping) else None for m in completion] or 'none'})"
            ": nothing to score"
        )
    return "\n".join(parts)


def check_finite_scores(scores: Any, what: str) -> None:
    """ValueError naming ``what``, the first index and the count of ±inf in ``scores``: an
    infinite reward is refused in every adapter, as in :mod:`rewardkit.combine` (NaN is allowed:
    "does not apply"). A trainer would otherwise get ±inf (TRL) or, where NaN becomes
    ``nan_score``, a silent 0 counted as "does not apply" (verl, OpenRLHF)."""
    values = np.asarray(scores, dtype=np.float64)
    bad = np.flatnonzero(np.isinf(values))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{what}[{i}] is {values.flat[i]}: a reward must be finite, or NaN where it does "
            f"not apply ({len(bad)} infinite value(s))"
        )


def as_nan_score(nan_score: Any) -> float:
    """``nan_score`` (what a trainer gets where a reward does not apply) as a finite float;
    ValueError for anything else, which would otherwise go to the trainer as its score."""
    if isinstance(nan_score, bool) or not isinstance(nan_score, int | float | np.number):
        raise ValueError(f"nan_score must be a number; got {nan_score!r}")
    if not math.isfinite(nan_score):
        raise ValueError(f"nan_score must be finite (it stands in for NaN); got {nan_score!r}")
    return float(nan_score)


def column(value: Any, name: str, n: int | None = None) -> list[Any]:
    """A per-response argument (list, tuple or numpy array) as a list of values, ``n`` of them
    when given; TypeError/ValueError naming ``name`` for a value that is not such a sequence
    (text, a dict, None) or has the wrong length."""
    if isinstance(value, (str, bytes, Mapping)) or not (
        isinstance(value, Sequence) or (isinstance(value, np.ndarray) and value.ndim >= 1)
    ):
        raise TypeError(
            f"{name} must be a list (or tuple, numpy array) with one value per response; got "
            f"{type(value).__name__}"
        )
    if n is not None and len(value) != n:
        raise ValueError(f"{name} has {len(value)} values for {n} responses; one per response")
    return list(value)


def is_plain(value: Any) -> bool:
    """Whether a column value can go into ``Query.meta`` (JSON scalars)."""
    return value is None or isinstance(value, (str, int, float, bool))


def plain_value(value: Any) -> Any:
    """A numpy scalar (from a numpy-array column) as the Python scalar it holds."""
    return value.item() if isinstance(value, np.generic) else value


def finite_or(value: float, default: float | None) -> float | None:
    """``value`` unless it is NaN/inf, else ``default``."""
    return value if math.isfinite(value) else default


class BySource:
    """Adapt a per-source normalizer ``fn(scores, source_ids) -> scores`` (e.g. a running
    :class:`~rewardkit.combine.MedianLogisticNormalizer` or
    :class:`~rewardkit.combine.RunningWhitener`) to the adapters' ``shape(scores, queries)`` hook,
    reading each query's source from ``meta[key]``. The normalizer keeps its own state
    (``state_dict``) for checkpointing.

    The ids go to the normalizer as they are, so its own id rules hold (``1`` and ``1.0`` one
    source; ``None``/NaN, or the number ``1`` beside the text ``"1"``, refused). A query
    without ``meta[key]`` is a ValueError naming the key and the query: read as ``""`` (a
    misspelt key, a dataset without the column), every row was normalized as one source.
    """

    def __init__(self, fn: Any, key: str = "data_source") -> None:
        self.fn = fn
        self.key = key

    def __call__(self, scores: np.ndarray, queries: Sequence[Query]) -> np.ndarray:
        missing = [i for i, q in enumerate(queries) if self.key not in q.meta]
        if missing:
            have = sorted(set().union(*(q.meta for q in queries))) or "none"
            raise ValueError(
                f"BySource: query {missing[0]} has no {self.key!r} ({len(missing)} of "
                f"{len(queries)}); its dataset column is missing (plain columns: {have})"
            )
        sources = [plain_value(q.meta[self.key]) for q in queries]
        return np.asarray(self.fn(scores, sources), dtype=np.float64)


log = logging.getLogger("rewardkit.integrations")


_FIXED_WARNED: set[str] = set()


def warn_fixed_failed(where: str, fill: float, how: str) -> None:
    """Warn once per process and ``where`` that failed items got the fixed ``fill`` because
    their call had no scored item to go below (one-item calls), and ``how`` to set it."""
    if where in _FIXED_WARNED:
        return
    _FIXED_WARNED.add(where)
    log.warning(
        "%s: a failed item got the fixed score %g because its call scored no other item to go "
        "below (one-item calls); set %s to your reward's floor",
        where,
        fill,
        how,
    )


def failed_fill(
    full: ScoreResult | None,
    scores: np.ndarray,
    failed_score: float | None,
    where: str,
    *,
    errors: Mapping[int, str] | None = None,
    fallback: float | None = None,
    how: str = "failed_score=",
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, failed)``: the scores with each item the reward *failed* (an upstream 500, a
    judge's context overflow, a timeout: ``results.failed_rows`` of ``full``, plus ``errors``
    found before scoring) set to ``failed_score``, and the mask of those items; a warning gives
    their count and the first error.

    A failure is not "does not apply": sent on as NaN it became ``nan_score`` (verl, OpenRLHF)
    or ``None`` (TRL, which then drops the term), so a response that broke the judge scored
    above a wrong answer with a negative reward and GRPO gave it a positive advantage. The
    default (``failed_score`` None) is the lowest score the same call gave an item that did not
    fail, so a failure never beats a scored response of its batch. When nothing else scored it
    is ``fallback`` (warned once per process, naming ``how`` to set it), or NaN without one (the
    adapters then send what they send for NaN, and every item of the call is flagged). A
    failed item the reward gave a score itself (``rule:math``'s 0.0 on a timeout) keeps it."""
    failed = np.zeros(len(scores), dtype=bool)
    found = failed_rows(full.stats, full.scores if full.scores.ndim == 1 else None) if full else {}
    errors = {**found, **(errors or {})}
    for i in errors:
        if 0 <= i < len(failed):
            failed[i] = True
    if not failed.any():
        return scores, failed
    lost = failed & np.isnan(scores)  # a reward that scored its failure (rule:math's 0 on a
    # timeout) keeps that score: raised to the batch's lowest, a wrong answer that hung the
    # verifier scored 1.0 in a batch of right ones
    if failed_score is None:
        ok = scores[~failed & np.isfinite(scores)]
        fill = float(ok.min()) if ok.size else math.nan
        if math.isnan(fill) and fallback is not None:
            fill = float(fallback)
            if lost.any():
                warn_fixed_failed(where, fill, how)
    else:
        fill = float(failed_score)
    first = min(errors)
    log.warning(
        "%s: %d of %d items failed (first, item %d: %s); those without a score get %s; all "
        "are flagged failed",
        where,
        int(failed.sum()),
        len(scores),
        first,
        errors[first][:200],
        ("NaN (nothing else scored)" if math.isnan(fill) else f"{fill:g}")
        if lost.any()
        else "none (each kept the score the reward gave it)",
    )
    return np.where(lost, fill, scores), failed


_UNROUTED: set[tuple[str, str]] = set()


def warn_unrouted(reward: Reward, queries: Sequence[Query], where: str) -> None:
    """Warn once per ``where`` and data source when a route reward without ``default`` has no
    route for a query's source: those responses get NaN ("does not apply"), which verl and
    OpenRLHF turn into ``nan_score`` (0.0) and TRL into ``None``. A misspelt source (verl's
    ``openai/gsm8k`` against a route ``gsm8k``) trained every response on 0 without a word."""
    from rewardkit.rewards.composite.route import RouteReward

    if not isinstance(reward, RouteReward) or reward.default is not None:
        return
    key = reward.key
    sources = {str(q.meta[key]) if key in q.meta else f"<no {key}>" for q in queries}
    new = sorted(s for s in sources - set(reward.routes) if (where, s) not in _UNROUTED)
    if not new:
        return
    if len(_UNROUTED) < 10_000:
        _UNROUTED.update((where, s) for s in new)
    log.warning(
        "%s: no route for data source(s) %s and no 'default' (routes: %s): those responses "
        "get NaN, sent as the NaN score; add a 'default' route or fix the %s values",
        where,
        [s[:80] for s in new[:10]],
        ", ".join(sorted(reward.routes)),
        key,
    )


def refuse_batch_relative(reward: Reward, n: int, where: str, instead: str) -> None:
    """ValueError for a one-item call of a reward whose scores depend on the rest of the call
    (``Capability.BATCH_RELATIVE``): scored alone, every item gets the same meaningless score."""
    if n == 1 and reward.can(Capability.BATCH_RELATIVE):
        raise ValueError(
            f"{where}: {reward.name!r} scores each item against the rest of its call, and this "
            f"call has one item; give the ensemble fixed stats= or {instead}"
        )


def as_failed_score(value: Any) -> float | None:
    """``failed_score`` as given: None (the batch's lowest score) or a finite number."""
    if value is None:
        return None
    # numpy scalars too (np.float32(-1), np.int64(-1)), as nan_score takes them
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not real or not math.isfinite(value):
        raise ValueError(f"failed_score must be a finite number or None, got {value!r}")
    return float(value)

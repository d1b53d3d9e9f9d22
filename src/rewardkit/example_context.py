"""Each response's own conversation (docs/data-formats.md, "Each response in its own
conversation").

Some preference layouts give the two responses of a pair different histories: Chatbot Arena
multi-turn and arena-human-preference (conversation A vs B), MT-Bench human judgments at turn 2,
Unified-Feedback. Their readers keep A's history as ``Example.prompt`` and B's own, when it
differs, in ``meta["prompt_b"]``. :func:`own_prompt` is the one place that reads it:
:meth:`Example.queries <rewardkit.types.Example.queries>` (and so ``eval``, ``score`` of
examples and training's encoding) scores each response after its own history.

Code that changes an example's prompt (a context line, a goal condition) changes both histories
alike with :func:`map_prompts`; code that reorders responses keeps each with its own history
with :func:`pick_responses`. Core layer: it imports nothing above ``types``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rewardkit.errors import DataError

if TYPE_CHECKING:
    from rewardkit.types import Example, Message

#: ``meta`` key of the history of response 1 of a two-response example, when it differs.
PROMPT_B = "prompt_b"


def _absent(raw: Any) -> bool:
    """No own history: missing, null, or a float NaN (a missing pandas cell)."""
    return raw is None or (isinstance(raw, float) and math.isnan(raw))


def _message_list(raw: Any, ex_id: str) -> list[Message]:
    """``meta["prompt_b"]`` as messages: a non-empty list of ``{"role", "content"}`` messages
    (a tuple or numpy array of them, as a Parquet cell gives, too) or a non-empty text (one user
    message); anything else is a :class:`DataError` naming the example."""
    from rewardkit.types import _check_content, as_messages

    where = f"example {ex_id!r}: meta[{PROMPT_B!r}] (the history of response 1)"
    if isinstance(raw, str):
        if not raw.strip():
            raise DataError(f"{where} is empty text")
        return as_messages(raw)
    if hasattr(raw, "tolist") and not isinstance(raw, Mapping):
        raw = raw.tolist()
    if not isinstance(raw, list | tuple) or not raw:
        kind = "an empty list" if isinstance(raw, list | tuple) else type(raw).__name__
        raise DataError(f"{where} must be a list of messages or a text; got {kind}")
    for j, m in enumerate(raw):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or "content" not in m:
            raise DataError(
                f"{where}: message {j} must be a dict with a string 'role' and a 'content'"
            )
        try:
            _check_content(m["content"], f"message {j}'s content")
        except TypeError as e:
            raise DataError(f"{where}: {e}") from None
    return as_messages(raw)


def own_prompt(ex: Example, i: int) -> list[Message]:
    """The history response ``i`` of ``ex`` answers: ``meta["prompt_b"]`` for response 1 of a
    two-response example that has one, else ``ex.prompt``. An index out of range is an
    :class:`IndexError`; a ``prompt_b`` that is no message list or text a :class:`DataError`."""
    if not -len(ex.responses) <= i < len(ex.responses):
        raise IndexError(f"example {ex.id!r} has {len(ex.responses)} responses; no response {i}")
    raw = ex.meta.get(PROMPT_B)
    if len(ex.responses) != 2 or i % 2 != 1 or _absent(raw):
        return ex.prompt
    return _message_list(raw, ex.id)


def own_prompts(ex: Example) -> list[list[Message]]:
    """:func:`own_prompt` of every response of ``ex``, in response order."""
    return [own_prompt(ex, i) for i in range(len(ex.responses))]


def has_own_histories(ex: Example) -> bool:
    """Whether the responses of ``ex`` answer different histories."""
    prompts = own_prompts(ex)
    return any(p != prompts[0] for p in prompts[1:])


def pair_prompt(ex: Example, a: int, b: int) -> list[Message] | None:
    """The one prompt a pairwise judge shows for responses ``a`` and ``b`` of ``ex``; None when
    their histories differ (a judge that reads one conversation cannot compare them fairly:
    such a pair is not judged, NaN, rather than B judged in A's conversation)."""
    pa, pb = own_prompt(ex, a), own_prompt(ex, b)
    return pa if pa == pb else None


def map_prompts(ex: Example, fn: Callable[[list[Message]], list[Message]]) -> Example:
    """``ex`` with ``fn`` (a context, a condition, a system prompt) applied to its prompt and to
    response 1's own history alike, so a transform of ``Example.prompt`` cannot leave B behind."""
    if _absent(ex.meta.get(PROMPT_B)) or len(ex.responses) != 2:
        return replace(ex, prompt=fn(ex.prompt))
    meta = {**ex.meta, PROMPT_B: fn(_message_list(ex.meta[PROMPT_B], ex.id))}
    return replace(ex, prompt=fn(ex.prompt), meta=meta)


def pick_responses(ex: Example, order: Sequence[int]) -> Example:
    """``ex`` with responses (and ratings) ``order`` of it, each still after its own history:
    ``prompt`` is the history of the new response 0, ``meta["prompt_b"]`` that of the new
    response 1 when the two differ (dropped otherwise). ``chosen`` is left for the caller."""
    prompts = [own_prompt(ex, i) for i in order]
    meta = {k: v for k, v in ex.meta.items() if k != PROMPT_B}
    if len(prompts) == 2 and prompts[1] != prompts[0]:
        meta[PROMPT_B] = prompts[1]
    ratings = [ex.ratings[i] for i in order] if ex.ratings else ex.ratings
    return replace(
        ex,
        prompt=prompts[0] if prompts else ex.prompt,
        responses=[ex.responses[i] for i in order],
        ratings=ratings,
        meta=meta,
    )


def conditioned_pair(
    ex: Example,
    order: Sequence[int],
    fn: Callable[[list[Message]], list[Message]],
    meta: dict[str, Any],
) -> Example:
    """Responses ``order`` of ``ex`` (its meta replaced by ``meta``), each after its own history,
    with ``fn`` (a goal condition) applied to every history alike: the pair a conditioning
    curate step writes (:func:`pick_responses`, then :func:`map_prompts`)."""
    return map_prompts(pick_responses(replace(ex, meta=meta), order), fn)

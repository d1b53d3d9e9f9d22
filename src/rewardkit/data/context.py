"""A preference's context (docs/methods/A11-context-aware.md): the natural-language criterion or
scenario under which a row's preference holds, put in front of the prompt so that a
context-aware reward scores ``r(x, c, y)``.

:func:`with_context` is the one place a context enters a prompt: as the system message, or in
front of the prompt's own system (or developer) message, separated by a blank line; applying
it twice changes nothing, and :func:`without_context` takes it out again. Rows give the context
in a ``criterion`` field (aliases :data:`CRITERION_FIELDS`); ``context`` is not one of them, as
HelpSteer3 rows use that name for the conversation. The generic, trl and unpaired formats and
``rewardkit score`` read it (:func:`criterion_prompt`), and the example keeps it in
``meta["criterion"]`` (:func:`example_context` reads it back for evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.errors import DataError, SpecError
from rewardkit.types import Example, Message

#: How a context is worded in front of the prompt; ``{context}`` is replaced by its text.
DEFAULT_TEMPLATE = "Evaluate with respect to: {context}"
#: Between the context line and the prompt's own system text.
SEPARATOR = "\n\n"
#: The rewardkit field (and ``meta`` key) of a row's context.
CRITERION = "criterion"
#: Row fields read as the context, in order (one per row; ``--columns criterion=COLUMN`` names
#: any other column). Not ``context`` (HelpSteer3 rows hold the conversation there) nor
#: ``scenario`` (Auto-J's task category, e.g. ``code_generation``, is no criterion).
CRITERION_FIELDS = (CRITERION, "criteria", "preference_context")
#: Roles whose message takes the context line in front of its text.
_SYSTEM_ROLES = ("system", "developer")


def context_line(context: Any, template: str = DEFAULT_TEMPLATE) -> str:
    """The line ``template`` makes of ``context`` (its text, surrounding blanks removed); an
    empty or non-text context is a :class:`DataError`, a template without exactly one
    ``{context}`` a :class:`SpecError`."""
    if not isinstance(template, str) or template.count("{context}") != 1:
        raise SpecError(f"context template must hold '{{context}}' once, got {template!r}")
    if not isinstance(context, str):
        raise DataError(f"expected a context text, got {describe(context)}", field=CRITERION)
    if not context.strip():
        raise DataError(
            f"expected a context text that is not empty, got {describe(context)}", field=CRITERION
        )
    return template.replace("{context}", context.strip())


def context_key(context: str) -> str:
    """What makes two contexts the same criterion: their words, case aside (``"Be  brief"`` and
    ``"be brief\n"`` are one context, whose preferences cannot reverse)."""
    return " ".join(context.split()).casefold()


def _starts_with(content: Any, line: str) -> bool:
    """Whether a system message's ``content`` already starts with the context ``line``."""
    if isinstance(content, str):
        return content == line or content.startswith(line + SEPARATOR)
    return bool(content) and content[0] == {"type": "text", "text": line + SEPARATOR}


def with_context(
    prompt: Sequence[Message], context: str, template: str = DEFAULT_TEMPLATE
) -> list[Message]:
    """``prompt`` with ``context`` in front (a new list; ``prompt`` is not changed): a system
    message holding :func:`context_line`, or, when the prompt starts with a system or developer
    message, that line and a blank line in front of its text (a first text part where its
    content is parts). A prompt that already starts with the line is returned as it is."""
    line = context_line(context, template)
    out = list(prompt)
    if out and out[0]["role"] in _SYSTEM_ROLES:
        first = out[0]
        content = first["content"]
        if _starts_with(content, line):
            return out
        if isinstance(content, str):
            merged: Any = line + SEPARATOR + content
        else:
            merged = [{"type": "text", "text": line + SEPARATOR}, *content]
        return [{**first, "content": merged}, *out[1:]]  # type: ignore[list-item]
    return [{"role": "system", "content": line}, *out]


def without_context(
    prompt: Sequence[Message], context: str, template: str = DEFAULT_TEMPLATE
) -> list[Message]:
    """``prompt`` with the line :func:`with_context` put in front taken out again (the system
    message it added dropped, a merged one given back its own text); a prompt that does not
    start with the line is returned as it is (a new list)."""
    line = context_line(context, template)
    out = list(prompt)
    if not out or out[0]["role"] not in _SYSTEM_ROLES or not _starts_with(out[0]["content"], line):
        return out
    first = out[0]
    content = first["content"]
    if content == line:
        return out[1:]
    rest = content[len(line + SEPARATOR) :] if isinstance(content, str) else content[1:]
    return [{**first, "content": rest}, *out[1:]]  # type: ignore[list-item]


def _absent(rec: Record, value: Any) -> bool:
    """No context: null, a float NaN (a missing pandas cell) or an empty CSV cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return rec.loc.kind == "csv" and value == ""


def criterion_field(rec: Record) -> str | None:
    """The field that holds the record's context: ``criterion`` when the column map names it,
    else the one of :data:`CRITERION_FIELDS` present; None without. Two of them in one row is a
    :class:`DataError` naming the second (which one is meant is not guessed)."""
    if CRITERION in rec.alias:
        return CRITERION
    present = [k for k in CRITERION_FIELDS if not _absent(rec, rec.peek(k))]
    if len(present) > 1:
        raise rec.error(
            present[1],
            f"a second context field beside {rec.field(present[0])!r}; keep one, or name the "
            "one to use with --columns criterion=COLUMN (columns= in Python)",
        )
    return present[0] if present else None


def has_criterion(rec: Record) -> bool:
    """Whether the record names a context (for sniffing: such a pair is generic, not RewardBench)."""
    return any(not _absent(rec, rec.peek(k)) for k in CRITERION_FIELDS)


def read_criterion(rec: Record) -> str | None:
    """The record's context text (surrounding blanks removed); None when it has none. A value
    that is not text, or empty text, is a :class:`DataError` naming the file, line and field."""
    name = criterion_field(rec)
    return None if name is None else context_text(rec, name)


def context_text(rec: Record, name: str) -> str | None:
    """Field ``name`` of the record read as a context text (surrounding blanks removed; the
    field is not marked used); None when absent (null, NaN, an empty CSV cell). A value that is
    not text, or empty text, is a :class:`DataError` naming the file, line and field."""
    value = rec.peek(name)
    if _absent(rec, value):
        return None
    if not isinstance(value, str):
        raise rec.error(
            name, f"expected a context text (the criterion the preference holds under), got "
            f"{describe(value)}"
        )  # fmt: skip
    if not value.strip():
        raise rec.error(name, f"expected a context text that is not empty, got {describe(value)}")
    return value.strip()


def criterion_prompt(
    rec: Record, prompt: Sequence[Message], template: str = DEFAULT_TEMPLATE
) -> list[Message]:
    """``prompt`` with the record's context in front (:func:`with_context`); ``prompt`` as it is
    without one. The context is kept as ``meta["criterion"]`` (its field, an alias, is used)."""
    text = read_criterion(rec)
    if text is None:
        return list(prompt)
    name = criterion_field(rec)
    if name != CRITERION:
        rec.used.add(name)  # type: ignore[arg-type]
    rec.data = {**rec.data, CRITERION: text}  # a new dict: the raw row is left as read
    return with_context(prompt, text, template)


def example_context(ex: Example, template: str = DEFAULT_TEMPLATE) -> str | None:
    """The context ``ex`` is conditioned on: ``meta["criterion"]`` when its prompt starts with
    that context's line; None otherwise (no context, or a prompt that does not hold it)."""
    text = ex.meta.get(CRITERION)
    if not isinstance(text, str) or not text.strip():
        return None
    prompt = list(ex.prompt)
    if not prompt or prompt[0]["role"] not in _SYSTEM_ROLES:
        return None
    return (
        text.strip() if _starts_with(prompt[0]["content"], context_line(text, template)) else None
    )

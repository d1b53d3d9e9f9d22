"""Messages as a model's chat template takes them: ``developer`` turns and system turns.

- ``developer`` (OpenAI's newer name for the system turn) is rendered as ``system`` when the
  template never names a ``developer`` role (SmolLM2, Llama 3, Qwen, Mistral, Gemma 2/3: they
  dropped it, wrote an unknown ``developer`` header, or raised), as OpenAI's API does for models
  without it; templates that handle it (gpt-oss, Gemma 4) get it as it is. A leading system
  message and a mapped developer message next to it become one system turn.
- A template that refuses a system turn (Gemma 2's ``System role not supported``) gets the
  leading system text at the start of the first user turn, as Gemma 3's own template does.
- Whatever the template still refuses is a :class:`~rewardkit.errors.DataError` naming the model,
  the roles of the conversation and the template's own message, not a Jinja traceback.

The query itself is never changed: only its rendering (cache keys stay those of the query).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewardkit.errors import DataError

#: A template that names the role as a string (``'developer'``, ``"developer"``) handles it;
#: prose ("developer preamble", Cohere 2) does not count.
_DEVELOPER_ROLE = re.compile(r"""(['"])developer\1""")
#: The separator Gemma 3's template puts between folded system text and the first user turn.
FOLD_SEPARATOR = "\n\n"


def knows_developer(template: Any) -> bool:
    """Whether a chat template (a string, or a dict of named ones) names a ``developer`` role."""
    if isinstance(template, dict):
        return any(knows_developer(t) for t in template.values())
    return isinstance(template, str) and _DEVELOPER_ROLE.search(template) is not None


def template_roles(template: Any, messages: Sequence[Any]) -> list[Any]:
    """``messages`` with ``developer`` turns as ``system`` unless ``template`` names the role;
    the leading system turns merged into one where a developer turn was mapped (text only)."""
    if not any(m.get("role") == "developer" for m in messages) or knows_developer(template):
        return list(messages)
    out = [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]
    n = 0
    while n < len(out) and out[n]["role"] == "system":
        n += 1
    lead = [m.get("content") for m in out[:n]]
    if n < 2 or not all(isinstance(c, str) for c in lead):
        return out
    merged = {**out[0], "content": FOLD_SEPARATOR.join(c for c in lead if c)}
    return [merged, *out[n:]]


def _text(content: Any) -> str | None:
    """Content as plain text (a string, or text parts only); None when it holds anything else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" for p in content
    ):
        return "".join(str(p.get("text", "")) for p in content)
    return None


def fold_system(messages: Sequence[Any]) -> list[Any] | None:
    """The leading system turns' text put at the start of the first user turn (separated by a
    blank line); None when there is no leading system turn, no user turn right after them, or a
    system content that is not text."""
    n = 0
    while n < len(messages) and messages[n].get("role") == "system":
        n += 1
    if n == 0 or n == len(messages) or messages[n].get("role") != "user":
        return None
    texts = [_text(m.get("content")) for m in messages[:n]]
    if any(t is None for t in texts):
        return None
    head = FOLD_SEPARATOR.join(t for t in texts if t)
    first = messages[n]
    content = first.get("content")
    if head and isinstance(content, str):
        content = head + FOLD_SEPARATOR + content
    elif head:
        content = [{"type": "text", "text": head + FOLD_SEPARATOR}, *content]
    return [{**first, "content": content}, *messages[n + 1 :]]


def _template_error() -> type[Exception]:
    from jinja2.exceptions import TemplateError

    return TemplateError


def _roles(messages: Sequence[Any]) -> str:
    return ", ".join(str(m.get("role")) for m in messages) or "none"


def apply_template(
    tokenizer: Any,
    messages: Sequence[Any],
    *,
    add_generation_prompt: bool,
    who: str | None = None,
    **kwargs: Any,
) -> str:
    """``tokenizer.apply_chat_template(messages, tokenize=False, …)`` for messages already through
    :func:`template_roles`: a template that raises on a leading system turn renders it folded
    into the first user turn (:func:`fold_system`); what it still refuses is a DataError naming
    ``who`` (default: the tokenizer's model), the roles and the template's message."""
    error = _template_error()
    messages = list(messages)
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
        )
    except error as e:
        first = e
    # only a refusal the template raises itself (raise_exception), not a failure of its Jinja
    # (LLaVA's 'str object' has no attribute 'text' on text content: folding hid it)
    folded = fold_system(messages) if type(first) is error else None
    if folded is not None:
        try:
            return tokenizer.apply_chat_template(
                folded, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
            )
        except error:
            pass
    name = who or getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
    reason = str(getattr(first, "message", None) or first).strip().splitlines()
    raise DataError(
        f"{name}: the model's chat template cannot render a conversation of roles "
        f"[{_roles(messages)}]: the template says {(reason or ['nothing'])[0]!r}",
        field="prompt",
    ) from None


def render_chat(
    tokenizer: Any,
    messages: Sequence[Any],
    *,
    add_generation_prompt: bool,
    who: str | None = None,
    **kwargs: Any,
) -> str:
    """The chat template's text of ``messages``: roles as the template takes them
    (:func:`template_roles`), then :func:`apply_template`."""
    mapped = template_roles(getattr(tokenizer, "chat_template", None), messages)
    return apply_template(
        tokenizer, mapped, add_generation_prompt=add_generation_prompt, who=who, **kwargs
    )

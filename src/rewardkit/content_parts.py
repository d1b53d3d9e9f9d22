"""The text of OpenAI/HF-style content part lists, read under an explicit policy.

One walk serves every reader of part lists; they differ only in what is an error:

- ``rewardkit score`` (:func:`content_text`): lenient, each image rendered as ``<image>``;
- the trainer adapters (:func:`rewardkit.integrations._common.text_of`): images skipped, a
  malformed part a ``TypeError`` naming it;
- the server protocol (:func:`rewardkit.serve.protocol.parts_text`): anything but text refused.

:func:`read_text_parts` raises :class:`PartError` (index, part, problem), which each caller turns
into its own error. Nothing here knows :class:`~rewardkit.content.ImageRef`: any part that is not
text counts as an image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from rewardkit.errors import RewardkitError

#: Part types that hold text (OpenAI chat, Responses API input and output).
TEXT_PART_TYPES = ("text", "input_text", "output_text")
#: OpenAI's refusal part (``{"type": "refusal", "refusal": "I can't…"}``): text too, under
#: ``refusal`` (:func:`part_text`); it was skipped as an image by the trainer adapters.
REFUSAL_PART = "refusal"

#: How an image renders in plain text (:func:`content_text`).
IMAGE_TOKEN = "<image>"

#: What :func:`read_text_parts` does with an image (any part that is not text): render it as
#: the image token, drop it, or refuse it (:class:`PartError`).
ImagePolicy = Literal["token", "skip", "refuse"]
_POLICIES = ("token", "skip", "refuse")

#: Why :func:`read_text_parts` refused a part (:attr:`PartError.problem`).
Problem = Literal["not_a_part", "bad_text", "image"]
_PROBLEMS = {
    "not_a_part": "is neither text nor a dict with a type",
    "bad_text": "is a text part whose text is not a string",
    "image": "is not a text part",
}


class PartError(RewardkitError, ValueError):
    """A part that :func:`read_text_parts` refused: its ``index`` in the list, the ``part``
    itself and the ``problem`` (``"not_a_part"``: neither a string nor a mapping (``dict_type``);
    ``"bad_text"``: a text part whose ``text`` is not a string; ``"image"``: a part that is not
    text, under ``on_image="refuse"``). Callers turn it into their own error."""

    def __init__(self, index: int, part: Any, problem: Problem):
        self.index = index
        self.part = part
        self.problem = problem
        super().__init__(f"content[{index}] {_PROBLEMS.get(problem, problem)}")

    def __reduce__(self) -> tuple[type, tuple[int, Any, str]]:  # across processes
        return type(self), (self.index, self.part, self.problem)


def part_list(content: Any) -> list[Any]:
    """The parts of non-text ``content``: a single part (a mapping) as a list of one."""
    return [content] if isinstance(content, Mapping) else list(content)


def is_text_part(part: Any, default_type: str | None = "text") -> bool:
    """Whether ``part`` holds text: a string, or a mapping whose ``type`` (``default_type``
    when it has none) is one of :data:`TEXT_PART_TYPES` or a :data:`REFUSAL_PART`."""
    return isinstance(part, str) or (
        isinstance(part, Mapping)
        and part.get("type", default_type) in (*TEXT_PART_TYPES, REFUSAL_PART)
    )


def part_text(part: Mapping[str, Any]) -> Any:
    """The text of a text part: its ``text``, or a ``refusal`` part's ``refusal`` (the assistant
    declining, as OpenAI writes it: read as text on every path, never skipped as an image)."""
    return part.get("refusal" if part.get("type") == REFUSAL_PART else "text")


def read_text_parts(
    parts: Iterable[Any],
    *,
    on_image: ImagePolicy = "token",
    image_token: str = IMAGE_TOKEN,
    strict: bool = True,
    default_type: str | None = "text",
    dict_type: type | tuple[type, ...] = Mapping,
) -> str:
    """The text parts of ``parts`` joined by newlines. A part is text as :func:`is_text_part`
    says (a ``dict_type`` part without a ``type`` reads as ``default_type``; the server, reading
    JSON, takes ``dict`` parts only); any other part is an image, which ``on_image`` renders as
    ``image_token``, drops (``"skip"``) or refuses.

    ``strict``: a part that is neither a string nor a ``dict_type``, or a text part whose
    ``text`` is not a string, raises :class:`PartError`; lenient (False), the first counts as an
    image and the second reads as ``str(text)`` (``""`` when it has none)."""
    if on_image not in _POLICIES:
        raise ValueError(f"on_image must be one of {', '.join(_POLICIES)}; got {on_image!r}")
    out: list[str] = []
    for k, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict_type) and is_text_part(part, default_type):
            text = part_text(part)
            if isinstance(text, str):
                out.append(text)
            elif strict:
                raise PartError(k, part, "bad_text")
            else:
                key = "refusal" if part.get("type") == REFUSAL_PART else "text"
                out.append(str(part.get(key, "")))
        elif strict and not isinstance(part, dict_type):
            raise PartError(k, part, "not_a_part")
        elif on_image == "token":
            out.append(image_token)
        elif on_image == "refuse":
            raise PartError(k, part, "image")
    return "\n".join(out)


def content_text(content: Any, image_token: str | None = IMAGE_TOKEN) -> str:
    """Plain text of ``content``: text parts joined by newlines, each image (any part that is
    not text, a mapping without a ``type`` included) as ``image_token`` (dropped when None).
    Text content is returned unchanged; nothing is refused (a text part's non-string ``text``
    reads as ``str(text)``)."""
    if isinstance(content, str):
        return content
    return read_text_parts(
        part_list(content),
        on_image="skip" if image_token is None else "token",
        image_token=image_token or "",
        strict=False,
        default_type=None,
    )

"""The versioned request/response shapes of ``POST /v1/rewards`` (pydantic models).

A request is ``{"items": [ITEM, ...]}``. Each item is validated on its own, so a malformed item
gets a per-item error and the rest of the batch is still scored. ``reward`` is ``null`` where the
reward does not apply (NaN inside rewardkit: JSON has no NaN).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from rewardkit.content_parts import TEXT_PART_TYPES, PartError, read_text_parts
from rewardkit.data.checks import MessageError, read_message
from rewardkit.data.location import describe

PROTOCOL_VERSION = "rewardkit.v1"

#: Problems a validation error lists; the rest are counted. A body of 700,000 unknown keys was
#: answered with all of them (a 27 MB 422), and listing them held the event loop 3 s.
MAX_PROBLEMS = 10


def parts_text(parts: list[Any]) -> str:
    """The text of an OpenAI content part list, parts joined with ``"\n"`` as ``rewardkit score``
    joins them (:func:`rewardkit.content.content_text`); an image or other non-text part is a
    ValueError naming it (the server scores text), and so is an empty list (as in a file)."""
    if not parts:
        raise ValueError("content is an empty list of parts: send text, or a non-empty list")
    try:
        return read_text_parts(parts, on_image="refuse", dict_type=dict)
    except PartError as e:
        kind = e.part.get("type") if isinstance(e.part, dict) else type(e.part).__name__
        raise ValueError(
            f"content[{e.index}] is a {kind!r} part: the server reads text parts "
            f"({', '.join(TEXT_PART_TYPES)}) with a string 'text'"
        ) from None


class ChatMessage(BaseModel):
    """One chat turn, read by :func:`rewardkit.data.checks.read_message` as ``rewardkit score``
    and the trainer adapters read it: ``content`` is text or a list of text parts (joined; a
    ``refusal`` part is text), a ``refusal`` beside null content is the text, null beside
    ``tool_calls`` (or a legacy ``function_call``) is ``""``; roles in any case, ``function`` /
    ``ipython`` as ``tool``, ShareGPT ``from``/``value``; the tool-use keys are kept (they were
    dropped, so a tool-call prompt had another cache key than in ``rewardkit score``)."""

    model_config = ConfigDict(extra="ignore")

    role: StrictStr
    content: StrictStr
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: StrictStr | None = None
    name: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            m = read_message(data)
        except MessageError as e:
            raise ValueError(str(e)) from None
        if isinstance(m["content"], list):
            m["content"] = parts_text(m["content"])
        elif m["content"] is None and not {"content", "refusal"} & set(data):
            del m["content"]  # absent: "Field required", as before
        return m


class FewExtras(BaseModel):
    """A model (``extra="forbid"``) that refuses an object with more than :data:`MAX_PROBLEMS`
    unknown keys as one problem, before pydantic lists each (its list of 700,000 is built in
    one call that holds the GIL for 1.3 s)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_extras(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > len(cls.model_fields) + MAX_PROBLEMS:
            extra = [k for k in data if k not in cls.model_fields]
            first = ", ".join(repr(k[:40]) for k in extra[:3])
            raise ValueError(
                f"{len(extra)} extra inputs are not permitted (first: {first}); the fields "
                f"are {', '.join(cls.model_fields)}"
            )
        return data


class RewardItem(FewExtras):
    """One thing to score: a response to a prompt (text or messages), an optional gold answer."""

    id: StrictStr | StrictInt | None = None  # echoed as sent: no true→1 or 1e3→1000
    # a message list holds at least one turn (`rewardkit score` refuses `"prompt": []` too);
    # its first bad message is the problem (all of 200,000 were listed: a 14.5 MB answer)
    prompt: StrictStr | Annotated[list[ChatMessage], Field(min_length=1, fail_fast=True)] = ""
    response: StrictStr
    reference: Any = None
    data_source: StrictStr | None = None


class RewardRequest(FewExtras):
    """The body of ``POST /v1/rewards``: items stay raw here and are validated one by one."""

    items: list[Any] = Field(min_length=0)


class ItemError(BaseModel):
    """Why one item was not scored."""

    type: str
    message: str


class RewardResult(BaseModel):
    """The answer for one item, in request order."""

    id: str | int | None = None
    reward: float | None = None
    components: dict[str, float | None] = Field(default_factory=dict)
    cached: bool = False
    route: str | None = None
    error: ItemError | None = None


class RewardResponse(BaseModel):
    """The body answered by ``POST /v1/rewards``."""

    protocol: str = PROTOCOL_VERSION
    results: list[RewardResult]


def describe_validation_error(exc: ValidationError, whole: str = "(item)") -> str:
    """One line per problem: ``field.path: message`` (pydantic's own wording), the first
    :data:`MAX_PROBLEMS` and how many more; a problem of the whole object (a check across
    fields) is named ``whole``."""
    parts = []
    for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or whole
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    if exc.error_count() > MAX_PROBLEMS:
        parts.append(f"and {exc.error_count() - MAX_PROBLEMS} more problems")
    return "; ".join(parts)


def non_finite(value: Any, where: str) -> str | None:
    """Where ``value`` (parsed JSON) holds a number that is not finite (``NaN``, ``Infinity``,
    or one beyond ±1.8e308 such as ``1e400``, which JSON parsing turns into infinity), as
    ``where`` plus its path; None when it holds none. Iterative: any depth is safe."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path
        elif isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return None


def non_finite_error(path: str) -> str:
    """What an item error says about a gold answer holding a non-finite number at ``path``."""
    return (
        f"{path}: a number that is not finite (nan, ±inf, or beyond ±1.8e308 such as 1e400) "
        "cannot be a gold answer; send it as a string, or null for no reference"
    )


def echo_id(raw: Any) -> str | int | None:
    """The ``id`` of a raw item when it is one the protocol echoes (text or an integer), even
    when the rest of the item is invalid: a result with ``id: null`` for an item sent with an
    id cannot be matched to it (``RewardClient`` refused the whole batch over it)."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None


def parse_item(raw: Any, index: int) -> tuple[RewardItem | None, ItemError | None]:
    """Validate one raw item; a problem becomes an :class:`ItemError` naming the item and field.
    A ``reference`` holding a non-finite number is one (before, it was scored as no reference:
    a gold answer lost without a word)."""
    if not isinstance(raw, dict):
        return None, ItemError(
            type="invalid_item",
            message=f"items[{index}]: expected an object, got {describe(raw)}",
        )
    try:
        item = RewardItem.model_validate(raw)
    except ValidationError as exc:
        return None, ItemError(
            type="invalid_item", message=f"items[{index}]: {describe_validation_error(exc)}"
        )
    bad = non_finite(item.reference, "reference")
    if bad is not None:
        return None, ItemError(
            type="invalid_item", message=f"items[{index}]: {non_finite_error(bad)}"
        )
    return item, None

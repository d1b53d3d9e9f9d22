"""The versioned request/response shapes of ``POST /v1/rewards`` (pydantic models).

A request is ``{"items": [ITEM, ...]}``. Each item is validated on its own, so a malformed item
gets a per-item error and the rest of the batch is still scored. ``reward`` is ``null`` where the
reward does not apply (NaN inside rewardkit: JSON has no NaN).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from rewardkit.data.checks import ROLES

PROTOCOL_VERSION = "rewardkit.v1"


class ChatMessage(BaseModel):
    """One chat turn, OpenAI form."""

    model_config = ConfigDict(extra="ignore")

    role: StrictStr
    content: StrictStr

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        # as `rewardkit score` reads a file: an unknown role was scored as a user turn
        if role not in ROLES:
            raise ValueError(f"expected a role in {', '.join(ROLES)}, got {role[:40]!r}")
        return role


class RewardItem(BaseModel):
    """One thing to score: a response to a prompt (text or messages), an optional gold answer."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr | StrictInt | None = None  # echoed as sent: no true→1 or 1e3→1000
    # a message list holds at least one turn (`rewardkit score` refuses `"prompt": []` too)
    prompt: StrictStr | Annotated[list[ChatMessage], Field(min_length=1)] = ""
    response: StrictStr
    reference: Any = None
    data_source: StrictStr | None = None


class RewardRequest(BaseModel):
    """The body of ``POST /v1/rewards``: items stay raw here and are validated one by one."""

    model_config = ConfigDict(extra="forbid")

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


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (pydantic's own wording)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(item)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_item(raw: Any, index: int) -> tuple[RewardItem | None, ItemError | None]:
    """Validate one raw item; a problem becomes an :class:`ItemError` naming the item and field."""
    if not isinstance(raw, dict):
        return None, ItemError(
            type="invalid_item",
            message=f"items[{index}]: expected an object, got {type(raw).__name__}",
        )
    try:
        return RewardItem.model_validate(raw), None
    except ValidationError as exc:
        return None, ItemError(
            type="invalid_item", message=f"items[{index}]: {describe_validation_error(exc)}"
        )

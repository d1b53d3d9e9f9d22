"""Token usage to money: a price table per model, in currency units per million tokens."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.remote.config import RemoteConfigError
from rewardkit.remote.usage import Usage


@dataclass(frozen=True)
class Price:
    """Price of one model: per million prompt (input) tokens and per million completion tokens."""

    prompt_per_mtok: float
    completion_per_mtok: float

    def cost(self, usage: Usage) -> float:
        """``prompt_tokens · prompt_per_mtok / 1e6 + completion_tokens · completion_per_mtok / 1e6``."""
        return (
            usage.prompt_tokens * self.prompt_per_mtok
            + usage.completion_tokens * self.completion_per_mtok
        ) / 1e6


def _price(model: str, raw: Any) -> Price:
    if isinstance(raw, Price):
        return raw
    if isinstance(raw, Mapping) and set(raw) <= {"prompt", "completion"} and raw:
        values = [raw.get("prompt", 0.0), raw.get("completion", 0.0)]
    elif isinstance(raw, list | tuple) and len(raw) == 2:
        values = list(raw)
    else:
        raise RemoteConfigError(
            f"price table, model {model!r}: expected {{'prompt': P, 'completion': C}} "
            f"(per million tokens) or [P, C], got {raw!r}"
        )
    if any(isinstance(v, bool) for v in values):
        raise RemoteConfigError(
            f"price table, model {model!r}: prices must be numbers, got {raw!r}"
        )
    try:
        prompt, completion = (float(v) for v in values)
    except (TypeError, ValueError, OverflowError):
        raise RemoteConfigError(
            f"price table, model {model!r}: prices must be numbers, got {raw!r}"
        ) from None
    if not all(0 <= p < math.inf for p in (prompt, completion)):  # NaN fails too
        raise RemoteConfigError(f"price table, model {model!r}: prices must be finite and >= 0")
    return Price(prompt, completion)


class PriceTable:
    """``{model: {"prompt": P, "completion": C}}`` per million tokens; :meth:`cost` is None for a
    model without a price, and for usage some answers did not report (unknown cost is not zero
    cost)."""

    def __init__(self, prices: Mapping[str, Any]) -> None:
        if not isinstance(prices, Mapping):
            raise RemoteConfigError(f"price table: expected a mapping, got {type(prices).__name__}")
        self.prices = {str(m): _price(str(m), p) for m, p in prices.items()}

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        """Read a JSON or YAML file holding the mapping."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RemoteConfigError(f"price table {path}: {exc.strerror or exc}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:
            raise RemoteConfigError(f"price table {path}: not valid JSON/YAML ({exc})") from None
        return cls(data)

    def cost(self, model: str, usage: Usage) -> float | None:
        price = self.prices.get(model)
        return None if price is None or usage.unreported else price.cost(usage)

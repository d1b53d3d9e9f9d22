"""Rule rewards: no model, pure Python (or well-kept libraries), fast.

``rule:NAME`` specs resolve through :data:`RULES`, a table of ``"module:Class"`` strings imported
only when that rule is built, so one rule's optional dependency never slows or breaks another.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.types import Reward

#: Rule name → "module:Class" (the class is called with the spec's options).
RULES: dict[str, str] = {
    "length": "rewardkit.rewards.rules.length:LengthReward",
}

#: One-line description of each rule, shown by ``rewardkit rewards list``.
DESCRIPTIONS: dict[str, str] = {
    "length": "response length in chars/words/bytes (the baseline every benchmark shows)",
}


def build(arg: str | None, **options: Any) -> Reward:
    """Registry factory for ``rule:NAME``."""
    target = RULES.get(arg or "")
    if target is None:
        raise SpecError(f"unknown rule {arg!r}; known rules: {', '.join(sorted(RULES))}")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)

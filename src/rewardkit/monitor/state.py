"""A saved :class:`~rewardkit.monitor.monitor.RewardMonitor` state read back field by field: a
missing or mistyped field is a ValueError naming it (a raw ``KeyError: 'history'`` or
``TypeError`` from ``MonitorConfig(**…)`` before), so the monitor is left as it was."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from rewardkit.combine.checks import is_real, state_field, state_mapping

OWNER = "RewardMonitor"


class SavedState(NamedTuple):
    """The checked parts of a saved state (the baseline left as its mapping)."""

    config: dict[str, Any]
    history: list[dict[str, Any]]
    warned: set[str]
    baseline: Mapping[str, Any]
    baseline_std: dict[str, float]


def read_state(state: Any, config_fields: tuple[str, ...]) -> SavedState:
    """The fields of ``state`` (see the module docstring); ``config_fields`` are the names
    ``MonitorConfig`` takes."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{OWNER} state must be a mapping (a state_dict()); got {type(state)}")
    config = dict(state_mapping(state_field(state, "config", OWNER), "config"))
    unknown = sorted(set(map(str, config)) - set(config_fields))
    if unknown:
        raise ValueError(f"restored config has unknown setting(s) {unknown}")
    history = state_field(state, "history", OWNER)
    if not isinstance(history, list) or not all(isinstance(h, Mapping) for h in history):
        raise ValueError("restored history must be a list of step records (mappings)")
    warned = state_field(state, "warned", OWNER)
    if not isinstance(warned, list | tuple | set) or not all(isinstance(w, str) for w in warned):
        raise ValueError(f"restored warned must be a list of warning names; got {warned!r}")
    baseline = state_mapping(state_field(state, "baseline", OWNER), "baseline")
    for key in ("sums", "counts", "sq"):
        numbers(state_field(baseline, key, f"{OWNER} baseline"), f"baseline.{key}")
    if "pooled" in baseline:
        state_mapping(baseline["pooled"], "baseline.pooled")
    std = numbers(state_field(state, "baseline_std", OWNER), "baseline_std")
    bad = [k for k, v in std.items() if not v > 0]
    if bad:
        raise ValueError(f"restored baseline_std[{bad[0]!r}] must be > 0; got {std[bad[0]]!r}")
    history = [{k: math.nan if v is None else v for k, v in h.items()} for h in history]
    return SavedState(config, history, set(warned), baseline, std)


def numbers(value: Any, field: str) -> dict[str, float]:
    """A restored ``{name: finite number}`` table (ValueError naming ``field`` and the key)."""
    table = state_mapping(value, field)
    for k, v in table.items():
        if not (is_real(v) and math.isfinite(v)):
            raise ValueError(f"restored {field}[{k!r}] must be a finite number; got {v!r}")
    return {str(k): v for k, v in table.items()}

"""Checks of an endpoint's configuration, run when a reward is built: each bad value is one
:class:`RemoteConfigError` naming its option (never a traceback at scoring time)."""

from __future__ import annotations

import math
from typing import Any

from rewardkit.errors import RewardkitError


class RemoteConfigError(RewardkitError, ValueError):
    """A remote endpoint that cannot be used as configured (bad URL, missing API key variable,
    an option of the wrong type or out of range)."""


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"


def whole_number(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``: an int, or a float with no fractional part (YAML's
    ``8.0``); a bool, a string, ``2.5``, NaN or ±inf is an error naming ``name``."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RemoteConfigError(f"{name}={_shown(value)}: expected a whole number >= {minimum}")
    return value


def real_number(
    name: str,
    value: Any,
    minimum: float,
    *,
    above: bool = False,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` when ``above``; ``<= maximum``
    when given); a bool, a string, NaN or ±inf is an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        ok = False
    else:
        try:
            number = float(value)
        except OverflowError:  # an int past float's range
            number = math.inf
        ok = math.isfinite(number) and (number > minimum if above else number >= minimum)
        ok = ok and (maximum is None or number <= maximum)
    if not ok:
        bound = f"> {minimum:g}" if above else f">= {minimum:g}"
        if maximum is not None:
            bound = f"in [{minimum:g}, {maximum:g}]"
        raise RemoteConfigError(f"{name}={_shown(value)}: expected a finite number {bound}")
    return number

"""Error types. Every error about user input says what was wrong and where."""

from __future__ import annotations


class RewardkitError(Exception):
    """Base class of rewardkit's own errors."""


class DataError(RewardkitError, ValueError):
    """A malformed record: names the file, the line (or row), the field, and what was expected.

    ``line`` is 1-based for line-oriented files (JSONL, CSV: the physical line of the record);
    ``row`` is the 0-based record index for files without lines (JSON arrays, Parquet, datasets).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.row = row
        self.field = field
        self.reason = message
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        elif row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelNotFoundError(RewardkitError, FileNotFoundError):
    """A model that is neither a local directory, nor in the local Hub cache, nor downloadable;
    the message says where it was looked for."""


class SpecError(RewardkitError, ValueError):
    """A reward spec that the registry cannot build (unknown kind, bad option)."""


class MissingDependencyError(RewardkitError, ImportError):
    """An optional package is missing; the message says which pip command installs it."""


class CapabilityError(RewardkitError, TypeError):
    """A reward was asked for something it does not declare (``Reward.can`` says no), or it
    returned an output that contradicts what it declares."""


class TrainingDiverged(RewardkitError, ArithmeticError):
    """A training run's loss or weights became NaN or ±inf: the run stops and saves nothing
    (a model of NaN weights would load and score NaN everywhere)."""


class ItemFailed(RewardkitError):
    """A reward failed one item alone and recorded it in its call's statistics instead of raising
    (an upstream 500, a math-verify timeout): served as that item's ``scoring_error``, never as a
    score, and never cached."""


def switch(name: str, value: object, where: str) -> bool:
    """A spec's on/off option as a bool: a bool (the spec parser reads ``true``/``false``, and
    ``yes``/``no``/``1``/``0`` for the on/off options in ``registry.SWITCHES``), 0 or 1, or one
    of those words given as text; anything else is a :class:`SpecError` (``bool("off")`` is
    True)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise SpecError(f"{where}: option {name} must be true or false, got {value!r}")

"""How CLI commands report a user's mistake: one red line on stderr and exit code 2."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from rewardkit.errors import RewardkitError

#: Errors that mean bad input (data, spec, path) or a machine that refuses a path
#: (permissions, a full or read-only disk: ``OSError``, whose message names the path), not a
#: bug: shown without a traceback.
USER_ERRORS = (RewardkitError, ValueError, OSError)


def one_line(text: str) -> str:
    """A message on one line: a library's multi-line text (PyYAML's "in <unicode string>, line
    2, column 1:" with the source line and a caret under it) joined with spaces, the caret
    line dropped."""
    lines = [ln.strip() for ln in str(text).splitlines()]
    return " ".join(ln for ln in lines if ln and ln != "^")


def fail(exc: Exception) -> None:
    """Print ``error: …`` on one line, in red, on stderr and exit with code 2."""
    typer.secho(f"error: {one_line(str(exc))}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2) from None


def check_engine_names(truncation: str | None, dtype: str | None, device: str | None) -> None:
    """:func:`fail` for a ``--truncation``, ``--dtype`` or ``--device`` that no engine takes,
    whatever the reward: a rule-only spec builds no engine, so ``--dtype bf61`` passed without a
    word (:func:`rewardkit.engine.config.engine_name_problem`; whether the machine has the
    device is checked when a model loads)."""
    from rewardkit.engine.config import engine_name_problem
    from rewardkit.errors import SpecError

    problem = engine_name_problem(truncation, dtype, device)
    if problem is not None:
        fail(SpecError(f"{problem[0]}: {problem[1]}"))


@contextmanager
def user_errors(*extra: type[Exception]) -> Iterator[None]:
    """Turn :data:`USER_ERRORS` (and ``extra``) raised inside the block into :func:`fail`. A
    closed stdout (``| head``) is not a user error: it goes on to click, which ends quietly."""
    try:
        yield
    except BrokenPipeError:
        raise
    except (*USER_ERRORS, *extra) as exc:
        fail(exc)


def finite(value: float | None) -> float | None:
    """A typer callback refusing NaN and ±inf (click's range check lets NaN through)."""
    return number_in()(value)


def number_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Any:
    """A typer callback refusing NaN, ±inf and numbers outside ``[lo, hi]`` (``(lo, hi]`` with
    ``lo_open``); one message naming the range."""

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        ok = math.isfinite(value)
        ok = ok and (lo is None or (value > lo if lo_open else value >= lo))
        ok = ok and (hi is None or value <= hi)
        if not ok:
            left = "(" if lo_open else "["
            if lo is not None and hi is not None:
                want = f"a number in {left}{_bound(lo)}, {_bound(hi)}]"
            elif lo is not None:
                want = f"a finite number {'>' if lo_open else '>='} {_bound(lo)}"
            else:
                want = "a finite number"
            raise typer.BadParameter(f"expected {want}, got {value}")
        return value

    return check


def _bound(x: float) -> str:
    """A range's end as typed: 86400, not 86400.0 or 8.64e+04 (``:g`` cut 1048576 to 1.04858e+06)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def nonempty_path(value: Any) -> Any:
    """A typer ``parser`` for a path, input or output (an option or a positional argument): the
    text as given, refused when empty. typer turns ``''`` into ``Path('.')``, so ``--out ''`` (an
    unset shell variable) wrote into the current directory and ``--data ''`` read it ("is a
    directory" naming '.'); the error names the option (click adds it)."""
    if value is not None and not str(value).strip():
        raise typer.BadParameter(
            "an empty path (an unset shell variable?): give a file or directory name"
        )
    return value


def output_path(value: Any) -> Path | None:
    """:func:`nonempty_path` for an option or argument typed ``Path`` (an output or an input):
    the checked text as a ``Path``."""
    checked = nonempty_path(value)
    return None if checked is None else Path(checked)


def parse_columns(text: str | None) -> dict[str, str] | None:
    """Parse ``FIELD=COLUMN,FIELD=COLUMN`` into a column map; a field given twice is refused."""
    if not text:
        return None
    mapping: dict[str, str] = {}
    for part in text.split(","):
        field, eq, column = part.partition("=")
        if not eq or not field.strip() or not column.strip():
            raise typer.BadParameter(f"expected FIELD=COLUMN, got {part!r}", param_hint="--columns")
        if field.strip() in mapping:  # the last mapping would win silently
            raise typer.BadParameter(f"field {field.strip()!r} given twice", param_hint="--columns")
        mapping[field.strip()] = column.strip()
    return mapping

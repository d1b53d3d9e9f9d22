"""How CLI commands report a user's mistake: one red line on stderr and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from rewardkit.errors import RewardkitError

#: Errors that mean bad input (data, spec, path) or a machine that refuses a path
#: (permissions, a full or read-only disk: ``OSError``, whose message names the path), not a
#: bug: shown without a traceback.
USER_ERRORS = (RewardkitError, ValueError, OSError)


def fail(exc: Exception) -> None:
    """Print ``error: …`` in red on stderr and exit with code 2."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2) from None


@contextmanager
def user_errors(*extra: type[Exception]) -> Iterator[None]:
    """Turn :data:`USER_ERRORS` (and ``extra``) raised inside the block into :func:`fail`."""
    try:
        yield
    except (*USER_ERRORS, *extra) as exc:
        fail(exc)

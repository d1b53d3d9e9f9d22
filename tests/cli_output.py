"""Reading a typer ``CliRunner`` result as a user reads the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def flat(result: Any) -> str:
    """The output on one line, rich's panel borders dropped (a long message wraps inside it)."""
    return " ".join(result.output.replace("│", " ").split())


def assert_empty_path_refused(result: Any, args: list[str], cwd: Path) -> str:
    """``args`` ended in an output option given ``''``: exit 2 naming that option and "an empty
    path", and nothing written into ``cwd`` (typer reads ``''`` as the current directory).
    Returns the flattened output for further checks."""
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert args[-2] in text and "an empty path" in text, text
    assert list(cwd.iterdir()) == []
    return text

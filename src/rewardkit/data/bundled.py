"""Data files that ship inside the package (``--data sample``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Name → file under ``rewardkit/resources``.
BUNDLED = {
    "sample": "sample_prefs.jsonl",
}


def bundled_path(name: str) -> Path | None:
    """Path of a bundled data file by name, or None when ``name`` is not one."""
    filename = BUNDLED.get(name)
    if filename is None:
        return None
    return Path(str(resources.files("rewardkit") / "resources" / filename))


def resolve_data(path_or_name: str) -> str:
    """A bundled name becomes its file path; anything else (an existing path wins) is unchanged."""
    try:
        if Path(path_or_name).exists():
            return path_or_name
    except OSError:  # a name too long for the file system: the reader names it
        return path_or_name
    bundled = bundled_path(path_or_name)
    return str(bundled) if bundled is not None else path_or_name

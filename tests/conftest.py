"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The shared data directory beside the repository checkout (``<checkout>/../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data not found at {SHARED_DATA.resolve()} (clone shared/ beside the repo)"
        )
    return SHARED_DATA

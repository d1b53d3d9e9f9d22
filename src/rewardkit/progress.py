"""Progress bars for long scoring loops: tqdm, cleared from a terminal when done, kept in a log.

With stderr not a terminal (a log file, CI) the CLI writes one line per update at most every
few seconds (``rewardkit.cli``); a bar that cleared itself at the end then left a finished run's
log at "0/40" or "92% 686/748", so there it keeps its last line, the final count.
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, desc: str, unit: str) -> Any:
    """A tqdm bar of ``total`` steps (``tqdm.auto``: a widget in a notebook)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=not sys.stderr.isatty())

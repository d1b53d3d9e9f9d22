"""What the method trainers (PAL, POLAR, ReMoDetect) share around a run: their settings checked
in the library as the CLI ranges check them, and the output directory held for the run's life."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.outputs import exclusive


def check_settings(
    cfg: Any,
    what: str,
    counts: tuple[str, ...] = (),
    rates: tuple[str, ...] = (),
    nonnegative: tuple[str, ...] = (),
) -> None:
    """SpecError naming the field unless each of ``counts`` is an int ≥ 1, each of ``rates`` a
    finite number > 0 and each of ``nonnegative`` a finite number ≥ 0 (a 0-step or 0-batch run
    "trained" nothing and wrote ``NaN`` as its loss; a NaN rate trained nothing)."""
    for name in (*counts, *rates, *nonnegative):
        value = getattr(cfg, name)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if name in counts:
            ok, want = is_int and value >= 1, "an integer >= 1"
        else:
            number = is_int or isinstance(value, float)
            ok = number and math.isfinite(value) and (value > 0 if name in rates else value >= 0)
            want = "a finite number " + ("> 0" if name in rates else ">= 0")
        if not ok:
            raise SpecError(f"{what}: {name} must be {want}, got {value!r}")


@contextlib.contextmanager
def run_directory(out: Path, what: str) -> Iterator[None]:
    """Hold ``out`` (created if need be) for a training run's life: a second run into it is
    refused (:func:`~rewardkit.outputs.exclusive`); a failed run removes the directory it
    created when nothing was written into it."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(out, what):
            yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only an empty directory: nothing of this run is left
        raise

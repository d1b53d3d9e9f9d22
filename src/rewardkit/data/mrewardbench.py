"""M-RewardBench rows (Gureja et al., 2410.15522; docs/methods/D3-m-rewardbench.md): RewardBench (v1) pairs
translated into 23 languages, plus a Translation category."""

from __future__ import annotations

from rewardkit.data import rewardbench
from rewardkit.data.record import Record
from rewardkit.types import Example


def convert(rec: Record) -> Example:
    """A RewardBench (v1) pair (``prompt``, ``chosen``, ``rejected``, ``subset``) with a required
    ``language``. Translation subsets (``translation-…``) get section ``Translation``."""
    ex = rewardbench.convert_v1(rec)
    if not ex.language:
        raise rec.error(
            "language",
            "missing required field (fields found: "
            + ", ".join(repr(k) for k in rec.data)
            + "); an English RewardBench (v1) file read beside M-RewardBench files needs a "
            "'language' column (e.g. 'en'), or must come first in the directory order so that "
            "its rows decide the format",
        )
    ex.meta["format"] = "m-rewardbench"
    if (ex.subset or "").lower().startswith("translation"):
        ex.meta["section"] = "Translation"
    return ex

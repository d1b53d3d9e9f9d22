"""The prompts a model was trained on, recorded beside it, so an evaluation can say when it
scores a model on its own training prompts (docs/evaluation.md, "Training prompts in the
evaluation data").

A training run writes :data:`TRAINED_PROMPTS_FILE` into the model directory: the sorted,
distinct 64-bit hashes of the prompt keys of the rows it trained on (the hold-out left out).
The key is the one that keeps a prompt's rows on one side of a hold-out
(:func:`rewardkit.train.pairs.group_key`: roles and normalized text, so a copy differing only
in case, spacing or punctuation is the same prompt). The file holds no text: a model can be
shared without its data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rewardkit.outputs import atomic_file

#: The file a training run writes into its model directory.
TRAINED_PROMPTS_FILE = "trained_prompts.npy"
#: The most hashes a record may hold (1 GiB): a header claiming more (a crafted or damaged file)
#: is ignored, not allocated.
MAX_TRAINED_PROMPTS = 1 << 27


def key_hashes(keys: Iterable[str]) -> np.ndarray:
    """The sorted, distinct 64-bit hashes of hex prompt keys (the first 16 hex digits of
    each); empty keys (a row that is its own group) are left out."""
    return np.unique(np.fromiter((int(k[:16], 16) for k in keys if k), dtype=np.uint64))


def write_trained_prompts(directory: str | Path, keys: Iterable[str]) -> Path | None:
    """Record the prompt keys a run trained on (nothing is written when there are none)."""
    hashes = key_hashes(keys)
    if not hashes.size:
        return None
    path = Path(directory) / TRAINED_PROMPTS_FILE
    with atomic_file(path, binary=True, what="the training-prompt record") as fh:
        np.save(fh, hashes, allow_pickle=False)
    return path


def read_trained_prompts(directory: str | Path) -> np.ndarray | None:
    """The training prompts recorded in a model directory, or None where there is no record; a
    record that cannot be read is warned about (naming the file) and treated as none."""
    path = Path(directory) / TRAINED_PROMPTS_FILE
    if not path.is_file():
        return None
    try:  # mapped, not read: the header's shape is checked before any memory is taken
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        warnings.warn(f"{path}: not a training-prompt record ({exc}); ignored", stacklevel=2)
        return None
    if not isinstance(mapped, np.ndarray) or mapped.ndim != 1 or mapped.dtype != np.uint64:
        warnings.warn(
            f"{path}: not a training-prompt record (expected a 1-D uint64 array); ignored",
            stacklevel=2,
        )
        return None
    if mapped.size > MAX_TRAINED_PROMPTS:
        warnings.warn(
            f"{path}: a training-prompt record of {mapped.size:,} hashes is more than "
            f"{MAX_TRAINED_PROMPTS:,}; ignored",
            stacklevel=2,
        )
        return None
    hashes = np.array(mapped)
    del mapped
    return hashes


def union_of(records: Iterable[np.ndarray | None]) -> np.ndarray | None:
    """The union of several rewards' records (a composite's parts); None when none has one."""
    found = [r for r in records if r is not None]
    return np.unique(np.concatenate(found)) if found else None


def trained_count(keys: Iterable[str], trained: np.ndarray) -> int:
    """How many of ``keys`` (one per evaluation example) are in ``trained``."""
    mine = np.fromiter((int(k[:16], 16) for k in keys if k), dtype=np.uint64)
    return int(np.isin(mine, trained).sum()) if mine.size and trained.size else 0

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

import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rewardkit.errors import DataError
from rewardkit.outputs import atomic_file

#: The file a training run writes into its model directory.
TRAINED_PROMPTS_FILE = "trained_prompts.npy"
#: The most hashes a record may hold (1 GiB): a header claiming more (a crafted or damaged file)
#: is ignored, not allocated.
MAX_TRAINED_PROMPTS = 1 << 27
_HEX_KEY = re.compile(r"[0-9a-fA-F]{16,}")


def _hashes(keys: Iterable[str]) -> np.ndarray:
    """The 64-bit hash of each non-empty key: its first 16 hex digits. A key is the hex digest
    of :func:`~rewardkit.train.pairs.group_key`; anything else is a :class:`DataError` naming
    its index (``int(k, 16)`` alone would take ``0x12``, ``1_2`` or `` ab `` as numbers)."""
    out = []
    for i, k in enumerate(keys):
        if isinstance(k, str) and not k:
            continue  # a row that is its own group
        if not isinstance(k, str) or not _HEX_KEY.fullmatch(k):
            raise DataError(
                f"prompt key {k!r} is not a hex digest of at least 16 digits (group_key)",
                row=i,
                field="prompt key",
            )
        out.append(int(k[:16], 16))
    return np.array(out, dtype=np.uint64)


def as_hashes(record: object) -> np.ndarray:
    """``record`` (a reward's ``trained_prompts()``) as a 1-D uint64 array: hashes compared in
    another integer type (or mixed with one) would be rounded through float64 by numpy."""
    arr = np.asarray(record)
    if arr.dtype == np.uint64:
        return arr.reshape(-1)
    if arr.dtype.kind in "iu" and not (arr < 0).any():
        return arr.reshape(-1).astype(np.uint64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    raise ValueError(f"a training-prompt record must hold uint64 hashes, got {arr.dtype}")


def key_hashes(keys: Iterable[str]) -> np.ndarray:
    """The sorted, distinct 64-bit hashes of hex prompt keys (the first 16 hex digits of
    each); empty keys (a row that is its own group) are left out."""
    return np.unique(_hashes(keys))


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
    record that cannot be read (not a regular file — a directory, a device such as a link to
    /dev/zero, a FIFO, a broken link —, not a 1-D array of 8-byte unsigned integers in either
    byte order, truncated, too large) is warned about in one line naming the file and treated
    as none."""
    path = Path(directory) / TRAINED_PROMPTS_FILE
    if not path.is_file():
        if path.exists() or path.is_symlink():  # a directory, device, FIFO, broken link
            warnings.warn(
                f"{path}: not a training-prompt record (not a regular file); ignored",
                stacklevel=2,
            )
        return None
    try:  # mapped, not read: the header's shape is checked before any memory is taken
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's overflow notes on a crafted shape
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, OverflowError, MemoryError) as exc:
        warnings.warn(f"{path}: not a training-prompt record ({exc}); ignored", stacklevel=2)
        return None
    if (
        not isinstance(mapped, np.ndarray)
        or mapped.ndim != 1
        or mapped.dtype.kind != "u"
        or mapped.dtype.itemsize != 8
    ):
        if isinstance(mapped, np.lib.npyio.NpzFile):  # an .npz archive holds its file open
            mapped.close()
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
    hashes = np.array(mapped, dtype=np.uint64)  # native byte order (a big-endian file too)
    del mapped
    return hashes


def union_of(records: Iterable[np.ndarray | None]) -> np.ndarray | None:
    """The union of several rewards' records (a composite's parts); None when none has one."""
    found = [as_hashes(r) for r in records if r is not None]
    return np.unique(np.concatenate(found)) if found else None


def trained_count(keys: Iterable[str], trained: np.ndarray) -> int:
    """How many of ``keys`` (one per evaluation example) are in ``trained``."""
    mine, record = _hashes(keys), as_hashes(trained)
    return int(np.isin(mine, record).sum()) if mine.size and record.size else 0

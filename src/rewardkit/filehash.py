"""Streaming SHA-256 of files, torch-free: the weights digests of DMoERM and PAL
(docs/methods/A5-dmoerm.md) and the data identity of a training run's fingerprint
(:mod:`rewardkit.train.fingerprint`) read files in blocks, never whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read at a time.
BLOCK = 1 << 20


def sha256_file(*paths: str | Path) -> str:
    """Hex SHA-256 of the files' bytes one after the other (one file: the same as
    ``hashlib.sha256(path.read_bytes())``), read in :data:`BLOCK`-byte blocks."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                h.update(block)
    return h.hexdigest()

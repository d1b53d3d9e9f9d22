"""Loaders for public preference-data formats, with validation.

``load(path_or_name)`` reads JSONL, JSON, CSV, Parquet, saved Hugging Face datasets and
``hf:org/name`` into :class:`~rewardkit.types.Example` objects; a malformed record raises
:class:`~rewardkit.errors.DataError` naming the file, line (or row), field, expected and found.
See ``docs/data-formats.md``.
"""

from __future__ import annotations

from rewardkit.data.loader import load
from rewardkit.data.location import Location
from rewardkit.data.sniff import FORMATS
from rewardkit.data.sources import iter_records
from rewardkit.data.writer import write_jsonl

__all__ = ["FORMATS", "Location", "iter_records", "load", "write_jsonl"]

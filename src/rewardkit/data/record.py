"""One raw record under validation: column renaming, field access, errors, and the final Example."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardkit.data.location import Location, describe
from rewardkit.errors import DataError
from rewardkit.types import Example, Message

#: rewardkit field names a column map may target.
FIELDS = (
    "id",
    "prompt",
    "chosen",
    "rejected",
    "responses",
    "ratings",
    "subset",
    "source",
    "language",
    "reference",
    "section",
    "num_correct",
    "meta",
    "criterion",
)
#: Columns that give an example's id, in order of preference.
ID_FIELDS = ("id", "pair_id", "pair_uid", "idx")
_MISSING = object()
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def csv_number(value: Any) -> Any:
    """A CSV cell holding a number as that number: ``'1'`` → 1, ``'-2.5'`` / ``'1e3'`` → float;
    an empty cell → None. Anything else (``'abc'``, ``'nan'``, ``'True'``) is returned unchanged,
    so the caller's check reports it as text with its location."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # over Python's 4,300 digits: a float's ±inf, as '1e999' reads
            return float(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return value


def as_float(value: int | float) -> float:
    """``float(value)``; an integer beyond a float's range (a 400-digit JSON integer) is ±inf,
    as JSON's ``1e400`` reads, never an :class:`OverflowError`."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite number (not a bool); an integer beyond a float's range is
    not (``math.isfinite`` would raise on it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(as_float(value))


def as_reference(value: Any) -> Any:
    """A trainer's reference value (OpenRLHF's label, verl's ``ground_truth``, a TRL reference
    column) as ``Query.reference``: None when it gives nothing to check against (None, blank
    text, an empty list or one of blanks), so every reward reads "no reference" (NaN: does not
    apply) the same way; a numpy array (verl's non-tensor batch) as the list it holds."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, list | tuple):
        kept = [v for v in value if v is not None and not (isinstance(v, str) and not v.strip())]
        return None if not kept else value
    return value


def identical_sides(responses: list[Any], chosen: list[int]) -> bool:
    """Whether a chosen response is the same text as a rejected one (``chosen == rejected`` in
    a pair): no reward can order them. Every format flags it the same way,
    ``meta["identical_responses"] = True`` (:meth:`Record.finish`); ``rewardkit eval`` counts
    such examples and training counts pairs whose sides encode to the same tokens. Only text
    responses are compared (content parts with images never count as identical here)."""
    picked = {responses[i] for i in chosen if isinstance(responses[i], str)}
    return any(
        isinstance(r, str) and r in picked for i, r in enumerate(responses) if i not in chosen
    )


def check_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a column map ``{rewardkit_field: file_column}``."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise DataError(f"columns: expected a mapping of field to column, got {describe(columns)}")
    for key, col in columns.items():
        if key not in FIELDS:
            raise DataError(f"columns: unknown field {key!r}; known fields: {', '.join(FIELDS)}")
        if not isinstance(col, str) or not col:
            raise DataError(f"columns[{key!r}]: expected a column name, got {describe(col)}")
    return dict(columns)


class Record:
    """A raw record seen through a column map, with helpers that raise located errors."""

    def __init__(self, raw: dict[str, Any], loc: Location, columns: Mapping[str, str]) -> None:
        self.loc = loc
        self.alias = dict(columns)
        self.shadowed: dict[str, Any] = {}
        if columns:
            mapped = set(columns.values())
            for k, c in columns.items():
                if c not in raw:  # never fall back to the file's own column named k
                    found = ", ".join(repr(name) for name in raw) or "none"
                    raise loc.error(
                        f"column {c!r} (for {k}) not found (columns found: {found})", field=c
                    )
            data = {k: raw[c] for k, c in columns.items()}
            for k, v in raw.items():
                if k in mapped:
                    continue
                if k in data:
                    self.shadowed[k] = v  # a file column named like a mapped-to field
                else:
                    data[k] = v
            self.data = data
        else:
            self.data = raw
        self.used: set[str] = set()
        #: True for the record whose fields decided the sniffed format, so errors can say so.
        self.sniffed = False

    def field(self, name: str, sub: str = "") -> str:
        """The name to show in errors: the file's column for ``name``, plus a sub-path."""
        return self.alias.get(name, name) + sub

    def error(self, name: str, message: str, sub: str = "") -> DataError:
        """A :class:`DataError` for field ``name`` (``sub`` like ``"[2]"`` or ``"[0].role"``)."""
        return self.loc.error(message, field=self.field(name, sub))

    def finite_rating(self, name: str, value: int | float, sub: str = "") -> float:
        """``value`` as a finite float, else an :meth:`error`: ``1e400``, ``Infinity`` or a
        400-digit integer would outrank every finite rating (or sink below them)."""
        out = as_float(value)
        if not math.isfinite(out):
            raise self.error(name, f"expected a finite rating, got {describe(value)}", sub)
        return out

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not null."""
        return self.data.get(name) is not None

    def get(self, name: str, default: Any = None, *, structured: bool = False) -> Any:
        """Field ``name`` (marked used); ``structured`` parses JSON held in CSV cells (or a list
        that pandas wrote as its Python/numpy repr: :mod:`rewardkit.data.pycells`)."""
        self.used.add(name)
        value = self.data.get(name, default)
        if structured and self.loc.kind == "csv" and isinstance(value, str):
            from rewardkit.data.readers import parse_json

            try:
                return parse_json(value)  # hostile cells (deep nesting...) stay text
            except ValueError:
                pass
            from rewardkit.data.pycells import parse_python_cell

            parsed = parse_python_cell(value)  # a list pandas wrote as its Python/numpy repr
            return value if parsed is None else parsed
        return value

    def number(self, name: str, default: Any = None) -> Any:
        """Field ``name`` (marked used) with a CSV cell that holds a number read as that number
        (:func:`csv_number`); JSON, Parquet and dataset values are returned as they are."""
        value = self.get(name, default)
        return csv_number(value) if self.loc.kind == "csv" else value

    def require_number(self, name: str) -> Any:
        """Like :meth:`require`, with a CSV number cell read as a number (:meth:`number`)."""
        value = self.require(name)
        if self.loc.kind == "csv":
            value = csv_number(value)
            if value is None:
                raise self.error(name, "required field is empty")
        return value

    def peek(self, name: str, *, structured: bool = False) -> Any:
        """Like :meth:`get` without marking the field used (for sniffing)."""
        used = name in self.used
        value = self.get(name, structured=structured)
        if not used:
            self.used.discard(name)
        return value

    def require(self, name: str, *, structured: bool = False) -> Any:
        """Field ``name``, or a 'missing required field' error listing the fields found."""
        value = self.get(name, _MISSING, structured=structured)
        if value is _MISSING or value is None:
            found = ", ".join(repr(k) for k in self.data) or "none"
            what = "missing required field" if value is _MISSING else "required field is null"
            raise self.error(name, f"{what} (fields found: {found})")
        return value

    def opt_text(self, name: str) -> str | None:
        """An optional text field; empty text counts as absent."""
        value = self.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.error(name, f"expected text, got {describe(value)}")
        return value

    def example_id(self) -> str:
        """From the first id-like column present, else ``"<file>:<line-or-row>"``."""
        for name in ID_FIELDS:
            value = self.data.get(name)
            if value is None or value == "":
                continue
            self.used.add(name)
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise self.error(name, f"expected text or an integer id, got {describe(value)}")
            return str(value)
        return self.loc.label

    def finish(
        self,
        fmt: str,
        prompt: list[Message],
        responses: list[str],
        chosen: list[int],
        ratings: list[dict[str, float]] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Example:
        """Build the :class:`Example`; unused fields go to ``meta`` (``meta["format"] = fmt``;
        ``meta["identical_responses"] = True`` when a chosen side equals a rejected one:
        :func:`identical_sides`)."""
        ex_id = self.example_id()
        subset, source, language = (self.opt_text(k) for k in ("subset", "source", "language"))
        reference = self.get("reference")
        if reference == "" and self.loc.kind == "csv":
            reference = None  # an empty CSV cell
        out: dict[str, Any] = {}
        given = self.get("meta")
        if isinstance(given, dict):
            out.update(given)  # rewardkit's own JSONL keeps meta in a "meta" object
        elif given is not None:
            out["meta"] = given
        if self.get("section") not in (None, ""):
            out["section"] = self.get("section")
        for k, v in self.data.items():
            if k not in self.used:
                out[k] = v
        out.update(self.shadowed)
        out.update(meta or {})
        out.setdefault("format", fmt)
        if identical_sides(responses, chosen):
            out["identical_responses"] = True
        return Example(
            id=ex_id,
            prompt=prompt,
            responses=responses,
            chosen=chosen,
            ratings=ratings,
            subset=subset,
            source=source,
            language=language,
            reference=reference,
            meta=out,
        )

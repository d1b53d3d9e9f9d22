"""JSON text read safely: syntax errors, hostile nesting, lone surrogates, over-long integers
and keys repeated in one object are all a :class:`ValueError` saying why (never a silent
last-value-wins merge or a crash)."""

from __future__ import annotations

import json
import re
from typing import Any

#: Deepest nesting of arrays/objects accepted in one record (real data needs a handful of levels).
MAX_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def scan_flags(text: str) -> tuple[bool, bool]:
    """(could be nested too deep, could hold a lone surrogate): cheap scans of the raw text."""
    return (
        text.count("[") + text.count("{") > MAX_DEPTH,
        _SURROGATE_ESCAPE.search(text) is not None,
    )


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text (strings skipped). Iterative: it tells a
    ``RecursionError`` of a document nested too deep from one of a caller already deep in the
    stack (a spec file that names itself), which must not be reported as the document's."""
    depth = top = 0
    for ch in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        top = max(top, depth)
    return top


def _bad_string(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"lone UTF-16 surrogate \\u{ord(text[e.start]):04x}"
    return None


def check_tree(obj: Any, deep: bool = True, surrogates: bool = True) -> str | None:
    """Why a parsed JSON value cannot be used (nested beyond :data:`MAX_DEPTH`; a lone surrogate
    in a string or key), or None. Iterative: any depth is safe to inspect."""
    if not (deep or surrogates):
        return None
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            bad = _bad_string(value) if surrogates else None
            if bad:
                return f"{bad} in {where or 'the value'} (not valid Unicode text)"
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep (at {where})"
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in pairs:
            if isinstance(k, str):
                bad = _bad_string(k) if surrogates else None
                if bad:
                    return f"{bad} in a key under {where or 'the top level'}"
                path = f"{where}.{k}" if where else k
            else:
                path = f"{where}[{k}]"
            stack.append((v, path, depth + 1))
    return None


class DuplicateKeyError(ValueError):
    """An object repeats a key: JSON would silently keep only its last value."""

    def __init__(self, key: str) -> None:
        super().__init__(f"invalid JSON: duplicate key {key!r} (an object gives it twice)")
        self.key = key

    def __reduce__(self) -> tuple[type, tuple[str]]:  # across processes (Ray, workers)
        return type(self), (self.key,)


def _repeated(pairs: list[tuple[str, Any]]) -> str:
    """The first key of ``pairs`` that an earlier pair already gave."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the object as a dict; a repeated key raises
    :class:`DuplicateKeyError` (one length check per object). Used by every reader that refuses
    repeated keys: :func:`parse_json`, the server's request bodies, ``rule:json_schema``."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateKeyError(_repeated(pairs))
    return obj


#: A decoder that refuses repeated keys, built once (``json.loads(..., object_pairs_hook=...)``
#: would build one per call).
_DECODER = json.JSONDecoder(object_pairs_hook=unique_keys)


class _Repeats(dict):  # type: ignore[type-arg]
    """An object that gave ``repeated`` twice (marked so that a JSON array names its row)."""

    repeated = ""


def marking_decoder(found: list[str]) -> json.JSONDecoder:
    """A decoder that marks objects with a repeated key (:class:`_Repeats`) and lists the keys
    in ``found``, so a whole JSON file parses in one pass and each bad row is named."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        marked = _Repeats(obj)
        marked.repeated = _repeated(pairs)
        found.append(marked.repeated)
        return marked

    return json.JSONDecoder(object_pairs_hook=hook)


def repeated_key(value: Any) -> str | None:
    """The key repeated in the first object :func:`marking_decoder` marked inside ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Repeats):
            return item.repeated
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_json(text: str) -> Any:
    """``json.loads`` that fails with a :class:`ValueError` saying why for every hostile input:
    syntax errors, a key repeated in one object, nesting deeper than :data:`MAX_DEPTH`, integers
    longer than Python converts (4,300 digits), lone surrogates. NaN and ±Infinity are read as
    floats; writers turn non-finite numbers into null (:func:`rewardkit.outputs.finite_json`)."""
    try:
        obj = _DECODER.decode(text)
    except DuplicateKeyError:
        raise
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        if nesting_depth(text) <= MAX_DEPTH:
            raise  # the caller's stack was deep, not this document
        raise ValueError(f"invalid JSON: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion…"
        raise ValueError(f"invalid JSON: number too long to read ({e})") from None
    problem = check_tree(obj, *scan_flags(text))
    if problem is not None:
        raise ValueError(f"invalid JSON: {problem}")
    return obj

"""Verdicts, made in the trusted parent from plain data the sandbox sent.

The harness writes one JSON object per line on its result channel (the process's stdout; the
solution's own prints go to stderr). Everything on it is untrusted: the solution can write there
too, or replace the harness's functions. So a line is only data: it is size-capped, parsed with a
depth limit, checked against a small schema, and decoded into builtin values (no object of the
solution's ever reaches the parent). A ``call`` test passes only when the decoded value equals the
expected value the parent kept to itself, a ``value`` test when every decoded operand passes its
check (:mod:`.checks`); the sandbox never saw either.

Messages: ``{"solution": "ok" | "<error>"}``; ``{"i": k, "value": <encoded>}`` for a value or
call test; ``{"i": k, "status": "<status>"}`` for an in-process test, or for a value/call test
that raised or timed out (a ``"passed"`` status counts only for an in-process test).
Encoded values: JSON null, booleans, numbers, strings and arrays (lists) as they are; a tuple,
set, frozenset, dict, bytes, complex or non-finite float as a one-key object
``{"tuple": [...]}``, ``{"set": [...]}``, ``{"frozenset": [...]}``, ``{"dict": [[k, v], ...]}``,
``{"bytes": "<hex>"}``, ``{"complex": [re, im]}``, ``{"float": "nan" | "inf" | "-inf"}``.
A line that fails anywhere on the way (size, JSON, schema, decoding: bad hex, a number too large,
an unhashable member) is malformed and ignored, so the test it would speak for fails: nothing on
the channel makes a verdict raise.
"""

from __future__ import annotations

import json
from typing import Any

from rewardkit.rewards.sandbox.checks import holds
from rewardkit.rewards.sandbox.plan import TestPlan

__all__ = ["ChannelError", "decode_value", "read_channel", "same_output", "step_statuses"]

#: Longest result line read (longer lines are malformed).
MAX_LINE_BYTES = 1 << 20
#: Deepest nesting of a decoded value.
MAX_DEPTH = 64
#: Most distinct members of a set or keys of a dict that may share one hash (more would make
#: building it quadratic: a response could stall the parent).
MAX_COLLISIONS = 64
#: Longest status text kept.
MAX_STATUS_CHARS = 300
_IN_PROCESS_STATUSES = ("passed", "failed", "timeout")


class ChannelError(ValueError):
    """A result line that is not well-formed data."""


def decode_value(obj: Any, depth: int = 0) -> Any:
    """Builtin value from its channel encoding; ChannelError on anything else (whatever made the
    decoding fail: bad hex, a number too large for a complex, an unhashable member...)."""
    try:
        return _decode(obj, depth)
    except ChannelError:
        raise
    except Exception as e:  # any failure: the line is malformed, never an error of the verdict
        raise ChannelError(f"cannot decode: {type(e).__name__}") from None


def _decode(obj: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ChannelError("value nested too deeply")
    t = type(obj)
    if obj is None or t in (bool, int, float, str):
        return obj
    if t is list:
        return [_decode(v, depth + 1) for v in obj]
    if t is not dict or len(obj) != 1:
        raise ChannelError(f"not an encoded value: {t.__name__}")
    ((tag, body),) = obj.items()
    if tag == "tuple" and type(body) is list:
        return tuple(_decode(v, depth + 1) for v in body)
    if tag in ("set", "frozenset") and type(body) is list:
        items = _few_collisions([_decode(v, depth + 1) for v in body])
        return set(items) if tag == "set" else frozenset(items)
    if tag == "dict" and type(body) is list:
        pairs = [_decode(p, depth + 1) for p in body]
        if not all(type(p) is list and len(p) == 2 for p in pairs):
            raise ChannelError("dict entries must be [key, value] pairs")
        _few_collisions([k for k, _ in pairs])
        return {k: v for k, v in pairs}
    if tag == "bytes" and type(body) is str:
        return bytes.fromhex(body)
    if tag == "complex" and type(body) is list and len(body) == 2:
        re_, im = body
        if type(re_) in (int, float) and type(im) in (int, float):
            return complex(re_, im)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    raise ChannelError(f"unknown encoded value {tag!r}")


def _few_collisions(keys: list[Any]) -> list[Any]:
    """``keys``, unless more than MAX_COLLISIONS distinct ones share a hash (ChannelError)."""
    first: dict[int, Any] = {}
    others: dict[int, int] = {}
    for key in keys:
        h = hash(key)
        if first.setdefault(h, key) != key:
            others[h] = others.get(h, 0) + 1
            if others[h] > MAX_COLLISIONS:
                raise ChannelError("too many members share a hash")
    return keys


def _message(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE_BYTES:
        raise ChannelError("line too long")
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError) as e:  # bad JSON, huge integers, deep nesting
        raise ChannelError(f"not JSON: {type(e).__name__}") from None
    if type(msg) is not dict:
        raise ChannelError("not a JSON object")
    return msg


def _status_text(value: Any) -> str:
    if type(value) is not str:
        raise ChannelError("status must be a string")
    return value[:MAX_STATUS_CHARS]


def read_channel(data: bytes, total: int) -> tuple[str | None, dict[int, tuple[str, Any]], int]:
    """(solution error or None, first well-formed result per test index, malformed line count).

    A result is ``("value", decoded)`` or ``("status", text)``; indices outside ``[0, total)``,
    repeated indices and anything else not in the schema count as malformed and are ignored.
    """
    solution: str | None = None
    results: dict[int, tuple[str, Any]] = {}
    malformed = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            msg = _message(line)
            keys = set(msg)
            if keys == {"solution"}:
                text = _status_text(msg["solution"])
                solution = None if text == "ok" else text
                continue
            if keys == {"done"}:
                continue
            i = msg.get("i")
            if type(i) is not int or not 0 <= i < total or i in results:
                raise ChannelError("bad or repeated test index")
            if keys == {"i", "value"}:
                results[i] = ("value", decode_value(msg["value"]))
            elif keys == {"i", "status"}:
                results[i] = ("status", _status_text(msg["status"]))
            else:
                raise ChannelError(f"unexpected keys {sorted(keys)[:5]}")
        except Exception:  # any line that is not well-formed data, whatever made it fail
            malformed += 1
    return solution, results, malformed


def _listify(x: Any) -> Any:
    """Tuples as lists, recursively (call-style outputs come from JSON, which has no tuples)."""
    if type(x) in (list, tuple):
        return [_listify(v) for v in x]
    if type(x) is dict:
        return {k: _listify(v) for k, v in x.items()}
    return x


def call_matches(got: Any, expected: Any) -> bool:
    """Call-style comparison: tuples compare as lists; APPS's one-element list wrapping of the
    expected output is accepted. False where the comparison cannot be made."""
    try:
        got, expected = _listify(got), _listify(expected)
        if got == expected:
            return True
        return type(expected) is list and len(expected) == 1 and got == expected[0]
    except Exception:
        return False


def step_statuses(plan: TestPlan, data: bytes, missing: str) -> tuple[list[str], str | None, int]:
    """Per-test statuses of a steps plan (or of a run of some of its tests) from the channel
    ``data``: (statuses in the order of the steps, solution error, malformed lines). A test
    without a well-formed result gets ``missing`` (or the solution's error when its top-level
    code failed)."""
    tests = [s["index"] for s in plan.steps if s["kind"] != "setup"]
    solution, results, malformed = read_channel(data, max(tests, default=-1) + 1)
    if solution is not None and missing == "not_run":
        missing = f"error: {solution}"
    statuses: list[str] = []
    for step in plan.steps:
        if step["kind"] == "setup":
            continue
        i = step["index"]
        got = results.get(i)
        if got is None:
            statuses.append(missing)
        elif step["kind"] == "test":
            text = got[1] if got[0] == "status" else "failed"
            ok = text in _IN_PROCESS_STATUSES or text.startswith("error: ")
            statuses.append(text if ok else "failed")
        elif got[0] == "status":
            text = got[1]
            statuses.append(text if text == "timeout" or text.startswith("error: ") else "failed")
        elif step["kind"] == "call":
            statuses.append("passed" if call_matches(got[1], plan.expected[i]) else "failed")
        else:
            checks = plan.expected[i]
            value = got[1]
            ok = type(value) is tuple and len(value) == len(checks)
            ok = ok and all(holds(c, v) for c, v in zip(checks, value, strict=True))
            statuses.append("passed" if ok else "failed")
    return statuses, solution, malformed


def same_output(got: bytes, expected: str) -> bool:
    """stdin/stdout comparison: stripped texts equal, or equal line by line ignoring trailing
    spaces (``\\r\\n`` read as ``\\n``)."""
    text = got.decode("utf-8", "replace").replace("\r\n", "\n")
    expected = expected.replace("\r\n", "\n")
    if text.strip() == expected.strip():
        return True
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return lines == [line.rstrip() for line in expected.strip().split("\n")]

"""List and object cells that pandas or ``datasets`` wrote into a CSV as Python reprs.

``DataFrame.to_csv`` (and ``Dataset.to_csv``, which goes through pandas) writes a list cell as
``str(value)``: a Python list gives ``[{'role': 'user', 'content': 'Hi'}]`` (single quotes, not
JSON) and a numpy array — a Parquet or ``datasets`` column read through pandas — gives
``['a' 'b']``, with no commas, which Python itself would read as the one string ``'ab'``.
:func:`parse_python_cell` reads both exactly (the items of a numpy repr are told apart by
tokens, never concatenated) or returns None, so such a cell is never taken for text by a reader
that expects a list (docs/data-formats.md, "CSV cells").
"""

from __future__ import annotations

import ast
import io
import tokenize
from typing import Any

from rewardkit.data.jsontext import MAX_DEPTH

#: Tokens that end one item of a list and tokens that start the next.
_ENDS = {tokenize.STRING, tokenize.NUMBER, tokenize.NAME}
_END_OPS = {"]", "}", ")"}
_STARTS = {tokenize.STRING, tokenize.NUMBER, tokenize.NAME}
_START_OPS = {"[", "{", "(", "-", "+"}
_SKIP = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


#: Stack marker of a numpy ``array(`` call, whose parentheses are not written out.
_ARRAY = "array("


def _array_call(tok: tokenize.TokenInfo, nxt: tokenize.TokenInfo | None) -> bool:
    """``array`` followed by ``(``: a numpy array's repr inside a list or dict cell."""
    return (
        tok.type == tokenize.NAME
        and tok.string == "array"
        and nxt is not None
        and (nxt.type == tokenize.OP and nxt.string == "(")
    )


def _array_dtype(stack: list[str], tok: tokenize.TokenInfo, nxt: tokenize.TokenInfo | None) -> bool:
    """``, dtype`` directly inside an ``array(`` call: its dtype argument, left out."""
    if not stack or stack[-1] != _ARRAY or nxt is None:
        return False
    comma = tok.type == tokenize.OP and tok.string == ","
    return comma and nxt.type == tokenize.NAME and nxt.string == "dtype"


def _is_end(tok: tokenize.TokenInfo) -> bool:
    return tok.type in _ENDS or (tok.type == tokenize.OP and tok.string in _END_OPS)


def _is_start(tok: tokenize.TokenInfo) -> bool:
    return tok.type in _STARTS or (tok.type == tokenize.OP and tok.string in _START_OPS)


def _with_commas(text: str) -> str | None:
    """``text`` with the commas a numpy repr leaves out put back between the items of its
    lists (``['a' 'b']`` → ``['a', 'b']``); None when it does not tokenize as one literal."""
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)]
    except (tokenize.TokenError, SyntaxError):
        return None
    toks = [t for t in toks if t.type not in _SKIP]
    out: list[str] = []
    stack: list[str] = []
    prev: tokenize.TokenInfo | None = None
    skipping = 0  # > 0: inside an array's ``, dtype=…`` argument, at that stack depth
    for i, tok in enumerate(toks):
        if tok.type in (tokenize.COMMENT, tokenize.ERRORTOKEN):
            return None
        if skipping:
            if tok.type == tokenize.OP and tok.string in "[{(":
                stack.append(tok.string)
            elif tok.type == tokenize.OP and tok.string in "]})":
                stack.pop()
                if len(stack) < skipping:  # the array's own ")" closed it
                    skipping = 0
                    prev = tok
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if prev is not None and _is_end(prev) and _is_start(tok):
            if not stack or stack[-1] != "[":
                return None  # 'a' 'b' outside a list: no repr writes that
            out.append(",")
        if _array_call(tok, nxt):  # numpy's ``array([...], dtype=object)``: the list itself
            after = toks[i + 2] if i + 2 < len(toks) else None
            if after is None or after.string != "[":
                return None  # numpy writes an array's items as one list
            stack.append(_ARRAY)
            prev = None
            continue
        if _array_dtype(stack, tok, nxt):
            skipping = len(stack)
            continue
        if stack and stack[-1] == _ARRAY and tok.string == ",":
            return None  # an array call's only other argument is its dtype
        if tok.type == tokenize.OP and tok.string == ")" and stack and stack[-1] == _ARRAY:
            stack.pop()
            prev = tok
            continue
        if prev is None and stack and stack[-1] == _ARRAY and tok.string == "(":
            continue  # the call's "(" after ``array``
        if tok.type == tokenize.OP and tok.string in "[{(":
            stack.append(tok.string)
            if len(stack) > MAX_DEPTH:
                return None
        elif tok.type == tokenize.OP and tok.string in "]})":
            if not stack:
                return None
            stack.pop()
        out.append(tok.string)
        prev = tok
    return " ".join(out)


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what JSON has (lists, string-keyed dicts, text, numbers,
    booleans, None): a tuple, set, bytes or complex number is not a data cell."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            stack.extend(item.values())
        elif item is not None and not isinstance(item, str | int | float | bool):
            return False
    return True


def parse_python_cell(text: str) -> list[Any] | dict[str, Any] | None:
    """A list or dict cell written as a Python or numpy repr, as the value; None for any other
    text (a plain answer, JSON — read by ``parse_json`` first — or a repr that holds something
    JSON has no value for, such as ``nan``). numpy arrays nested in a cell
    (``{'a': array(['x', 'y'], dtype=object)}``, as pandas writes UltraFeedback's completions)
    are read as their lists."""
    s = text.strip()
    if len(s) < 2 or s[0] not in "[{" or s[-1] not in "]}":
        return None
    fixed = _with_commas(s)
    if fixed is None:
        return None
    try:
        value = ast.literal_eval(fixed)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list | dict) or not _plain(value):
        return None
    return value

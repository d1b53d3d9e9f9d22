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
    out: list[str] = []
    stack: list[str] = []
    prev: tokenize.TokenInfo | None = None
    for tok in toks:
        if tok.type in _SKIP:
            continue
        if tok.type in (tokenize.COMMENT, tokenize.ERRORTOKEN):
            return None
        if prev is not None and _is_end(prev) and _is_start(tok):
            if not stack or stack[-1] != "[":
                return None  # 'a' 'b' outside a list: no repr writes that
            out.append(",")
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
    JSON has no value for, such as ``nan`` or ``array(...)``)."""
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

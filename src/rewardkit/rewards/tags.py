"""Tag blocks in model text (``<answer>…</answer>``, ``<think>…</think>``), found in linear time.

The lazy regex ``<answer>(.*?)</answer>`` rescans to the end of the text from every opening tag
that has no closing tag after it, so a response holding thousands of bare ``<answer>`` tags took
quadratic time (12 s for 160 KB, about 75 s for 400 KB), all of it holding the GIL. These scans
find the same blocks, left to right and without overlap, with one forward pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator


def tag_blocks(text: str, open_tag: str, close_tag: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the inside of each ``open_tag…close_tag`` block, left to right: the
    blocks (and their order) ``re.finditer(open(.*?)close, re.DOTALL)`` finds for literal tags."""
    pos = 0
    while True:
        start = text.find(open_tag, pos)
        if start < 0:
            return
        inner = start + len(open_tag)
        end = text.find(close_tag, inner)
        if end < 0:  # no block closes after here: none starts later either
            return
        yield inner, end
        pos = end + len(close_tag)


def last_block(text: str, open_tag: str, close_tag: str) -> str | None:
    """The inside of the last ``open_tag…close_tag`` block, or None when there is none."""
    last = deque(tag_blocks(text, open_tag, close_tag), maxlen=1)
    return text[last[0][0] : last[0][1]] if last else None


def strip_blocks(text: str, open_tag: str, close_tag: str) -> str:
    """``text`` without its ``open_tag…close_tag`` blocks (tags included), as
    ``re.sub(open.*?close, "", text, flags=re.DOTALL)`` leaves it."""
    parts, pos = [], 0
    for inner, end in tag_blocks(text, open_tag, close_tag):
        parts.append(text[pos : inner - len(open_tag)])
        pos = end + len(close_tag)
    parts.append(text[pos:])
    return "".join(parts)

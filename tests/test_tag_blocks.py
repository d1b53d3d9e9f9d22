"""Tag blocks found in linear time equal what the lazy regexes found (hypothesis), and hostile
responses of many unclosed tags stay cheap."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.rewards.judges.parse import parse_ranking
from rewardkit.rewards.rules import iou
from rewardkit.rewards.rules._common import answer_tag_content
from rewardkit.rewards.tags import last_block, strip_blocks, tag_blocks

PIECES = ["<answer>", "</answer>", "<think>", "</think>", "<", ">", "/", "a", "1", "\n", " "]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_blocks_equal_the_lazy_regex(text):
    for open_tag, close_tag in (("<answer>", "</answer>"), ("<think>", "</think>")):
        pattern = re.compile(re.escape(open_tag) + "(.*?)" + re.escape(close_tag), re.DOTALL)
        assert [text[a:b] for a, b in tag_blocks(text, open_tag, close_tag)] == pattern.findall(
            text
        )
        assert strip_blocks(text, open_tag, close_tag) == pattern.sub("", text)
        found = pattern.findall(text)
        assert last_block(text, open_tag, close_tag) == (found[-1] if found else None)


def test_worked_examples():
    assert answer_tag_content("x <answer>1</answer> y <answer>2</answer>") == "2"
    assert answer_tag_content("<answer>a<answer>b</answer>") == "a<answer>b"
    assert answer_tag_content("no tags") == "no tags"
    assert answer_tag_content("<answer>open only") == "<answer>open only"
    assert strip_blocks("a<think>x</think>b<think>y", "<think>", "</think>") == "ab<think>y"


def test_many_unclosed_tags_stay_linear():
    """400 KB of bare opening tags: ~75 s with the lazy regexes (quadratic), well under a
    second in one pass; the bound is generous so a busy machine cannot fail it."""
    hostile = "<answer>" * 50_000
    t0 = time.perf_counter()
    assert answer_tag_content(hostile) == hostile
    assert iou.parse_boxes("<box>" * 80_000) == []
    assert parse_ranking("<think>" * 50_000 + '{"ranking": [2, 1]}', 2) is not None
    assert time.perf_counter() - t0 < 20


def test_box_blocks_keep_their_reading():
    assert iou.parse_boxes("<box>(1,2),(3,4)</box> and [5, 6, 7, 8]") == [
        (1.0, 2.0, 3.0, 4.0),
        (5.0, 6.0, 7.0, 8.0),
    ]
    assert iou.parse_boxes("<box>" + "x" * 300 + "1,2,3,4</box>") == []

"""Hostile and held-out inputs to the text rules (round 42): the same answer in another Unicode
spelling, binary references, degenerate loops written without spaces, and a flood of boxes.

Each case failed before: a correct answer scored 0.0 when written decomposed (``"cafe\\u0301"``)
or followed by ``"。"``; ``b"P"`` was read as ``["80"]``; ``"!" * 200_000`` was one word (no
repetition or overlong penalty); 100,000 boxes took 9 s to match.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Query, load_reward
from rewardkit.rewards.rules import iou as iou_rule
from rewardkit.rewards.rules._common import (
    LONG_RUN,
    references,
    squad_normalize,
    word_count,
    words,
)
from rewardkit.rewards.rules.vqa import vqa_accuracy


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def score(spec: str, response: str, reference=None) -> float:
    return float(load_reward(spec).score([q(response, reference)])[0])


# -- one answer, several Unicode spellings ---------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("cafe\u0301", "caf\u00e9"),  # decomposed accent vs composed
        ("Ha\u0300 N\u00f4\u0323i", "H\u00e0 N\u1ed9i"),  # Vietnamese, mixed forms
        ("巴黎。", "巴黎"),  # CJK full stop
        ("«Paris»", "Paris"),
        ("Ｐａｒｉｓ", "Paris"),  # fullwidth letters
        ("１９９８年", "1998年"),
        ("Pa\u200bris", "Paris"),  # a zero-width space inside
        ("\ufeffParis\u200e", "Paris"),
    ],
)
def test_the_same_answer_in_another_spelling_matches(response, reference):
    assert score("rule:exact_match", response, reference) == 1.0
    assert score("rule:f1", response, reference) == 1.0
    assert score("rule:vqa", response, reference) == 1.0


def test_vqa_accuracy_reads_both_forms_alike():
    assert vqa_accuracy("cafe\u0301", ["caf\u00e9"] * 10) == 1.0
    assert vqa_accuracy("cafe", ["caf\u00e9"] * 10) == 0.0


@pytest.mark.parametrize(
    ("response", "reference"),
    [("25", "2⁵"), ("Lyon", "Paris。"), ("cafe", "café"), ("", "。"), (".", "«»")],
)
def test_different_answers_stay_different(response, reference):
    assert score("rule:exact_match", response, reference) == 0.0


def _squad_v11(text: str) -> str:
    """SQuAD v1.1's evaluate script's normalize_answer, with this repo's one departure (a text
    never normalises to nothing): what ASCII text must still give."""
    lowered = text.lower()
    no_punct = "".join(c for c in lowered if c not in set(string.punctuation))
    for stage in (re.sub(r"\b(a|an|the)\b", " ", no_punct), no_punct, lowered):
        if stage.split():
            return " ".join(stage.split())
    return ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_text_normalises_exactly_as_before(text):
    assert squad_normalize(text) == _squad_v11(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(text):
    once = squad_normalize(text)
    assert squad_normalize(once) == once


# -- references of odd types -----------------------------------------------------------------


def test_a_bytes_reference_is_its_text():
    assert references(b"Paris") == ["Paris"]
    assert references([b"Paris", "Lyon"]) == ["Paris", "Lyon"]
    assert references(np.array([b"Paris"])) == ["Paris"]
    assert score("rule:exact_match", "80", b"P") == 0.0  # b"P" was read as ["80"]
    assert score("rule:exact_match", "Paris", b"Paris") == 1.0


@pytest.mark.parametrize(
    "reference",
    [float("nan"), None, [None], np.array([np.nan]), {"target": np.array([], dtype=object)}],
)
def test_missing_references_do_not_apply(reference):
    for spec in ("rule:exact_match", "rule:f1", "rule:vqa", "rule:bleu", "rule:chrf"):
        assert math.isnan(score(spec, "Paris", reference)), spec


# -- degenerate loops without spaces ---------------------------------------------------------


@pytest.mark.parametrize("loop", ["!" * 200_000, "ha" * 100_000, "abc" * 50_000, "这是" * 20_000])
def test_a_loop_without_spaces_is_penalised(loop):
    assert score("rule:repetition", loop) < -0.99
    assert score("rule:overlong?max_len=1000&cache_len=100", loop) == -1.0


def test_a_long_run_that_does_not_repeat_is_not_penalised():
    rng = np.random.default_rng(0)
    blob = "".join(rng.choice(list("0123456789abcdef"), size=20_000))
    assert score("rule:repetition", blob) == 0.0
    assert word_count(blob) == math.ceil(20_000 / LONG_RUN)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=string.ascii_letters, min_size=1, max_size=LONG_RUN)))
def test_ascii_words_up_to_the_run_length_split_as_before(parts):
    text = " ".join(parts)
    assert words(text) == text.split()
    assert word_count(text) == len(text.split())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_word_count_is_the_number_of_words(text):
    pieces = words(text)
    assert word_count(text) == len(pieces)
    assert all(0 < len(w) <= LONG_RUN for w in pieces)


# -- a flood of boxes --------------------------------------------------------------------------


def test_a_flood_of_boxes_is_not_matched_and_is_named():
    reward = load_reward("rule:iou")
    flood = "[0,0,1,1]" * (iou_rule.MAX_BOXES + 1)
    full = reward.score_full([q(flood, [[0, 0, 1, 1]])])
    assert full.scores.tolist() == [0.0]
    assert "1,001 boxes" in full.stats["errors"][0]["error"]
    # at the bound it is still matched: one box right of 1,000
    edge = reward.score([q("[0,0,1,1]" * iou_rule.MAX_BOXES, [[0, 0, 1, 1]])])
    assert edge.tolist() == pytest.approx([1 / iou_rule.MAX_BOXES])
    # match=first reads the first box only: no bound needed
    first = load_reward("rule:iou?match=first").score([q(flood, [[0, 0, 1, 1]])])
    assert first.tolist() == [1.0]


def test_many_reference_boxes_raise_the_bound():
    gold = [[i, 0, i + 1, 1] for i in range(200)]
    response = "".join(f"[{i},0,{i + 1},1]" for i in range(1500))
    assert score("rule:iou", response, gold) == pytest.approx(200 / 1500)

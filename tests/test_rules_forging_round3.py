"""Scores the rule rewards gave to forged responses, closed (the round-3 forging probe;
docs/rules.md): invisible characters that glued words and escaped the length and repetition
penalties, look-alike letters that made a repeated sentence new, and ``rougeLsum``'s cost on a
long response."""

from __future__ import annotations

import math
import time

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules._common import word_count, words


def one(spec: str, response: str, reference=None) -> float:
    return float(
        load_reward(spec).score_one(Query(prompt="q", response=response, reference=reference))
    )


# -- 1. characters that show nothing separate words ------------------------------------------

#: Each was not a word break: 200 words glued with it counted as one word.
INVISIBLE = {
    "braille blank": "\u2800",
    "combining grapheme joiner": "\u034f",
    "variation selector 16": "\ufe0f",
    "variation selector 17": "\U000e0100",
    "tag space": "\U000e0020",
    "halfwidth Hangul filler": "\uffa0",
    "Hangul filler": "\u3164",
    "Mongolian selector": "\u180b",
    "Arabic letter mark": "\u061c",
    "interlinear annotation": "\ufff9",
    "Khmer inherent vowel": "\u17b4",
    "Egyptian format control": "\U00013430",
}


@pytest.mark.parametrize("glue", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_glue_does_not_escape_the_length_penalty(glue):
    glued = glue.join(["word"] * 200)
    assert word_count(glued) == 200 and len(words(glued)) == 200  # was 1 (Hangul filler: 399)
    assert one("rule:overlong?max_len=100&cache_len=10", glued) == -1.0  # was 0.0
    assert one("rule:overlong?max_len=100&cache_len=10", " ".join(["word"] * 200)) == -1.0


@pytest.mark.parametrize("mark", ["\ufe00", "\u034f", "\U000e0101"])
def test_invisible_marks_do_not_make_a_repeated_sentence_new(mark):
    honest = " ".join(["the cat sat on the mat"] * 16)
    marked = " ".join(f"the cat sat on the mat{mark * (i + 1)}" for i in range(16))
    want = -(1 - 6 / 94)  # 6 distinct 3-grams of 94
    assert one("rule:repetition", honest) == pytest.approx(want)
    assert one("rule:repetition", marked) == pytest.approx(want)  # was about −0.48


def test_invisible_glue_does_not_shorten_a_correct_answer_for_cosine():
    spec = "rule:cosine?unit=words&max_len=100"
    padded = "\u2800".join(["so"] * 300) + " \\boxed{42}"
    assert one(spec, padded, "42") == 0.5  # 301 words: the long bound (was 1.0: 2 words)
    one_word = 0.5 + 0.25 * (1 + math.cos(math.pi / 100))
    assert one(spec, "\\boxed{42}", "42") == pytest.approx(one_word)


def test_cjk_and_emoji_words_still_split_as_words():
    assert words("这是 test") == ["这", "是", "test"]
    assert words("한국어 문장") == ["한", "국", "어", "문", "장"]
    assert words("👍\ufe0f ok") == ["👍", "ok"]
    assert word_count("the\u200banswer") == 2


# -- 2. look-alike letters -------------------------------------------------------------------


def _styled(text: str, base: int) -> str:
    return "".join(chr(base + ord(c) - 97) if "a" <= c <= "z" else c for c in text)


def test_look_alike_letters_do_not_make_a_repeated_sentence_new():
    sentence = "the cat sat on the mat"
    # fullwidth and eight mathematical alphabets without holes at these letters
    bases = (0xFF41, 0x1D41A, 0x1D482, 0x1D4EA, 0x1D586, 0x1D5BA, 0x1D5EE, 0x1D622, 0x1D656)
    styled = " ".join([sentence, *(_styled(sentence, b) for b in bases)])
    honest = " ".join([sentence] * 10)
    assert one("rule:repetition", honest) == pytest.approx(-(1 - 6 / 58))
    assert one("rule:repetition", styled) == pytest.approx(-(1 - 6 / 58))  # was 0.0
    # CJK punctuation still separates words after the fold
    assert one("rule:repetition", "这是，测试，这是，测试") == pytest.approx(-1 / 3)


# -- 3. rougeLsum cost -----------------------------------------------------------------------

REF = "the quick brown fox jumps over the lazy dog near the river bank today. " * 30


def test_rouge_lsum_does_not_score_a_response_past_max_chars():
    reward = load_reward("rule:rouge_l?variant=rougeLsum")
    long = "fox jumps " * 50_000  # 500,000 characters on one line
    start = time.perf_counter()
    result = reward.score_full([Query(prompt="q", response=long, reference=REF)])
    assert time.perf_counter() - start < 1.0  # was 8 s and 450 MB
    assert float(result.scores[0]) == 0.0
    assert "max_chars=20,000" in result.stats["errors"][0]["error"]
    # an ordinary summary is scored as rouge-score scores it
    from rouge_score.rouge_scorer import RougeScorer

    short = "the quick brown fox\njumps over the dog"
    want = RougeScorer(["rougeLsum"]).score(REF, short)["rougeLsum"].fmeasure
    assert one("rule:rouge_l?variant=rougeLsum", short, REF) == pytest.approx(want)
    assert one("rule:rouge_l?variant=rougeLsum&max_chars=0", "fox jumps " * 100, REF) > 0


def test_rouge_max_chars_is_for_rouge_lsum_only():
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError, match="rougeLsum only"):
        load_reward("rule:rouge_l?max_chars=5")
    plain = load_reward("rule:rouge_l")
    assert "max_chars" not in plain.identity()  # rougeL fingerprints unchanged
    assert load_reward("rule:rouge_l?variant=rougeLsum").identity()["max_chars"] == 20_000


# -- 4. cosine bounds ------------------------------------------------------------------------


def test_cosine_bounds_that_pay_a_wrong_answer_more_are_refused():
    from rewardkit.errors import SpecError
    from rewardkit.rewards.rules import cosine

    bad = "rule:cosine?max_len=100&max_value_wrong=0.8&min_value_wrong=-1"
    with pytest.raises(SpecError, match=r"wrong answer score 0\.8"):
        load_reward(bad)  # accepted before: a long wrong answer scored 0.8, a long right 0.5
    with pytest.raises(SpecError, match="wrong answer"):
        cosine.compute_score("\\boxed{41}", "42", min_value_wrong=0.9)
    # the defaults, and a tie at the border, are accepted and score as before
    assert one("rule:cosine?max_len=100", "x" * 200 + "\\boxed{41}", "42") == -0.5
    tie = "rule:cosine?max_len=100&max_value_wrong=0.5&min_value_wrong=0"
    assert one(tie, "x" * 200 + "\\boxed{41}", "42") == 0.5

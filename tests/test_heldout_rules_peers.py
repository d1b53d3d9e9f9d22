"""Rule rewards against their reference implementations (docs/rules.md), on held-out text.

The peer numbers below were computed with the real peers (HF ``evaluate`` "bleu" = nmt
``compute_bleu`` with ``smooth=True`` on its 13a tokens; sacrebleu 2.6 ``BLEU(effective_order=
True)`` and ``CHRF``; rouge-score 0.1.2 ``score_multi``; the official VQA ``vqaEval.py``; verl's
``gsm8k.compute_score``; open-r1's ``format_reward`` regex) and are pinned here, so these tests
need none of the peers that rewardkit does not itself use.
"""

from __future__ import annotations

import math

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules import format as format_rule
from rewardkit.rewards.rules.vqa import vqa_accuracy, vqa_normalize


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def one(spec: str | dict, response: str, reference) -> float:
    """The rule's float64 score (``score()`` hands back float32)."""
    return load_reward(spec).score_one(q(response, reference))


UNICODE = ("Ünïcödé façade — naïve café, 東京タワー!", ["Unicode facade - naive cafe, 東京タワー"])
PUNCT = ("Hello,world.It's 3.14-5 & co.", ["Hello, world. It's 3.14 - 5 &amp; co.", "Hello world"])
TWO_REFS = (
    "The quick brown fox jumps over the lazy dog",
    ["A quick brown fox jumped over a lazy dog.", "The fast brown fox leaps over the lazy dog"],
)

# (case, HF evaluate bleu smooth=True, sacrebleu sentence BLEU / 100, chrF, chrF++, rougeL)
PEER_NUMBERS = [
    (UNICODE, 0.21105340631872638, 0.1104479556707894, 0.3042498718215378, 0.2831534425085618, 0.0),
    (PUNCT, 1.0, 1.0, 0.801917789592964, 0.6410299403637449, 0.9411764705882353),
    (TWO_REFS, 0.5410822690539396, 0.44632361378533303, 0.6671147413572688, 0.6285805208772413,
     0.7777777777777778),
]  # fmt: skip


@pytest.mark.parametrize(("case", "bleu", "sacre", "chrf", "chrfpp", "rouge"), PEER_NUMBERS)
def test_text_metrics_equal_their_peers(case, bleu, sacre, chrf, chrfpp, rouge):
    hyp, refs = case
    assert one("rule:bleu", hyp, refs) == pytest.approx(bleu, abs=1e-12)
    assert one("rule:bleu?method=sacrebleu", hyp, refs) == pytest.approx(sacre, abs=1e-12)
    assert one("rule:chrf", hyp, refs) == pytest.approx(chrf, abs=1e-12)
    assert one("rule:chrf?word_order=2", hyp, refs) == pytest.approx(chrfpp, abs=1e-12)
    assert one("rule:rouge_l", hyp, refs) == pytest.approx(rouge, abs=1e-12)


def test_sacrebleu_method_stays_in_unit_range():
    # sacrebleu reports 100.00000000000004 for PUNCT; the reward is documented in [0, 1]
    assert one("rule:bleu?method=sacrebleu", *PUNCT) <= 1.0


def test_bleu_ignores_a_reference_with_no_tokens():
    # "<skipped>" and "-\n" are non-blank but have no 13a token: nmt compute_bleu sets the brevity
    # penalty of every response to 0 for them; rewardkit leaves them out, as blank references.
    hyp = "hello there general kenobi"
    alone = one("rule:bleu", hyp, ["hello there"])
    assert alone == pytest.approx(0.47287080450158786, abs=1e-12)  # HF evaluate, one reference
    assert one("rule:bleu", hyp, ["hello there", "<skipped>"]) == alone  # was 0.4729 → same
    assert math.isnan(one("rule:bleu", "hello", ["<skipped>"]))  # was 0.8409: "does not apply"
    assert math.isnan(one("rule:bleu?method=sacrebleu", "hello", ["-\n"]))
    from rewardkit.rewards.rules.bleu import compute_score

    assert math.isnan(compute_score("hello", "<skipped>"))


def test_rouge_reference_without_rouge_tokens_does_not_apply():
    # rouge-score keeps only a-z0-9: a Chinese reference gave every response 0 (a silent
    # non-signal); now it is NaN, and a reference with tokens beside it still counts.
    assert math.isnan(one("rule:rouge_l", "东京塔很高", "东京塔很高"))
    assert math.isnan(one("rule:rouge_l", "anything", "!!! ???"))
    assert one("rule:rouge_l", "the tower is tall", ["东京塔很高", "the tower is tall"]) == 1.0
    value = load_reward("rule:rouge_l").score_one(q("x", "y"))
    assert type(value) is float and value == 0.0  # rouge-score returns the int 0 here


# Official VQA evaluation (vqaEval.py), run on these answers: accuracy per response.
VQA_ANSWERS = ["yes"] * 9 + ["no"]
VQA_CASES = [
    ("no", VQA_ANSWERS, 0.3),
    ("Yes.", VQA_ANSWERS, 1.0),
    ("2", ["2"] * 2 + ["3"] * 8, 0.6),
    ("two", ["2"] * 2 + ["3"] * 8, 0.6),
    ("The dog", ["dog"] * 3 + ["cat"] * 7, 0.9),
    ("white and black", ["white and black"] * 4 + ["black and white"] * 6, 1.0),
    ("5,000", ["5000"] * 10, 1.0),
    ("t-shirt?", ["t-shirt"] * 10, 1.0),
]


@pytest.mark.parametrize(("response", "answers", "official"), VQA_CASES)
def test_vqa_accuracy_equals_official_evaluation(response, answers, official):
    assert vqa_accuracy(response, answers) == pytest.approx(official)
    # ten human answers: rule:vqa's default aggregate is the VQA accuracy (was max: 1.0 for
    # the lone annotator's "no")
    assert one("rule:vqa", response, answers) == pytest.approx(official)


def test_vqa_answer_records_and_aggregate_option():
    records = [
        {"answer": a, "answer_confidence": "yes", "answer_id": i} for i, a in enumerate(VQA_ANSWERS)
    ]
    assert one("rule:vqa", "no", records) == pytest.approx(0.3)
    assert one("rule:vqa?aggregate=max", "no", VQA_ANSWERS) == 1.0
    assert one("rule:vqa?aggregate=vqa", "no", ["no", "yes", "yes"]) == pytest.approx(2 / 9)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        load_reward("rule:vqa?aggregate=mean")


def test_vqa_normalize_matches_official_steps():
    assert vqa_normalize("The  Two dogs.") == "2 dogs"
    assert vqa_normalize("1,000") == "1000"  # digit-comma-digit: punctuation dropped
    assert vqa_normalize("yes/no") == "yes no"  # glued slash: becomes a space
    assert vqa_normalize("3.5") == "3.5"  # a period before a digit stays


def test_vqa_number_words_in_number_mode():
    # the official evaluation maps zero…ten to digits; "two" for the reference "2" scored 0
    assert one("rule:vqa", "two", "2") == 1.0
    assert one("rule:vqa", "None.", "0") == 1.0
    assert one("rule:vqa", "the left one has 5", "1") == 0.0  # digits present: read as is


# verl gsm8k.compute_score(method="strict" / "flexible") on these responses, gold "42":
# rewardkit compares numbers, not strings, so it differs where docs/rules.md says it does.
GSM8K_CASES = [
    ("so 40 + 2 = 42\n#### 42", 1.0, 1.0, 1.0),
    ("#### 42.0", 0.0, 0.0, 1.0),
    ("#### 42.", 0.0, 0.0, 1.0),
    ("the answer is \\boxed{42}", 0.0, 1.0, 1.0),
    ("#### 41\nwait, #### 42", 0.0, 1.0, 1.0),
    ("#### 1,042", 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("response", "verl_strict", "verl_flexible", "ours"), GSM8K_CASES)
def test_gsm8k_against_verl(response, verl_strict, verl_flexible, ours):
    assert one("rule:gsm8k", response, "#### 42") == ours
    assert ours >= max(verl_strict, verl_flexible) or response.startswith("#### 1,042")


# open-r1 format_reward: re.match(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$",
# DOTALL | MULTILINE). Its MULTILINE "$" lets trailing text or a second answer pass.
FORMAT_CASES = [
    ("<think>\nx\n</think>\n<answer>\ny\n</answer>", 1.0, 1.0),
    ("<think>x</think><answer>y</answer>", 0.0, 1.0),
    ("<think>\nx\n</think>\n<answer>\ny\n</answer>\ntrailing", 1.0, 0.0),
    ("<think>\nx\n</think>\n<answer>\ny\n</answer>\n<answer>\nz\n</answer>", 1.0, 0.0),
    ("<think>\nx\n</think>\n<answer>\ny</answer>\n</answer>", 1.0, 0.0),
    ("x\n</think>\n<answer>\ny\n</answer>", 0.0, 0.0),
]
OPEN_R1 = "(?m)\\A<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$"


@pytest.mark.parametrize(("response", "open_r1", "ours"), FORMAT_CASES)
def test_format_default_and_open_r1_pattern(response, open_r1, ours):
    assert format_rule.compute_score(response) == ours
    # the documented pattern reproduces open-r1 exactly
    spec = {"type": "rule", "arg": "format", "pattern": OPEN_R1}
    assert one(spec, response, None) == open_r1


def test_overlong_and_repetition_equal_trl_and_open_r1():
    # TRL get_soft_overlong_punishment(50, 15) on lengths 30..60 (whitespace words here)
    expected = {30: 0.0, 35: 0.0, 36: -1 / 15, 40: -1 / 3, 50: -1.0, 51: -1.0}
    reward = load_reward("rule:overlong?max_len=50&cache_len=15")
    for n, value in expected.items():
        assert reward.score_one(q("w " * n)) == pytest.approx(value)
    # open-r1 repetition penalty, n=3: "a b c a b c" → 1 − 3/4
    assert load_reward("rule:repetition").score_one(q("A b c a B c")) == pytest.approx(-0.25)
    assert load_reward("rule:repetition").score_one(q("a b")) == 0.0

"""Rules added for parity with the peers' reward catalogues (docs/rules.md): ``rule:tag_count``
and ``rule:reasoning_steps`` (open-r1), ``rule:cosine`` (card C11; TRL / open-r1) and
``rule:xml_format`` (verifiers ``XMLParser``).

Hand-computed values first. The open-r1 and verifiers numbers pinned below were computed with
those peers' own functions (open-r1 1416fa0 ``rewards.py``, verifiers 39f0675
``parsers/xml_parser.py``); neither is a dependency. TRL is (the ``rl`` extra): where it is
installed, the cosine reward and the ``think_format_reward`` pattern are compared with TRL's own
functions, else those tests are skipped.
"""

from __future__ import annotations

import math
import time

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import DESCRIPTIONS, RULES, cosine, reasoning_steps, tag_count
from rewardkit.rewards.rules import xml_format as xml


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def one(spec: str | dict, response: str, reference=None) -> float:
    """The rule's float64 score (``score()`` hands back float32)."""
    return load_reward(spec).score_one(q(response, reference))


# Responses whose peer values are pinned below (same order).
CASES = [
    "<think>\nplan\n</think>\n<answer>\n42\n</answer>",
    "<think>\nplan\n</think>\n<answer>\n42\n</answer>\n<answer>\n43\n</answer>",
    "<think>plan</think><answer>42</answer>",
    "<think>\nplan\n</think>\nThe answer is 42.",
    "1. add\n2. carry\n3. done",
    "Step 1: add.\nStep 2: carry.\n- check\n* again",
    "First, Second, Next, Finally,",
    "  <think>a</think>\n<answer>b</answer>  ",
    "<answer>x</answer><think>y</think>",
    "<think>a</think>",
    "</answer> stray",
    "hello",
    "",
]
OPENR1_TAG_COUNT = [1.0, 0.5, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
OPENR1_REASONING_STEPS = [0, 0, 0, 0, 1 / 3, 1, 1, 0, 0, 0, 0, 0, 0]
VERIFIERS_XML_THINK_ANSWER = [1.0, 1.0, 1.0, 0.6, 0.2, 0.2, 0.2, 1.0, 0.6, 0.6, 0.2, 0.2, 0.2]
VERIFIERS_XML_REASONING_CODE_OR_ANSWER = [
    0.6, 0.6, 0.6, 0.2, 0.2, 0.2, 0.2, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2,
]  # fmt: skip


def test_new_rules_are_registered_and_described():
    for name in ("tag_count", "reasoning_steps", "cosine", "xml_format"):
        assert name in RULES and name in DESCRIPTIONS
        assert load_reward(f"rule:{name}").name == f"rule:{name}"


# -- rule:tag_count ------------------------------------------------------------------------------


def test_tag_count_hand_values():
    # open-r1's markers: "<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>", 0.25 each
    assert tag_count.tag_markers(("think", "answer")) == [
        "<think>\n",
        "\n</think>\n",
        "\n<answer>\n",
        "\n</answer>",
    ]
    assert tag_count.tag_count("<think>\nx\n</think>\n<answer>\n5\n</answer>") == 1.0
    assert tag_count.tag_count("<think>\nx\n</think>\nanswer: 5") == 0.5
    # a doubled closing think earns nothing for that marker: 3 of 4
    assert tag_count.tag_count("<think>\nx\n</think>\n\n</think>\n<answer>\n5\n</answer>") == 0.75
    # the empty layout is full credit (a shaping reward)
    assert tag_count.tag_count("<think>\n\n</think>\n<answer>\n\n</answer>") == 1.0
    assert tag_count.tag_count("") == 0.0
    # newlines=false: bare tags, any spacing
    bare = "rule:tag_count?newlines=false"
    assert one(bare, "<think>x</think><answer>5</answer>") == 1.0
    assert one(bare, "<think>x</think><think>y</think><answer>5</answer>") == 0.5
    # three tags: six markers of 1/6; the last tag's closing marker has no trailing newline
    three = "rule:tag_count?tags=plan,think,answer"
    text = "<plan>\np\n</plan>\n<think>\nt\n</think>\n<answer>\na\n</answer>"
    assert one(three, text) == 1.0
    assert one(three, "<plan>\np\n</plan>\n") == pytest.approx(2 / 6)
    assert tag_count.compute_score("<think>\nx\n</think>\n") == 0.5


def test_tag_count_equals_open_r1_on_pinned_cases():
    reward = load_reward("rule:tag_count")
    assert [reward.score_one(q(t)) for t in CASES] == OPENR1_TAG_COUNT


@pytest.mark.parametrize("tags", ["", "a b", "<x>", "x,x", "true"])
def test_tag_count_refuses_bad_tags(tags):
    spec = {"type": "rule", "arg": "tag_count", "tags": True if tags == "true" else tags}
    with pytest.raises(SpecError, match="rule:tag_count"):
        load_reward(spec)


# -- rule:reasoning_steps ------------------------------------------------------------------------


def test_reasoning_steps_hand_values():
    assert reasoning_steps.reasoning_steps("Step 1: add.\nStep 2: carry.") == pytest.approx(2 / 3)
    assert reasoning_steps.reasoning_steps("First, x. Second, y. Finally, z.") == 1.0
    assert reasoning_steps.reasoning_steps("step 1: lower case does not count") == 0.0
    assert reasoning_steps.reasoning_steps("no steps at all") == 0.0
    # open-r1's ^\d+\. has no MULTILINE: only the number at the very start counts
    listed = "1. a\n2. b\n3. c"
    assert one("rule:reasoning_steps", listed) == pytest.approx(1 / 3)
    assert one("rule:reasoning_steps?lines=true", listed) == 1.0
    # steps=: markers needed for full credit
    assert one("rule:reasoning_steps?steps=2", "Step 1: a\nStep 2: b") == 1.0
    assert one("rule:reasoning_steps?steps=5", "Step 1: a\nStep 2: b") == pytest.approx(0.4)
    assert reasoning_steps.compute_score("\n- a\n- b\n- c\n- d") == 1.0
    for bad in ("steps=0", "steps=2.5", "lines=maybe"):
        with pytest.raises(SpecError, match="rule:reasoning_steps"):
            load_reward(f"rule:reasoning_steps?{bad}")


def test_reasoning_steps_equals_open_r1_on_pinned_cases():
    reward = load_reward("rule:reasoning_steps")
    got = [reward.score_one(q(t)) for t in CASES]
    assert got == pytest.approx(OPENR1_REASONING_STEPS, abs=1e-15)


# -- rule:xml_format -----------------------------------------------------------------------------


def test_xml_format_hand_values():
    # 0.4 · sets present / k + 0.2 (spacing, always) + 0.2 start + 0.2 end
    assert xml.xml_format_score("<think>a</think>\n<answer>b</answer>") == pytest.approx(1.0)
    assert xml.xml_format_score("<think>a</think>") == pytest.approx(0.4 / 2 + 0.2 + 0.2)
    assert xml.xml_format_score("hello") == pytest.approx(0.2)
    # a stray tag makes its set present once some field is complete: 0.4 + 0.2 + 0.2
    assert xml.xml_format_score("<think>a</think> <answer>") == pytest.approx(0.8)
    # ...but no field complete: only the spacing term (and the start)
    assert xml.xml_format_score("<think> <answer>") == pytest.approx(0.4)
    # alternatives: the second set is code or answer
    alt = "rule:xml_format?fields=reasoning,code|answer"
    assert one(alt, "<reasoning>r</reasoning><code>c</code>") == pytest.approx(1.0)
    assert one(alt, "<reasoning>r</reasoning><answer>a</answer>") == pytest.approx(1.0)
    listed = {"type": "rule", "arg": "xml_format", "fields": ["reasoning", ["code", "answer"]]}
    assert one(listed, "<reasoning>r</reasoning><answer>a</answer>") == pytest.approx(1.0)
    assert load_reward(listed).fingerprint() == load_reward(alt).fingerprint()
    assert xml.compute_score("<think>a</think>") == pytest.approx(0.6)
    for bad in ("", "a b", "x,x", "x,y|x"):
        with pytest.raises(SpecError, match="rule:xml_format"):
            load_reward({"type": "rule", "arg": "xml_format", "fields": bad})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (None, VERIFIERS_XML_THINK_ANSWER),
        ("reasoning,code|answer", VERIFIERS_XML_REASONING_CODE_OR_ANSWER),
    ],
)
def test_xml_format_equals_verifiers_on_pinned_cases(fields, expected):
    spec = "rule:xml_format" + (f"?fields={fields}" if fields else "")
    reward = load_reward(spec)
    assert [reward.score_one(q(t)) for t in CASES] == pytest.approx(expected, abs=1e-12)


def test_xml_format_is_linear_on_many_unclosed_tags():
    # verifiers' <answer>\s*(.*?)\s*</answer> search rescans the text from every "<answer>"
    text = "<think>a</think>" + "<answer>" * 200_000
    start = time.perf_counter()
    assert one("rule:xml_format", text) == pytest.approx(0.4 + 0.2 + 0.2)
    assert time.perf_counter() - start < 10.0  # quadratic: hours; linear: well under a millisecond


# -- rule:cosine (card C11) ----------------------------------------------------------------------

CARD_LENGTHS = (0, 25, 50, 100, 200)
CARD_CORRECT = [1.0, 0.926777, 0.75, 0.5, 0.5]
CARD_WRONG = [-1.0, -0.926777, -0.75, -0.5, -0.5]


def test_cosine_card_c11_vector():
    """L_max = 100: L = 0, 25, 50, 100, 200 → 1, 0.926777, 0.75, 0.5, 0.5 / the negatives."""
    right = [cosine.cosine_scaled(n, 100, True) for n in CARD_LENGTHS]
    wrong = [cosine.cosine_scaled(n, 100, False) for n in CARD_LENGTHS]
    assert right == pytest.approx(CARD_CORRECT, abs=1e-6)
    assert wrong == pytest.approx(CARD_WRONG, abs=1e-6)
    assert cosine.cosine_scaled(25, 100, True) == pytest.approx(0.5 + 0.25 * (1 + math.sqrt(0.5)))
    # other bounds, e.g. the paper's (+2 short / +1 long when right)
    assert cosine.cosine_scaled(0, 10, True, min_value_correct=1, max_value_correct=2) == 2.0


def _padded(answer: str, length: int) -> str:
    """A response of exactly ``length`` characters ending in ``answer``."""
    return "x" * (length - len(answer)) + answer


def test_cosine_rule_scores_correctness_and_length():
    reward = load_reward("rule:cosine?max_len=100")
    right, wrong = r" \boxed{42}", r" \boxed{41}"
    got = [reward.score_one(q(_padded(a, n), "42")) for a in (right, wrong) for n in (25, 50, 200)]
    assert got == pytest.approx([0.926777, 0.75, 0.5, -0.926777, -0.75, -0.5], abs=1e-6)
    # NaN where the check does not apply: no reference (TRL: None)
    assert math.isnan(one("rule:cosine", r"\boxed{42}"))
    # no answer at all is wrong, not NaN
    no_answer = one("rule:cosine?max_len=100", "I do not know", "42")  # 13 characters
    assert no_answer == pytest.approx(-0.5 - 0.25 * (1 + math.cos(0.13 * math.pi)))
    # check=gsm8k and unit=words
    words = "rule:cosine?max_len=10&unit=words&check=gsm8k"
    assert one(words, "so #### 42", "42") == pytest.approx(cosine.cosine_scaled(3, 10, True))
    assert one(words, "a b c d e #### 7", "42") == pytest.approx(cosine.cosine_scaled(7, 10, False))
    assert cosine.compute_score(_padded(right, 50), "42", max_len=100) == pytest.approx(0.75)
    scores = reward.score([q(_padded(right, 50), "42"), q(_padded(right, 50))])
    assert scores[0] == pytest.approx(0.75) and math.isnan(scores[1])


def test_cosine_options_and_identity():
    base = load_reward("rule:cosine")
    assert base.options["max_len"] == 1000 and base.options["unit"] == "chars"
    assert base.fingerprint() != load_reward("rule:cosine?check=gsm8k").fingerprint()
    assert base.fingerprint() != load_reward("rule:cosine?max_value_correct=2").fingerprint()
    for bad in (
        "unit=tokens",
        "unit=lines",
        "check=bleu",
        "max_len=0",
        "max_len=2.5",
        "min_value_wrong=nan",
        "max_value_correct=high",
    ):
        with pytest.raises(SpecError, match="rule:cosine"):
            load_reward(f"rule:cosine?{bad}")


def test_cosine_counts_tokens_with_a_tokenizer():
    from transformers import AutoTokenizer

    from rewardkit.models.embedded import embedded_model_dir

    path = str(embedded_model_dir("smollm2"))
    text = r"First add the tens, then the ones: \boxed{42}"
    n = len(AutoTokenizer.from_pretrained(path)(text, add_special_tokens=False)["input_ids"])
    spec = {"type": "rule", "arg": "cosine", "max_len": 40, "tokenizer": path}
    reward = load_reward(spec)
    assert reward.options["unit"] == "tokens"
    assert reward.score_one(q(text, "42")) == pytest.approx(cosine.cosine_scaled(n, 40, True))


TRL_COSINE_CASES = [
    (r"\boxed{42}", "$42$"),
    ("w" * 30 + r" so \boxed{\frac{1}{3}}", r"$\frac{1}{3}$"),
    ("w" * 60 + r" \boxed{\frac{1}{2}}", r"$\frac{1}{3}$"),
    ("w" * 99 + r" \boxed{7}", "$7$"),
    ("w" * 150 + r" \boxed{8}", "$7$"),
    ("w" * 400 + r" \boxed{x^2+1}", "$x^2+1$"),
    ("no answer here", "$1000$"),
    ("w" * 10 + r" \boxed{\pi}", r"$\pi$"),
    ("w" * 70 + r" \boxed{3.14}", r"$\pi$"),
    ("", "$42$"),
]


@pytest.mark.parametrize("max_len", [50, 100, 1000])
def test_cosine_equals_trl(max_len):
    trl_rewards = pytest.importorskip("trl.rewards")
    texts = [t for t, _ in TRL_COSINE_CASES]
    golds = [g for _, g in TRL_COSINE_CASES]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    ids = [[0] * len(t) for t in texts]  # one token per character = unit=chars
    theirs = trl_rewards.get_cosine_scaled_reward(max_len=max_len)(completions, golds, ids)
    reward = load_reward(f"rule:cosine?max_len={max_len}")
    ours = [reward.score_one(q(t, g)) for t, g in zip(texts, golds, strict=True)]
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert {x > 0 for x in ours} == {True, False}  # both branches taken


# -- peer formats reproduced by rule:format?pattern= ---------------------------------------------

TRL_THINK_PATTERN = r"^<think>(?!.*<think>)(.*?)</think>.*$"
THINK_CASES = [
    *CASES,
    "<think>x</think> the answer",
    "<think>x<think>y</think>z",
    "<think>x</think><think>y</think>",
    " <think>x</think>",
    "<think>\nmulti\nline\n</think>\n\nanswer",
    "<think>never closed",
]


def test_trl_think_format_pattern_pinned():
    spec = {"type": "rule", "arg": "format", "pattern": TRL_THINK_PATTERN}
    reward = load_reward(spec)
    got = [reward.score_one(q(t)) for t in THINK_CASES[-6:]]
    assert got == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_trl_think_format_pattern_equals_trl():
    trl_rewards = pytest.importorskip("trl.rewards")
    spec = {"type": "rule", "arg": "format", "pattern": TRL_THINK_PATTERN}
    reward = load_reward(spec)
    completions = [[{"role": "assistant", "content": t}] for t in THINK_CASES]
    theirs = trl_rewards.think_format_reward(completions)
    assert [reward.score_one(q(t)) for t in THINK_CASES] == theirs


HOSTILE = [
    "",
    " \n\t",
    "\x00\ufeff\u200b",
    "<think>" * 1000,
    "</answer>" * 1000,
    r"\boxed{" * 200,
    "Step 1:" * 1000,
    "東京タワー" * 500,
    "NaN",
    "x" * 120_000,
]


@pytest.mark.parametrize(
    ("spec", "reference"),
    [
        ("rule:tag_count", None),
        ("rule:reasoning_steps", None),
        ("rule:xml_format", None),
        ("rule:cosine", "42"),
        ("rule:cosine?check=gsm8k", "42"),
        ("rule:cosine?check=exact_match", "Paris"),
    ],
)
def test_no_response_turns_a_new_rule_into_nan(spec, reference):
    """NaN ("does not apply") is never the response's choice (docs/rules.md, the NaN table)."""
    scores = load_reward(spec).score([q(r, reference) for r in HOSTILE])
    assert not any(math.isnan(float(s)) for s in scores), list(scores)


def test_cosine_passes_think_to_its_check():
    """think=require: the answer is read after the last </think>; none → the wrong branch."""
    r = load_reward("rule:cosine?think=require&max_len=100")
    done, plain, cut = r.score(
        [q("<think>hmm</think> \\boxed{4}", "4"), q("\\boxed{4}", "4"), q("<think>\\boxed{4}", "4")]
    )
    assert done > 0.5 and plain < -0.5 and cut < -0.5  # correct only with finished reasoning
    assert load_reward("rule:cosine?max_len=100").score([q("\\boxed{4}", "4")])[0] > 0.5

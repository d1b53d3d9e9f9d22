"""Rule rewards on held-out reference shapes and hostile responses (docs/rules.md).

Each test pins a defect found by comparing the rules with their reference implementations or
by feeding them the shapes real data files hold (Parquet arrays, SQuAD / VQA answer records,
NaN cells) and responses written to forge a reward.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit import Query, load_reward
from rewardkit.cli import app
from rewardkit.errors import SpecError
from rewardkit.rewards.rules.iou import parse_boxes, reference_boxes
from rewardkit.rewards.rules.vqa import extract_choice


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def one(spec: str | dict, response: str, reference) -> float:
    return load_reward(spec).score_one(q(response, reference))


# -- rule:iou ----------------------------------------------------------------------------------


def test_iou_reads_numpy_references():
    # a Parquet / verl ground_truth box is a numpy array: it scored NaN ("no reference")
    expected = 1 / 7  # card B9 vector
    for ref in (
        np.array([1, 1, 3, 3]),
        np.array([[1, 1, 3, 3]]),
        [np.int64(1), np.int64(1), np.int64(3), np.int64(3)],
        {"bbox_2d": np.array([1.0, 1.0, 3.0, 3.0], dtype=np.float32)},
    ):
        assert one("rule:iou", "[0, 0, 2, 2]", ref) == pytest.approx(expected)


def test_iou_non_finite_coordinates_are_no_box():
    # a NaN cell in a reference box gave IoU 1.0 to [0,0,2,2] (NaN comparisons are False); such
    # a reference is no box: NaN, and the row fails alone saying why
    bad = [[float("nan"), 1, 3, 3], [0, 0, float("inf"), 2]]
    result = load_reward("rule:iou").score_full([q("[0, 0, 2, 2]", ref) for ref in bad])
    assert all(math.isnan(s) for s in result.scores)
    assert [e["index"] for e in result.stats["errors"]] == [0, 1]
    assert "holds no box" in result.stats["errors"][1]["error"]
    # a response's 1e999 is no box either (not a NaN reward)
    assert one("rule:iou", "[0, 0, 1e999, 2]", [0, 0, 2, 2]) == 0.0
    assert reference_boxes([[float("nan"), 0, 1, 1], [0, 0, 2, 2]]) == [(0.0, 0.0, 2.0, 2.0)]


def test_iou_reads_every_json_number_form():
    # ".5", "+0" and "2e0" are numbers in model output / JSON: the box was not read (reward 0)
    assert parse_boxes("[.5, +0, 2e0, 2.]") == [(0.5, 0.0, 2.0, 2.0)]
    assert parse_boxes('{"bbox_2d": [1.5E2, -0.0, 3e+2, 4]}') == [(150.0, 0.0, 300.0, 4.0)]
    assert one("rule:iou", "<answer>[.5, 0, 2, 2]</answer>", [0, 0, 2, 2]) == pytest.approx(0.75)


def test_iou_threshold_must_be_an_iou():
    with pytest.raises(SpecError, match=r"threshold must be an IoU in \(0, 1\]"):
        load_reward("rule:iou?threshold=50")  # scored every box 0 before
    with pytest.raises(SpecError, match=r"threshold must be an IoU in \(0, 1\]"):
        load_reward("rule:iou?threshold=0")  # scored every box 1 (1[IoU >= 0])


def test_iou_listing_many_boxes_does_not_pay():
    many = " ".join(f"[{i}, {i}, {i + 2}, {i + 2}]" for i in range(20))
    assert one("rule:iou", many, [0, 0, 2, 2]) == pytest.approx(1 / 20)
    assert one("rule:iou?match=first", "[5, 5, 6, 6] " + many, [0, 0, 2, 2]) == 0.0


# -- rule:vqa ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is a dog.", None),  # was "A": the article read as an option letter
        ("(A) is wrong. The answer is (C).", "C"),  # was "A": the label beat the stated answer
        ("Answer: a", "A"),
        ("the answer is (b)", "B"),
        ("B) The answer is obvious", "B"),
    ],
)
def test_vqa_choice_reading(text, letter):
    assert extract_choice(text) == letter


def test_vqa_choice_cannot_be_forged_by_listing_letters():
    for response in (
        "A B C D",
        "(A) (B) (C) (D)",
        "The answer is A. The answer is B. The answer is C.",
    ):
        wins = [one("rule:vqa", response, letter) for letter in "ABCD"]
        assert sum(wins) <= 1.0


# -- rule:json_schema --------------------------------------------------------------------------


def test_json_schema_unresolvable_ref_fails_its_row_alone():
    reward = load_reward("rule:json_schema")
    rows = [
        q('{"a": 1}', json.dumps({"$ref": "http://example.invalid/s.json"})),
        q('{"a": 1}', json.dumps({"$ref": "#/definitions/nowhere"})),
        q('{"a": 1}', '{"type": "object"}'),
    ]
    result = reward.score_full(rows)  # raised _WrappedReferencingError for the whole batch
    assert math.isnan(result.scores[0]) and math.isnan(result.scores[1])
    assert result.scores[2] == 1.0
    assert [e["index"] for e in result.stats["errors"]] == [0, 1]
    assert "cannot be applied" in result.stats["errors"][0]["error"]


def test_json_schema_list_of_schemas_is_any_of():
    schemas = ['{"type": "array"}', {"type": "object", "required": ["a"]}]
    assert one("rule:json_schema", '{"a": 1}', schemas) == 1.0  # was a "not a schema" failure
    assert one("rule:json_schema", '"text"', schemas) == 0.0
    assert math.isnan(one("rule:json_schema", '{"a": 1}', [None, float("nan")]))
    from rewardkit.rewards.rules.json_schema import compute_score

    assert math.isnan(compute_score('{"a": 1}', float("nan")))  # raised on the NaN before


# -- rule:gsm8k --------------------------------------------------------------------------------


def test_gsm8k_markdown_heading_is_no_answer_marker():
    response = "#### Step 1: add\n40 + 2 = 42\n#### Step 2: answer\nSo the answer is 42."
    assert one("rule:gsm8k", response, "#### 42") == 1.0  # read "Step 2" → 2 before
    assert one("rule:gsm8k", "#### $1,234.50", "1234.5") == 1.0
    assert one("rule:gsm8k", "####\n-7", "-7") == 1.0


def test_gsm8k_typographic_minus_is_a_sign():
    # U+2212 was dropped: "−5" read as 5, so a wrong sign earned the reward
    for response in ("#### \u22125", "The answer is \u22125.", "\\boxed{\u22125}"):
        assert one("rule:gsm8k", response, "5") == 0.0
        assert one("rule:gsm8k", response, "-5") == 1.0
    assert one("rule:vqa", "\u22123", "-3") == 1.0


@pytest.mark.parametrize("minus", ["\u2212", "\u2013", "\u2012", "\u2010", "\ufe63", "\uff0d"])
def test_every_minus_sign_models_write_is_a_sign(minus):
    # en dash, fullwidth and small hyphen-minus were dropped like U+2212 was: "It is –5" scored 5
    for spec in ("rule:gsm8k", "rule:vqa"):
        assert one(spec, f"It is {minus}5", "5") == 0.0
        assert one(spec, f"It is {minus}5", "-5") == 1.0
    assert one("rule:gsm8k", "pages 3\u20135", "5") == 1.0  # a range, not a sign
    assert one("rule:gsm8k", "the answer\u20145", "5") == 1.0  # an em dash is punctuation


@pytest.mark.parametrize(
    "response",
    [
        "It is \u221242",  # U+2212 minus: the fast path read a bare 42
        "x = \u201342",
        "It is \uff0d42",
        "#### \u221242",
        "It is \u226042",  # ≠ 42
        "It is \u221a42",  # √42
        "It is >42",
        "It is ~42",
        "It is 42 \u2212 1",
    ],
)
def test_math_fast_path_leaves_signs_and_relations_to_math_verify(response):
    # each scored 1.0 on the fast path against 42 while math-verify (fast=false) gives 0
    assert one("rule:math", response, "42") == one("rule:math?fast=false", response, "42") == 0.0


@pytest.mark.parametrize("response", ["It is \uff14\uff12", "\\boxed{\uff14\uff12}"])
def test_math_fullwidth_digits_are_digits_on_both_paths(response):
    # fullwidth digits: math-verify reads no number, so both paths scored 0 against 42; they are
    # read as ASCII digits first (math_units.plain_numerals), so both paths give 1.0, as rule:gsm8k
    assert one("rule:math", response, "42") == one("rule:math?fast=false", response, "42") == 1.0
    assert one("rule:math", response, "41") == one("rule:math?fast=false", response, "41") == 0.0


def test_gsm8k_repeated_candidates_count_once():
    # every candidate after one marker: the first number on the line is the answer
    assert one("rule:gsm8k", "#### 40 41 42 43", "42") == 0.0
    assert one("rule:gsm8k", "#### 42 #### 43", "43") == 0.0


# -- answer records as references (SQuAD / VQA / TriviaQA shapes) -------------------------------


def test_answer_records_are_read_as_their_texts():
    squad = {
        "text": ["Denver Broncos", "Denver Broncos", "Broncos"],
        "answer_start": [177, 177, 217],
    }
    assert one("rule:exact_match", "The Denver Broncos.", squad) == 1.0  # str(dict) before: 0
    assert one(
        "rule:f1", "the Broncos", {"text": ["Denver Broncos"], "answer_start": [1]}
    ) == pytest.approx(2 / 3)
    trivia = {"aliases": ["Sunset Blvd", "Sunset Boulevard"], "value": "Sunset Blvd."}
    assert one("rule:exact_match", "sunset boulevard", trivia) == 1.0
    vqa = [{"answer": a, "answer_id": i} for i, a in enumerate(["yes"] * 9 + ["no"])]
    assert one("rule:vqa", "no", vqa) == pytest.approx(0.3)
    assert one("rule:bleu", "a b c d", np.array(["a b c d"])) == 1.0


def test_unknown_mapping_reference_fails_its_row_alone(tmp_path: Path):
    reward = load_reward("rule:exact_match")
    result = reward.score_full([q("x", {"label": 1}), q("x", "x"), q("x", float("nan"))])
    assert math.isnan(result.scores[0]) and result.scores[1] == 1.0 and math.isnan(result.scores[2])
    assert (
        result.stats["failed"] == 1
        and "mapping with keys ['label']" in result.stats["errors"][0]["error"]
    )
    data = tmp_path / "d.jsonl"
    rows = [
        {"prompt": "a", "response": "Paris", "reference": {"label": "Paris"}},
        {"prompt": "a", "response": "Paris", "reference": {"text": ["Paris"], "answer_start": [0]}},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(
        app, ["score", "-r", "rule:exact_match", "--data", str(data), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "row" in res.output
    assert [json.loads(x)["reward"] for x in out.read_text().splitlines()] == [None, 1.0]


# -- forging by echoing the reference or every candidate ----------------------------------------


def test_echoing_candidates_does_not_earn_full_marks():
    ref = "Paris"
    echo = "Paris London Berlin Rome Madrid"
    assert one("rule:exact_match", echo, ref) == 0.0
    assert one("rule:f1", echo, ref) == pytest.approx(2 * (1 / 5) / (1 + 1 / 5))
    # the reference written in a comment beside a wrong answer
    assert one("rule:exact_match", "Lyon <!-- reference: Paris -->", ref) == 0.0
    # BLEU clips repeats against the reference counts; the whole reference repeated is < 1
    assert one("rule:bleu", "the cat sat " * 20, "the cat sat") < 0.3
    # a closing tag injected inside the answer fails the layout
    assert one("rule:format", "<think>x</think><answer>y</answer></answer>", None) == 0.0
    # a huge response is scored, not an error
    assert one("rule:repetition", "word " * 200_000, None) == pytest.approx(-(1 - 1 / 199_998))


# -- rule:rouge_l on a huge response ------------------------------------------------------------


def _lcs_dp(a: list[str], b: list[str]) -> int:
    """The textbook LCS table (what rouge-score computes), for short lists."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev, row = row, [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
    return row[-1]


def test_rouge_lcs_is_exact_and_linear_in_memory():
    import random
    import tracemalloc

    from rewardkit.rewards.rules.rouge import lcs_length

    rng = random.Random(11)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 30))]
        assert lcs_length(a, b) == _lcs_dp(a, b)
    ref = " ".join(f"w{i % 50}" for i in range(500))
    hostile = " ".join(f"w{i % 37}" for i in range(40_000))  # rouge-score: a 2·10^7-cell table
    reward = load_reward("rule:rouge_l")
    reward.score_one(q("a b", "a"))  # imports and set-up outside the measured call
    tracemalloc.start()
    try:
        value = reward.score_one(q(hostile, ref))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32_000_000  # linear: ~3 MB; rouge-score's table held 2·10^7 cells (≥ 160 MB)
    lcs = lcs_length(ref.split(), hostile.split())
    p, r = lcs / 40_000, lcs / 500
    assert value == pytest.approx(2 * p * r / (p + r))


def test_integer_answers_stored_as_floats_still_match():
    pd = pytest.importorskip("pandas")
    column = pd.DataFrame({"answer": [18, None]})["answer"]  # int column with a gap → float64
    assert column.dtype == "float64"
    assert one("rule:exact_match", "18", column[0]) == 1.0  # "18.0" before: 0.0
    assert math.isnan(one("rule:exact_match", "nan", column[1]))
    assert one("rule:f1", "2.5", [np.float32(2.5)]) == 1.0


def test_spec_none_values_and_a_bare_rule_are_read_or_named():
    """``rule:bleu?tokenize=none`` (the spec grammar reads "none" as null) is the ``none``
    tokenizer; a bare ``rule`` says it needs a name."""
    q = [Query("Say it.", "the cat sat", reference="the cat sat")]
    assert load_reward("rule:bleu?tokenize=none").score(q)[0] == pytest.approx(1.0)
    assert load_reward("rule:bleu?method=sacrebleu&smooth_method=none").score(q)[0] == 1.0
    with pytest.raises(SpecError, match=r"rule needs a NAME \(rule:NAME\)"):
        load_reward("rule")

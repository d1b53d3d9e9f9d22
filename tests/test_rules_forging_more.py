"""Scores the rule rewards gave to forged or hidden answers, closed (the rulesforge probe;
docs/rules.md): a NaN the response chose, arithmetic claims hidden by notation, a percent that
matched two scales, CJK text that escaped the length and repetition penalties, ``threshold=0``,
duplicate JSON keys and ``$ref`` s only some responses reach, look-alike format tags, chrF's
unbounded cost, and gsm8k's zero denominators and comma joins."""

from __future__ import annotations

import http.server
import json
import math
import threading
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import arithmetic, chrf, gsm8k, iou, json_schema
from rewardkit.rewards.rules._common import LONG_RUN, word_count, words
from rewardkit.rewards.rules.math_answer import compute_score as math_score


def q(response: str, reference=None, prompt: str = "q") -> Query:
    return Query(prompt=prompt, response=response, reference=reference)


def one(spec, response: str, reference=None, prompt: str = "q") -> float:
    return float(load_reward(spec).score_one(q(response, reference, prompt)))


# -- 1. NaN is never the response's choice ---------------------------------------------------

WEIGHTED = {"weighted": {"rule:format": 0.5, "rule:arithmetic": 0.5}}
SHOWN_WRONG = "<think>3 * 4 = 13</think><answer>13</answer>"
HIDDEN = {
    "middle dot": "<think>3·4 = 13</think><answer>13</answer>",
    "LaTeX power": "<think>$2^{2} = 5$</think><answer>5</answer>",
    "no work shown": "<think>trust me</think><answer>13</answer>",
}


def test_hiding_or_omitting_arithmetic_never_beats_showing_it_wrong():
    from rewardkit.integrations.verl import compute_score

    reward = load_reward(WEIGHTED)
    shown = float(reward.score([q(SHOWN_WRONG)])[0])
    assert shown == 0.5  # format 1.0, arithmetic 0.0
    for name, response in HIDDEN.items():
        assert float(reward.score([q(response)])[0]) <= shown, name  # each scored 1.0 before
        verl = compute_score(
            data_source="x", solution_str=response, ground_truth="12", spec=WEIGHTED
        )
        assert verl["score"] <= shown, name
    right = "<think>3 * 4 = 12</think><answer>12</answer>"
    assert float(reward.score([q(right)])[0]) == 1.0


def test_no_claims_is_a_score_in_0_1_never_nan():
    assert one("rule:arithmetic", "no work") == 0.0
    assert one("rule:arithmetic?no_claims=0.25", "no work") == 0.25
    assert arithmetic.compute_score("no work", None, no_claims=0.5) == 0.5
    assert math.isnan(arithmetic.arithmetic_score("no work"))  # the A15 feature keeps NaN
    for bad in ("2", "-1", "nan", "yes"):
        with pytest.raises(SpecError, match="no_claims"):
            load_reward(f"rule:arithmetic?no_claims={bad}")
    a, b = load_reward("rule:arithmetic"), load_reward("rule:arithmetic?no_claims=0.5")
    assert a.fingerprint() != b.fingerprint()


HOSTILE = [
    "",
    " ",
    "nan",
    "NaN",
    "\\boxed{}",
    "#### 42/0",
    "\\boxed{\\frac{1}{0}}",
    "<answer></answer>",
    '{"a": 1, "a": 2}',
    "1e999",
    "\u200b",
    "这个",
    "9**9**9**9 = 1",
    "[nan, nan, 1, 1]",
    "(" * 500,
    "x" * 120_000,
]
WITH_REFERENCE = [
    ("rule:math", "42"), ("rule:gsm8k", "42"), ("rule:bleu", "the cat sat"),
    ("rule:chrf", "the cat sat"), ("rule:rouge_l", "the cat sat"), ("rule:exact_match", "cat"),
    ("rule:f1", "cat"), ("rule:vqa", "yes"), ("rule:iou", [0, 0, 1, 1]),
    ({"type": "rule", "arg": "json_schema", "schema": {"type": "object"}}, None),
    ("rule:format", None), ("rule:json", None), ("rule:overlong", None),
    ("rule:repetition", None), ("rule:arithmetic", None),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "reference"), WITH_REFERENCE, ids=lambda x: str(x)[:20])
def test_no_response_turns_a_rule_into_nan(spec, reference):
    """With a usable reference (or none needed), whatever the response writes scores a number:
    NaN ("does not apply") is never the response's choice (docs/rules.md, the NaN table)."""
    scores = load_reward(spec).score([q(r, reference) for r in HOSTILE])
    assert not any(math.isnan(float(s)) for s in scores), list(scores)


# -- 2. arithmetic: notations read, every link checked ---------------------------------------

TRUE = "First, 2 + 2 = 4.\n"
HIDDEN_FALSE = {
    "chain tail": "3 * 4 = 12 = 13",
    "LaTeX power": "$2^{10} = 1000$",
    "middle dot": "3·4 = 13",
    "dot operator": "3⋅4 = 13",
    "em dash minus": "12 — 7 = 6",
    "fullwidth equals": "3 * 4 ＝ 13",
    "no-break space": "3 * 4 =\u00a013",
    "approx": r"$3 \times 4 \approx 13$",
    "sqrt": r"$\sqrt{16} = 5$",
    "left right": r"$\left(3 + 4\right) \times 2 = 15$",
    "percent of": "20% of 50 = 11",
    "boxed": r"$3 \times 4 = \boxed{13}$",
    "text": r"3 * 4 = \text{13}",
    "superscript": "3² = 10",
    "zero-width inside a number": "3 * 4 = 1\u200b3",
    "long chain": "3 * 4 = " + "12 = " * 21 + "13",
    "side past the evaluator's limit": "1" + " + 0" * 60 + " = 2",
    "fraction": r"\frac{1}{2} + \frac{1}{4} = 0.9",
    "mixed number": "3 1/2 + 1/2 = 5",
    "implicit product": "2(3 + 4) = 15",
}


@pytest.mark.parametrize("claim", HIDDEN_FALSE.values(), ids=HIDDEN_FALSE.keys())
def test_a_false_claim_in_a_common_notation_counts(claim):
    """Each scored 1.0 beside a true claim: the false one was never found (or skipped)."""
    assert arithmetic.compute_score(TRUE + claim) < 1.0
    assert any(c.holds is not True for c in arithmetic.find_claims(claim))


@pytest.mark.parametrize(
    "claim",
    [
        "3 * 4 = 12 = 12.0", "$2^{10} = 1024$", "3·4 = 12", "12 — 7 = 5", "3 * 4 ＝ 12",
        r"$\sqrt{2} \approx 1.414$", r"$\sqrt{16} = 4$", "20% of 50 = 10", "3² = 9",
        r"$3 \times 4 = \boxed{12}$", "3 1/2 + 1/2 = 4", r"2\frac{1}{2} + 1 = 3.5", "2(3 + 4) = 14",
        "Step 1 — 3 + 4 = 7", "1. 3 * 4 = 12", "45 + 21 + 28 = 94%", "2/3 = 66.67%", "7 % 4 = 3",
        "(1/2) 278 + 11 = 150", r"10\sqrt{4} = 20", "350 000 + 17500 = 367 500",
    ],
)  # fmt: skip
def test_the_same_notations_written_truly_hold(claim):
    assert arithmetic.compute_score(claim) == 1.0, arithmetic.find_claims(claim)


@pytest.mark.parametrize(
    "text",
    ["f(2) = 4", r"\pi (4)^2 = 16", r"A = 36\pi - 16\pi = 20\pi", "P(5, 3) = 5 * 4 * 3",
     "27 - 9 = (6 * x) - (3 * x)", r"63 \div 5 = 12 \text{ remainder } 3", "x + 2 = 5"],
)  # fmt: skip
def test_algebra_and_functions_are_no_arithmetic_claims(text):
    assert arithmetic.find_claims(text) == []


OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
FULLWIDTH = str.maketrans("0123456789-=+*", "０１２３４５６７８９－＝＋＊")


def _zw(n: int) -> str:
    return "\u200b".join(str(n))


LATEX_OP = {"+": "+", "-": "-", "*": "\\times"}
CDOT_OP = {"+": "+", "-": "-", "*": "\\cdot"}
UNICODE_OP = {"+": "+", "-": "−", "*": "·"}


def _render(how: str, a: int, o: str, b: int, c: int) -> str:
    """The claim ``a o b = c`` in the notation ``how``."""
    minus = str(c).replace("-", "−")
    return {
        "latex": f"${a} " + LATEX_OP[o] + f" {b} = {c}$",
        "cdot": "\\(" + f"{a} " + CDOT_OP[o] + f" {b} = {c}" + "\\)",
        "unicode": f"{a} {UNICODE_OP[o]} {b} = {minus}",
        "times sign": f"{a} {'×' if o == '*' else o} {b} = {c}",
        "fullwidth": f"{a} {o} {b} = {c}".translate(FULLWIDTH),
        "no-break spaces": f"{a}\u00a0{o}\u00a0{b}\u00a0=\u00a0{c}",
        "zero-width": f"{_zw(a)} {o} {_zw(b)} = {c}",
        "left right": "\\left(" + f"{a} {o} {b}" + "\\right)" + f" = {c}",
        "boxed": f"{a} {o} {b} = " + "\\boxed{" + f"{c}" + "}",
        "bold": f"**{a} {o} {b} = {c}**",
        "text": "$\\mathbf{" + f"{a}" + "}" + f" {o} {b} = " + "\\text{" + f"{c}" + "}$",
    }[how]


HOWS = ["latex", "cdot", "unicode", "times sign", "fullwidth", "no-break spaces", "zero-width",
        "left right", "boxed", "bold", "text"]  # fmt: skip
JUNK = ["⊕", "@", "#", "§", "¤", "☃", "\\foo", "‽", "|x"]


@settings(max_examples=150, deadline=None)
@given(
    a=st.integers(0, 999),
    b=st.integers(0, 999),
    op=st.sampled_from(sorted(OPS)),
    off=st.sampled_from([0, 0, 1, -3, 10]),
    how=st.sampled_from(HOWS),
    prefix=st.booleans(),
)
def test_property_a_known_notation_scores_as_the_plain_claim(a, b, op, off, how, prefix):
    c = OPS[op](a, b) + off
    plain = f"{a} {op} {b} = {c}"
    lead = TRUE if prefix else ""
    want = arithmetic.compute_score(lead + plain)
    assert arithmetic.compute_score(lead + _render(how, a, op, b, c)) == want


@settings(max_examples=200, deadline=None)
@given(
    a=st.integers(0, 999),
    b=st.integers(0, 999),
    op=st.sampled_from(sorted(OPS)),
    off=st.sampled_from([0, 1, -3, 10]),
    junk=st.sampled_from(JUNK),
    where=st.floats(0, 1),
)
def test_property_an_unknown_notation_never_raises_the_score(a, b, op, off, junk, where):
    """Anything unrecognised inserted into a claim gives at most the plain claim's score: the
    claim is then no claim (0.0, no NaN to escape to) or still read, never read as true."""
    plain = f"{a} {op} {b} = {OPS[op](a, b) + off}"
    i = int(where * len(plain))
    assert arithmetic.compute_score(plain[:i] + junk + plain[i:]) <= arithmetic.compute_score(plain)


def test_arithmetic_stays_bounded_on_hostile_text():
    t0 = time.perf_counter()
    for text in ("(" * 100_000 + "3 = 3", "1 (" * 50_000 + " = 2", "2^{5000} = 3",
                 "\\sqrt{" * 30_000 + "3 = 3", "(1+1) " * 40_000 + "= 2", "1 = " * 100_000):  # fmt: skip
        arithmetic.compute_score(text)
    assert time.perf_counter() - t0 < 5
    assert arithmetic.compute_score("2^{5000} = 3") == 0.0  # refused: not a true claim


# -- 3. rule:math: one percent scale per query -----------------------------------------------


def test_a_percent_answer_matches_one_scale():
    box = "\\boxed{42\\%}"
    assert [one("rule:math", box, g) for g in ("42", "0.42", "42\\%")] == [0.0, 1.0, 1.0]
    asks = "What percentage of the cars are red?"
    assert [one("rule:math", box, g, asks) for g in ("42", "0.42")] == [1.0, 0.0]
    # a reference solution that gives its answer as a percent says the scale too
    assert one("rule:math", box, "so $r = \\boxed{42}\\%$.") == 1.0
    assert math_score(box, "42") == 0.0 and math_score(box, "42", prompt=asks) == 1.0
    assert one("rule:math", "\\boxed{0.42}", "42", asks) == 0.0  # no leniency the other way


def test_percent_reading_holds_off_the_main_thread_too():
    out: list[float] = []
    asks = "By what percent does the area decrease?"
    box = "\\boxed{10\\%}"

    def run() -> None:
        out.extend([one("rule:math", box, "10", asks), one("rule:math", box, "10")])

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    assert out == [1.0, 0.0]


# -- 4. words: CJK characters count, invisible characters separate ---------------------------


def test_cjk_and_glued_text_no_longer_escape_the_penalties():
    rep, ovl = load_reward("rule:repetition"), load_reward("rule:overlong")
    chinese = "这个问题的答案是四。" * 2000
    glued = "the\u200banswer\u200bis\u200bfour.\u200b" * 2000
    assert float(rep.score([q(chinese)])[0]) < -0.99  # 0.0 before
    assert float(rep.score([q(glued)])[0]) < -0.99  # 0.0 before
    distinct = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(20_000)) * 3
    assert float(ovl.score([q(distinct)])[0]) == -1.0  # 60,000 words; 0.0 before
    assert word_count(chinese) == 18_000 and word_count(glued) == 8_000
    assert words("这是 test文本。好的！") == ["这", "是", "test", "文", "本", "好", "的"]
    assert words("日本語とハングル한국어") == list("日本語とハングル한국어")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
@example("0" * (LONG_RUN + 1))  # hypothesis seed 1212: one run past LONG_RUN is two words
def test_property_ascii_text_is_counted_as_before(text):
    """ASCII text is split as ``str.split`` does, a run longer than ``LONG_RUN`` characters read
    as its pieces of that length (``words``' documented reading)."""
    want = [w[i : i + LONG_RUN] for w in text.split() for i in range(0, len(w), LONG_RUN)]
    assert words(text) == want and word_count(text) == len(want)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_property_word_count_is_the_length_of_words(text):
    assert word_count(text) == len(words(text))


# -- 5. rule:iou: threshold in (0, 1] --------------------------------------------------------


def test_iou_threshold_zero_is_refused():
    for bad in ("0", "-0.5", "1.5"):
        with pytest.raises(SpecError, match="threshold"):
            load_reward(f"rule:iou?threshold={bad}")
    with pytest.raises(SpecError, match="threshold"):
        iou.compute_score("[900, 900, 901, 901]", [0, 0, 10, 10], threshold=0)
    assert one("rule:iou?threshold=1", "[0, 0, 10, 10]", [0, 0, 10, 10]) == 1.0
    assert one("rule:iou?threshold=0.000001", "[900, 900, 901, 901]", [0, 0, 10, 10]) == 0.0


# -- 6. rule:json_schema: one reading of the response, $refs checked up front ----------------

AGE = {
    "type": "object",
    "properties": {"age": {"type": "integer", "minimum": 0}},
    "required": ["age"],
}


@pytest.mark.parametrize(
    ("response", "want"),
    [
        ('{"age": -5, "age": 20}', 0.0), ('{"age": "x", "age": 20}', 0.0),
        ('{"age": 20, "meta": {"k": 1, "k": 2}}', 0.0), ('{"age": 20}', 1.0),
        ('{"age": 20, "score": 1e999}', 0.0), ('{"age": 20, "score": -1e999}', 0.0),
        ('{"age": 20, "score": 1.5e300}', 1.0), ('{"age": 12345678901234567890}', 1.0),
    ],
)  # fmt: skip
def test_duplicate_keys_and_overflowing_numbers_fail_the_schema(response, want):
    spec = {"type": "rule", "arg": "json_schema", "schema": AGE, "timeout": 0}
    assert one(spec, response) == want
    assert one("rule:json", '{"a": 1, "a": 2}') == 1.0  # plain JSON validity is unchanged


BRANCH = {"anyOf": [{"type": "integer"}, {"$ref": "#/definitions/missing"}]}


def test_a_broken_ref_is_found_whatever_the_response():
    """It was found only when validation reached it: ``5`` scored 1.0, ``"x"`` NaN (left out
    of a composite) instead of 0.0."""
    res = load_reward("rule:json_schema").score_full([q("5", BRANCH), q('"x"', BRANCH)])
    assert all(math.isnan(s) for s in res.scores) and res.stats["failed"] == 2
    assert "cannot be applied" in res.stats["errors"][0]["error"]
    with pytest.raises(SpecError, match="cannot be applied"):
        load_reward({"type": "rule", "arg": "json_schema", "schema": BRANCH})
    loop = {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}  # reached only by a non-integer
    scores = load_reward({"type": "rule", "arg": "json_schema", "schema": loop}).score(
        [q("5"), q('"x"')]
    )
    assert scores.tolist() == [1.0, 0.0]  # was 1.0 / NaN


def test_a_remote_ref_is_never_fetched():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"type": "integer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        schema = {"$ref": f"http://127.0.0.1:{server.server_port}/s.json"}
        res = load_reward("rule:json_schema").score_full([q("5", schema)])
        assert math.isnan(res.scores[0]) and "cannot be applied" in res.stats["errors"][0]["error"]
        assert (
            json_schema.compute_score("5", None, schema={"$ref": "#/$defs/n", "$defs": {"n": {}}})
            == 1.0
        )
    finally:
        server.shutdown()
    assert hits == []  # jsonschema's default registry downloaded it


# -- 7. rule:format: a tag in any spelling is that tag ---------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        "<think>x</think><answer>2</answer ><answer >3</answer>",
        "<think>x<think >y</think ></think><answer>3</answer>",
        "<think>x</think><answer>2</Answer><ANSWER>3</answer>",
        "<think>x</think><answer>2< /answer><answer id=1>3</answer>",
        "<think>x</think><answer>2<answer/>3</answer>",
        "<think>x</think><answer>2</answer\n><answer >3</answer>",
    ],
)
def test_look_alike_tags_count_as_the_tag(response):
    assert one("rule:format", response) == 0.0  # each scored 1.0


def test_format_still_accepts_other_tags_and_is_linear():
    assert (
        one("rule:format", "<think>a < b and <thinking>x</thinking></think><answer>2</answer>")
        == 1.0
    )
    t0 = time.perf_counter()
    for hostile in (
        "<think>" + "<answer " * 200_000,
        "<think><" + " " * 500_000,
        "<think></ " * 100_000,
    ):
        assert one("rule:format", hostile) == 0.0
    assert time.perf_counter() - t0 < 3


# -- 8. rule:chrf: a documented cap ----------------------------------------------------------


def test_chrf_does_not_count_a_response_past_max_chars():
    huge = "the cat sat on the mat " * 400_000  # 9.2 MB: 15 s and 549 MB before
    t0 = time.perf_counter()
    res = load_reward("rule:chrf").score_full([q(huge, "the cat sat"), q("the cat", "the cat sat")])
    assert time.perf_counter() - t0 < 2
    assert res.scores[0] == 0.0 and res.scores[1] > 0.3
    assert res.stats["failed"] == 1 and "max_chars" in res.stats["errors"][0]["error"]
    assert chrf.compute_score(huge, "the cat sat") == 0.0
    small = "the cat sat " * 10_000  # 120,000 characters: counted with the cap lifted
    assert one("rule:chrf?max_chars=0", small, "the cat sat") > 0.0
    assert one("rule:chrf?max_chars=200000", small, "the cat sat") == one(
        "rule:chrf?max_chars=0", small, "the cat sat"
    )


# -- 9. rule:gsm8k: no answer from a zero denominator, no digits joined by a comma ------------


@pytest.mark.parametrize(
    ("response", "reference", "want"),
    [
        ("#### 42/0", "42", 0.0), ("#### 5/0", "0", 0.0), ("\\boxed{\\frac{1}{0}}", "0", 0.0),
        ("#### 4,2", "42", 0.0), ("#### 4,2", "4", 0.0), ("#### 1,234,567", "1234567", 1.0),
        ("#### $1,234.50", "1234.5", 1.0), ("#### 84/2", "42", 1.0), ("#### 42", "#### 42/0", None),
    ],
)  # fmt: skip
def test_gsm8k_zero_denominators_and_commas(response, reference, want):
    got = gsm8k.compute_score(response, reference)
    assert math.isnan(got) if want is None else got == want


def test_gsm8k_parse_number_tells_no_number():
    assert gsm8k.parse_number("42/0") is None and gsm8k.parse_number("\\frac{1}{0}") is None
    assert gsm8k.parse_number("4,2") == 4 and gsm8k.parse_number("1,234") == 1234

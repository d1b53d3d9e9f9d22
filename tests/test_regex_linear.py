"""Regular expressions that read model text scan in linear time and read what they read before.

Each pattern below was rewritten with possessive quantifiers (``\\s*+``, ``\\d++``) or a
lookbehind so that a hostile text (a verdict word and a few hundred spaces, a long digit run, many
unclosed tags) cannot make it backtrack for seconds or hours. The previous patterns are kept here
as the reference: on random texts built from the pieces they care about, both find the same.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.curate import detection, personas, steplabel
from rewardkit.data import checks, ratings
from rewardkit.data.location import Location
from rewardkit.data.record import Record
from rewardkit.errors import DataError
from rewardkit.rewards import domain
from rewardkit.rewards.judges import formats, parse
from rewardkit.rewards.rules import iou, vqa

OLD_LABELLED = (
    r"(?:final\s+)?(?:answer|verdict|judge?ment|decision|choice|better\s+response|winner)"
)
OLD = {
    "yes_no": (
        r"\[\[\s*(yes|no)\s*\]\]",
        OLD_LABELLED + r"\s*(?:is)?\s*[:=\-]?\s*\**\s*(yes|no)\b",
    ),
    "rating": (
        r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]",
        r"(?:rating|score)\s*(?:is)?\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)",
        r"(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*10\b",
    ),
    "choice": (
        r"\[\[\s*([ABC])\s*\]\]",
        OLD_LABELLED
        + r"\s*(?:is)?\s*[:=\-]?\s*\**\s*(?:response|assistant|output)?\s*\(?\s*([ab])\b\)?",
    ),
    "best": (
        r"(?:best|winner|answer)\s*(?:response)?\s*(?:is)?\s*[:=\-]?\s*\**\s*\[?(\d+)\]?",
        r"(?:response|answer)\s*\[?(\d+)\]?\s*is\s*(?:the\s+)?best",
    ),
}
NEW = {
    "yes_no": formats.YES_NO_PATTERNS,
    "rating": formats.RATING_PATTERNS,
    "choice": formats.CHOICE_PATTERNS,
    "best": formats.BEST_PATTERNS,
}
OLD_CHAIN = r"\[?(\d+)\]?(?:\s*(?:>>|>|≻|,|;|then)\s*\[?(\d+)\]?)+"
OLD_CHOICE_STATED = (
    r"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*(?i:option\s*)?"
    r"(?:\(([A-Za-z])\)|([A-Z])\)?(?![A-Za-z])|([a-z])(?=\s*(?:[.,;:!?)]|$)))"
)
OLD_NUMERIC_REF = r"^\s*[-+]?[$]?\s*[\d.,]+\s*(?:/\s*\d+)?\s*%?\s*$"
OLD_LETTER_REF = r"^\s*\(?([A-Za-z])\)?\s*[.):]?\s*$"
OLD_CHOICE_ONLY = r"^\s*\(?([A-Z])\)?\s*[.):]?\s*$"
OLD_MARKDOWN = r"^\s*(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|\|)|\*\*|`"
OLD_N = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
OLD_BOX = (
    r"<box>(?P<inner>.*?)</box>"
    rf"|\(\s*(?P<a1>{OLD_N})\s*,\s*(?P<a2>{OLD_N})\s*\)\s*,?\s*\(\s*(?P<a3>{OLD_N})\s*,\s*(?P<a4>{OLD_N})\s*\)"
    rf"|[\[(]\s*(?P<b1>{OLD_N})\s*,\s*(?P<b2>{OLD_N})\s*,\s*(?P<b3>{OLD_N})\s*,\s*(?P<b4>{OLD_N})\s*[\])]"
)
OLD_NEMO_TURN = r"\s*<extra_id_1>(User|Assistant)[ \t]*\n?"
OLD_RESP_END = r"\s*###(Reference Answer|Score Rubrics|Feedback)"

WORDS = ["final ", "answer", "verdict", "rating", "score", "best", "winner", "response",
         "is", "the", "output", "option", "choice", "of", "out", "yes", "no", "tie"]  # fmt: skip
PIECES = WORDS + list(" \t\n:=-*[]().,/$%#|`>;") + ["[[", "]]", "10", "1", "2", "7", "0.5",
         "A", "B", "C", "a", "b", "x", ">>", "≻", "then", "<extra_id_1>", "User", "###",
         "Feedback", "Assistant", "- ", "1. "]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


def spans(pattern: str, text: str, flags: int = 0) -> list[tuple[int, int, tuple]]:
    return [(m.start(), m.end(), m.groups()) for m in re.finditer(pattern, text, flags)]


@settings(max_examples=600, deadline=None)
@given(texts)
def test_judge_verdict_patterns_read_as_before(text):
    for kind, old in OLD.items():
        for a, b in zip(old, NEW[kind], strict=True):
            assert spans(a, text, re.I) == spans(b, text, re.I), (kind, a)
    assert spans(OLD_CHAIN, text) == spans(formats.CHAIN.pattern, text)


@settings(max_examples=600, deadline=None)
@given(texts)
def test_rule_and_data_patterns_read_as_before(text):
    assert spans(OLD_CHOICE_STATED, text) == spans(vqa._CHOICE_STATED.pattern, text)
    for old, new in (
        (OLD_NUMERIC_REF, vqa._NUMERIC_REF),
        (OLD_LETTER_REF, vqa._LETTER_REF),
        (OLD_CHOICE_ONLY, vqa._CHOICE_ONLY),
    ):
        a, b = re.match(old, text), new.match(text)
        assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups()))
    assert len(re.findall(OLD_MARKDOWN, text, re.M)) == len(personas._MARKDOWN.findall(text))
    assert re.split(OLD_NEMO_TURN, text) == checks._NEMO_TURN.split(text)
    old_end, new_end = re.search(OLD_RESP_END, text, re.S), ratings._RESP_END.search(text)
    assert (old_end and old_end.span()) == (new_end and new_end.span())


BOX_PIECES = ["<box>", "</box>", "(", ")", "[", "]", ",", ", ", " ", "\n", "1", "23", ".", "-",
              "+", "e", "E", "x", ".5"]  # fmt: skip
box_texts = st.lists(st.sampled_from(BOX_PIECES), max_size=40).map("".join)


@settings(max_examples=600, deadline=None)
@given(box_texts)
def test_box_and_number_patterns_read_as_before(text):
    assert spans(OLD_BOX, text, re.DOTALL) == spans(iou._BOX.pattern, text, re.DOTALL)
    assert re.findall(OLD_N, text) == iou._NUM.findall(text)


OLD_STEP_ANSWER = r"^\s*(?:####|A:)\s*(.+?)\s*$"
OLD_INSTR = r"###The instruction to evaluate:\s*(.*?)\s*###Response to evaluate:\s*"
HEADS = ["###The instruction to evaluate:", "###Response to evaluate:", "###Feedback", "####",
         "A:", " ", "\t", "\n", "\r", "x", "1", "#", ":", "\u00a0"]  # fmt: skip
head_texts = st.lists(st.sampled_from(HEADS), max_size=25).map("".join)


def old_split_prometheus(text: str) -> tuple[str, str] | None:
    m = re.search(OLD_INSTR, text, re.S)
    if not m:
        return None
    rest = text[m.end() :]
    end = ratings._RESP_END.search(rest)
    return m.group(1), (rest[: end.start()] if end else rest).strip()


@settings(max_examples=600, deadline=None)
@given(head_texts)
def test_step_answers_and_prometheus_prompts_read_as_before(text):
    a, b = re.match(OLD_STEP_ANSWER, text), steplabel._ANSWER.match(text)
    assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups()))
    rec = Record({"instruction": text}, Location("t.jsonl", "t.jsonl", line=1), {})
    try:
        new = ratings.split_prometheus(rec, text)
    except DataError:
        new = None
    assert new == old_split_prometheus(text)


def test_worked_examples_of_the_rewritten_patterns():
    assert parse.parse_choice("Final verdict: [[B]]") == 1
    assert parse.parse_choice("The better response is (a).") == 0
    assert parse.parse_rating("Rating: [[7]]") == 7.0
    assert parse.parse_rating("I'd give it 8.5 out of 10") == 8.5
    assert parse.parse_yes_no("Final answer: **yes**") == 0
    assert parse.parse_ranking("[2] > [1] > [3]", 3) == ([1, 0, 2], True)
    assert parse.parse_ranking("The best response is 2", 3) == ([1], False)
    assert detection.clean_gsm8k("2*3=<<2*3=6>>6") == "2*3=6"
    assert vqa.extract_choice("The answer is (B).") == "B"


def hostile_checks() -> None:
    """Texts that took seconds to hours before (cubic whitespace splits, quadratic digit runs,
    many unclosed tags) or raised (an ``int`` of 100,000 digits)."""
    spaces, digits = " " * 100_000, "9" * 100_000
    for word in ("verdict", "final answer", "rating", "best response is", "response"):
        hostile = word + spaces + "x"
        assert parse.parse_choice(hostile) is None
        assert parse.parse_yes_no(hostile) is None
        assert parse.parse_rating(hostile) is None
        assert parse.parse_ranking(hostile, 4) is None
    assert parse.parse_rating(digits + "!") is None
    assert parse.parse_ranking(digits + " > 1", 4) is None  # a label no ranking has, no error
    assert parse.parse_ranking('{"ranking": [' + digits + "]}", 4) is None
    assert vqa.extract_choice("answer" + "\n" * 100_000 + "!") is None
    assert vqa.extract_choice("A" + spaces + "x") is None
    assert len(domain.words("1,00" * 25_000)) == 2  # one long thousands number, then "00"
    assert personas._MARKDOWN.findall("\n" * 100_000) == []
    assert detection.clean_gsm8k("<" * 100_000) == "<" * 100_000
    assert checks._NEMO_TURN.split(spaces) == [spaces]
    assert ratings._RESP_END.search(spaces) is None
    assert iou.parse_boxes("(1, 2)" + spaces + "x") == []
    assert steplabel._ANSWER.match("#### x" + spaces + "y").group(1) == "x" + spaces + "y"
    rec = Record({}, Location("t.jsonl", "t.jsonl", line=1), {})
    prompt = "###The instruction to evaluate:" + spaces + "Q" + spaces + "###Response to evaluate:R"
    assert ratings.split_prometheus(rec, prompt) == ("Q", "R")


def test_hostile_texts_stay_cheap():
    """:func:`hostile_checks` in a process of its own, killed after a bound generous for a busy
    machine (a scan gone superlinear again fails here instead of hanging the suite)."""
    root = Path(__file__).resolve().parents[1]
    code = "from tests.test_regex_linear import hostile_checks; hostile_checks()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("hostile texts still scanning after 120 s") from None
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.perf_counter() - t0 < 120

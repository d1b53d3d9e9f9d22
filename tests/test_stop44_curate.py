"""Hostile input to ``curate decontaminate`` (homoglyphs, invisible marks), ``curate condition``
(card E8: attribute names that cannot be read, failure texts of the wrong type, a run that
writes nothing) and ``curate agree`` (card E2: a judge given twice)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.condition import attribute_label, attribute_labels, issue_texts
from rewardkit.curate.decontaminate import build_index, decontaminate, fold, turn_form
from rewardkit.curate.dedup import normalize_text
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Example, user

runner = CliRunner()
LONG = "What is the capital city of France and why is it famous for the Eiffel Tower built in 1889"


def _rows(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _pair(i: str, prompt, **extra) -> dict:
    return {"id": i, "prompt": prompt, "chosen": "yes", "rejected": "no", **extra}


def _invoke(*args):
    return runner.invoke(app, ["curate", *map(str, args)])


def _unboxed(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


# -- decontaminate: a disguised copy is still a copy ---------------------------------------------


@pytest.mark.parametrize(
    "disguised",
    [
        "Pаris",  # Cyrillic а
        "PАRIS",  # Cyrillic А
        "Ρaris",  # Greek capital rho
        "P\U0001d6c2ris",  # mathematical bold small alpha (NFKC: Greek α)
        "Pa\u034fris",  # combining grapheme joiner (Mn, not Cf)
        "Pa\U000e0100ris",  # supplementary variation selector
        "Pa\u3164ris",  # Hangul filler
        "Paris\u2800",  # braille blank
        "\u202ePa\u200bris\u202c",  # direction override, zero-width space (normalization's)
    ],
)
def test_homoglyphs_and_invisible_marks_do_not_hide_a_copy(disguised):
    assert fold(disguised) == "paris" and turn_form(disguised) == turn_form("Paris")
    res = decontaminate(
        [Example("t", [user(disguised)], ["a", "b"], [0])],
        [build_index("ev", [Example("e", [user("Paris")], ["a", "b"], [0])])],
    )
    assert res.removed == [
        {"index": 0, "id": "t", "eval": "ev", "eval_id": "e", "kind": "exact", "shared": None}
    ]


def test_look_alike_letters_spread_over_a_long_prompt_are_caught_by_the_exact_test(tmp_path):
    # "Whаt іs thе … Frаnce": four Cyrillic letters, so no 13-gram was left intact
    greek = LONG.replace("a", "а", 1).replace("is", "іs", 1).replace("the", "thе", 1)
    ev = _rows(tmp_path / "ev.jsonl", _pair("e1", LONG))
    tr = _rows(
        tmp_path / "tr.jsonl",
        _pair("disguised", greek),
        _pair("russian", "Москва — столица России"),
        _pair("clean", "Tell me a joke about cats"),
    )
    out, report = tmp_path / "out.jsonl", tmp_path / "rep.json"
    res = _invoke("decontaminate", "--data", tr, "--against", ev, "--out", out, "--report", report)
    assert res.exit_code == 0, res.output
    assert [ex.id for ex in load(str(out))] == ["russian", "clean"]
    removed = json.loads(report.read_text())["removed"]
    assert [(r["id"], r["eval_id"], r["kind"]) for r in removed] == [("disguised", "e1", "exact")]


def test_text_in_another_script_is_no_copy_of_latin_text():
    # Cyrillic words fold partly to Latin letters, but only a text that looks the same matches
    index = build_index("ev", [Example("e", [user("Mockba is big")], ["a", "b"], [0])])
    other = Example("t", [user("Москва is big")], ["a", "b"], [0])  # "Moskva": к, в differ
    assert decontaminate([other], [index]).removed == []
    same = Example("t2", [user("Москва is big".replace("к", "k").replace("в", "b"))], ["a"], [])
    assert decontaminate([same], [index]).removed[0]["eval_id"] == "e"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.printable, max_size=60))
def test_fold_of_ascii_text_is_the_normalization(text):
    assert fold(text) == normalize_text(text)


# -- condition (card E8) -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["\u200b", "\u202eevil", "help\u200d", "a\x00b", "tab\x7f"])
def test_attribute_names_that_print_invisibly_are_refused(name):
    with pytest.raises(ValueError, match="cannot be printed"):
        attribute_label(name)
    assert attribute_label("instruction_following") == "Instruction following"


def test_attributes_printing_the_same_label_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\['a b', 'a_b'\] print the same label"):
        attribute_labels(["a_b", "x", "a b"])
    data = _rows(
        tmp_path / "d.jsonl",
        _pair("a", "q", ratings=[{"help": 3, "Help": 2}, {"help": 1, "Help": 0}]),
    )
    out = tmp_path / "o.jsonl"
    res = _invoke("condition", "--data", data, "--out", out)
    assert res.exit_code == 2 and "['Help', 'help'] print the same label" in _unboxed(res.output)
    assert not out.exists()
    res = _invoke(
        "condition", "--data", data, "--out", out, "--attributes", "help", "-r", "Help=rule:length"
    )
    assert res.exit_code == 2 and "print the same label" in _unboxed(res.output)
    zw = _rows(tmp_path / "zw.jsonl", _pair("a", "q", ratings=[{"\u200b": 3}, {"\u200b": 1}]))
    res = _invoke("condition", "--data", zw, "--out", out)
    assert res.exit_code == 2 and "cannot be printed" in _unboxed(res.output)
    assert not out.exists()


def test_issue_list_with_a_non_text_names_its_position(tmp_path):
    ex = Example("a", [user("q")], ["x", "y"], [0], meta={"issues": [None, 5]})
    with pytest.raises(DataError, match="got int at 1"):
        issue_texts(ex, "issues")
    ex = Example("b", [user("q")], ["x", "y"], [0], meta={"issues": ["one"]})
    with pytest.raises(DataError, match="got a list of 1"):
        issue_texts(ex, "issues")
    assert issue_texts(Example("c", [user("q")], ["x"], [], meta={"i": "t"}), "i") == ["t"]
    data = _rows(tmp_path / "d.jsonl", _pair("a", "q", ratings=[{"h": 1}, {"h": 2}], iss=[0, 1]))
    res = _invoke(
        "condition", "--data", data, "--out", tmp_path / "o.jsonl", "--issues-column", "iss"
    )
    said = _unboxed(res.output)
    assert res.exit_code == 2 and "d.jsonl" in said and "example 'a'" in said and "at 0" in said


def test_a_run_that_conditions_nothing_says_so(tmp_path):
    data = _rows(tmp_path / "d.jsonl", _pair("a", "q"), _pair("b", "r"))  # no references
    out = tmp_path / "o.jsonl"
    with pytest.warns(
        UserWarning, match=r"nothing to write: no conditioned example \(unscored 4\)"
    ):
        res = _invoke("condition", "--data", data, "--out", out, "-r", "m=rule:exact_match")
    summary = json.loads(res.stdout.splitlines()[-1])
    assert res.exit_code == 0 and summary["written"] == 0 and summary["unscored"] == 4
    assert out.read_text() == ""


def test_card_e8_judge_rating_on_a_given_range(tmp_path):
    # card E8: "a judge's 7 on --range 1:10 → 6·5/9 = 3.33 → 3"
    data = _rows(tmp_path / "d.jsonl", _pair("a", "q", ratings=[{"judge": 7}, {"judge": 10}]))
    out = tmp_path / "o.jsonl"
    res = _invoke("condition", "--data", data, "--out", out, "--range", "1:10")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"][0]["content"] for r in rows] == ["Judge: 3/5", "Judge: 5/5"]


# -- agree (card E2) -----------------------------------------------------------------------------


def test_agree_refuses_a_judge_given_twice(tmp_path):
    data = _rows(tmp_path / "d.jsonl", _pair("a", "q", chosen="long answer"))
    out = tmp_path / "o.jsonl"
    res = _invoke("agree", "--data", data, "--out", out, "-r", "rule:length", "-r", " rule:length")
    assert res.exit_code == 2 and "rule:length given twice" in _unboxed(res.output)
    assert not out.exists()
    res = _invoke("agree", "--data", data, "--out", out, "-r", "rule:length")
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[-1])["keep"] == 1


def test_identical_gold_pairs_are_no_seed_errors():
    """A gold pair whose chosen and rejected are one text (HH-RLHF holds a few) ties under any
    reward: counted as identical, never a seed error (it says nothing of the reward)."""
    import numpy as np

    from rewardkit.curate.synergy import seed_errors

    prompt = [{"role": "user", "content": "q"}]
    exs = [
        Example("same", prompt, ["one text", "one text"], [0]),
        Example("tie", prompt, ["good", "bad"], [0]),
        Example("right", prompt, ["good", "bad"], [0]),
    ]
    scores = [np.array([1.0, 1.0]), np.array([2.0, 2.0]), np.array([3.0, 1.0])]
    res = seed_errors(exs, scores)
    assert res.indices == [1]  # a real tie on different texts is still an error
    assert res.counts == {"gold": 3, "scored": 3, "errors": 1, "unscored": 0, "identical": 1}

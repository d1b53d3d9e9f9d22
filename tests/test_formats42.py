"""Round 42: the popular public preference sets, each written here in its published schema
(JSON Lines, the CSV pandas writes, Parquet) and loaded by sniffing; every field is compared with
what the dataset means. Then the misreads this round closes: an image in a judged Arena turn read
as its Python repr, empty Arena prompts, a float ``turn`` column, a HelpSteer3 context that ends
with an assistant turn, an empty OpenAssistant prompter message. Schemas: the dataset cards cited
in docs/data-formats.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError

SUFFIXES = [".jsonl", ".csv", ".parquet"]


def _write(rows: list[dict], path: Path) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


def u(t: Any) -> dict:
    return {"role": "user", "content": t}


def a(t: Any) -> dict:
    return {"role": "assistant", "content": t}


def parts(t: str) -> list[dict]:  # an arena-human-preference-140k content part
    return [{"type": "text", "text": t, "image": None, "mimeType": None}]


def _arena55k() -> list[dict]:  # Kaggle train.csv / lmsys/lmsys-arena-human-preference-55k
    def row(i, p, ra, rb, flags):
        return {"id": i, "model_a": "m1", "model_b": "m2", "prompt": json.dumps(p),
                "response_a": json.dumps(ra), "response_b": json.dumps(rb),
                "winner_model_a": flags[0], "winner_model_b": flags[1], "winner_tie": flags[2]}  # fmt: skip

    return [
        row(30192, ["Kill mosquitoes?"], ["A-one"], ["B-one"], (1, 0, 0)),
        row(53567, ["2+2?", "3+3?"], ["4", "6"], ["four", "six"], (0, 0, 1)),
        row(65089, ["Say hi"], [None], ["hi"], (0, 1, 0)),
    ]


def _arena100k() -> list[dict]:  # lmarena-ai/arena-human-preference-100k (chatbot_arena too)
    base = {"model_a": "gpt-4o", "model_b": "llama-3-70b", "judge": "arena_user_1",
            "anony": True, "language": "English", "tstamp": 1722000000.0, "is_code": False}  # fmt: skip
    return [
        {**base, "question_id": "q1", "winner": "model_b", "turn": 1,
         "conversation_a": [u("Hi"), a("A hi")], "conversation_b": [u("Hi"), a("B hi")]},
        {**base, "question_id": "q2", "winner": "tie (bothbad)", "turn": 2,
         "conversation_a": [u("1"), a("a1"), u("2"), a("a2")],
         "conversation_b": [u("1"), a("b1"), u("2"), a("b2")]},
        {**base, "question_id": "q3", "winner": "tie", "turn": 1,
         "conversation_a": [u("x"), a("")], "conversation_b": [u("x"), a("bx")]},
    ]  # fmt: skip


def _arena140k() -> list[dict]:  # lmarena-ai/arena-human-preference-140k: parts, no `turn`
    def conv(turns):
        return [m for q, r in turns for m in ({"role": "user", "content": parts(q)},
                                              {"role": "assistant", "content": parts(r)})]  # fmt: skip

    base = {"model_a": "gemini-2.5-pro", "model_b": "claude", "evaluation_order": 1,
            "conv_metadata": {"turns": 1}, "language": "en", "is_code": False}  # fmt: skip
    return [
        {**base, "id": "u1", "winner": "model_a",
         "conversation_a": conv([("Hi", "A hi")]), "conversation_b": conv([("Hi", "B hi")])},
        {**base, "id": "u2", "winner": "both_bad",
         "conversation_a": conv([("1", "a1"), ("2", "a2")]),
         "conversation_b": conv([("1", "b1"), ("2", "b2")])},
    ]  # fmt: skip


def _ultrafeedback() -> list[dict]:  # HuggingFaceH4/ultrafeedback_binarized + argilla -cleaned
    return [
        {"prompt": "Sort?", "prompt_id": "p1", "chosen": [u("Sort?"), a("sorted()")],
         "rejected": [u("Sort?"), a("no idea")], "messages": [u("Sort?"), a("sorted()")],
         "score_chosen": 8.0, "score_rejected": 4.0},
        {"prompt": "Tie", "prompt_id": "p2", "chosen": [u("Tie"), a("x")],
         "rejected": [u("Tie"), a("y")], "messages": [u("Tie"), a("x")],
         "score_chosen": 7.0, "score_rejected": 7.0},
    ]  # fmt: skip


def _argilla_cleaned() -> list[dict]:
    return [
        {"source": "sharegpt", "prompt": "Haiku", "chosen": [u("Haiku"), a("good")],
         "chosen-rating": 4.5, "chosen-model": "m1", "rejected": [u("Haiku"), a("bad")],
         "rejected-rating": 4.5, "rejected-model": "m2"},
    ]  # fmt: skip


def _skywork_rlhflow() -> list[dict]:  # Skywork-Reward-Preference-80K, RLHFlow "-standard"
    return [
        {"chosen": [u("Q"), a("x"), u("Q2"), a("good")],
         "rejected": [u("Q"), a("x"), u("Q2"), a("bad")], "source": "helpsteer2"},
    ]  # fmt: skip


def _tulu3_capybara() -> list[dict]:  # tulu-3 mixtures; argilla distilabel-capybara-dpo
    return [
        {"id": "t1", "source": "tulu", "prompt": "Name a color",
         "chosen": [u("Name a color"), a("Blue")], "rejected": [u("Name a color"), a("Seven")]},
        {"id": "t2", "source": "capybara", "prompt": "and then?", "rating_chosen": 5,
         "rating_rejected": 5, "chosen": [u("start"), a("ok"), u("and then?"), a("good end")],
         "rejected": [u("start"), a("ok"), u("and then?"), a("bad end")]},
    ]  # fmt: skip


def _nectar() -> list[dict]:  # berkeley-nest/Nectar: 7 ranked answers, rank 1 best
    ans = [{"answer": f"ans{r}", "model": f"m{r}", "rank": float(r)} for r in (3, 1, 2, 7, 5, 4, 6)]
    return [
        {"prompt": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more\n\nAssistant:",
         "answers": ans, "turns": 2, "num_responses": 7, "source": ["anthropic-hh"],
         "good_natured": True},
    ]  # fmt: skip


def _helpsteer3() -> list[dict]:  # nvidia/HelpSteer3 preference: -3..3, negative = response1
    ind = [{"score": -2, "reasoning": "r", "feedback1": "f1", "feedback2": "f2"}]
    return [
        {"domain": "general", "language": "english", "context": [u("Joke")], "response1": "J1",
         "response2": "J2", "overall_preference": -2, "individual_preference": ind},
        {"domain": "code", "language": "python", "context": [u("code?"), a("f()"), u("fix it")],
         "response1": "C1", "response2": "C2", "overall_preference": 3, "individual_preference": ind},
        {"domain": "multilingual", "language": "chinese", "context": [u("你好")],
         "response1": "M1", "response2": "M2", "overall_preference": 0, "individual_preference": ind},
    ]  # fmt: skip


def _shp() -> list[dict]:  # stanfordnlp/SHP and SHP-2: labels 1 = A preferred
    base = {"domain": "askculinary_train", "upvote_ratio": 0.98, "c_root_id_A": "a",
            "c_root_id_B": "b", "score_ratio": 4.0}  # fmt: skip
    return [
        {**base, "post_id": "p1", "history": "Post?", "human_ref_A": "A", "human_ref_B": "B",
         "score_A": 52, "score_B": 13, "labels": 1},
        {**base, "post_id": "p2", "history": "Post2", "human_ref_A": "A2", "human_ref_B": "B2",
         "score_A": 3, "score_B": 30, "labels": 0},
    ]  # fmt: skip


def _pku() -> list[dict]:  # PKU-Alignment/PKU-SafeRLHF: chosen = better_response_id
    return [
        {"prompt": "How?", "response_0": "R0", "response_1": "R1", "is_response_0_safe": False,
         "is_response_1_safe": True, "better_response_id": 0, "safer_response_id": 1},
    ]  # fmt: skip


def _hh() -> list[dict]:  # Anthropic/hh-rlhf harmless-base
    return [
        {"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: good",
         "rejected": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: bad"},
    ]  # fmt: skip


def _oasst() -> list[dict]:  # OpenAssistant/oasst1 messages: rank 0 best among siblings
    def m(mid, parent, role, text, rank=None):
        return {"message_id": mid, "parent_id": parent, "text": text, "role": role,
                "lang": "en", "deleted": False, "rank": rank, "message_tree_id": "t1"}  # fmt: skip

    return [
        m("p0", None, "prompter", "Root"),
        m("a0", "p0", "assistant", "best", 0),
        m("a1", "p0", "assistant", "worst", 2),
        m("a2", "p0", "assistant", "mid", 1),
    ]


def _trl() -> list[dict]:  # TRL conversational explicit prompt
    return [{"prompt": [u("Sky?")], "chosen": [a("Blue.")], "rejected": [a("Green.")]}]


#: name → (rows, [(prompt, responses, chosen, format)] expected per row)
CASES: dict[str, tuple[Any, list[tuple]]] = {
    "arena55k": (_arena55k, [
        ([u("Kill mosquitoes?")], ["A-one", "B-one"], [0], "arena-human-preference"),
        ([u("2+2?"), a("4"), u("3+3?")], ["6", "six"], [0, 1], "arena-human-preference"),
        ([u("Say hi")], ["", "hi"], [1], "arena-human-preference"),
    ]),
    "arena100k": (_arena100k, [
        ([u("Hi")], ["A hi", "B hi"], [1], "mt-bench-human"),
        ([u("1"), a("a1"), u("2")], ["a2", "b2"], [0, 1], "mt-bench-human"),
        ([u("x")], ["", "bx"], [0, 1], "mt-bench-human"),
    ]),
    "arena140k": (_arena140k, [
        ([u("Hi")], ["A hi", "B hi"], [0], "mt-bench-human"),
        ([u("1"), a("a1"), u("2")], ["a2", "b2"], [0, 1], "mt-bench-human"),
    ]),
    "ultrafeedback": (_ultrafeedback, [
        ([u("Sort?")], ["sorted()", "no idea"], [0], "trl"),
        ([u("Tie")], ["x", "y"], [0, 1], "trl"),
    ]),
    "argilla": (_argilla_cleaned, [([u("Haiku")], ["good", "bad"], [0, 1], "trl")]),
    "skywork": (_skywork_rlhflow, [([u("Q"), a("x"), u("Q2")], ["good", "bad"], [0], "trl")]),
    "tulu_capybara": (_tulu3_capybara, [
        ([u("Name a color")], ["Blue", "Seven"], [0], "trl"),
        ([u("start"), a("ok"), u("and then?")], ["good end", "bad end"], [0, 1], "trl"),
    ]),
    "nectar": (_nectar, [
        ([u("hi"), a("hello"), u("more")], [f"ans{r}" for r in (3, 1, 2, 7, 5, 4, 6)], [1],
         "nectar"),
    ]),
    "helpsteer3": (_helpsteer3, [
        ([u("Joke")], ["J1", "J2"], [0], "helpsteer3"),
        ([u("code?"), a("f()"), u("fix it")], ["C1", "C2"], [1], "helpsteer3"),
        ([u("你好")], ["M1", "M2"], [0, 1], "helpsteer3"),
    ]),
    "shp": (_shp, [
        ([u("Post?")], ["A", "B"], [0], "shp"), ([u("Post2")], ["A2", "B2"], [1], "shp"),
    ]),
    "pku": (_pku, [([u("How?")], ["R0", "R1"], [0], "pku-saferlhf")]),
    "hh": (_hh, [([u("a"), a("b"), u("c")], ["good", "bad"], [0], "hh-rlhf")]),
    "oasst": (_oasst, [([u("Root")], ["best", "worst", "mid"], [0], "oasst-messages")]),
    "trl": (_trl, [([u("Sky?")], ["Blue.", "Green."], [0], "trl")]),
}  # fmt: skip


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_published_sets_load_as_they_mean(tmp_path: Path, name: str, suffix: str) -> None:
    rows, want = CASES[name]
    got = load(_write(rows(), tmp_path / f"{name}{suffix}"))
    assert [(e.prompt, e.responses, e.chosen, e.meta["format"]) for e in got] == want


def test_published_fields_beside_the_pair(tmp_path: Path) -> None:
    hs3 = load(_write(_helpsteer3(), tmp_path / "hs3.parquet"))
    assert [e.subset for e in hs3] == ["general", "code", "multilingual"]
    assert [e.language for e in hs3] == ["english", None, "chinese"]
    assert hs3[1].meta["code_language"] == "python" and hs3[0].meta["overall_preference"] == -2
    arena = load(_write(_arena100k(), tmp_path / "a.jsonl"))
    assert arena[1].meta["both_bad"] and arena[1].meta["prompt_b"][1] == a("b1")
    assert load(_write(_arena140k(), tmp_path / "b.jsonl"))[1].meta["both_bad"]
    assert load(_write(_arena55k(), tmp_path / "c.csv"))[2].meta["null_turns"] == 1
    uf = load(_write(_ultrafeedback(), tmp_path / "uf.csv"))
    assert "tied_scores" not in uf[0].meta and uf[1].meta["tied_scores"] == "score_chosen"
    nectar = load(_write(_nectar(), tmp_path / "n.parquet"))[0]
    assert nectar.meta["ranks"][1] == 1.0 and nectar.source == "anthropic-hh"
    pku = load(_write(_pku(), tmp_path / "p.jsonl"), format="pku-saferlhf-safer")[0]
    assert pku.chosen == [1] and pku.meta["is_response_0_safe"] is False


# --- closed this round -----------------------------------------------------------------------------


def _arena_row(conv_a: list[dict], conv_b: list[dict] | None = None, **kw: Any) -> dict:
    return {**_arena100k()[0], "conversation_a": conv_a, "conversation_b": conv_b or conv_a, **kw}


def test_image_in_judged_arena_turn_is_refused_not_its_repr(tmp_path: Path) -> None:
    img = [*parts("here"), {"type": "image", "image": {"url": "https://x/y.png"}}]
    row = _arena_row([u("draw"), a(img)], [u("draw"), a("text")])
    with pytest.raises(DataError) as e:
        load(_write([row], tmp_path / "a.jsonl"))
    assert e.value.line == 1 and e.value.field == "conversation_a[1].content"
    assert "expected a response text, got a list" in e.value.reason
    uf = {"conv_A": [u("q"), a(img)], "conv_B": [u("q"), a("t")], "conv_A_rating": 1,
          "conv_B_rating": 0}  # fmt: skip
    with pytest.raises(DataError, match=r"field 'conv_A\[1\]\.content'"):
        load(_write([uf], tmp_path / "u.jsonl"))


@pytest.mark.parametrize("first", ["", "   "])
def test_empty_arena_prompt_is_refused(tmp_path: Path, first: str) -> None:
    row = _arena_row([u(first), a("A")], [u(first), a("B")])
    with pytest.raises(DataError) as e:
        load(_write([_arena100k()[0], row], tmp_path / "a.jsonl"))
    assert e.value.line == 2 and e.value.field == "conversation_a"
    assert "prompt that is not empty" in e.value.reason
    with pytest.raises(DataError, match="prompt that is not empty"):
        load(_write([_arena_row([a("answer first")])], tmp_path / "b.jsonl"))
    uf = {"conv_A": [u(first), a("x")], "conv_B": [u(first), a("y")], "conv_A_rating": 1,
          "conv_B_rating": 0}  # fmt: skip
    with pytest.raises(DataError, match="prompt that is not empty"):
        load(_write([uf], tmp_path / "u.jsonl"))


def test_float_turn_column_is_read_as_its_turn(tmp_path: Path) -> None:
    rows = _arena100k()
    got = load(_write([{**rows[1], "turn": 2.0}], tmp_path / "a.jsonl"))[0]
    assert got.responses == ["a2", "b2"] and got.subset == "turn2"
    rows[0]["turn"] = None  # pandas makes the column float64: 1.0, NaN, 1.0
    got = load(_write(rows, tmp_path / "b.parquet"))
    assert [e.subset for e in got] == ["turn1", "turn2", "turn1"]
    assert got[1].responses == ["a2", "b2"]
    with pytest.raises(DataError, match="expected a turn number"):
        load(_write([{**rows[1], "turn": 1.5}], tmp_path / "c.jsonl"))


def test_helpsteer3_context_ending_with_assistant_is_refused(tmp_path: Path) -> None:
    rows = _helpsteer3()
    bad = {**rows[0], "context": [u("q"), a("a reply")]}
    with pytest.raises(DataError) as e:
        load(_write([rows[0], bad], tmp_path / "h.csv"))
    assert e.value.line == 3 and e.value.field == "context[1].role"
    assert "ends with an assistant turn" in e.value.reason


def test_oasst_empty_prompter_message_is_refused(tmp_path: Path) -> None:
    rows = _oasst()
    rows[0]["text"] = "  "
    with pytest.raises(DataError) as e:
        load(_write(rows, tmp_path / "o.jsonl"))
    assert e.value.line == 1 and e.value.field == "text"
    skipped: list[DataError] = []
    with pytest.warns(UserWarning, match="skipped 4"):
        assert load(_write(rows, tmp_path / "o.jsonl"), on_error="skip", skipped_out=skipped) == []
    assert "parent message 'p0' was refused (o.jsonl:1)" in skipped[1].reason
    tree = {"message_tree_id": "t1", "tree_state": "ready_for_export",
            "prompt": {"message_id": "p0", "role": "prompter", "text": "",
                       "replies": [{"message_id": "a0", "role": "assistant", "text": "x"}]}}  # fmt: skip
    with pytest.raises(DataError, match=r"field 'prompt\.text'.*prompt text that is not empty"):
        load(_write([tree], tmp_path / "t.jsonl"))
    rows = _oasst()
    rows[1]["text"] = None
    with pytest.raises(DataError, match="field 'text': required field is null"):
        load(_write(rows, tmp_path / "n.jsonl"))

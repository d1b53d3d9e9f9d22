"""Every label value of every labelled public-data format, pinned (stop44 label audit).

One crafted row per label value: the first response is the text ``FIRST``, the second ``SECOND``
(more responses ``THIRD``, ``FOURTH``), so each case states which texts the dataset's authors
define as preferred and the test checks that the loader marks exactly those as chosen (a tie:
both). The record is written as a one-row JSON Lines file and sniffed, as ``rewardkit data``
does (``pku-saferlhf-safer``, never sniffed, is named). Sources of each convention: the
loaders' docstrings, docs/data-formats.md and the audit report (dataset cards, official code).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Example

A, B, C, D = "FIRST", "SECOND", "THIRD", "FOURTH"
BOTH = {A, B}
Row = dict[str, Any]
Case = tuple[str, Row, str, Any]


def _conv(*turns: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]


def _two(prompt: str, a: str, b: str, **label: Any) -> Row:
    """A row with prompt field ``prompt`` and the two responses in fields ``a`` and ``b``."""
    return {prompt: "p", a: A, b: B, **label}


def _grading(response: str) -> str:
    return (
        "###Task Description:\nt\n\n###The instruction to evaluate:\nq\n\n"
        f"###Response to evaluate:\n{response}\n\n###Score Rubrics:\nr\n\n###Feedback: "
    )


def _cases(fmt: str, build: Callable[..., Row], *values: tuple[Any, Any]) -> list[Case]:
    """One case per ``(label value, expected)``; a tuple value is spread into ``build``."""
    out = []
    for value, want in values:
        args = value if isinstance(value, tuple) else (value,)
        out.append((f"{fmt} {value!r}", build(*args), fmt, want))
    return out


def pandalm(*votes: int) -> Row:
    row = {"instruction": "i", "input": "", "response1": A, "response2": B}
    return row | {f"annotator{k + 1}": v for k, v in enumerate(votes)}


def mtbench(winner: str, turn: int = 1) -> Row:
    a = ("q1", A if turn == 1 else "a1", "q2", A if turn == 2 else "a2")
    b = ("q1", B if turn == 1 else "b1", "q2", B if turn == 2 else "b2")
    return {
        "conversation_a": _conv(*a),
        "conversation_b": _conv(*b),
        "turn": turn,
        "winner": winner,
    }


def pku(better: int, safer: int) -> Row:
    return _two("prompt", "response_0", "response_1", better_response_id=better) | {
        "safer_response_id": safer
    }


def hs3(strength: int) -> Row:
    row = {"context": [{"role": "user", "content": "p"}], "response1": A, "response2": B}
    return row | {"overall_preference": strength}


def webgpt(s0: float, s1: float) -> Row:
    row = {"question": {"full_text": "q"}, "answer_0": A, "answer_1": B}
    return row | {"score_0": s0, "score_1": s1}


def ultrafeedback(*scores: Any, key: str = "fine-grained_score") -> Row:
    comps = [{"response": t, "model": t, key: s} for t, s in zip((A, B, C), scores, strict=False)]
    return {"instruction": "i", "completions": comps}


def nectar(*ranks: int) -> Row:
    answers = [{"answer": t, "model": t, "rank": r} for t, r in zip((A, B, C), ranks, strict=False)]
    return {"prompt": "\n\nHuman: p\n\nAssistant:", "answers": answers, "num_responses": 3}


def summarize(choice: int) -> Row:
    info = {"post": "post", "title": "t", "subreddit": "r"}
    return {"info": info, "summaries": [{"text": A}, {"text": B}], "choice": choice}


def arena(a: int, b: int, tie: int) -> Row:
    flags = {"winner_model_a": a, "winner_model_b": b, "winner_tie": tie}
    return {"prompt": '["p"]', "response_a": f'["{A}"]', "response_b": f'["{B}"]', **flags}


def unified(ra: float, rb: float) -> Row:
    row = {"conv_A": _conv("p", A), "conv_B": _conv("p", B)}
    return row | {"conv_A_rating": ra, "conv_B_rating": rb}


def se_prefs(*scores: float) -> Row:
    answers = [{"text": t, "pm_score": s} for t, s in zip((A, B, C), scores, strict=False)]
    return {"qid": 1, "question": "q", "answers": answers}


def code_uf(*ratings: str) -> Row:
    """Responses A, B; the annotations list their ratings in the other order (matched by model)."""
    notes = [{"model": t, "rating": r} for t, r in zip((B, A), reversed(ratings), strict=True)]
    items = [{"model": t, "response": t} for t in (A, B)]
    return {"instruction": "i", "responses": items, "annotations": notes}


def prom_pair(tie: int | None) -> Row:
    row = {"chosen_instruction": _grading(A), "rejected_instruction": _grading(B)}
    return row if tie is None else row | {"tie": tie}


def pref_coll(letter: str) -> Row:
    out = f"Feedback. [RESULT] {letter}"
    return _two("orig_instruction", "orig_response_A", "orig_response_B", output=out)


def rmb(bon: bool) -> Row:
    conv = [{"role": "user", "content": "p", "language": "English"}]
    if bon:
        losers = [{"llm_name": "y", "answer": B}, {"llm_name": "z", "answer": C}]
        sides = {"bon_best": {"llm_name": "x", "answer": A}, "loser_list": losers, "bon_uid": "1"}
    else:
        sides = {"chosen": {"llm_name": "x", "answer": A}, "reject": {"llm_name": "y", "answer": B}}
    path = ("BoN_set" if bon else "Pairwise_set") + "/Helpfulness/Chat/Discussion"
    return {"conversation_input": conv, **sides, "category_path": path}


def side(a: float, b: float, col: str = "score") -> Row:
    return _two("prompt", "chosen", "rejected") | {f"{col}_chosen": a, f"{col}_rejected": b}


def fixed(row: Row) -> Callable[[], Row]:
    return lambda: row


HH = "\n\nHuman: p\n\nAssistant: "
#: (case id, record, format, texts the dataset prefers).
CASES: list[Case] = [
    *_cases(
        "judgebench",
        lambda v: _two("question", "response_A", "response_B", label=v, source="s"),
        ("A>B", {A}),
        ("B>A", {B}),
        ("A=B", BOTH),
    ),
    *_cases(
        "autoj",
        lambda v: _two("prompt", "response 1", "response 2", label=v, scenario="s"),
        (0, {A}),
        (1, {B}),
        (2, BOTH),
    ),
    *_cases(
        "pandalm",
        pandalm,
        ((1, 1, 1), {A}),
        ((2, 2, 2), {B}),
        ((0, 0, 0), BOTH),
        ((1, 2, 1), {A}),
        ((2, 1, 2), {B}),
        ((0, 2, 0), BOTH),
        ((1, 2, 0), BOTH),  # three-way split: no majority, a labelled tie
    ),
    *_cases(
        "mt-bench-human",
        mtbench,
        ("model_a", {A}),
        ("model_b", {B}),
        ("tie", BOTH),
        ("tie (bothbad)", BOTH),
        ("tie (inconsistent)", BOTH),
        (("model_b", 2), {B}),
    ),
    *_cases(
        "prd-lfqa",
        lambda v: _two("question", "answer_a", "answer_b", overall_preference=v),
        (-1, {A}),
        (1, {B}),
        (0, BOTH),
    ),
    *_cases("pku-saferlhf", pku, ((0, 1), {A}), ((1, 0), {B})),
    *_cases("pku-saferlhf-safer", pku, ((1, 0), {A}), ((0, 1), {B})),
    *_cases(
        "shp", lambda v: _two("history", "human_ref_A", "human_ref_B", labels=v), (1, {A}), (0, {B})
    ),
    *_cases(
        "helpsteer2-preference",
        lambda v: _two("prompt", "response_1", "response_2", preference_strength=v),
        *[(s, {A} if s < 0 else {B} if s > 0 else BOTH) for s in range(-3, 4)],
    ),
    *_cases(
        "helpsteer3", hs3, *[(s, {A} if s < 0 else {B} if s > 0 else BOTH) for s in range(-3, 4)]
    ),
    *_cases(
        "stack-exchange-paired", lambda: _two("question", "response_j", "response_k"), ((), {A})
    ),
    *_cases("webgpt", webgpt, ((0.5, -0.5), {A}), ((-1.0, 1.0), {B}), ((0.0, 0.0), BOTH)),
    *_cases("ultrafeedback", ultrafeedback, ((3.0, 4.5, 2.0), {B}), ((4.0, 2.0, 4.0), {A, C})),
    *_cases("ultrafeedback", lambda: ultrafeedback(7, 9, key="overall_score"), ((), {B})),
    *_cases("nectar", nectar, ((3, 1, 2), {B}), ((1, 2, 1), {A, C})),
    *_cases("summarize-from-feedback", summarize, (0, {A}), (1, {B})),
    *_cases(
        "alpacafarm",
        lambda v: _two("instruction", "output_1", "output_2", preference=v),
        (1, {A}),
        (2, {B}),
        (0, BOTH),
        (1.5, BOTH),
        (1.2, {A}),
        (1.73, {B}),
    ),
    *_cases("arena-human-preference", arena, ((1, 0, 0), {A}), ((0, 1, 0), {B}), ((0, 0, 1), BOTH)),
    *_cases(
        "unified-feedback", unified, ((1.0, 0.0), {A}), ((-3.0, -1.0), {B}), ((0.5, 0.5), BOTH)
    ),
    *_cases("stack-exchange-preferences", se_prefs, ((1.0, 3.0, 2.0), {B})),
    *_cases("codeultrafeedback", code_uf, (("2", "5"), {B}), (("4", "1"), {A})),
    *[
        case
        for fmt, keys in (
            ("llmbar", ("input", "output_1", "output_2")),
            ("offsetbias", ("instruction", "output_1", "output_2")),
            ("evalbiasbench", ("instruction", "response1", "response2")),
        )
        for case in _cases(fmt, lambda v, k=keys: _two(*k, label=v), (1, {A}), (2, {B}))
    ],
    *_cases(
        "judgelm",
        lambda s1, s2: _two("question_body", "answer1_body", "answer2_body", score=[s1, s2]),
        ((8, 3), {A}),
        ((3, 8), {B}),
        ((5, 5), BOTH),
    ),
    *_cases("prometheus-pairwise", prom_pair, (None, {A}), (0, {A}), (1, BOTH)),
    *_cases(
        "hhh-alignment",
        lambda *labels: {"input": "p", "targets": {"choices": [A, B], "labels": list(labels)}},
        ((0, 1), {B}),
        ((1, 0), {A}),
    ),
    *_cases("code-preference-pairs", lambda: _two("input", "accepted", "rejected"), ((), {A})),
    *_cases(
        "ppe-human",
        lambda v: _two("prompt", "response_1", "response_2", winner=v),
        ("model_a", {A}),
        ("model_b", {B}),
        ("tie", BOTH),
        ("tie (bothbad)", BOTH),
    ),
    *_cases(
        "ppe-correctness",
        lambda *s: _two("prompt", "response_1", "response_2", scores=list(s)),
        ((False, True), {B}),
        ((True, True), BOTH),
    ),
    *_cases("preference-collection", pref_coll, ("A", {A}), ("B", {B})),
    *_cases("rmb", rmb, (False, {A}), (True, {A})),
    *_cases(
        "rm-bench",
        fixed({"prompt": "p", "chosen": [A, B, C], "rejected": [D, "e", "f"]}),
        ((), {A, B, C}),
    ),
    *_cases("rewardbench", fixed(_two("prompt", "chosen", "rejected", subset="s")), ((), {A})),
    *_cases("rewardbench2", fixed({"prompt": "p", "chosen": [A], "rejected": [B, C]}), ((), {A})),
    *_cases(
        "m-rewardbench",
        fixed(_two("prompt", "chosen", "rejected", subset="s", language="de")),
        ((), {A}),
    ),
    *_cases(
        "rag-rewardbench",
        fixed(_two("question", "chosen", "rejected", documents=["d"])),
        ((), {A}),
    ),
    *_cases("hh-rlhf", fixed({"chosen": HH + A, "rejected": HH + B}), ((), {A})),
    *_cases("trl", fixed({"chosen": _conv("p", A), "rejected": _conv("p", B)}), ((), {A})),
    *_cases(
        "math-step-dpo",
        fixed(_two("prompt", "chosen", "rejected", initial_reason_steps="s ")),
        ((), {"s " + A}),
    ),
    *_cases("generic", fixed(_two("prompt", "chosen", "rejected")), ((), {A})),
    *_cases(
        "generic", lambda i: {"prompt": "p", "responses": [A, B], "chosen": i}, (1, {B}), (0, {A})
    ),
    *_cases(
        "generic",
        lambda *r: {"prompt": "p", "responses": [A, B, C], "ratings": list(r)},
        ((2, 1, 5), {C}),
    ),
    # per-side scores (UltraFeedback-binarized, Capybara, …): equal scores are a labelled tie
    *_cases("generic", side, ((9, 2), {A}), ((7, 7), BOTH), ((4, 4, "rating"), BOTH)),
    *_cases(
        "generic", lambda f: _two("prompt", "chosen", "rejected", tie_is_common=f), (True, BOTH)
    ),
]
FORCED = {"pku-saferlhf-safer"}


def _write(tmp_path: Path, record: Row) -> Path:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def _load_one(tmp_path: Path, record: Row, fmt: str | None = None) -> Example:
    (ex,) = load(_write(tmp_path, record), format=fmt)
    return ex


@pytest.mark.parametrize(
    ("record", "fmt", "winners"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_label_value_marks_the_preferred_response(
    tmp_path: Path, record: Row, fmt: str, winners: set[str]
) -> None:
    ex = _load_one(tmp_path, record, fmt if fmt in FORCED else None)
    assert ex.meta["format"] == fmt  # sniffed as the format the case names
    chosen = {ex.responses[i] for i in ex.chosen}
    assert chosen == winners, f"chosen {sorted(chosen)}, the dataset prefers {sorted(winners)}"
    assert not (set(ex.responses) - chosen) & winners


def test_mt_bench_judges_the_turn_named(tmp_path: Path) -> None:
    """Turn 2 compares each model's second answer, with model A's history as the prompt."""
    ex = _load_one(tmp_path, mtbench("model_a", 2))
    assert ex.responses == [A, B] and ex.subset == "turn2"
    assert [m["content"] for m in ex.prompt] == ["q1", "a1", "q2"]
    assert ex.meta["prompt_b"][1]["content"] == "b1"


def test_prd_float_labels_read_as_their_integers(tmp_path: Path) -> None:
    """A pandas/Parquet float column (``-1.0``) means what ``-1`` means; it used to be refused."""
    for pref, winners in ((-1.0, {A}), (1.0, {B}), (0.0, BOTH)):
        ex = _load_one(tmp_path, _two("question", "answer_a", "answer_b", overall_preference=pref))
        assert {ex.responses[i] for i in ex.chosen} == winners
    with pytest.raises(DataError, match="expected -1, 0 or 1"):
        _load_one(tmp_path, _two("question", "answer_a", "answer_b", overall_preference=-0.5))


def _reply(mid: str, text: str, rank: int | None, **more: Any) -> Row:
    return {"message_id": mid, "role": "assistant", "text": text, "rank": rank, **more}


def test_oasst_rank_zero_is_preferred(tmp_path: Path) -> None:
    """OpenAssistant ranks siblings 0 = best; unranked replies are left out."""
    replies = [_reply("a", A, 1), _reply("b", B, 0), _reply("c", C, None)]
    root = {"message_id": "p", "role": "prompter", "text": "q", "replies": replies}
    ex = _load_one(tmp_path, {"message_tree_id": "t", "prompt": root})
    assert ex.meta["format"] == "oasst" and ex.responses == [A, B] and ex.chosen == [1]
    flat = [
        {"message_id": "p", "parent_id": None, "role": "prompter", "text": "q"},
        _reply("a", A, 0, parent_id="p"),
        _reply("b", B, 0, parent_id="p"),
    ]
    path = tmp_path / "msgs.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in flat), encoding="utf-8")
    (tie,) = load(path)
    assert tie.meta["format"] == "oasst-messages" and tie.chosen == [0, 1]


@pytest.mark.parametrize("fmt", ["rpr", "rpr-scenario"])
def test_rpr_context_x_prefers_a_and_y_prefers_b(tmp_path: Path, fmt: str) -> None:
    row = _two("prompt", "response_a", "response_b", id=7)
    row |= {f"{k}_{s}": f"{k} {s}" for k in ("criteria", "scenario", "category") for s in "xy"}
    exs = load(_write(tmp_path, row), format=None if fmt == "rpr" else fmt)
    kind = "criteria" if fmt == "rpr" else "scenario"
    got = {e.id: (e.meta["criterion"], [e.responses[i] for i in e.chosen]) for e in exs}
    assert got == {"7:x": (f"{kind} x", [A]), "7:y": (f"{kind} y", [B])}


RATED: list[tuple[Row, str, dict[str, float]]] = [
    ({"prompt": "p", "response": A, "is_safe": True}, "beavertails", {"is_safe": 1.0}),
    ({"prompt": "p", "response": A, "is_safe": False}, "beavertails", {"is_safe": 0.0}),
    ({"prompt": "p", "completion": A, "label": True}, "unpaired", {"label": 1.0}),
    ({"prompt": "p", "completion": A, "label": False}, "unpaired", {"label": 0.0}),
    ({"prompt": "p", "response": A, "helpfulness": 4}, "helpsteer2", {"helpfulness": 4.0}),
    (
        {"instruction": _grading(A), "gpt4_score": [3, 4, 5]},
        "prometheus-absolute",
        {"gpt4_score": 4.0},
    ),
    (
        {"info": {"post": "x"}, "summary": {"text": A, "axes": {"overall": 6, "coverage": 2}}},
        "summarize-axis",
        {"overall": 6.0, "coverage": 2.0},
    ),
]


@pytest.mark.parametrize(
    ("record", "fmt", "ratings"), RATED, ids=[f"{c[1]}-{i}" for i, c in enumerate(RATED)]
)
def test_rating_value_keeps_its_direction(
    tmp_path: Path, record: Row, fmt: str, ratings: dict[str, float]
) -> None:
    ex = _load_one(tmp_path, record)
    assert ex.meta["format"] == fmt and ex.responses == [A] and ex.chosen == []
    assert ex.ratings == [ratings]


def test_best_of_n_correct_samples_are_chosen(tmp_path: Path) -> None:
    row = {"question": "q", "response": [A, B, C], "score": [False, True, True]}
    ex = _load_one(tmp_path, {**row, "pred_score": [[0.1], [0.2], [0.3]]})
    assert ex.meta["format"] == "math-bon" and ex.chosen == [1, 2]
    assert [r["correct"] for r in ex.ratings or []] == [0.0, 1.0, 1.0]


S3 = ["s1", "s2", "s3"]
STEPS: list[tuple[Row, list[int], int]] = [
    ({"problem": "q", "steps": S3, "labels": [1, 0, -1]}, [1, 0, -1], 2),
    ({"problem": "q", "steps": S3, "label": 1}, [1, -1, -1], 1),  # ProcessBench: first error
    ({"problem": "q", "steps": S3[:2], "label": -1}, [1, 1], -1),  # ProcessBench: none wrong
    ({"prompt": "q", "completions": S3[:2], "labels": [True, False]}, [1, -1], 1),  # TRL
    (
        {"input": "q Step 1: a ки\nStep 2: b ки", "label": "q Step 1: a +\nStep 2: b -"},
        [1, -1],
        1,
    ),  # Math-Shepherd
    ({"modified_question": "q", "modified_process": S3, "error_steps": [2]}, [1, -1, 1], 1),
]


@pytest.mark.parametrize(("record", "labels", "first"), STEPS)
def test_step_labels_keep_their_sign(
    tmp_path: Path, record: Row, labels: list[int], first: int
) -> None:
    ex = _load_one(tmp_path, record)
    assert ex.meta["format"] == "steps"
    assert ex.meta["step_labels"] == labels and ex.meta["first_error"] == first


def test_argilla_status_tie_is_a_tie(tmp_path: Path) -> None:
    row = _two("prompt", "chosen", "rejected", generations=[A, B])
    assert _load_one(tmp_path, {**row, "status": "tie"}).chosen == [0, 1]
    assert _load_one(tmp_path, {**row, "status": "ok"}).chosen == [0]


def _t2i(label: Any) -> Row:
    return {"prompt": "p", "image_a": "a.png", "image_b": "b.png", "label": label}


def _pick(l0: float, l1: float) -> Row:
    return {"caption": "p", "jpg_0": "a.png", "jpg_1": "b.png", "label_0": l0, "label_1": l1}


EDIT = {"instruction": "e", "source_image": "s.png", "edited_a": "a.png", "edited_b": "b.png"}
MMRB = {"ID": "x", "Image": "s.png", "Text": "q", "Output1": A, "Output2": B}
MMRB2 = {"pair_id": "x", "prompt_content": [["text", "q"]], "response_a": A, "response_b": B}
VLRB = {"image": "s.png", "query": "q", "response": [A, B]}
IMAGE_CASES: list[tuple[Row, str, list[int]]] = [
    *[(_t2i(v), "t2i-pairs", [0]) for v in (0, "A", "A>B")],
    *[(_t2i(v), "t2i-pairs", [1]) for v in (1, "B", "B>A")],
    *[(_t2i(v), "t2i-pairs", [0, 1]) for v in ("tie", 0.5)],
    (_pick(1, 0), "t2i-pairs", [0]),
    (_pick(0, 1), "t2i-pairs", [1]),
    (_pick(0.5, 0.5), "t2i-pairs", [0, 1]),
    ({**EDIT, "label": "B"}, "image-edit", [1]),
    ({"image": "s.png", "question": "q", "chosen": A, "rejected": B}, "mm-qa", [0]),
    ({**VLRB, "human_ranking": [0, 1]}, "mm-qa", [0]),
    ({**VLRB, "human_ranking": [1, 0]}, "mm-qa", [1]),
    ({**MMRB, "Better": "Output1"}, "mm-qa", [0]),
    ({**MMRB, "Better": "Output2"}, "mm-qa", [1]),
    ({**MMRB2, "chosen": "A"}, "mmrb2", [0]),
    ({**MMRB2, "chosen": "B"}, "mmrb2", [1]),
]


@pytest.mark.parametrize(("record", "fmt", "chosen"), IMAGE_CASES)
def test_image_label_value_marks_the_preferred_response(
    tmp_path: Path, record: Row, fmt: str, chosen: list[int]
) -> None:
    for name in ("a.png", "b.png", "s.png"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    ex = _load_one(tmp_path, record)
    assert ex.meta["format"] == fmt and ex.chosen == chosen
    first = ex.responses[0]
    if isinstance(first, list):  # an image response: the first is image a, in file order
        assert first[0]["image"].path.endswith("a.png")
    else:
        assert first == A

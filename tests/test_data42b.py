"""Four loader rules closed together (docs/data-formats.md): the RPR layout (one row, two
contexts → two context-conditioned pairs, docs/methods/A11-context-aware.md), identical sides
flagged the same way in every format, an empty last user turn refused in every format that
reads messages, and an empty CSV response cell read as missing, as a null is in JSON and
Parquet."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.test_context_aware import ContextRule
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.data.context import example_context
from rewardkit.data.unpaired import pair_by_prompt
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward

runner = CliRunner()
CONCISE = "A phone book for the internet."
DETAILED = "DNS maps names to addresses: a resolver asks the root, the TLD, then the domain."


def _u(text: Any) -> dict:
    return {"role": "user", "content": text}


def _a(text: Any) -> dict:
    return {"role": "assistant", "content": text}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rpr_row(i: int, **kw: Any) -> dict:
    """A row in the exact schema of ``microsoft/rpr`` (its dataset card's fields, in order)."""
    row = {
        "prompt": f"Explain DNS ({i}).",
        "response_a": CONCISE,
        "response_b": DETAILED,
        "criteria_x": "prefer brevity: one short sentence",
        "criteria_y": "prefer technical depth",
        "category_x": "Length",
        "category_y": "Depth",
        "id": i,
        "scenario_x": "A child asks at bedtime.",
        "scenario_y": "A network engineer is debugging.",
        **{f"profile_{k}": f"profile {k} of row {i}" for k in range(5)},
    }
    row.update(kw)
    return row


# -- 1. the RPR layout --------------------------------------------------------------------------


def test_an_rpr_row_is_two_pairs_with_opposite_preferences_under_its_two_criteria(tmp_path):
    x, y = load(_jsonl(tmp_path / "rpr.jsonl", [_rpr_row(7)]))
    assert (x.id, y.id) == ("7:x", "7:y")
    assert x.responses == y.responses == [CONCISE, DETAILED]  # file order, both sides
    assert (x.chosen, y.chosen) == ([0], [1])  # x → response_a, y → response_b
    assert x.prompt == [
        {
            "role": "system",
            "content": "Evaluate with respect to: prefer brevity: one short sentence",
        },
        {"role": "user", "content": "Explain DNS (7)."},
    ]
    assert y.prompt[0]["content"] == "Evaluate with respect to: prefer technical depth"
    assert example_context(x) == "prefer brevity: one short sentence"
    assert (x.subset, y.subset) == ("Length", "Depth")
    for ex, side in ((x, "x"), (y, "y")):
        assert ex.meta["format"] == "rpr" and ex.meta["rpr_side"] == side
        assert ex.meta["rpr_context"] == "criteria"
        assert ex.meta["scenario_x"] == "A child asks at bedtime."  # the other kind is kept
        assert ex.meta["profile_4"] == "profile 4 of row 7"
        assert not {"criteria_x", "criteria_y", "category_x", "category_y"} & set(ex.meta)


def test_the_scenario_variant_reads_the_scenarios_from_parquet(tmp_path):
    path = tmp_path / "rpr.parquet"
    pd.DataFrame([_rpr_row(1), _rpr_row(2)]).to_parquet(path)
    exs = load(path, format="rpr-scenario")
    assert [e.id for e in exs] == ["1:x", "1:y", "2:x", "2:y"]
    assert [e.meta["criterion"] for e in exs[:2]] == [
        "A child asks at bedtime.",
        "A network engineer is debugging.",
    ]
    assert [e.chosen for e in exs] == [[0], [1], [0], [1]]
    assert all(e.meta["format"] == "rpr-scenario" for e in exs)
    assert exs[0].meta["criteria_x"] == "prefer brevity: one short sentence"


def test_rewardkit_eval_reports_the_reversal_consistency_of_rpr_rows(tmp_path):
    src = _jsonl(tmp_path / "rpr.jsonl", [_rpr_row(i) for i in range(3)])
    out = tmp_path / "r"
    args = ["eval", "-r", "rule:length", "--data", str(src), "--out", str(out), "--n-boot", "20"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    use = json.loads((out / "report.json").read_text())["rewards"][0]["analyses"]["context_use"]
    # length reads no context: it prefers the detailed answer under both, so nothing flips
    assert use["n_pairs"] == 6 and use["n_contexts"] == 2
    assert (use["accuracy_with"], use["accuracy_without"]) == (0.5, 0.5)
    assert use["reversal"] == {"n_pairs": 3, "n_nan": 0, "consistency": 0.0, "both_correct": 0.0}
    assert "reversal consistency 0.0 (n=3)" in result.output
    # a reward that reads the criterion flips with it: every pair is consistent
    res = evaluate(load(src), [ContextRule()], n_boot=20, include_length_baseline=False)
    rule = res.rewards[0].analyses["context_use"]
    assert rule["reversal"]["consistency"] == 1.0 and rule["reversal"]["both_correct"] == 1.0
    assert (rule["accuracy_with"], rule["accuracy_without"]) == (1.0, 0.5)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"criteria_y": None}, "criteria_y", "required field is null"),
        ({"criteria_x": "  "}, "criteria_x", "expected a context text that is not empty"),
        ({"criteria_y": 3}, "criteria_y", "expected a context text"),
        (
            {"criteria_y": "prefer brevity: one short sentence"},
            "criteria_y",
            "other than criteria_x",
        ),
        ({"response_b": None}, "response_b", "required field is null"),
    ],
)
def test_a_broken_rpr_row_names_file_line_and_field(tmp_path, change, field, reason):
    path = _jsonl(tmp_path / "rpr.jsonl", [_rpr_row(1), _rpr_row(2, **change)])
    with pytest.raises(DataError) as e:
        load(path)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, field)
    assert reason in e.value.reason


def test_rpr_is_sniffed_only_on_its_own_fields(tmp_path):
    row = _rpr_row(1)
    del row["criteria_y"]  # one context only: not the RPR layout, nothing is guessed
    with pytest.raises(DataError, match="sniffed as format 'generic'"):
        load(_jsonl(tmp_path / "one.jsonl", [row]))
    arena = {
        "id": 1,
        "prompt": json.dumps(["hi"]),
        "response_a": json.dumps(["a"]),
        "response_b": json.dumps(["b"]),
        "winner_model_a": 1,
        "winner_model_b": 0,
        "winner_tie": 0,
    }
    assert load(_jsonl(tmp_path / "arena.jsonl", [arena]))[0].meta["format"] == (
        "arena-human-preference"
    )


# -- 2. identical sides: one flag, every format -------------------------------------------------


def _hh(answer: str) -> str:
    return f"\n\nHuman: q\n\nAssistant: {answer}"


IDENTICAL = {
    "trl-conversation": {"chosen": [_u("q"), _a("same")], "rejected": [_u("q"), _a("same")]},
    "trl-prompt": {"prompt": [_u("q")], "chosen": [_a("same")], "rejected": [_a("same")]},
    "generic": {"prompt": "q", "chosen": "same", "rejected": "same"},
    "generic-list": {"prompt": "q", "responses": ["same", "other", "same"], "chosen": [0]},
    "hh-rlhf": {"chosen": _hh("same"), "rejected": _hh("same")},
    "helpsteer3": {
        "context": [_u("q")],
        "response1": "same",
        "response2": "same",
        "overall_preference": 2,
    },
}


@pytest.mark.parametrize("name", list(IDENTICAL))
def test_identical_sides_are_flagged_the_same_way_in_every_format(tmp_path, name):
    row = IDENTICAL[name]
    (ex,) = load(_jsonl(tmp_path / "same.jsonl", [row]))
    assert ex.meta["identical_responses"] is True
    different = json.loads(json.dumps(row).replace('"same"', '"one"', 1).replace("same", "two", 1))
    (ok,) = load(_jsonl(tmp_path / "diff.jsonl", [different]))
    assert "identical_responses" not in ok.meta, ok.responses


def test_identical_sides_in_csv_unpaired_pairs_and_a_labelled_tie(tmp_path):
    csv = tmp_path / "same.csv"
    pd.DataFrame([{"prompt": "q", "chosen": "same", "rejected": "same"}]).to_csv(csv, index=False)
    assert load(csv)[0].meta["identical_responses"] is True
    rows = [
        {"prompt": "q", "completion": "same", "label": True},
        {"prompt": "q", "completion": "same", "label": False},
        {"prompt": "q", "completion": "else", "label": False},
    ]
    pairs = pair_by_prompt(load(_jsonl(tmp_path / "kto.jsonl", rows))).pairs
    assert [p.meta.get("identical_responses") for p in pairs] == [True, None]
    tie = {"prompt": "q", "responses": ["same", "same"], "chosen": [0, 1]}
    assert "identical_responses" not in load(_jsonl(tmp_path / "tie.jsonl", [tie]))[0].meta


def test_eval_counts_identical_trl_and_hh_pairs_alike(tmp_path):
    trl = load(_jsonl(tmp_path / "trl.jsonl", [IDENTICAL["trl-conversation"]]))
    hh = load(_jsonl(tmp_path / "hh.jsonl", [IDENTICAL["hh-rlhf"]]))
    plain = load(_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "long one", "rejected": "x"}]))  # fmt: skip
    res = evaluate([*trl, *hh, *plain], [load_reward("rule:length")], n_boot=20)
    assert res.dataset["n_identical_choices"] == 2
    assert sum(bool(e.meta.get("identical_responses")) for e in (*trl, *hh, *plain)) == 2


def test_training_counts_identical_trl_and_hh_pairs_alike(bert_dir, tmp_path, caplog):
    pytest.importorskip("transformers")
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.train.run import prepare

    trl = load(_jsonl(tmp_path / "trl.jsonl", [IDENTICAL["trl-conversation"]]))
    hh = load(_jsonl(tmp_path / "hh.jsonl", [IDENTICAL["hh-rlhf"]]))
    cfg = tiny_cfg(bert_dir, tmp_path / "o", max_steps=1)
    with caplog.at_level(logging.WARNING):
        trainer = prepare(cfg, examples=([*toy_pairs(4), *trl, *hh], []))
    assert len(trainer.train_dataset) == 6  # kept, as TRL keeps them
    assert "2 of 6 preference pairs have two sides with the same tokens" in caplog.text


# -- 3. an empty last user turn -----------------------------------------------------------------

HISTORY = [_u("hi"), _a("hello")]
#: format → (a row whose last user turn says ``t``, the field and index an empty one is named by)
EMPTY_LAST = {
    "trl-prompt": (
        lambda t: {"prompt": [*HISTORY, _u(t)], "chosen": [_a("x")], "rejected": [_a("y")]},
        "prompt[2].content",
    ),
    "trl-conversation": (
        lambda t: {"chosen": [*HISTORY, _u(t), _a("x")], "rejected": [*HISTORY, _u(t), _a("y")]},
        "chosen[2].content",
    ),
    "helpsteer3": (
        lambda t: {
            "context": [*HISTORY, _u(t)],
            "response1": "x",
            "response2": "y",
            "overall_preference": 1,
        },
        "context[2].content",
    ),
    "arena-conversations": (
        lambda t: {
            "question_id": "q",
            "model_a": "m1",
            "model_b": "m2",
            "winner": "model_a",
            "turn": 2,
            "conversation_a": [_u("hi"), _a("a1"), _u(t), _a("a2")],
            "conversation_b": [_u("hi"), _a("b1"), _u(t), _a("b2")],
        },
        "conversation_a[2].content",
    ),
    "arena-55k": (
        lambda t: {
            "id": 1,
            "prompt": json.dumps(["hi", t]),
            "response_a": json.dumps(["a1", "a2"]),
            "response_b": json.dumps(["b1", "b2"]),
            "winner_model_a": 1,
            "winner_model_b": 0,
            "winner_tie": 0,
        },
        "prompt[1]",
    ),
    "rmb": (
        lambda t: {
            "pair_uid": "1",
            "conversation_input": [*HISTORY, _u(t)],
            "chosen": {"answer": "x"},
            "reject": {"answer": "y"},
            "category_path": "Pairwise_set/Helpfulness/Chat/Discussion",
        },
        "conversation_input[2].content",
    ),
    "unified-feedback": (
        lambda t: {
            "conv_A": [*HISTORY, _u(t), _a("x")],
            "conv_B": [*HISTORY, _u(t), _a("y")],
            "conv_A_rating": 1,
            "conv_B_rating": 0,
        },
        "conv_A[2].content",
    ),
    "text-parts": (
        lambda t: {
            "prompt": [*HISTORY, _u([{"type": "text", "text": t}])],
            "chosen": [_a("x")],
            "rejected": [_a("y")],
        },
        "prompt[2].content",
    ),
}


@pytest.mark.parametrize("blank", ["", "  "])
@pytest.mark.parametrize("name", list(EMPTY_LAST))
def test_an_empty_last_user_turn_is_refused_naming_file_line_field_and_index(tmp_path, name, blank):
    row, field = EMPTY_LAST[name]
    path = _jsonl(tmp_path / "d.jsonl", [row("and?"), row(blank)])
    with pytest.raises(DataError) as e:
        load(path)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, field)
    assert "expected a last user turn that is not empty" in e.value.reason
    with pytest.warns(UserWarning, match="skipped 1 malformed record"):
        assert len(load(path, on_error="skip")) == 1  # the good row before it still loads


def test_earlier_empty_turns_are_kept_and_an_all_empty_prompt_keeps_its_message(tmp_path):
    row = {"prompt": [_u(""), _a("hello"), _u("and?")], "chosen": [_a("x")], "rejected": [_a("y")]}
    (ex,) = load(_jsonl(tmp_path / "early.jsonl", [row]))
    assert ex.prompt[0]["content"] == "" and ex.prompt[-1]["content"] == "and?"
    blank = {"prompt": [_u(" ")], "chosen": [_a("x")], "rejected": [_a("y")]}
    with pytest.raises(DataError, match="expected a prompt that is not empty, got only empty"):
        load(_jsonl(tmp_path / "blank.jsonl", [blank]))


@pytest.mark.shared_data
def test_real_hh_rlhf_has_no_empty_human_turn_so_the_refusal_loses_no_row(shared_data: Path):
    turn = re.compile(r"\n\n(Human|Assistant):")
    total = empty = 0
    for sub in ("helpful-base", "helpful-online", "helpful-rejection-sampled"):
        path = shared_data / "hh_rlhf" / sub / "test.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                total += 1
                for side in json.loads(line).values():
                    parts = turn.split(side)
                    said = [
                        t for w, t in zip(parts[1::2], parts[2::2], strict=True) if w == "Human"
                    ]
                    empty += any(not t.strip() for t in said)
        assert len(load(path)) == {"helpful-base": 2354, "helpful-online": 1137}.get(sub, 2749)
    assert (total, empty) == (6240, 0)


# -- 4. an empty response cell ------------------------------------------------------------------

ROW = {"prompt": "q", "chosen": "ok", "rejected": None}


def _write(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        _jsonl(path, rows)
    return path


@pytest.mark.parametrize(
    ("name", "where", "reason"),
    [
        ("d.csv", ("line", 3), "got an empty CSV cell, which is read as missing"),
        ("d.parquet", ("row", 1), "required field is null"),
        ("d.jsonl", ("line", 2), "required field is null"),
    ],
)
def test_a_missing_response_is_refused_in_csv_parquet_and_json_alike(tmp_path, name, where, reason):
    path = _write(tmp_path / name, [{"prompt": "p", "chosen": "a", "rejected": "b"}, ROW])
    with pytest.raises(DataError) as e:
        load(path)
    assert (e.value.path, getattr(e.value, where[0]), e.value.field) == (str(path), where[1], "rejected")  # fmt: skip
    assert reason in e.value.reason


@pytest.mark.parametrize("name", ["d.jsonl", "d.parquet"])
def test_an_empty_response_written_as_text_is_a_response(tmp_path, name):
    (ex,) = load(_write(tmp_path / name, [{"prompt": "q", "chosen": "ok", "rejected": ""}]))
    assert ex.responses == ["ok", ""]


def test_csv_text_that_is_written_stays_a_response(tmp_path):
    blank = tmp_path / "blank.csv"  # whitespace: written text
    pd.DataFrame([{"prompt": "q", "chosen": "ok", "rejected": "   "}]).to_csv(blank, index=False)
    assert load(blank)[0].responses == ["ok", "   "]
    listed = tmp_path / "listed.csv"  # "" inside a JSON cell: written
    rows = [{"prompt": "q", "responses": json.dumps(["ok", ""]), "chosen": "0"}]
    pd.DataFrame(rows).to_csv(listed, index=False)
    assert load(listed)[0].responses == ["ok", ""]
    h3 = tmp_path / "h3.csv"
    pd.DataFrame(
        [
            {
                "context": json.dumps([_u("q")]),
                "response1": "x",
                "response2": None,
                "overall_preference": 1,
            }
        ]
    ).to_csv(h3, index=False)
    with pytest.raises(DataError, match=r"line 2, field 'response2': expected a response text, got an empty CSV cell"):  # fmt: skip
        load(h3)

"""Hostile input to the code of stop 41 (``rule:sql``, the weighted vote, RPR rows): each test
failed on the code before its fix (docs/hardening.md)."""

from __future__ import annotations

import itertools
import json
import math
import random
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError, SpecError
from rewardkit.evaluate.weighted_vote import final_answer, vote_accuracy
from rewardkit.rewards.rules.sql import SqlReward, gold_sqls
from rewardkit.rewards.rules.sql_compare import results_equal
from rewardkit.rewards.rules.sql_exec import Limits, execute
from rewardkit.types import Query

GOLD = "SELECT name FROM emp WHERE dept = 1"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sqldb") / "company.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, dept INTEGER);"
        "INSERT INTO emp VALUES (1, 'ann', 1), (2, 'bob', 1), (3, 'cy', 2);"
    )
    conn.commit()
    conn.close()
    return str(path)


@pytest.fixture(scope="module")
def reward(db) -> SqlReward:
    return SqlReward(db=db, timeout=2)


# -- rule:sql: empty statements and comments after the one query ----------------------------------
@pytest.mark.parametrize("tail", [";; -- done", ";\n;\n-- note", "; /* a */ ; -- b"])
def test_a_query_followed_by_empty_statements_runs(db, reward, tail):
    # before: the text went to SQLite whole; Python's sqlite3 refused the second (empty)
    # statement ("You can only execute one statement at a time"): a right answer scored 0
    sql = GOLD + tail
    assert execute(db, sql, Limits(2), own_process=False) == {
        "columns": 1,
        "rows": [["ann"], ["bob"]],
    }
    out = reward.score_full([Query("q", sql, reference=GOLD)])
    assert out.scores[0] == 1.0 and out.stats["failed"] == 0


def test_a_gold_query_followed_by_empty_statements_is_no_nan(reward):
    # before: NaN, "the gold SQL did not run … one statement at a time"
    out = reward.score_full([Query("q", GOLD, reference=GOLD + " ;; -- gold")])
    assert out.scores[0] == 1.0 and out.stats["errors"] == []


def test_a_second_real_statement_is_still_refused(db):
    res = execute(db, GOLD + ";; SELECT 1", Limits(2), own_process=False)
    assert res["kind"] == "sql" and "not one query" in res["error"]


# -- rule:sql: limits too large for the clocks ------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"), [("timeout", 1e308), ("max_mb", 1e300), ("memory_mb", 10**13)]
)
def test_huge_limits_are_refused_when_the_reward_is_built(db, option, value):
    # before: timeout=1e308 raised OverflowError (a traceback) when scoring; max_mb=1e300 (or
    # memory_mb=10**13) made every worker fail, so every row was NaN
    with pytest.raises(SpecError, match=f"option {option} must be ≤"):
        SqlReward(db=db, **{option: value})


def test_limits_at_their_maxima_still_score(db):
    r = SqlReward(db=db, timeout=86_400, max_mb=1024)
    assert r.score_full([Query("q", GOLD, reference=GOLD)]).scores[0] == 1.0


# -- rule:sql: a reference that is no SQL text ------------------------------------------------------
@pytest.mark.parametrize("ref", [5, True, {"sql": 7}, ["SELECT 1", 2.5]])
def test_a_reference_that_is_no_text_is_nan_with_its_reason(reward, ref):
    # before: NaN with stats["errors"] empty (the module says every NaN has its reason there)
    with pytest.raises(ValueError, match="not SQL text"):
        gold_sqls(ref)
    out = reward.score_full([Query("q", "SELECT 5", reference=ref)])
    assert math.isnan(out.scores[0])
    assert "not SQL text" in out.stats["errors"][0]["error"]


def test_missing_references_stay_nan_without_an_error(reward):
    assert gold_sqls([None, float("nan"), "", " SELECT 1 "]) == ["SELECT 1"]
    out = reward.score_full([Query("q", "SELECT 5", reference=None)])
    assert math.isnan(out.scores[0]) and out.stats["errors"] == []


# -- rule:sql column_order=any: a gold of equal columns --------------------------------------------
def test_equal_gold_columns_do_not_make_the_column_search_explode():
    # before: eight equal gold columns and a predicted result whose columns each hold the
    # gold's values but whose rows do not: 1000 full comparisons, 8 s for 1,000 rows in the
    # scorer process (no SQL timeout applies there; 180 s for 20,000 rows)
    n = 1000
    gold = [[x] * 8 for x in range(n)]
    pred = [[x, (x + 1) % n, x, x, x, x, x, x] for x in range(n)]
    start = time.monotonic()
    assert not results_equal(gold, pred, "multiset", 1e-9, any_column_order=True)
    assert time.monotonic() - start < 3.0


@pytest.mark.parametrize("mode", ["multiset", "set", "ordered"])
def test_the_column_search_still_finds_every_order_brute_force_finds(mode):
    rng = random.Random(7)
    for _ in range(150):
        width, n = rng.randint(1, 5), rng.randint(1, 6)
        gold = [[rng.randint(0, 2) for _ in range(width)] for _ in range(n)]
        for i in range(1, width):  # some gold columns equal to an earlier one
            if rng.random() < 0.5:
                k = rng.randrange(i)
                for row in gold:
                    row[i] = row[k]
        order = rng.sample(range(width), width)
        moved = [[row[j] for j in order] for row in gold]
        other = [[rng.randint(0, 2) for _ in range(width)] for _ in range(n)]
        for pred in (moved, other):
            want = any(
                results_equal(gold, [[r[j] for j in q] for r in pred], mode)
                for q in itertools.permutations(range(width))
            )
            assert results_equal(gold, pred, mode, any_column_order=True) == want


# -- the weighted vote: labels that are not 0/1 -----------------------------------------------------
def test_graded_labels_give_no_vote_accuracy():
    # before: rating scores (9, 2, 8) were added as hits: "weighted vote 9.000" in the report
    graded = (["4", "5", "4"], [0.9, 0.2, 0.8], [9.0, 2.0, 8.0])
    out = vote_accuracy([graded])
    assert out["pools"] == 0 and out["not_binary"] == 1
    assert all(math.isnan(out[k]) for k in ("weighted_vote", "majority_vote", "best_of_n"))
    binary = (["4", "5", "4"], [0.9, 0.2, 0.8], [1, 0, True])
    nan_label = (["4", "5"], [0.9, 0.2], [1.0, float("nan")])
    out = vote_accuracy([graded, binary, nan_label])
    assert out["pools"] == 1 and out["not_binary"] == 2 and out["weighted_vote"] == 1.0
    assert np.isfinite(out["best_of_n"]) and out["best_of_n"] <= 1.0


def test_eval_reports_no_vote_accuracy_above_one(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    rows = [
        {
            "prompt": f"What is {i}+{i}?",
            "reference": str(2 * i),
            "responses": [
                f"The answer is {2 * i}.",
                f"The answer is {2 * i + 1}.",
                f"#### {2 * i}",
            ],
            "ratings": [{"score": 9}, {"score": 2}, {"score": 7}],
        }
        for i in range(3)
    ]
    data = tmp_path / "bon.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["eval", "-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "weighted_vote" in node and isinstance(node["weighted_vote"], dict):
                found.append(node["weighted_vote"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(report)
    assert found, "no weighted vote in the report"
    for vote in found:
        assert vote["pools"] == 0 and vote["not_binary"] == 3
        assert all(v is None or v <= 1.0 for k, v in vote.items() if k.endswith("vote"))


def test_a_huge_boxed_fraction_is_an_answer_not_a_failed_eval():
    # before: ValueError "Exceeds the limit (4300 digits) for integer string conversion", which
    # ended `rewardkit eval` on a best-of-N file ("error: Exceeds the limit …", no report)
    huge = "\\boxed{\\frac{" + "9" * 5000 + "}{3}}"
    answer = final_answer(huge)
    assert answer is not None and answer.startswith("\\frac{999") and answer.endswith("}{3}")
    assert final_answer("\\boxed{\\frac{2000}{2}}") == final_answer("1,000") == "1000"
    pools = [(["1000", answer, "1000"], [0.2, 0.9, 0.3], [1, 0, 1])]
    assert vote_accuracy(pools)["weighted_vote"] == 0.0  # the huge answer wins, and is wrong


# -- RPR rows: a NaN context -----------------------------------------------------------------------
def test_an_rpr_nan_context_is_not_called_a_csv_cell(tmp_path: Path):
    row = {
        "id": "r1",
        "prompt": "Greet me.",
        "response_a": "Hi.",
        "response_b": "Hello there, how wonderful to see you!",
        "criteria_x": float("nan"),
        "criteria_y": "Be warm.",
    }
    path = tmp_path / "rpr.jsonl"
    path.write_text(json.dumps(row) + "\n")  # NaN as JSON's NaN
    with pytest.raises(DataError) as e:
        load(str(path), format="rpr")
    msg = str(e.value)
    assert "field 'criteria_x'" in msg and "nan (a missing value)" in msg
    assert "CSV" not in msg  # before: "got an empty CSV cell" for a JSON Lines file


# -- contrastive term: a temperature that overflows every gradient ---------------------------------
@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tests.test_contrastive_loss import dropout_bert

    return dropout_bert(tmp_path_factory.mktemp("bert"))


def test_a_tiny_contrastive_temperature_is_refused_not_trained_with(bert, tmp_path):
    # before: contrastive_temperature=1e-20 gave grad_norm inf at every step, the optimizer moved
    # no weight, and the run saved the unchanged model as a success
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.train.run import train_model

    cfg = tiny_cfg(
        bert, tmp_path / "o", max_steps=1, batch_size=4, contrastive_weight=0.1,
        contrastive_temperature=1e-20, disable_dropout=False,
    )  # fmt: skip
    with pytest.raises(SpecError, match=r"contrastive_temperature must be a number >= 0\.0001"):
        train_model(cfg, examples=(toy_pairs(8), []))
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_the_temperature_check_takes_simcse_values_only():
    pytest.importorskip("torch")
    from rewardkit.train.contrastive import MIN_TEMPERATURE, check_temperature

    assert check_temperature(0.05) == 0.05 and check_temperature(MIN_TEMPERATURE) == 1e-4
    for bad in (1e-20, float("nan"), float("inf"), 0.0, "0.05"):
        with pytest.raises(SpecError, match="contrastive_temperature must be"):
            check_temperature(bad)  # type: ignore[arg-type]


# -- MetaRM: shifted samples that truncation makes identical ---------------------------------------
def test_metarm_samples_truncated_to_the_same_tokens_are_refused(bert, tmp_path):
    # before: every group's responses became the same tokens, J = 2/s·Σσ(0) = 1.0 at every step
    # with no gradient, and the run "trained" with a meta step that did nothing
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.train.run import train_model

    long = " ".join(["word"] * 200)
    rows = [
        {"prompt": f"{long} {i}", "responses": ["yes it is", "no"], "chosen": []} for i in range(3)
    ]
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_cfg(
        bert, tmp_path / "o", max_steps=1, batch_size=4, max_length=32, truncation="right",
        metarm_data=str(shifted),
    )  # fmt: skip
    with pytest.raises(DataError, match="every prompt's responses encode to the same tokens"):
        train_model(cfg, examples=(toy_pairs(8), []))
    assert not (tmp_path / "o" / "model.safetensors").exists()

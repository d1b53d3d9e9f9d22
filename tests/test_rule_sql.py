"""rule:sql (docs/methods/B14-text-to-sql.md): reading the SQL, comparing results, the reward.

One small SQLite database in the Spider layout (``<root>/company/company.sqlite``), built once
for the module; one reward per option set, so the SQL workers are started once and reused."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from rewardkit.errors import SpecError
from rewardkit.rewards.rules.sql import (
    SqlReward,
    compute_score,
    extract_sql,
    gold_sqls,
    is_one_query,
    results_equal,
    split_statements,
    top_level_order_by,
)
from rewardkit.types import Query

SCHEMA = """
CREATE TABLE dept(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, dept_id INTEGER REFERENCES dept(id),
                 salary REAL, bonus INTEGER);
CREATE TABLE files(k INTEGER, body BLOB);
INSERT INTO dept VALUES (1, 'eng'), (2, 'ops'), (3, 'hr');
INSERT INTO emp VALUES (1, 'ann', 1, 100.0, 5), (2, 'bob', 1, 80.5, NULL), (3, 'cy', 2, NULL, 3),
                       (4, 'di', 2, 70.0, NULL), (5, 'ed', 1, 80.5, 1);
INSERT INTO files VALUES (1, x'00ff'), (2, x'41');
"""

JOIN = "SELECT e.name FROM emp e JOIN dept d ON e.dept_id = d.id WHERE d.name = 'eng'"
SUBQUERY = "SELECT name FROM emp WHERE dept_id IN (SELECT id FROM dept WHERE name = 'eng')"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("spider")
    (root / "company").mkdir()
    conn = sqlite3.connect(root / "company" / "company.sqlite")
    conn.executescript(SCHEMA)
    conn.commit()
    conn.close()
    return root


@pytest.fixture(scope="module")
def reward(root):
    return SqlReward(db_root=str(root), timeout=2)


def q(response: str, gold, **meta) -> Query:
    return Query("How many?", response, reference=gold, meta={"db_id": "company", **meta})


# -- reading the SQL ----------------------------------------------------------------------------
def test_extract_sql_reads_fences_answer_and_think():
    assert extract_sql("Here:\n```sql\nSELECT 1;\n```\n") == "SELECT 1"
    # the last ```sql block wins over a later block of another kind, and over earlier ones
    text = "```sql\nSELECT 1\n```\n```sql\nSELECT 2\n```\n```text\nnotes\n```"
    assert extract_sql(text) == "SELECT 2"
    assert extract_sql("```\nSELECT 3\n```") == "SELECT 3"  # else the last fenced block
    assert extract_sql("<answer> SELECT 4; </answer>") == "SELECT 4"
    assert extract_sql("SELECT 5;;  \n") == "SELECT 5"
    # reasoning is not the answer: what follows the last </think> is read
    think = "<think>```sql\nSELECT wrong\n```</think>\n<answer>SELECT right</answer>"
    assert extract_sql(think) == "SELECT right"
    assert extract_sql("<think>x</think> SELECT 6") == "SELECT 6"
    # nothing after </think>: the whole response is read
    assert extract_sql("<think>\n```sql\nSELECT 7\n```\n</think>") == "SELECT 7"


def test_statements_and_query_shape():
    assert split_statements("SELECT ';' FROM t; -- done") == ["SELECT ';' FROM t"]
    assert split_statements('SELECT "a;b", [c;d], `e;f` /* ; */ FROM t') == [
        'SELECT "a;b", [c;d], `e;f` /* ; */ FROM t'
    ]
    assert split_statements("SELECT 1; DROP TABLE emp") == ["SELECT 1", "DROP TABLE emp"]
    assert split_statements(" ; -- only a comment\n ; ") == []
    assert is_one_query("select 1") and is_one_query("/* c */ WITH x AS (SELECT 1) SELECT * FROM x")
    assert is_one_query("VALUES (1)")
    assert not is_one_query("SELECT 1; SELECT 2")
    assert not is_one_query("DROP TABLE emp") and not is_one_query("PRAGMA table_info(emp)")
    assert not is_one_query("") and not is_one_query("The answer is SELECT 1")


def test_top_level_order_by():
    assert top_level_order_by("SELECT a FROM t ORDER BY a DESC")
    assert top_level_order_by("select a from t union select b from u\norder\n by 1")
    assert not top_level_order_by("SELECT rank() OVER (ORDER BY a) FROM t")
    assert not top_level_order_by("SELECT * FROM (SELECT a FROM t ORDER BY a LIMIT 3)")
    assert not top_level_order_by("SELECT a FROM t WHERE b = 'order by'")
    assert not top_level_order_by('SELECT "order by" FROM t -- order by a')


def test_gold_sqls():
    assert gold_sqls(" SELECT 1; ") == ["SELECT 1"]
    assert gold_sqls(["SELECT 1", "", None, "SELECT 2"]) == ["SELECT 1", "SELECT 2"]
    assert gold_sqls({"query": "SELECT 3", "db_id": "x"}) == ["SELECT 3"]
    assert gold_sqls(None) == [] and gold_sqls("  ") == []
    with pytest.raises(ValueError, match="none of"):
        gold_sqls({"answer": "SELECT 1"})


# -- comparing results --------------------------------------------------------------------------
def test_results_equal_modes_types_nulls_floats():
    gold = [(1, "a"), (2, "b"), (2, "b")]
    assert results_equal(gold, [(2, "b"), (1, "a"), (2, "b")])  # order-free multiset
    assert not results_equal(gold, [(1, "a"), (2, "b")])  # a duplicate counts
    assert results_equal(gold, [(1, "a"), (2, "b")], mode="set")  # BIRD's set
    assert not results_equal(gold, [(2, "b"), (1, "a"), (2, "b")], mode="ordered")
    assert results_equal(gold, gold, mode="ordered")
    assert results_equal([(1,)], [(1.0,)])  # 1 is 1.0
    assert not results_equal([(1,)], [("1",)]) and not results_equal([(b"1",)], [("1",)])
    assert results_equal([(None, 2)], [(None, 2)]) and not results_equal([(None,)], [(0,)])
    assert not results_equal([(0.3,)], [(0.1 + 0.2,)])  # exact by default
    assert results_equal([(0.3,)], [(0.1 + 0.2,)], tol=1e-9)
    assert not results_equal([(1e308,)], [(math.inf,)], tol=1e-9)
    assert not results_equal([(10**12,)], [(10**12 + 1,)], tol=1e-9)  # integers stay exact
    assert results_equal([], [])  # two empty results (Spider), whatever their columns
    assert not results_equal([(1,)], []) and not results_equal([(1,)], [(1, 2)])
    # tolerance pairs rows by their other columns first
    a = [(1.0, "b"), (1.0000000001, "a")]
    assert results_equal(a, [(1.0000000001, "b"), (1.0, "a")], tol=1e-9)
    assert results_equal([(1.0,), (1.0 + 1e-12,)], [(1.0,)], mode="set", tol=1e-9)


def test_results_equal_column_order():
    gold = [(1, "a", None), (2, "b", 3.5)]
    swapped = [("a", None, 1), ("b", 3.5, 2)]
    assert not results_equal(gold, swapped)
    assert results_equal(gold, swapped, any_column_order=True)
    assert not results_equal(gold, [("a", None, 2), ("b", 3.5, 1)], any_column_order=True)
    same = [(1, 1), (2, 3)]  # columns alike in values: every order is tried
    assert results_equal([(1, 1), (3, 2)], same, any_column_order=True)
    assert not results_equal([(1, 1), (3, 2)], same)


# -- the reward ---------------------------------------------------------------------------------
def test_join_and_subquery_score_one_and_wrong_scores_zero(reward):
    responses = [
        f"```sql\n{SUBQUERY};\n```",
        f"<think>a join</think>\n{JOIN}",
        "SELECT name FROM emp",  # every employee: wrong
        "SELECT nme FROM emp",  # no such column: an SQL error
        "I do not know.",
    ]
    out = reward.score_full([q(r, JOIN) for r in responses])
    np.testing.assert_array_equal(out.scores, [1.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out.components["exec"], [1.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out.components["format"], [1.0, 1.0, 1.0, 1.0, 0.0])
    assert out.stats["failed"] == 0 and out.stats["pred_sql"] == 1
    assert out.stats["not_one_query"] == 1
    assert set(out.components) == {"format", "exec"}  # no "sem" without w_sem


def test_order_by_in_gold_makes_order_matter(reward):
    ordered = "SELECT name FROM emp WHERE salary IS NOT NULL ORDER BY salary DESC, name"
    same_rows = "SELECT name FROM emp WHERE salary IS NOT NULL"
    right = "SELECT name FROM emp WHERE salary > 0 ORDER BY salary DESC, name ASC"
    out = reward.score([q(same_rows, ordered), q(right, ordered), q(right, same_rows)])
    np.testing.assert_array_equal(out, [0.0, 1.0, 1.0])
    forced = SqlReward(db_root=reward.options["db_root"], compare="ordered")
    assert forced.score([q("SELECT id FROM dept ORDER BY id DESC", "SELECT id FROM dept")])[0] == 0


def test_compare_set_vs_multiset(root):
    gold, pred = "SELECT DISTINCT dept_id FROM emp", "SELECT dept_id FROM emp"
    multiset = SqlReward(db_root=str(root))
    as_set = SqlReward(db_root=str(root), compare="set")
    assert multiset.score([q(pred, gold)])[0] == 0.0
    assert as_set.score([q(pred, gold)])[0] == 1.0
    assert as_set.fingerprint() != multiset.fingerprint()


def test_floats_nulls_blobs_and_column_order_through_sqlite(root):
    exact = SqlReward(db_root=str(root), float_tol=0)
    default = SqlReward(db_root=str(root))
    rows = [q("SELECT 0.1 + 0.2", "SELECT 0.3"), q("SELECT 1.0", "SELECT 1")]
    np.testing.assert_array_equal(default.score(rows), [1.0, 1.0])
    np.testing.assert_array_equal(exact.score(rows), [0.0, 1.0])
    nulls = "SELECT name, bonus FROM emp WHERE bonus IS NULL"
    assert default.score([q("SELECT name, NULL FROM emp WHERE bonus IS NULL", nulls)])[0] == 1
    assert default.score([q("SELECT name, 0 FROM emp WHERE bonus IS NULL", nulls)])[0] == 0
    blob = "SELECT body FROM files WHERE k = 1"
    assert default.score([q("SELECT x'00ff'", blob), q("SELECT '00ff'", blob)]).tolist() == [1, 0]
    swapped = q("SELECT bonus, name FROM emp WHERE bonus IS NULL", nulls)
    assert default.score([swapped])[0] == 0
    assert SqlReward(db_root=str(root), column_order="any").score([swapped])[0] == 1


def test_database_from_the_row(root, reward):
    path = str(root / "company" / "company.sqlite")
    gold = "SELECT count(*) FROM emp"
    rows = [
        Query("", "SELECT 5", reference=gold, meta={"db_path": path}),
        Query("", "SELECT 5", reference=gold, meta={"db": "company/company.sqlite"}),
        Query("", "SELECT 5", reference={"sql": gold, "db_id": "company"}),
        Query("", "SELECT 5", reference=gold, meta={"db_id": "nowhere"}),
        Query("", "SELECT 5", reference=gold),
        Query("", "SELECT 5", reference=None, meta={"db_id": "nowhere"}),  # no gold: no error
    ]
    out = reward.score_full(rows)
    assert out.scores[:3].tolist() == [1.0, 1.0, 1.0] and np.isnan(out.scores[3:]).all()
    errors = {e["index"]: e["error"] for e in out.stats["errors"]}
    assert set(errors) == {3, 4} and all("score" not in e for e in out.stats["errors"])
    assert "database not found" in errors[3] and "nowhere/nowhere.sqlite" in errors[3]
    assert "no database for this row" in errors[4]
    fixed = SqlReward(db=path)  # one database for every row, whatever the row says
    assert fixed.score([Query("", "SELECT 5", reference=gold, meta={"db_id": "x"})])[0] == 1
    no_root = SqlReward().score_full([q("SELECT 5", gold)])
    assert (
        np.isnan(no_root.scores[0]) and "needs the db_root" in no_root.stats["errors"][0]["error"]
    )


def test_gold_that_fails_is_nan_with_its_reason_and_is_cached(root):
    reward = SqlReward(db_root=str(root))
    rows = [q(JOIN, "SELECT nope FROM emp"), q(JOIN, "DELETE FROM emp"), q(JOIN, JOIN)]
    first = reward.score_full(rows)
    assert np.isnan(first.scores[:2]).all() and first.scores[2] == 1.0
    reasons = [e["error"] for e in first.stats["errors"]]
    assert "the gold SQL did not run" in reasons[0] and "no such column: nope" in reasons[0]
    assert "not one query" in reasons[1]
    assert first.stats["gold_runs"] == 3
    again = reward.score_full(rows)
    assert again.stats["gold_runs"] == 0 and again.stats["gold_cached"] == 3
    np.testing.assert_array_equal(again.scores, first.scores)
    # a list of golds: the best that runs
    assert reward.score([q(JOIN, ["SELECT nope FROM emp", SUBQUERY])])[0] == 1.0
    unreadable = reward.score_full([q(JOIN, {"answer": JOIN})])  # a mapping without SQL
    assert np.isnan(unreadable.scores[0]) and "none of" in unreadable.stats["errors"][0]["error"]


def test_weights_and_components(root):
    reward = SqlReward(db_root=str(root), w_format=0.5, w_exec=1.0)
    responses = [SUBQUERY, "SELECT name FROM emp", f"{SUBQUERY}; {SUBQUERY}", "No SQL here."]
    out = reward.score_full([q(r, JOIN) for r in responses])
    np.testing.assert_allclose(out.scores, [1.5, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(out.components["format"], [1, 1, 0, 0])
    assert out.stats["pred_runs"] == 2  # the two-statement response never ran


def test_options_are_checked(root, tmp_path):
    for bad in (
        {"compare": "bag"},
        {"column_order": "loose"},
        {"w_exec": 0},
        {"w_sem": -1},
        {"timeout": 0},
        {"max_rows": 0},
        {"db": str(tmp_path / "missing.sqlite")},
        {"db_root": str(tmp_path / "missing")},
    ):
        with pytest.raises(SpecError, match="rule:sql"):
            SqlReward(**bad)
    reward = SqlReward(db_root=str(root))
    assert reward.uses_meta and reward.name == "rule:sql"
    assert reward.fingerprint() == SqlReward(db_root=str(root), workers=1).fingerprint()
    assert reward.fingerprint() != SqlReward(db_root=str(root), timeout=9).fingerprint()


def test_registered_as_a_rule_spec(root):
    from rewardkit import load_reward
    from rewardkit.rewards.rules import DESCRIPTIONS, RULES

    assert RULES["sql"] == "rewardkit.rewards.rules.sql:SqlReward" and "sql" in DESCRIPTIONS
    reward = load_reward(f"rule:sql?db_root={root}&compare=set&w_format=0.5")
    assert isinstance(reward, SqlReward) and reward.options["compare"] == "set"
    assert reward.score([q(SUBQUERY, JOIN)])[0] == 1.5


def test_compute_score_in_verls_shape(root):
    info = {"db_id": "company", "question": "Who works in eng?"}
    assert compute_score("spider", SUBQUERY, JOIN, info, db_root=str(root)) == 1.0
    assert compute_score("spider", "SELECT 1", JOIN, info, db_root=str(root)) == 0.0
    assert math.isnan(compute_score("spider", SUBQUERY, JOIN, {"db_id": "x"}, db_root=str(root)))
    path = str(root / "company" / "company.sqlite")
    assert compute_score("bird", SUBQUERY, JOIN, extra_info={"db_path": path}) == 1.0


@pytest.mark.slow
def test_semantic_similarity_weight(root):
    reward = SqlReward(db_root=str(root), w_sem=0.5)
    responses = [JOIN, SUBQUERY, "SELECT count(*) FROM files", "SELECT 1; SELECT 2"]
    out = reward.score_full([q(r, JOIN) for r in responses] + [q(JOIN, None)])
    sem = out.components["sem"]
    assert sem[0] == pytest.approx(1.0, abs=1e-5)  # the gold itself
    assert 0.5 < sem[1] < 1.0 and 0.0 <= sem[2] < sem[1]  # same meaning beats another query
    assert sem[3] == 0.0 and np.isnan(sem[4])  # no single query; no gold
    np.testing.assert_allclose(out.scores[:4], [1.0 + 0.5 * sem[0], 1.0 + 0.5 * sem[1], 0.5 * sem[2], 0.0], rtol=1e-6)  # fmt: skip

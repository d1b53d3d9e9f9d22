"""Red team of the new features (round 42): rule:sql's database paths and empty results, the
verifier's numeric references, harmonic's negative-member error through the CLI, RPR contexts
and responses that cannot reverse, and MetaRM's data and diverging meta step. Real files, the
embedded SmolLM2 verifier, a tiny BERT reward model."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from tests.test_data42b import CONCISE, DETAILED, _jsonl, _rpr_row
from tests.test_rule_sql import SCHEMA
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.rewards.rules.sql import SqlReward
from rewardkit.types import Example, Query, user

runner = CliRunner()


# -- rule:sql ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spider(tmp_path_factory) -> tuple[Path, Path]:
    """(db_root with company/company.sqlite and a `linked` symlink to it, a database outside)."""
    base = tmp_path_factory.mktemp("red42sql")
    root = base / "root"
    (root / "company").mkdir(parents=True)
    conn = sqlite3.connect(root / "company" / "company.sqlite")
    conn.executescript(SCHEMA)
    conn.commit()
    conn.close()
    secret = base / "secret.sqlite"
    conn = sqlite3.connect(secret)
    conn.executescript("CREATE TABLE s(v TEXT); INSERT INTO s VALUES ('hunter2');")
    conn.commit()
    conn.close()
    (root / "linked.sqlite").symlink_to(root / "company" / "company.sqlite")
    return root, secret


@pytest.fixture(scope="module")
def sql_reward(spider) -> SqlReward:
    return SqlReward(db_root=str(spider[0]), timeout=2)


def test_a_row_cannot_name_a_database_outside_db_root(spider, sql_reward):
    root, secret = spider
    right = ("SELECT v FROM s", "SELECT 'hunter2'")
    rows = [
        Query("q", right[0], reference=right[1], meta={"db_id": "../secret.sqlite"}),
        Query("q", right[0], reference=right[1], meta={"db_path": str(secret)}),
        Query("q", right[0], reference={"sql": right[1], "db_path": str(secret)}),
        Query("q", right[0], reference=right[1], meta={"db_path": "~/secret.sqlite"}),
        # inside the root: a subpath, an absolute path under it, the owner's symlink
        Query("q", "SELECT 1", reference="SELECT 1", meta={"db_id": "company/company.sqlite"}),
        Query(
            "q",
            "SELECT 1",
            reference="SELECT 1",
            meta={"db_path": str(root / "company" / "company.sqlite")},
        ),
        Query("q", "SELECT 1", reference="SELECT 1", meta={"db_id": "linked"}),
    ]
    full = sql_reward.score_full(rows)
    s = full.scores
    assert all(math.isnan(x) for x in s[:4])  # before: 1.0, 1.0, 1.0 (the secret was read)
    assert s[4:].tolist() == [1.0, 1.0, 1.0]
    errors = {e["index"]: e["error"] for e in full.stats["errors"]}
    assert sorted(errors) == [0, 1, 2, 3]
    assert all("outside db_root=" in errors[i] for i in range(4))


def test_an_empty_result_passes_only_with_the_gold_width(sql_reward):
    gold = "SELECT name, salary FROM emp WHERE name = 'nobody'"  # empty, two columns
    rows = [
        Query("q", r, reference=gold, meta={"db_id": "company"})
        for r in ("SELECT 1 WHERE 0", "SELECT 1, 2 WHERE 0", gold)
    ]
    full = sql_reward.score_full(rows)
    assert full.scores.tolist() == [0.0, 1.0, 1.0]  # before: [1.0, 1.0, 1.0]
    assert full.stats["gold_empty"] == 3


# -- verifier: numeric references -------------------------------------------------------------
def test_numeric_references_are_read_as_their_text():
    from rewardkit.rewards.judges.verifier import build

    v = build("default", output="logit", progress=False, threads=1)
    refs = ["4", 4, 4.0, np.int64(4), np.array(["4"]), ["5", 4], math.nan, True]
    s = v.score([Query("What is 2+2?", "The answer is 4.", reference=r) for r in refs])
    # before: every reference but the text "4" and the list's "5" was left out (NaN)
    assert np.all(s[1:6] == s[0]) and not math.isnan(s[0])
    assert math.isnan(s[6]) and math.isnan(s[7])


# -- harmonic: a negative member through the CLI ------------------------------------------------
def test_harmonic_negative_member_is_named_in_score_and_eval(tmp_path):
    spec = tmp_path / "h.yaml"
    spec.write_text('ensemble: ["rule:length", "rule:repetition"]\naggregate: harmonic\n')
    rows = [
        {"prompt": "q1", "response": "the cat sat on the mat", "reference": "x"},
        {"prompt": "q2", "response": "a dog", "reference": "x"},
        {"prompt": "q3", "response": "the the the the the the the the", "reference": "x"},
    ]
    data = _jsonl(tmp_path / "s.jsonl", rows)
    args = ["score", "--data", str(data), "-r", str(spec), "--out", str(tmp_path / "o.jsonl")]
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "Traceback" not in res.output
    # before: "row 0, member 1" (the engine's sorted batch: the file's row 3, member unnamed)
    assert "'rule:repetition'" in res.output and "'q3'" in res.output
    pairs = [{"prompt": "q3", "chosen": "ok fine", "rejected": rows[2]["response"]}]
    res = runner.invoke(app, ["eval", "--data", str(_jsonl(tmp_path / "e.jsonl", pairs)),
                              "-r", str(spec), "--out", str(tmp_path / "r")])  # fmt: skip
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "'rule:repetition'" in res.output and "'the the the" in res.output


# -- A11: contexts and responses that cannot reverse -----------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"criteria_y": "Prefer  brevity:\none short sentence "}, "criteria_y"),
        ({"response_b": CONCISE}, "response_b"),
    ],
)
def test_rpr_rows_that_cannot_reverse_are_refused(tmp_path, change, field):
    path = _jsonl(tmp_path / "rpr.jsonl", [_rpr_row(1), _rpr_row(2, **change)])
    with pytest.raises(DataError) as e:  # before: loaded as a reversal pair
        load(path)
    assert (e.value.line, e.value.field) == (2, field)


def test_one_context_spelled_twice_is_no_reversal_pair():
    from rewardkit.data.context import with_context
    from rewardkit.evaluate.context_use import context_pairs, context_use_report, reversal_pairs

    def ex(ctx: str, chosen: int) -> Example:
        meta = {"criterion": ctx.strip()}
        return Example(id=ctx, prompt=with_context([user("Explain DNS.")], ctx), meta=meta,
                       responses=[CONCISE, DETAILED], chosen=[chosen])  # fmt: skip

    exs = [ex("be brief", 0), ex("Be  brief", 1), ex("go deep", 1)]
    contexts = context_pairs(exs)
    assert reversal_pairs(exs, contexts) == [(0, 2)]  # before: also (0, 1)
    scores = {i: [1.0, 0.0] for i in range(3)}
    assert context_use_report(exs, scores, scores)["n_contexts"] == 2  # before: 3


# -- A6: MetaRM ------------------------------------------------------------------------------
def test_metarm_data_of_identical_responses_is_refused(bert_dir, tmp_path):
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.train.run import train_model

    rows = [{"prompt": f"p{i}", "responses": ["same", "same"], "chosen": []} for i in range(4)]
    shifted = _jsonl(tmp_path / "same.jsonl", rows)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", max_steps=1, batch_size=4, metarm_data=str(shifted))
    with pytest.raises(DataError, match="same text"):  # before: trained, the meta step a no-op
        train_model(cfg, examples=(toy_pairs(8), []))


def test_a_diverging_meta_step_names_metarm_eta_and_saves_nothing(bert_dir, tmp_path):
    from tests.test_metarm import _shifted
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.errors import TrainingDiverged
    from rewardkit.train.run import train_model

    out = tmp_path / "o"
    cfg = tiny_cfg(bert_dir, out, max_steps=2, batch_size=4, metarm_eta=1e30,
                   metarm_data=str(_shifted(tmp_path / "s.jsonl")))  # fmt: skip
    with pytest.raises(TrainingDiverged, match="metarm_eta"):  # before: "... lower learning rate"
        train_model(cfg, examples=(toy_pairs(8), []))
    assert not (out / "model.safetensors").exists()

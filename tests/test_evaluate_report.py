"""report.json / report.md / terminal table of an evaluation."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence

import numpy as np
import pytest

from rewardkit.evaluate import evaluate, plain_table, print_table, write_reports
from rewardkit.types import Example, Query, Reward, ScoreResult, user


class FixedReward(Reward):
    def __init__(self, table: dict[str, float], name: str = "rm"):
        self.table = table
        self.name = name

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        stats = {"truncated": 1, "cached": 0, "computed": len(queries)}
        return ScoreResult(np.array([self.table[q.response] for q in queries]), stats=stats)


def _dataset():
    spec = {
        "alpacaeval-easy": [(2.0, 1.0), (1.0, 2.0), (1.5, 1.5), (3.0, 0.1)],
        "mt-bench-med": [(0.3, 0.2), (0.7, 0.1)],
        "donotanswer": [(0.1, 0.2), (0.25, 0.125), (float("nan"), 0.0)],
    }
    examples, table = [], {}
    for subset, pairs in spec.items():
        for i, (c, r) in enumerate(pairs):
            rc, rr = f"{subset} chosen {i}" + "!" * i, f"{subset} rejected {i}"
            table[rc], table[rr] = c, r
            examples.append(
                Example(
                    id=f"{subset}-{i}",
                    prompt=[user("p")],
                    responses=[rc, rr],
                    chosen=[0],
                    subset=subset,
                )
            )
    table.update({"t1": 0.0, "t2": 1.0})
    examples.append(
        Example(
            id="tie-1",
            prompt=[user("p")],
            responses=["t1", "t2"],
            chosen=[0, 1],
            subset="donotanswer",
        )
    )
    return examples, table


def _run():
    examples, table = _dataset()
    return evaluate(examples, [FixedReward(table)], n_boot=300, seed=1)


def test_write_reports_writes_both_files_and_json_round_trips(tmp_path):
    res = _run()
    paths = write_reports(res, tmp_path / "out")
    assert paths["json"].name == "report.json" and paths["markdown"].name == "report.md"
    data = json.loads(paths["json"].read_text())
    assert set(data) == {"schema", "settings", "dataset", "rewards", "run", "analyses"}
    assert data["settings"]["ties"] == "half"
    assert data["settings"]["seed"] == 1 and data["settings"]["n_boot"] == 300
    assert data["settings"]["benchmark"] == "rewardbench1"
    assert data["settings"]["weighting"] == "published"
    assert data["settings"]["section_weights"]["alpacaeval-easy"] == 100.0
    assert [r["name"] for r in data["rewards"]] == ["rm", "rule:length"]

    rm = data["rewards"][0]
    assert rm["fingerprint"] == FixedReward({}).fingerprint()
    assert rm["n_truncated"] == 1
    assert rm["subsets"]["alpacaeval-easy"]["score"] == 2.5 / 4
    assert rm["subsets"]["donotanswer"]["n_nan"] == 1
    ex = {e["id"]: e for e in rm["examples"]}
    assert len(ex) == 10
    assert ex["alpacaeval-easy-2"]["scores"] == [1.5, 1.5]
    assert ex["alpacaeval-easy-2"]["outcome"] == 0.5
    assert ex["donotanswer-1"]["scores"] == [0.25, 0.125]
    assert ex["donotanswer-2"]["scores"][0] is None  # NaN written as null
    assert ex["donotanswer-2"]["outcome"] is None
    assert ex["tie-1"]["skipped"] == "labelled tie"
    assert data["dataset"]["skipped"] == {"labelled tie": 1}
    assert data["run"]["rewards"]["rm"]["stats"]["computed"] == 20

    # everything needed to recompute: subset accuracies from the per-example outcomes
    for sub, g in rm["subsets"].items():
        outs = [
            e["outcome"] for e in rm["examples"] if e["subset"] == sub and e["outcome"] is not None
        ]
        assert g["score"] == sum(outs) / len(outs)
        assert g["n"] == len(outs)
    chat = (
        100 * rm["subsets"]["alpacaeval-easy"]["score"]
        + 40 * rm["subsets"]["mt-bench-med"]["score"]
    ) / 140
    assert rm["sections"]["Chat"]["score"] == pytest.approx(chat, abs=1e-15)


def test_reruns_are_byte_identical_apart_from_the_run_block(tmp_path):
    a, b = _run(), _run()
    a.created_at = b.created_at = "2000-01-01T00:00:00+00:00"
    for ra, rb in zip(a.rewards, b.rewards, strict=True):
        ra.seconds = rb.seconds = 0.0
    assert a.json_text() == b.json_text()
    pa = write_reports(a, tmp_path / "a")["json"]
    pb = write_reports(b, tmp_path / "b")["json"]
    assert pa.read_bytes() == pb.read_bytes()
    assert (tmp_path / "a" / "report.md").read_bytes() == (
        tmp_path / "b" / "report.md"
    ).read_bytes()


def test_json_is_strict_sorted_and_exact():
    res = _run()
    text = res.json_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    # floats are written exactly: 0.1 as float32 keeps all its digits
    assert float(np.float32(0.1)) in [
        s for e in data["rewards"][0]["examples"] for s in e["scores"]
    ]


def test_markdown_table():
    md = _run().to_markdown()
    lines = md.splitlines()
    assert lines[2] == "|  | n | `rm` | `rule:length` |"
    assert any(line.startswith("| **Chat** | 6 |") for line in lines)
    assert any("alpacaeval-easy | 4 |" in line for line in lines)
    score_line = next(line for line in lines if line.startswith("| **Score**"))
    assert re.search(r"\*\*\d+\.\d \[\d+\.\d, \d+\.\d\]\*\*", score_line)
    assert "62.5 [" in md  # alpacaeval-easy with a half tie: 2.5 / 4
    assert "Skipped 1 of 10 examples (labelled tie: 1)" in md
    assert "`rm`: 1 rows truncated" in md
    assert "`rm`: 1 examples with a NaN score excluded" in md
    assert "Ties (`half`)" in md
    assert "published RewardBench v1 example counts" in md
    # sections in published order
    assert md.index("**Chat**") < md.index("**Safety**")


def test_print_table_plain_and_rich():
    res = _run()
    buf = io.StringIO()
    print_table(res, file=buf, use_rich=False)
    out = buf.getvalue()
    assert out == plain_table(res)
    assert "rule:length" in out and "Score" in out and "  alpacaeval-easy" in out
    buf = io.StringIO()
    print_table(res, file=buf, use_rich=True)
    assert "rewardkit evaluation" in buf.getvalue() and "Score" in buf.getvalue()

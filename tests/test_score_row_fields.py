"""``rewardkit score`` reads TRL's prompt-completion rows and the reference under the names GRPO
datasets give it (``ground_truth``, ``solution``, ``answer``), as the TRL adapter does; a
reference-based rule was NaN on every such row before."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import Location
from rewardkit.scoring import query_from_row


def _run(tmp_path: Path, rows: list[dict], spec: str) -> list[dict]:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = CliRunner().invoke(app, ["score", "--data", str(src), "-r", spec, "--out", str(out)])
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_completion_and_reference_names(tmp_path):
    rows = [
        {"prompt": "6*7?", "completion": "The answer is \\boxed{42}.", "solution": "42"},
        {"prompt": "6*7?", "completion": [{"role": "assistant", "content": "It is 41."}],
         "answer": "42"},
        {"prompt": [{"role": "user", "content": "6*7?"}], "response": "42", "ground_truth": "42"},
        {"prompt": "6*7?", "response": "42", "reference": "41", "answer": "42"},
    ]  # fmt: skip
    out = _run(tmp_path, rows, "rule:math")
    assert [o["reward"] for o in out] == [1.0, 0.0, 1.0, 0.0]  # `reference` wins
    assert out[1]["completion"] == rows[1]["completion"]  # rows written back as given


def test_a_kto_label_is_no_reference():
    loc = Location("x.jsonl", "x.jsonl", line=1)
    q = query_from_row({"prompt": "p", "completion": "a", "label": True}, loc)
    assert q.response == "a" and q.reference is None and q.meta["label"] is True


def test_a_completion_that_is_a_user_message_is_refused(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "p", "completion": [{"role": "user", "content": "x"}]}))
    r = CliRunner().invoke(
        app, ["score", "--data", str(src), "-r", "rule:length", "--out", str(tmp_path / "o.jsonl")]
    )
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "in.jsonl, line 1, field 'completion[0].role'" in r.output and "'assistant'" in r.output

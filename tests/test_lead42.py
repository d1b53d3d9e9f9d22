"""Lead fixes of stop 42 that belong to no helper's file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rewardkit.cli import app


def _rows(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response": f"a {i}"}) + "\n" for i in range(3)))  # fmt: skip
    return data


def test_a_judge_template_can_be_a_file_and_its_text_is_the_key(tmp_path):
    """``template=PATH`` was looked up as a built-in name ("no file t.txt.txt")."""
    data, tpl = _rows(tmp_path), tmp_path / "t.txt"
    tpl.write_text("Question: {conversation}\nAnswer: {response}\nHelpful? Reply Yes or No.\n")
    args = ["score", "-r", f"judge:default?template={tpl}", "--data", str(data), "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    first = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a.jsonl")])
    assert first.exit_code == 0, first.output
    tpl.write_text("Q: {conversation}\nA: {response}\nIs this answer wrong? Reply Yes or No.\n")
    second = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b.jsonl")])
    assert second.exit_code == 0 and "0 from the score cache" in second.output, second.output
    a = [json.loads(x)["reward"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x)["reward"] for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a != b  # the edited template is read, not an old key's scores
    for bad, says in ((tmp_path / "none.txt", "does not exist"), (tmp_path / "bad.txt", "has no {conversation} slot")):  # fmt: skip
        if bad.name == "bad.txt":
            bad.write_text("no slots here\n")
        res = CliRunner().invoke(app, ["score", "-r", f"judge:default?template={bad}", "--data", str(data), "--out", str(tmp_path / "x.jsonl")])  # fmt: skip
        assert res.exit_code == 2 and says in res.output, res.output


def test_score_applies_a_system_column_as_eval_does(tmp_path):
    """``score`` left a row's ``system`` column out of the prompt that ``data``/``eval`` build
    (Intel orca_dpo_pairs rows): the same text scored differently in the two verbs."""
    from rewardkit.data import Location
    from rewardkit.scoring import query_from_row

    loc = Location("rows.jsonl", "rows.jsonl", line=1)
    q = query_from_row({"system": "Be brief.", "prompt": "Hi?", "response": "Hello."}, loc)
    assert q.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]
    own = [{"role": "system", "content": "Own."}, {"role": "user", "content": "Hi?"}]
    q2 = query_from_row({"system": "Be brief.", "prompt": own, "response": "Hello."}, loc)
    assert q2.prompt == own  # a prompt with its own system message keeps it

"""Card F1 best-of-N: selection rule, one scoring pass, resumable runs (no model)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from rewardkit import load_reward
from rewardkit.errors import DataError
from rewardkit.inference.best_of_n import best_of_n, score_candidates, select_best, select_worst
from rewardkit.inference.run import (
    BonConfig,
    PromptItem,
    load_done,
    read_prompts,
    read_rows,
    run_bon,
)
from rewardkit.types import Query, Reward, user


class CountingLength(Reward):
    """Response length, counting how many times ``score`` is called."""

    name = "counting-length"

    def __init__(self) -> None:
        self.calls = 0

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return np.array([len(q.response) for q in queries], dtype=float)


def test_select_best_ties_first_and_nan_never_wins():
    assert select_best([1.0, 3.0, 3.0, 2.0]) == 1
    assert select_best([np.nan, 0.5, np.nan]) == 1
    assert select_best([np.nan, np.nan]) == 0
    assert select_worst([2.0, 1.0, 1.0, np.nan]) == 1
    with pytest.raises(ValueError):
        select_best([])


def test_all_candidates_scored_in_one_pass_with_references():
    r = CountingLength()
    out = score_candidates(r, [[user("a")], [user("b")]], [["x", "xxx"], ["yy", "y", "yyyy"]])
    assert r.calls == 1 and [s.tolist() for s in out] == [[1.0, 3.0], [2.0, 1.0, 4.0]]
    gsm = load_reward("rule:gsm8k")
    out = score_candidates(gsm, [[user("2+2?")]], [["#### 4", "it is 5", "4"]], ["#### 4"])
    assert out[0].tolist() == [1.0, 0.0, 1.0]


def test_best_of_n_with_a_generator():
    def gen(prompt, n):
        return ["b", "ccc", "aaa", "d"][:n]

    res = best_of_n([user("q")], gen, CountingLength(), 4, return_all=True)
    assert (res.best, res.index, res.score) == ("ccc", 1, 3.0)  # tie with "aaa": first wins
    assert res.scores == [1.0, 3.0, 3.0, 1.0] and res.candidates[2] == "aaa"
    with pytest.raises(ValueError, match="expected 5"):
        best_of_n([user("q")], gen, CountingLength(), 5)


def _sampler(log):
    def sample(prompt, n):
        log.append(prompt[0]["content"])
        return [prompt[0]["content"] * (i + 1) for i in range(n)]

    return sample


def test_run_is_resumable_and_refuses_other_settings(tmp_path):
    items = [PromptItem(f"p{i}", [user(f"q{i}")], None) for i in range(3)]
    out = tmp_path / "bon.jsonl"
    log: list[str] = []
    cfg = BonConfig(n=3, policy={"m": "x"}, generation={"seed": 0}, reward="len")
    stats = run_bon(items[:2], _sampler(log), CountingLength(), out, cfg, progress=False)
    assert stats["generated"] == 2 and log == ["q0", "q1"]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["best"] == 2 and rows[0]["best_response"] == "q0q0q0"
    assert [c["score"] for c in rows[1]["candidates"]] == [2.0, 4.0, 6.0]
    # a killed run leaves half a line: it is dropped and the prompt redone
    with out.open("a") as fh:
        fh.write('{"id": "p2", "cand')
    stats = run_bon(items, _sampler(log), CountingLength(), out, cfg, progress=False)
    assert stats["skipped_done"] == 2 and stats["generated"] == 1 and log[-1] == "q2"
    assert len(out.read_text().splitlines()) == 3
    other = BonConfig(n=4, policy={"m": "x"}, generation={"seed": 0}, reward="len")
    with pytest.raises(DataError, match="other settings"):
        run_bon(items, _sampler(log), CountingLength(), out, other, progress=False)
    assert len(load_done(out, cfg.key())) == 3


def test_prompts_no_candidate_of_which_scored_are_counted(tmp_path):
    # rule:math without a reference: every candidate NaN; the row looked like a real pick
    items = [PromptItem("p0", [user("2+2?")], None), PromptItem("p1", [user("3+3?")], "6")]
    out = tmp_path / "bon.jsonl"
    cfg = BonConfig(n=2, policy={"m": "x"}, generation={"seed": 0}, reward="math")
    stats = run_bon(items, _sampler([]), load_reward("rule:math"), out, cfg, progress=False)
    assert stats["unscored"] == 1 and stats["generated"] == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["best_score"] is None and rows[0]["best"] == 0
    assert rows[1]["best_score"] == 0.0


def test_read_prompts_fields_and_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"question": "2+2?", "answer": "#### 4"})
        + "\n"
        + json.dumps({"id": "x", "prompt": [{"role": "user", "content": "hi"}]})
        + "\n"
    )
    items = read_prompts(path, instruction="Answer with a number.")
    assert items[0].id == "p.jsonl:1" and items[0].reference == "#### 4"
    assert items[0].prompt == [user("2+2?\n\nAnswer with a number.")]
    assert items[1].id == "x" and items[1].prompt == [user("hi")] and items[1].reference is None
    assert len(read_prompts(path, limit=1)) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no prompt"}) + "\n")
    with pytest.raises(DataError, match=r"line 1.*no prompt field"):
        read_prompts(bad)
    with pytest.raises(DataError, match="missing reference"):
        read_prompts(path, reference_field="gold")


def test_bon_curve_from_the_same_samples_card_d8():
    """The benchmark's N = 1, 2, 4, 8 curve is card D8's unbiased expected best-of-N."""
    from rewardkit.evaluate.bestofn import bon_kl, expected_bon

    assert expected_bon([1, 2, 3, 4], [1, 2, 3, 4], 2) == pytest.approx(3.333333, abs=1e-6)
    # a 0/1 verifier as its own selector: best-of-k = pass@k = 1 − C(M−c, k)/C(M, k)
    g = [0.0, 1.0, 0.0, 0.0]
    assert [expected_bon(g, g, k) for k in (1, 2, 4)] == pytest.approx([0.25, 0.5, 1.0])
    assert bon_kl(4) == pytest.approx(0.636294, abs=1e-6)


def test_bon_with_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    rows = tmp_path / "prompts.jsonl"
    rows.write_text('{"prompt": "q"}\n')
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    args = ["bon", "--policy", str(empty), "-r", "rule:length", "--n", "2", "--data", str(rows)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2, result.output
    assert f"no config.json in {empty}" in result.output


def test_a_last_row_cut_before_its_newline_is_not_joined_by_the_next(tmp_path):
    # a disk that fills at the byte before a row's newline: the row is whole, its "\n" is not
    items = [PromptItem(f"p{i}", [user(f"q{i}")], None) for i in range(3)]
    out = tmp_path / "bon.jsonl"
    cfg = BonConfig(n=2, policy={"m": "x"}, generation={"seed": 0}, reward="len")
    run_bon(items[:2], _sampler([]), CountingLength(), out, cfg, progress=False)
    out.write_bytes(out.read_bytes().rstrip(b"\n"))
    stats = run_bon(items, _sampler([]), CountingLength(), out, cfg, progress=False)
    assert stats["skipped_done"] == 2 and stats["generated"] == 1
    assert [r["id"] for r in read_rows(out)] == ["p0", "p1", "p2"]  # was two rows on one line


def test_read_rows_names_the_file_and_line_of_a_bad_row(tmp_path):
    out = tmp_path / "bon.jsonl"
    out.write_text('{"id": "p0"}\n{"id": "p1"}{"id": "p2"}\n')
    with pytest.raises(DataError, match=r"bon.jsonl, line 2: invalid JSON"):
        read_rows(out)


def test_bon_refuses_a_gzip_out(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    data = tmp_path / "p.jsonl"
    data.write_text('{"id": "a", "prompt": "2+2?"}\n')
    result = CliRunner().invoke(
        app,
        ["bon", "--data", str(data), "--out", str(tmp_path / "b.jsonl.gz"), "-r", "rule:length"],
    )
    assert result.exit_code == 2 and "appends a row as each prompt finishes" in result.output
    assert not (tmp_path / "b.jsonl.gz").exists()


class InfiniteLength(Reward):
    """+inf for the longest candidate, -inf for the shortest, the length between."""

    name = "infinite-length"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        n = np.array([len(q.response) for q in queries], dtype=float)
        return np.where(n == n.max(), np.inf, np.where(n == n.min(), -np.inf, n))


def test_infinite_scores_are_written_as_standard_json(tmp_path):
    # before: json.dumps wrote Infinity / -Infinity, which no strict JSON reader (jq) accepts
    items = [PromptItem("p0", [user("q")], None)]
    out = tmp_path / "bon.jsonl"
    cfg = BonConfig(n=3, policy={"m": "x"}, generation={"seed": 0}, reward="inf")
    run_bon(items, _sampler([]), InfiniteLength(), out, cfg, progress=False)
    text = out.read_text()
    assert "Infinity" not in text
    (row,) = [
        json.loads(x, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
        for x in text.splitlines()
    ]
    assert row["best"] == 2 and row["best_response"] == "qqq"
    assert [c["score"] for c in row["candidates"]] == [None, 2.0, None]
    assert row["best_score"] is None

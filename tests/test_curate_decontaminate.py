"""``rewardkit curate decontaminate``: training rows whose prompt an evaluation set holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.decontaminate import (
    build_index,
    decontaminate,
    ngrams,
    prompt_words,
    turns_text,
)
from rewardkit.data import load, write_jsonl
from rewardkit.types import Example, user

runner = CliRunner()
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PASSAGE = (
    "The mitochondria is the membrane bound organelle that produces most of the chemical "
    "energy needed to power the biochemical reactions of the cell"
)
ANSWER = "Seven is a prime number, and it is the one answer that this test will reuse twice."
SYSTEM = {"role": "system", "content": "You are a helpful assistant who answers carefully."}


def _ex(i: str, prompt, responses=("yes", "no")) -> Example:
    msgs = [user(prompt)] if isinstance(prompt, str) else prompt
    return Example(i, msgs, list(responses), [0])


@pytest.fixture
def eval_set() -> list[Example]:
    return [
        _ex("ev0", [SYSTEM, user("What is the capital of France?")]),
        _ex("ev1", f"Summarize this passage in one sentence: {PASSAGE}."),
        _ex("ev2", "Name a prime number", (ANSWER, "4")),
    ]


@pytest.fixture
def train_set() -> list[Example]:
    return [
        _ex("copy", "  what is the CAPITAL of france  "),  # exact after normalization
        _ex("quote", f"Please explain: {PASSAGE.upper()}! Thanks."),  # shares 13-grams
        _ex("system-only", [SYSTEM, user("Write a haiku about autumn leaves.")]),
        _ex("clean", "How do I bake sourdough bread at home?"),
        _ex("answer", "Give me one prime", (ANSWER, "9")),
        _ex("short-in-long", "capital of France"),  # a short text inside a longer one: kept
    ]


def test_exact_and_ngram_matches_are_removed_and_named(eval_set, train_set):
    res = decontaminate(train_set, [build_index("bench", eval_set)])
    assert [e.id for e in res.examples] == ["system-only", "clean", "answer", "short-in-long"]
    removed = {r["id"]: r for r in res.removed}
    assert removed["copy"] == {
        "index": 0,
        "id": "copy",
        "eval": "bench",
        "eval_id": "ev0",
        "kind": "exact",
        "shared": None,
    }
    # the passage has 23 words: all 11 of its 13-grams lie inside the quote
    assert removed["quote"]["kind"] == "ngram" and removed["quote"]["eval_id"] == "ev1"
    assert removed["quote"]["shared"] == len(ngrams(PASSAGE, 13)) == 11
    assert res.counts == {"rows": 6, "removed_by_bench": 2, "removed": 2, "kept": 4}


def test_thresholds_and_responses(eval_set, train_set):
    strict = decontaminate(train_set, [build_index("bench", eval_set)], min_shared=12)
    assert {r["id"] for r in strict.removed} == {"copy"}  # 11 shared < 12: the quote stays
    with_answers = decontaminate(train_set, [build_index("bench", eval_set)], responses=True)
    answer = next(r for r in with_answers.removed if r["id"] == "answer")
    assert answer["kind"] == "response_ngram" and answer["eval_id"] == "ev2"
    # a smaller window catches the short text inside the longer eval prompt
    small = decontaminate(train_set, [build_index("bench", eval_set, n=3)])
    assert "short-in-long" in {r["id"] for r in small.removed}
    with pytest.raises(ValueError, match="min_shared"):
        decontaminate(train_set, [], min_shared=0)
    with pytest.raises(ValueError, match="n-gram size"):
        build_index("x", eval_set, n=0)


def test_first_matching_set_is_named_and_system_turns_ignored(eval_set, train_set):
    a, b = build_index("a", eval_set[:1]), build_index("b", eval_set)
    res = decontaminate(train_set, [a, b])
    assert res.counts["removed_by_a"] == 1 and res.counts["removed_by_b"] == 1
    assert turns_text([SYSTEM, user("Hi!")]) == "user: hi"
    assert ngrams("", 13) == set() and ngrams("One two.", 13) == set()
    assert ngrams("One, two: THREE.", 2) == {"one two", "two three"}


def _write(tmp_path, name, exs):
    path = tmp_path / name
    write_jsonl(exs, path)
    return path


def test_cli_writes_clean_rows_and_a_report(tmp_path, eval_set, train_set):
    train = _write(tmp_path, "train.jsonl", train_set)
    bench = _write(tmp_path, "bench.jsonl", eval_set)
    out, report = tmp_path / "clean.jsonl", tmp_path / "removed.json"
    args = ["curate", "decontaminate", "--data", train, "--against", bench, "--out", out]
    res = runner.invoke(app, [*map(str, args), "--report", str(report), "--responses"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["removed"] == 3 and summary["written"] == 3
    assert [e.id for e in load(out)] == ["system-only", "clean", "short-in-long"]
    rep = json.loads(report.read_text())
    assert rep["eval_rows"] == {str(bench): 3}
    assert sorted(r["id"] for r in rep["removed"]) == ["answer", "copy", "quote"]


def test_cli_refuses_bad_input_clearly(tmp_path, eval_set, train_set):
    train = _write(tmp_path, "train.jsonl", train_set)
    bench = _write(tmp_path, "bench.jsonl", eval_set)
    # an output that would overwrite the evaluation set it is checked against
    res = runner.invoke(
        app,
        [
            "curate",
            "decontaminate",
            "--data",
            str(train),
            "--against",
            str(bench),
            "--out",
            str(bench),
        ],
    )
    assert res.exit_code == 2 and "--against" in res.output
    assert len(load(bench)) == 3
    # a malformed evaluation line names its file and line
    bad = tmp_path / "bad.jsonl"
    bad.write_text(bench.read_text() + "{not json\n")
    res = runner.invoke(
        app,
        [
            "curate",
            "decontaminate",
            "--data",
            str(train),
            "--against",
            str(bad),
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert res.exit_code == 2 and "bad.jsonl" in res.output and "line 4" in res.output
    assert not (tmp_path / "o.jsonl").exists()
    # no --against at all: a usage error
    res = runner.invoke(
        app, ["curate", "decontaminate", "--data", str(train), "--out", str(tmp_path / "o.jsonl")]
    )
    assert res.exit_code == 2 and "--against" in res.output


JUDGEBENCH = DATA / "judgebench"


@pytest.mark.skipif(not JUDGEBENCH.is_dir(), reason="../shared/data/judgebench is absent")
def test_judgebench_response_models_share_their_questions(tmp_path):
    """JudgeBench's two files draw from one question pool: every row of one whose question opens
    as a row of the other does (94 of 270) is removed, and every removal names a row that exists.
    Their shared answer-format instruction is boilerplate: before it was, 246 rows were removed,
    most only for sharing that instruction."""
    claude, gpt = sorted(JUDGEBENCH.glob("*.jsonl"))
    train, bench = load(claude), load(gpt)
    index = build_index("gpt", bench)
    res = decontaminate(train, [index])
    assert index.common > 0

    def opening(e):
        return " ".join(prompt_words(e.prompt).split())[:150]

    twins = {t.id for t in train if opening(t) in {opening(e) for e in bench}}
    assert len(twins) > 0.3 * len(train)
    assert twins <= {r["id"] for r in res.removed}
    assert res.counts["removed"] < 0.7 * len(train)
    ids = {e.id for e in bench}
    prompts = {e.id: turns_text(e.prompt) for e in bench}
    for r in res.removed:
        assert r["eval_id"] in ids
        if r["kind"] == "exact":
            assert turns_text(train[r["index"]].prompt) == prompts[r["eval_id"]]


def test_a_template_shared_by_the_whole_set_is_not_evidence_of_a_copy():
    """60 evaluation prompts open with one 24-word instruction: its n-grams are the set's
    boilerplate (held by more than common_limit(60) = 50 rows) and no longer mark every row that
    uses the template; a copy of one item is still found by its own n-grams, naming that item."""
    from rewardkit.curate.decontaminate import common_limit

    template = (
        "Please read the following instructions carefully and answer the question below with a "
        "single short paragraph that explains your reasoning step by step."
    )
    items = [
        f"Question {i}: how many apples are left if a farmer with {i} baskets of {i + 5} apples "
        f"each gives away {i + 2} whole baskets to his neighbours on market day?"
        for i in range(60)
    ]
    bench = [_ex(f"b{i}", f"{template} {q}") for i, q in enumerate(items)]
    index = build_index("bench", bench)
    assert common_limit(60) == 50 and index.common > 0
    uses_template = _ex("mine", f"{template} Write a limerick about a cat who loves the rain.")
    copy = _ex("copy", f"{template} {items[40]}")
    res = decontaminate([uses_template, copy], [index])
    assert [e.id for e in res.examples] == ["mine"]
    assert res.removed[0]["eval_id"] == "b40" and res.removed[0]["kind"] == "exact"
    loose = _ex("loose", f"Hi! {items[40]} Thanks a lot.")  # not exact: found by its n-grams
    hit = decontaminate([loose], [index]).removed[0]
    assert hit["eval_id"] == "b40" and hit["kind"] == "ngram" and hit["shared"] >= 5

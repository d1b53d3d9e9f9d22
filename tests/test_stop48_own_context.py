"""Each response scored in its own conversation (src/rewardkit/example_context.py): a pair whose
two sides answer different histories (Arena multi-turn, MT-Bench turn 2, arena-human-preference,
Unified-Feedback) scores, evaluates and trains response B after B's history, not A's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.data import load
from rewardkit.data.context import DEFAULT_TEMPLATE, with_context
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.result import data_identity
from rewardkit.example_context import (
    has_own_histories,
    map_prompts,
    own_prompts,
    pair_prompt,
    pick_responses,
)
from rewardkit.types import Capability, Example, PairwiseResult, Query, Reward, user


def _conv(*turns: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ARENA = {  # a Chatbot Arena multi-turn row: the vote follows turn 2
    "question_id": "q7",
    "conversation_a": _conv("Name a prime.", "Seven.", "Another?", "Eleven."),
    "conversation_b": _conv("Name a prime.", "Two, the only even one.", "Another?", "Three."),
    "turn": 2,
    "winner": "model_b",
}


def _arena(tmp_path: Path) -> Example:
    (ex,) = load(_write(tmp_path / "arena.jsonl", [ARENA]))
    return ex


def _contents(prompt: list) -> list[str]:
    return [m["content"] for m in prompt]


@pytest.mark.parametrize(
    ("fmt", "row", "b_history"),
    [
        ("mt-bench-human", ARENA, ["Name a prime.", "Two, the only even one.", "Another?"]),
        (
            "arena-human-preference",
            {
                "prompt": '["Name a prime.", "Another?"]',
                "response_a": '["Seven.", "Eleven."]',
                "response_b": '["Two.", "Three."]',
                "winner_model_a": 0,
                "winner_model_b": 1,
                "winner_tie": 0,
            },
            ["Name a prime.", "Two.", "Another?"],
        ),
        (
            "unified-feedback",
            {
                "conv_A": _conv("Name a prime.", "Seven.", "Another?", "Eleven."),
                "conv_B": _conv("Name a prime.", "Two.", "Another?", "Three."),
                "conv_A_rating": 0,
                "conv_B_rating": 1,
                "source": "arena",
            },
            ["Name a prime.", "Two.", "Another?"],
        ),
    ],
)
def test_each_reader_gives_b_its_own_history(
    tmp_path: Path, fmt: str, row: dict, b_history: list[str]
) -> None:
    (ex,) = load(_write(tmp_path / "d.jsonl", [row]), format=fmt)
    qa, qb = ex.queries()
    assert _contents(qa.prompt) == ["Name a prime.", "Seven.", "Another?"]
    assert _contents(qb.prompt) == b_history
    assert ex.prompt_for(1) == qb.prompt and ex.prompt_for(0) == ex.prompt
    assert qa.key() != Query(qa.prompt, qb.response).key() != qb.key()  # B keyed in its context
    assert has_own_histories(ex) and pair_prompt(ex, 0, 1) is None


def test_shared_history_and_other_shapes_keep_the_prompt(tmp_path: Path) -> None:
    turn1 = {**ARENA, "turn": 1}
    (ex,) = load(_write(tmp_path / "t1.jsonl", [turn1]))
    assert "prompt_b" not in ex.meta and not has_own_histories(ex)
    assert [q.prompt for q in ex.queries()] == [ex.prompt, ex.prompt]
    assert pair_prompt(ex, 0, 1) == ex.prompt
    three = Example("x", [user("p")], ["a", "b", "c"], [0], meta={"prompt_b": [user("other")]})
    assert own_prompts(three) == [[user("p")]] * 3  # prompt_b belongs to a pair's response 1
    with pytest.raises(IndexError, match="no response 2"):
        Example("y", [user("p")], ["a", "b"], [0]).prompt_for(2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "p"),
        (float("nan"), "p"),  # a missing pandas cell
        ("B's question", "B's question"),  # a text prompt: one user message
        ((user("tuple"),), "tuple"),
        (np.array([user("array")], dtype=object), "array"),  # a Parquet cell
    ],
)
def test_prompt_b_values_read(raw: Any, expected: str) -> None:
    ex = Example("e", [user("p")], ["a", "b"], [0], meta={"prompt_b": raw})
    assert _contents(ex.prompt_for(1)) == [expected]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (7, "got int"),
        ([], "got an empty list"),
        ("  ", "empty text"),
        ([{"content": "no role"}], "message 0 must be a dict"),
        (["just text"], "message 0 must be a dict"),
        ([{"role": "user", "content": 3}], "content"),
        ({"role": "user", "content": "a dict, not a list"}, "got dict"),
    ],
)
def test_malformed_prompt_b_is_one_clear_error(raw: Any, says: str) -> None:
    ex = Example("row9", [user("p")], ["a", "b"], [0], meta={"prompt_b": raw})
    with pytest.raises(DataError, match="row9") as e:
        ex.queries()
    assert "prompt_b" in str(e.value) and says in str(e.value)
    assert "\n" not in str(e.value)


class PromptLength(Reward):
    """A real reward that reads the prompt: its total character count (plus the response's)."""

    name = "prompt-length"

    def _score(self, queries: Any) -> np.ndarray:
        return np.array(
            [sum(len(m["content"]) for m in q.prompt) + len(q.response) for q in queries],
            dtype=np.float32,
        )


def test_eval_scores_b_as_b_alone_in_its_own_conversation(tmp_path: Path) -> None:
    ex = _arena(tmp_path)
    reward = PromptLength()
    rec = evaluate([ex], reward, n_boot=10, include_length_baseline=False).rewards[0]
    (record,) = rec.examples
    history_b = ARENA["conversation_b"][:3]
    alone = reward.score([Query(history_b, "Three.")])[0]
    in_a = reward.score([Query(ex.prompt, "Three.")])[0]
    assert record.scores[1] == pytest.approx(alone) and alone != in_a
    assert record.scores[0] == pytest.approx(reward.score([Query(ex.prompt, "Eleven.")])[0])
    assert record.outcome == 1.0  # B's longer history wins under this reward; in A's it lost


def test_classifier_scores_b_in_its_conversation(tmp_path: Path) -> None:
    from rewardkit.registry import load_reward

    ex = _arena(tmp_path)
    reward = load_reward("classifier:minilm")
    (record,) = evaluate([ex], reward, n_boot=10, include_length_baseline=False).rewards[0].examples
    alone = reward.score([Query(ARENA["conversation_b"][:3], "Three.")])[0]
    in_a = reward.score([Query(ex.prompt, "Three.")])[0]
    assert record.scores[1] == pytest.approx(float(alone), abs=1e-5)
    assert abs(float(alone) - float(in_a)) > 1e-6


def test_training_encodes_b_after_its_own_history(tmp_path: Path) -> None:
    from family_models import smollm_tokenizer
    from rewardkit.engine.encoding import encode_chat
    from rewardkit.train.collate import build_items
    from rewardkit.train.config import TrainConfig

    tok = smollm_tokenizer()
    ex = _arena(tmp_path)
    (item,) = build_items([ex], lambda qs: encode_chat(tok, qs, 512, "left"), TrainConfig())
    text_a, text_b = (tok.decode(ids) for ids in item.ids)
    assert "Seven." in text_a and "Two, the only even one." not in text_a
    assert "Two, the only even one." in text_b and "Seven." not in text_b
    assert item.pairs[0][:2] == (1, 0)  # B chosen: the pair trains B over A


def test_data_identity_sees_b_history() -> None:
    base = Example("e", [user("p")], ["a", "b"], [0])
    one = Example("e", [user("p")], ["a", "b"], [0], meta={"prompt_b": [user("q1")]})
    two = Example("e", [user("p")], ["a", "b"], [0], meta={"prompt_b": [user("q2")]})
    same = Example("e", [user("p")], ["a", "b"], [0], meta={"prompt_b": [user("p")], "x": 1})
    h = {n: data_identity("d", [e])["hash"] for n, e in (("b", base), ("1", one), ("2", two))}
    assert len(set(h.values())) == 3
    assert data_identity("d", [same])["hash"] == h["b"]  # same histories: the hash as before


def test_context_analysis_takes_the_line_out_of_both_histories() -> None:
    """The context-use analysis scores a pair without its context line: taken out of A's prompt
    and B's own history alike (a B history keeping it would be scored with it)."""
    from rewardkit.evaluate.context_use import _bare

    ctx = "Be brief."
    a_hist = with_context([user("q1"), {"role": "assistant", "content": "a1"}, user("q2")], ctx)
    b_hist = with_context(_conv("q1", "b1", "q2"), ctx)
    ex = Example("c", a_hist, ["a2", "b2"], [0], meta={"prompt_b": b_hist})
    (bare,) = _bare([ex], {0: ctx}, DEFAULT_TEMPLATE)
    assert bare.prompt_for(0) == _conv("q1", "a1", "q2")
    assert bare.prompt_for(1) == _conv("q1", "b1", "q2")


def test_map_and_pick_keep_each_response_with_its_history(tmp_path: Path) -> None:
    ex = _arena(tmp_path)
    b_history = ex.prompt_for(1)
    system = {"role": "system", "content": "S"}
    mapped = map_prompts(ex, lambda p: [system, *p])
    assert [p[0] for p in own_prompts(mapped)] == [system, system]
    assert own_prompts(mapped)[1][1:] == b_history
    swapped = pick_responses(ex, [1, 0])
    assert swapped.responses == ex.responses[::-1]
    assert own_prompts(swapped) == [b_history, ex.prompt]
    assert "prompt_b" not in pick_responses(ex, [1]).meta


def test_cli_eval_names_a_malformed_prompt_b(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rewardkit.cli import app

    row = {"prompt": "p", "chosen": "a", "rejected": "bb", "meta": {"prompt_b": 7}}
    data = _write(tmp_path / "bad.jsonl", [row])
    out = tmp_path / "r"
    args = ["eval", "-r", "rule:length", "--data", str(data), "--out", str(out), "--n-boot", "10"]
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "bad.jsonl:1" in result.output and "prompt_b" in result.output
    assert not (out / "report.json").exists()


class _LongerJudge(Reward):
    """A pairwise judge preferring the longer answer; it records every prompt it was shown."""

    name = "judge:longer"
    capabilities = frozenset({Capability.PAIRWISE})

    def __init__(self) -> None:
        self.shown: list[list] = []

    def _score(self, queries):
        return np.full(len(queries), np.nan)

    def compare_many(self, prompts, a, b) -> PairwiseResult:
        self.shown += [list(p) for p in prompts]
        got = np.array([0.9 if len(x) > len(y) else 0.1 for x, y in zip(a, b, strict=True)])
        return PairwiseResult(p=got, p_forward=got, p_reverse=got)


def test_a_pairwise_judge_never_judges_b_in_a_conversation(tmp_path: Path) -> None:
    """Eval: a pair whose sides answer different histories is left unjudged (no outcome); a
    pair sharing one history is judged under it."""
    turn1 = {**ARENA, "question_id": "q8", "turn": 1}
    examples = load(_write(tmp_path / "two.jsonl", [ARENA, turn1]))
    judge = _LongerJudge()
    result = evaluate(examples, [judge], n_boot=20)
    outcomes = [e.outcome for e in result.rewards[0].examples]
    assert outcomes == [None, 1.0] and result.rewards[0].n_nan == 1  # excluded and counted
    assert judge.shown and all(_contents(p) == ["Name a prime."] for p in judge.shown)
    from rewardkit.evaluate.context_use import pair_scores

    scores = pair_scores(judge, examples)
    assert np.isnan(scores[0]).all() and scores[1].tolist() == [0.1, 0.9]


def test_curate_pairs_keep_each_response_with_its_own_history(tmp_path: Path) -> None:
    """Reward-augmented pairs and consistency's best/worst reorder responses: each keeps its
    own history, conditioned alike; MetaRM groups each response under its own history."""
    from rewardkit.curate.consistency import consistency_filter
    from rewardkit.curate.relabel import reward_augment
    from rewardkit.train.metarm import group_by_prompt

    ex = _arena(tmp_path)  # B ("Three.") chosen over A ("Eleven.")
    a_turn, b_turn = "Seven.", "Two, the only even one."
    pos, neg = reward_augment([ex], scores=[np.array([2.0, 4.0])], scale=(1.0, 5.0))
    for row, first, mine, other in (
        (pos, "Three.", b_turn, a_turn),
        (neg, "Eleven.", a_turn, b_turn),
    ):
        assert row.responses[0] == first and row.chosen == [0]
        h0, h1 = row.prompt_for(0), row.prompt_for(1)
        assert h0[0]["role"] == "system" and h0[0] == h1[0]  # both conditioned on one goal
        assert _contents(h0)[2] == mine and _contents(h1)[2] == other
    scores = [np.array([1.0, 3.0])]
    (kept,) = consistency_filter([ex], scores, scores, pairs="best_worst").examples
    assert kept.responses == ["Three.", "Eleven."]
    assert _contents(kept.prompt_for(0))[1] == b_turn and _contents(kept.prompt_for(1))[1] == a_turn
    other = Example("o", ex.prompt, ["Thirteen."], [0])  # a third response to A's history
    groups = group_by_prompt([ex, other], "test")
    assert [(_contents(g.prompt)[1], g.responses) for g in groups] == [
        (a_turn, ["Eleven.", "Thirteen."])
    ]  # B's answer is not grouped under A's history (its own group of one is left out)

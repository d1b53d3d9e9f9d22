"""Label semantics (docs/data-formats.md "Unrated responses"; docs/training.md, card E1):
an unrated completion ("N/A" under the chooser) is neither chosen nor rejected, so train and
eval both leave it out; a ``vote_action: flip`` pair trains with the margin of its new label,
as ``curate noise --action flip`` writes it, and a multi-response flip reverses only the pair
the vote measured."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rewardkit.curate.noise import flip as curate_flip
from rewardkit.data import load
from rewardkit.engine.runner import EncodedRow
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward
from rewardkit.train.collate import build_items
from rewardkit.train.config import TrainConfig
from rewardkit.types import Example, user


def _encode(queries):
    return [EncodedRow([1, 2, i + 3]) for i, _ in enumerate(queries)]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _pairs(items) -> list[list[tuple[int, int, float]]]:
    return [[(a, b, m) for a, b, tie, m, _ in it.pairs if not tie] for it in items]


def _uf(overall: list[Any], texts: list[str]) -> dict[str, Any]:
    """Raw UltraFeedback: no fine-grained score, so ``overall_score`` chooses."""
    return {
        "instruction": "Write",
        "completions": [
            {"model": f"m{i}", "response": t, "overall_score": s,
             "annotations": {"helpfulness": {"Rating": "3", "Rationale": "r"}}}
            for i, (s, t) in enumerate(zip(overall, texts, strict=True))
        ],
    }  # fmt: skip


# --- 1: unrated responses ------------------------------------------------------------------------
def test_ultrafeedback_unrated_completion_is_neither_chosen_nor_rejected(tmp_path):
    """Completion 1 is "N/A" under overall_score: it was a rejected response (3 pairs mined,
    eval counted chosen vs it). Now left out, kept in meta; 2 pairs; eval 1.0 although the
    unrated text is the longest."""
    rows = [_uf([8, "N/A", 6, 5], ["x" * 9, "x" * 50, "x" * 4, "x" * 3])]
    (ex,) = load(_jsonl(tmp_path / "uf.jsonl", rows))
    assert ex.responses == ["x" * 9, "x" * 4, "x" * 3] and ex.chosen == [0]
    assert ex.meta["completion_models"] == ["m0", "m2", "m3"] and ex.meta["unrated"] == 1
    (gone,) = ex.meta["unrated_responses"]
    assert gone["index"] == 1 and gone["model"] == "m1" and gone["response"] == "x" * 50
    assert math.isnan(gone["ratings"]["overall_score"]) and gone["ratings"]["helpfulness"] == 3
    assert [r["overall_score"] for r in ex.ratings] == [8, 6, 5]
    assert _pairs(build_items([ex], _encode, TrainConfig())) == [[(0, 1, 0.0), (0, 2, 0.0)]]
    res = evaluate([ex], [load_reward("rule:length")], include_length_baseline=False, n_boot=5)
    assert [e.outcome for e in res.rewards[0].examples] == [1.0]


def test_fewer_than_two_rated_is_no_preference(tmp_path):
    """One rated completion among unrated ones prefers nothing: chosen [], all kept (no pair
    was chosen-vs-unrated); none rated: as before."""
    rows = [_uf([7, "N/A", "N/A"], ["a", "b", "c"]), _uf(["N/A", "N/A"], ["a", "b"])]
    one, none = load(_jsonl(tmp_path / "uf.jsonl", rows))
    assert one.responses == ["a", "b", "c"] and one.chosen == [] and one.meta["unrated"] == 2
    assert "unrated_responses" not in one.meta and one.meta["chosen_by"] is None
    assert none.chosen == [] and none.meta["unrated"] == 2


def test_codeultrafeedback_na_rating_is_left_out(tmp_path):
    row = {"instruction": "Add.", "preference": "p",
           "responses": [{"model": "m1", "response": "a-b"}, {"model": "m2", "response": "a+b"},
                         {"model": "m3", "response": "?"}],
           "annotations": [{"model": "m2", "rating": "5", "rationale": "ok"},
                           {"model": "m1", "rating": "2", "rationale": "wrong"},
                           {"model": "m3", "rating": "N/A", "rationale": "-"}]}  # fmt: skip
    (ex,) = load(_jsonl(tmp_path / "cuf.jsonl", [row]))
    assert ex.meta["format"] == "codeultrafeedback"
    assert ex.responses == ["a-b", "a+b"] and ex.chosen == [1] and ex.rejected == [0]
    assert ex.meta["response_models"] == ["m1", "m2"] and ex.meta["unrated"] == 1
    assert ex.meta["unrated_responses"][0]["model"] == "m3"


# --- 2: vote_action flip ------------------------------------------------------------------------
def _votes(tmp_path: Path, **strengths: float) -> str:
    path = tmp_path / "votes.json"
    path.write_text(json.dumps(strengths))
    return str(path)


def _flip_cfg(tmp_path: Path, column: str, kind: str = "margin", **votes: float) -> TrainConfig:
    return TrainConfig(
        margin_column=column,
        margin_kind=kind,
        vote_action="flip",
        vote_file=_votes(tmp_path, **votes),
    )


@pytest.mark.parametrize(
    ("column", "meta", "ratings", "want"),
    [
        ("margin", {"margin": -0.4}, None, 0.4),  # curate strength's μ: negated
        ("strength", {"strength": -0.3}, None, 0.3),
        ("overall", {}, [{"overall": 9.0}, {"overall": 6.0}], -3.0),  # ratings: 6 − 9
        ("preference_strength", {"preference_strength": -2}, None, 2.0),  # a magnitude: |s|
    ],
)
def test_vote_flip_margin_is_the_new_labels_as_curate_writes_it(
    tmp_path, column, meta, ratings, want
):
    """The flipped pair (1, 0) trained with the old label's margin (−0.4, −0.3, 3.0); now with
    the new label's, the margin the same example flipped by curate noise trains with."""
    ex = Example("a", [user("q")], ["good", "bad"], [0], ratings=ratings, meta=dict(meta))
    voted = build_items([ex], _encode, _flip_cfg(tmp_path, column, a=-1.0))
    curated = build_items([curate_flip(ex)], _encode, TrainConfig(margin_column=column))
    assert _pairs(voted) == _pairs(curated) == [[(1, 0, pytest.approx(want))]]


def test_vote_flip_under_scaled_refuses_a_negative_new_margin(tmp_path):
    """meta.margin 0.5 agrees with the label; a flip makes it −0.5 for the new one, which
    scaled would multiply the loss by (was trained as 0.5); curate-then-train refuses it too."""
    ex = Example("a", [user("q")], ["good", "bad"], [0], meta={"margin": 0.5})
    with pytest.raises(
        DataError,
        match=r"example .a.: margin field .margin. is -0\.5 \(its pair reversed by vote_action flip\)",
    ):
        build_items([ex], _encode, _flip_cfg(tmp_path, "margin", "scaled", a=-1.0))
    with pytest.raises(DataError, match=r"margin field 'margin' is -0\.5"):
        build_items(
            [curate_flip(ex)], _encode, TrainConfig(margin_column="margin", margin_kind="scaled")
        )
    ok = Example("b", [user("q")], ["good", "bad"], [0], meta={"margin": -0.5})
    assert _pairs(build_items([ok], _encode, _flip_cfg(tmp_path, "margin", "scaled", b=-1.0))) == [
        [(1, 0, 0.5)]
    ]


def test_vote_flip_of_best_of_4_reverses_only_the_voted_pair(tmp_path):
    """The vote is the labelled pair's (2, 0) strength (card E1): the flip trained 3 reversed
    pairs (0, 2), (1, 2), (3, 2), two the vote never measured; now (0, 2) alone, as curate noise
    reduces the example to it."""
    four = Example("b", [user("q")], ["w", "x", "best", "z"], [2], meta={"margin": -0.2})
    items = build_items([four], _encode, _flip_cfg(tmp_path, "margin", b=-1.0))
    assert _pairs(items) == [[(0, 2, pytest.approx(0.2))]]
    curated = build_items([curate_flip(four)], _encode, TrainConfig(margin_column="margin"))
    assert _pairs(curated) == [[(0, 1, pytest.approx(0.2))]]  # [y_r, y_c]: the same pair
    drop = TrainConfig(vote_action="drop", vote_file=_votes(tmp_path, b=-1.0))
    assert (
        build_items([four, Example("c", [user("q")], ["a", "b"], [0])], _encode, drop)[0].example_id
        == "c"
    )

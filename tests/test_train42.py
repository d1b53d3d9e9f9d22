"""Training labels measured where they were measured (docs/training.md, "What counts as a label";
src/rewardkit/train/pairs.py): a margin belongs to the pair it was measured on (a 4-response
example's ``meta.margin`` is its labelled pair's, cards A1/E1; ratings give each pair its own
difference; ``curate strength``/``export`` rows train as written: ties without a margin, null
margins on the other pairs); eval data in another format needs no margin column; the
``eval_fraction`` hold-out keeps the two contexts of a reversal pair (A11) on one side; a resume
refused for changed ``metarm_data`` names its files as data files are named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_bert, tiny_cfg  # noqa: E402

from rewardkit.data import load  # noqa: E402
from rewardkit.data.context import with_context  # noqa: E402
from rewardkit.engine.runner import EncodedRow  # noqa: E402
from rewardkit.errors import DataError  # noqa: E402
from rewardkit.train.collate import build_items, data_counts, split_holdout  # noqa: E402
from rewardkit.train.config import TrainConfig  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402


def _encode(queries):
    return [EncodedRow([1, 2, i + 3]) for i, _ in enumerate(queries)]


def _margins(items) -> list[list[tuple[int, int, float]]]:
    return [[(a, b, m) for a, b, tie, m, _ in it.pairs if not tie] for it in items]


def _four(i: int = 0, **meta) -> Example:
    """Best-of-4: response 2 chosen, its labelled pair (2, 0); ``meta`` e.g. margin."""
    return Example(f"b{i}", [user(f"q{i}")], ["w", "x", "best", "z"], [2], meta=dict(meta))


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return tiny_bert(tmp_path_factory.mktemp("bert"))


# --- 1: margins per pair ------------------------------------------------------------------------
def test_a_four_response_margin_goes_to_the_pair_it_was_measured_on(caplog):
    """meta.margin 1.5 was measured on (2, 0): the pairs (2, 1) and (2, 3) trained with 1.5 too."""
    from rewardkit.train.frozen import pair_margins

    two = Example("p", [user("q")], ["good", "bad"], [0], meta={"margin": 0.5})
    cfg = TrainConfig(margin_column="margin")
    with caplog.at_level(logging.WARNING):
        items = build_items([_four(margin=1.5), two], _encode, cfg, "train data 'x'")
    assert _margins(items) == [[(2, 0, 1.5), (2, 1, 0.0), (2, 3, 0.0)], [(0, 1, 0.5)]]
    assert "2 of 4 preference pairs have no margin under 'margin'" in caplog.text
    # the frozen head reads the same margins, in its pair order
    assert pair_margins([_four(margin=1.5), two], "margin") == [1.5, 0.0, 0.0, 0.5]
    # a flip reverses the labelled pair, whose margin becomes the new label's, −1.5, as
    # curate noise --action flip negates meta.margin (tests/test_labels42.py)
    from rewardkit.train.labels import flip_labels

    flipped = build_items([flip_labels(_four(margin=1.5))], _encode, cfg)
    assert _margins(flipped) == [[(0, 2, -1.5), (1, 2, 0.0), (3, 2, 0.0)]]


def test_ratings_under_the_margin_column_give_each_pair_its_own_difference():
    """UltraFeedback-shaped: 4 rated completions; a rating 'N/A' (None) leaves its pair out."""
    ratings = [{"overall": 2.0}, {"overall": None}, {"overall": 9.0}, {"overall": 6.5}]
    ex = Example("u", [user("q")], ["w", "x", "best", "z"], [2], ratings=ratings)
    items = build_items([ex], _encode, TrainConfig(margin_column="overall"))
    assert _margins(items) == [[(2, 0, 7.0), (2, 1, 0.0), (2, 3, 2.5)]]
    worse = Example("v", [user("q")], ["a", "b"], [0], ratings=[{"overall": 1.0}, {"overall": 3.0}])
    assert _margins(build_items([worse], _encode, TrainConfig(margin_column="overall"))) == [
        [(0, 1, -2.0)]
    ]  # E1's adaptive margins may be negative ...
    with pytest.raises(DataError, match=r"example 'v': margin field 'overall' is -2\.0"):
        build_items([worse], _encode, TrainConfig(margin_column="overall", margin_kind="scaled"))
    with pytest.raises(DataError, match="no margin field 'overal' in meta or in its responses"):
        build_items([ex], _encode, TrainConfig(margin_column="overal"))  # a misspelt column


def test_curate_strength_and_export_rows_train_with_the_margins_they_carry(tmp_path, caplog):
    """curate strength writes no margin on a tie (the run was refused: "no margin field");
    curate export writes null on a multi-response example's other rows (refused: "is None")."""
    from rewardkit.curate.strength import annotate_strength
    from rewardkit.curate.writers import write_openrlhf

    tie = Example("t", [user("q")], ["same", "alike"], [0, 1])
    with pytest.warns(UserWarning, match="no strength written"):  # the tie: not scored
        exs = annotate_strength([_four(), tie], np.array([[0.8, 1.2, 0.5], [np.nan] * 3]))
    cfg = TrainConfig(margin_column="margin")
    items = build_items(exs, _encode, cfg)
    assert _margins(items)[0] == [(2, 0, pytest.approx(0.833333, abs=1e-6)), (2, 1, 0), (2, 3, 0)]
    assert [p[2] for p in items[1].pairs] == [True]  # the tie trains as before, no margin read
    out = tmp_path / "rows.jsonl"
    assert write_openrlhf(exs, out) == 3
    rows = load(str(out))
    assert [ex.meta["margin"] for ex in rows][1:] == [None, None]
    with caplog.at_level(logging.WARNING):
        back = build_items(rows, _encode, cfg, "train data 'rows.jsonl'")
    assert [m for ms in _margins(back) for _, _, m in ms] == [
        pytest.approx(0.833333, abs=1e-6), 0.0, 0.0,
    ]  # fmt: skip
    assert "2 of 3 preference pairs have no margin" in caplog.text
    with pytest.raises(DataError, match="gives none of its 2 preference pairs a margin"):
        build_items(rows[1:], _encode, cfg, "train data")  # every value null: nothing to read


def test_eval_data_in_another_format_needs_no_margin_column(tmp_path, caplog):
    """Train on HelpSteer3 with its overall_preference as margin, evaluate on arena rows: the
    run exited 2 on the eval file's first row ("example '0': no margin field")."""
    plain = [Example(f"e{i}", [user("q")], ["a", "b"], [0]) for i in range(3)]
    cfg = TrainConfig(margin_column="overall_preference")
    with caplog.at_level(logging.WARNING):
        items = build_items(plain, _encode, cfg, "eval data 'arena.csv'", use_votes=False)
    assert _margins(items) == [[(0, 1, 0.0)]] * 3
    assert "3 of 3 preference pairs have no margin" in caplog.text and "eval_loss" in caplog.text
    with pytest.raises(DataError, match="no margin field 'overall_preference'"):
        build_items(plain, _encode, cfg, "train data")  # training data still must have it


def test_trainer_items_carry_per_pair_margins(bert_dir, tmp_path):
    from rewardkit.train.run import prepare

    rows = [
        {"prompt": f"Fact #{i}?", "responses": [BAD[i % 6], GOOD[i % 6], BAD[(i + 1) % 6], "meh"],
         "chosen": [1], "meta": {"margin": 2.0}}
        for i in range(4)
    ]  # fmt: skip
    data = tmp_path / "multi.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=str(data), margin_column="margin", max_steps=1)
    trainer = prepare(cfg)
    assert _margins(trainer.train_dataset) == [[(1, 0, 2.0), (1, 2, 0.0), (1, 3, 0.0)]] * 4


# --- 2: the hold-out and contexts ---------------------------------------------------------------
def _reversals(n: int = 10) -> list[Example]:
    """``n`` prompts, each under two contexts with opposite labels (A11's reversal pairs)."""
    out = []
    for i in range(n):
        prompt = [user(f"Reply to #{i}.")]
        for k, (context, chosen) in enumerate((("be correct", [0]), ("be casual", [1]))):
            out.append(
                Example(f"r{i}{'xy'[k]}", with_context(prompt, context),
                        [GOOD[i % 6], BAD[i % 6]], chosen, meta={"criterion": context})
            )  # fmt: skip
    return out


def test_the_two_contexts_of_a_reversal_pair_stay_on_one_side_of_the_hold_out():
    """By prompt with its context line, 20 rows were 20 prompts: most seeds held out one
    context of a pair and trained on the other (the same texts, opposite labels)."""
    items = build_items(_reversals(), _encode, TrainConfig())
    assert data_counts(items, "bt")["prompts"] == 10
    for seed in range(12):
        train, held = split_holdout(items, 0.3, seed)
        trained = {it.example_id[:-1] for it in train}
        assert not trained & {it.example_id[:-1] for it in held}, seed
        assert len(held) == 6 and len(train) == 14


def test_a_frozen_head_holds_out_both_contexts_together():
    from rewardkit.train.pairs import group_key

    rows = _reversals(3)
    assert len({group_key(ex) for ex in rows}) == 3
    assert group_key(rows[0]) == group_key(Example("p", [user("Reply to #0.")], ["a", "b"], [0]))
    # a system message of the row's own stays part of the prompt
    own = with_context([{"role": "system", "content": "Be brief."}, user("Reply to #0.")], "c")
    other = Example("s", own, ["a", "b"], [0], meta={"criterion": "c"})
    assert group_key(other) != group_key(rows[0])


# --- 3: the resume message ----------------------------------------------------------------------
def test_a_resume_refused_for_changed_metarm_data_names_it_as_a_data_file(tmp_path):
    from rewardkit.train.fingerprint import differences
    from rewardkit.train.metarm import content_identity

    a, b = tmp_path / "shift_a.jsonl", tmp_path / "shift_b.jsonl"
    a.write_text('{"prompt": "q", "responses": ["x", "y"], "chosen": []}\n')
    b.write_text('{"prompt": "q", "responses": ["x", "z"], "chosen": []}\n')
    old = {"config": {"objective": "bt", "metarm_data": content_identity(str(a))}}
    said, _ = differences(
        old, {"config": {"objective": "bt", "metarm_data": content_identity(str(b))}}
    )
    assert len(said) == 1 and "{'bytes'" not in said[0] and "sha256':" not in said[0]
    assert said[0].startswith(f"metarm_data: the checkpoint's run used {a} (55 bytes, sha256 ")
    assert f"this run {b} (55 bytes, sha256 " in said[0]
    # a checkpoint written with the content alone (no path) is named "a file"
    bare = {"config": {"objective": "bt", "metarm_data": [{"bytes": 55, "sha256": "0" * 64}]}}
    said, _ = differences(
        bare, {"config": {"objective": "bt", "metarm_data": content_identity(str(b))}}
    )
    assert said[0].startswith(
        "metarm_data: the checkpoint's run used a file (55 bytes, sha256 0000"
    )
    # the same bytes under another path are the same data
    c = tmp_path / "moved.jsonl"
    c.write_bytes(a.read_bytes())
    assert differences(
        old, {"config": {"objective": "bt", "metarm_data": content_identity(str(c))}}
    ) == ([], {})
    assert differences(bare, {"config": {"objective": "bt", "metarm_data": None}})[0] == [
        "metarm_data: the checkpoint's run used a file (55 bytes, sha256 000000000000…), this "
        "run nothing"
    ]


# --- 4: probe findings --------------------------------------------------------------------------
def test_truncation_error_names_the_data_and_the_row_over_max_length(bert_dir, tmp_path):
    """It said only "query has 409 prompt+response tokens, over the limit of 61"."""
    from rewardkit.train.run import prepare

    rows = [{"id": f"r{i}", "prompt": f"Q{i}?", "chosen": GOOD[i], "rejected": BAD[i]}
            for i in range(4)]  # fmt: skip
    rows[2]["prompt"] = "context " * 80
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=str(data), truncation="error", max_steps=1)
    with pytest.raises(
        DataError, match=r"train data '.*long\.jsonl': example 'r2': query has \d+ "
    ):
        prepare(cfg)

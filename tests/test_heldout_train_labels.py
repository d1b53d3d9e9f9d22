"""Held-out training data the toolkit had not seen: NaN/None ratings, an attribute rated
nowhere, a misspelt listwise rating key, tied ratings, identical responses, an eval_fraction
that leaves nothing to train, vote files against eval data, and the eval loss against a hand
computation (docs/training.md; docs/methods/A1-bradley-terry.md, A2-multi-attribute-regression.md)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg, toy_pairs  # noqa: E402

from rewardkit.data import load  # noqa: E402
from rewardkit.errors import DataError  # noqa: E402
from rewardkit.train.run import prepare, train_model  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _rated(n: int, verbosity: object) -> list[dict]:
    """HelpSteer2-style rows: two responses, attribute ratings per response (verbosity of the
    first response is ``verbosity``: NaN as pandas/Parquet writes a missing cell, or None)."""
    return [
        {
            "prompt": f"q{i}",
            "responses": [GOOD[i % 6], BAD[i % 6]],
            "ratings": [
                {"helpfulness": 4, "verbosity": verbosity if i % 2 else 2},
                {"helpfulness": 0, "verbosity": 1},
            ],
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("missing", [math.nan, math.inf, None])
def test_missing_ratings_are_masked_and_the_model_stays_finite(bert_dir, tmp_path, missing):
    """A NaN cell (JSON NaN, as pandas writes a missing rating) used to be a regression target:
    NaN loss and NaN weights in a run that reported success."""
    rows = _rated(6, missing)
    exs = [
        Example(f"e{i}", [user(r["prompt"])], r["responses"], [], ratings=r["ratings"])
        for i, r in enumerate(rows)
    ]
    if missing is not None:  # through the file loader too (it refuses a null rating)
        assert load(_jsonl(tmp_path / "rated.jsonl", rows))[1].ratings[0]["verbosity"] != 2
    cfg = tiny_cfg(
        bert_dir, tmp_path / "o", objective="regression",
        attributes=["helpfulness", "verbosity"], max_steps=2,
    )  # fmt: skip
    trainer = prepare(cfg, examples=(exs, []))
    targets = [t for it in trainer.train_dataset for t in it.targets]
    assert sum(t[1] == -100.0 for t in targets) == 3  # the three missing verbosity cells
    res = train_model(cfg, examples=(exs, []))
    losses = [h["loss"] for h in res.history if "loss" in h]
    assert losses and all(math.isfinite(v) and v > 0 for v in losses)
    from safetensors.torch import load_file

    weights = load_file(str(res.output_dir / "model.safetensors"))
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())


def test_a_rating_that_is_no_number_names_the_example(bert_dir, tmp_path):
    rows = _rated(4, 1)
    rows[2]["ratings"][0]["helpfulness"] = "high"
    cfg = tiny_cfg(
        bert_dir, tmp_path / "o", objective="regression", attributes=["helpfulness"],
        max_steps=1,
    )  # fmt: skip
    exs = [
        Example(f"e{i}", [user(r["prompt"])], r["responses"], [], ratings=r["ratings"])
        for i, r in enumerate(rows)
    ]
    with pytest.raises(DataError, match=r"example 'e2': rating 'helpfulness' is 'high'"):
        train_model(cfg, examples=(exs, []))


def test_an_attribute_rated_nowhere_is_an_error(bert_dir, tmp_path):
    pairs = toy_pairs(6)  # plain pairs, no ratings
    cfg = tiny_cfg(
        bert_dir, tmp_path / "o", objective="bt+regression", attributes=["helpfulness"],
        max_steps=1,
    )  # fmt: skip
    with pytest.raises(DataError, match=r"\['helpfulness'\] of objective 'bt\+regression'"):
        train_model(cfg, examples=(pairs, []))
    typo = tiny_cfg(
        bert_dir, tmp_path / "o2", objective="regression",
        attributes=["helpfulness", "verbosty"], max_steps=1,
    )  # fmt: skip
    with pytest.raises(DataError, match=r"\['verbosty'\] of objective 'regression'"):
        train_model(typo, examples=(toy_pairs(6, ratings=True), []))
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()


def test_listwise_rating_key_must_exist(bert_dir, tmp_path):
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective="listwise", rating_key="helpfullness")
    with pytest.raises(DataError, match=r"rating_key 'helpfullness'.*found: helpfulness"):
        prepare(cfg, examples=(toy_pairs(6, ratings=True, three=True), []))


def test_listwise_tied_ratings_are_not_an_order(bert_dir, tmp_path, caplog):
    def ex(i: int, ratings: list[float]) -> Example:
        rs = [GOOD[i], BAD[i], GOOD[i + 1]]
        return Example(f"x{i}", [user("q")], rs, [], ratings=[{"h": v} for v in ratings])

    data = [ex(0, [5, 3, 3]), ex(1, [3, 3, 1]), ex(2, [4, 2, 1])]
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective="listwise", rating_key="h")
    with caplog.at_level(logging.WARNING):
        items = prepare(cfg, examples=(data, [])).train_dataset
    # 5 > 3 = 3: only the first position is ranked; 3 = 3 > 1: nothing is; 4 > 2 > 1: both.
    assert [it.n_ranked for it in items] == [1, 0, 2]
    assert "1 of 3 examples have no preference for objective 'listwise'" in caplog.text


def test_identical_responses_are_counted(bert_dir, tmp_path, caplog):
    data = [*toy_pairs(5), Example("same", [user("q")], ["x y", "x y"], [0])]
    cfg = tiny_cfg(bert_dir, tmp_path / "o", max_steps=1)
    with caplog.at_level(logging.WARNING):
        trainer = prepare(cfg, examples=(data, []))
    assert len(trainer.train_dataset) == 6  # kept, as TRL keeps them
    assert "1 of 6 preference pairs have two sides with the same tokens" in caplog.text


def test_eval_fraction_that_leaves_no_training_example(bert_dir, tmp_path):
    cfg = tiny_cfg(bert_dir, tmp_path / "o", eval_fraction=0.5, max_steps=1)
    with pytest.raises(DataError, match="no training example is left"):
        train_model(cfg, examples=(toy_pairs(1), []))


def test_vote_file_never_touches_eval_data(bert_dir, tmp_path):
    train = toy_pairs(6)
    evals = [
        Example(ex.id, ex.prompt, ex.responses, ex.chosen) for ex in toy_pairs(4)
    ]  # the same ids ("p0".."p3") as training examples
    votes = tmp_path / "votes.json"
    votes.write_text(json.dumps({ex.id: -1.0 for ex in train}))
    cfg = tiny_cfg(bert_dir, tmp_path / "o", vote_file=str(votes), vote_action="flip")
    trainer = prepare(cfg, examples=(train, evals))
    flipped = [it.pairs[0][:2] for it in trainer.train_dataset]
    assert flipped == [(ex.rejected[0], ex.chosen[0]) for ex in train]
    measured = [it.pairs[0][:2] for it in trainer.eval_dataset]
    assert measured == [(ex.chosen[0], ex.rejected[0]) for ex in evals]


def test_eval_metrics_equal_a_hand_computation(bert_dir, tmp_path):
    """7 eval pairs in batches of 3 (3, 3, 1): the eval loss is the mean over the 7 pairs."""
    from rewardkit.registry import load_reward

    train = _jsonl(
        tmp_path / "tr.jsonl",
        [
            {"prompt": f"q{i}", "chosen": GOOD[i % 6], "rejected": BAD[(i * 5) % 6]}
            for i in range(12)
        ],
    )
    rows = [
        {"prompt": f"e{i}", "chosen": GOOD[(i + 2) % 6] + " ok", "rejected": BAD[(i + 1) % 6]}
        for i in range(6)
    ]
    rows.append({"prompt": "z", "chosen": BAD[0], "rejected": GOOD[0]})
    ev = _jsonl(tmp_path / "ev.jsonl", rows)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=train, eval_data=ev, max_steps=3, batch_size=3)
    res = train_model(cfg)
    rm = load_reward(f"classifier:{res.output_dir}?max_length=64")
    d = np.array([float(np.subtract(*rm.score(ex.queries()))) for ex in load(ev)])
    m = res.metrics
    assert m["eval_accuracy"] == pytest.approx(float(np.mean(d > 0)))
    assert m["eval_margin"] == pytest.approx(float(d.mean()), abs=1e-5)
    assert m["eval_loss"] == pytest.approx(float(np.mean(np.logaddexp(0.0, -d))), abs=1e-5)


def _helpsteer2_preference(path: Path) -> str:
    """Rows in HelpSteer2-Preference's published schema (preference/preference.jsonl): a signed
    strength, negative when response 1 is better."""
    rows = [
        {"split": "train", "prompt": f"q{i}", "response_1": a, "response_2": b,
         "preference_strength": s, "preference_statement": "@Response 1 is better."}
        for i, (a, b, s) in enumerate(
            [(GOOD[0], BAD[0], -3), (BAD[1], GOOD[1], 2), (GOOD[2], BAD[2], -1),
             (BAD[3], GOOD[3], 3), (GOOD[4], GOOD[5], 0)]
        )
    ]  # fmt: skip
    return _jsonl(path, rows)


@pytest.mark.parametrize("kind", ["margin", "scaled"])
def test_preference_strength_is_a_magnitude_and_scaled_bt_is_the_a3_loss(bert_dir, tmp_path, kind):
    """The −3…3 preference_strength used to be the margin as signed: −log σ(Δ + 3) for a pair
    whose response 1 is much better, a margin in the wrong direction. m = |s| (A3), and
    margin_kind scaled trains −m·log σ(Δ)."""
    from rewardkit.train import losses as L
    from rewardkit.train.objectives import compute

    data = _helpsteer2_preference(tmp_path / "pref.jsonl")
    cfg = tiny_cfg(
        bert_dir, tmp_path / "o", data=data, data_format="helpsteer2-preference",
        margin_column="preference_strength", margin_kind=kind, batch_size=5,
    )  # fmt: skip
    trainer = prepare(cfg)
    items = list(trainer.train_dataset)
    assert [it.pairs[0][3] for it in items[:4]] == [3.0, 2.0, 1.0, 3.0]
    batch = trainer.data_collator(items)
    model = trainer.model.eval()
    keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")
    with torch.no_grad():
        r = model(**{k: batch[k] for k in keys if k in batch})[:, 0]
        got = float(compute(cfg, r[:, None], batch).loss)
    first = torch.tensor([2 * i for i in range(4)])  # response_1 of the four strict pairs
    strength = torch.tensor([-3.0, 2.0, -1.0, 3.0])
    want = float(L.scaled_bt_loss(r[first], r[first + 1], strength, kind))
    assert got == pytest.approx(want, rel=1e-6)


def test_scaled_margins_must_be_magnitudes(bert_dir, tmp_path):
    from rewardkit.errors import SpecError
    from rewardkit.train.config import TrainConfig

    with pytest.raises(SpecError, match=r"margin_kind scaled .* needs margin_column"):
        TrainConfig(output_dir=str(tmp_path / "o"), margin_kind="scaled").validate()
    exs = toy_pairs(4)
    for i, ex in enumerate(exs):
        ex.meta["gap"] = 1.0 - i  # 1, 0, -1, -2: E1's adaptive margins may be negative
    cfg = tiny_cfg(bert_dir, tmp_path / "o", margin_column="gap", max_steps=1)
    assert [it.pairs[0][3] for it in prepare(cfg, examples=(exs, [])).train_dataset] == [
        1.0, 0.0, -1.0, -2.0,
    ]  # fmt: skip
    cfg.margin_kind = "scaled"
    with pytest.raises(DataError, match=r"example 'p2': margin field 'gap' is -1\.0"):
        prepare(cfg, examples=(exs, []))


def test_grad_accum_equals_one_big_batch_with_uneven_pairs(bert_dir, tmp_path):
    """Micro-batches of 3 examples hold 2 to 5 pairs here (a tie adds none, a 3-response
    example two): each used to count as much as the others, so the accumulated loss (0.7236)
    was not the batch of 6's (0.7127). Now every step's loss equals the big batch's."""
    tie = Example("t", [user("q")], ["a b", "c d"], [0, 1])
    three = toy_pairs(8, three=True)
    pairs = toy_pairs(8)
    data = [pairs[0], pairs[1], three[2], tie, pairs[4], pairs[5], three[6], three[7], *pairs[2:4]]
    data = [Example(f"x{i}", e.prompt, e.responses, e.chosen) for i, e in enumerate(data)]
    losses = {}
    for bs, ga in [(6, 1), (3, 2), (2, 3)]:
        cfg = tiny_cfg(
            bert_dir, tmp_path / f"o{bs}", batch_size=bs, grad_accum=ga, shuffle=False,
            packing=False, max_steps=2,
        )  # fmt: skip
        res = train_model(cfg, examples=(data, []))
        losses[bs] = [h["loss"] for h in res.history if "loss" in h]
    assert losses[3] == pytest.approx(losses[6], rel=1e-5)
    assert losses[2] == pytest.approx(losses[6], rel=1e-5)


def test_listwise_unrated_responses_are_not_ranked_last(bert_dir, tmp_path):
    """A response without a rating under rating_key used to be placed below every rated one
    (3, –, 1 trained "rated 1 beats the unrated"); it is now left out of the list."""
    from rewardkit.train.objectives import compute

    ex = Example("u", [user("q")], [GOOD[0], BAD[0], BAD[1]], [],
                 ratings=[{"h": 3}, {"x": 1}, {"h": 1}])  # fmt: skip
    none = Example("n", [user("q")], [GOOD[1], BAD[2]], [], ratings=[{"x": 1}, {"x": 2}])
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective="listwise", rating_key="h")
    trainer = prepare(cfg, examples=([ex, *toy_pairs(2, ratings=True, three=True), none], []))
    items = list(trainer.train_dataset)
    assert (items[0].order, items[0].n_ranked) == ([0, 2], 1)
    assert items[-1].n_ranked == 0
    batch = trainer.data_collator([items[0], items[-1]])
    model = trainer.model.eval()
    keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")
    with torch.no_grad():
        r = model(**{k: batch[k] for k in keys if k in batch})[:, 0]
        got = float(compute(cfg, r[:, None], batch).loss)
    # one term, response 0 over response 2 only; the batch's mean is over its 1 ranked list
    # (the unranked one adds nothing, as a tie adds nothing to BT; it used to halve the loss)
    want = float(torch.nn.functional.softplus(r[2] - r[0]))
    assert got == pytest.approx(want, rel=1e-5)


def test_helpsteer2_rows_say_which_objective_fits(bert_dir, tmp_path):
    """HelpSteer2's published schema is one rated response per row."""
    rows = [
        {"prompt": f"p{i}", "response": r, "helpfulness": 4 - 3 * j, "correctness": 4 - 2 * j,
         "coherence": 4, "complexity": 1, "verbosity": 2 - j}
        for i in range(4)
        for j, r in enumerate([GOOD[i], BAD[i]])
    ]  # fmt: skip
    data = _jsonl(tmp_path / "hs2.jsonl", rows)
    attrs = ["helpfulness", "correctness"]
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data, objective="bt+regression",
                   attributes=attrs, max_steps=1)  # fmt: skip
    with pytest.raises(DataError, match="train with objective 'regression'"):
        train_model(cfg)
    cfg.objective = "regression"
    targets = [it.targets for it in prepare(cfg).train_dataset]
    assert targets[:2] == [[[4.0, 4.0]], [[1.0, 2.0]]]

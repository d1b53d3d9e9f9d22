"""What a trained model is and which labels reach it, on held-out shapes of data: ties under the
generative and listwise objectives, bad rankings, the spec a multi-output model loads with, and
a validation split in the training data's own columns (docs/training.md, docs/cli/train.md)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.errors import DataError  # noqa: E402
from rewardkit.train.run import prepare, train_model  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402

KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")


def _tie(i: int) -> Example:
    return Example(f"t{i}", [user("Say something.")], [GOOD[i], GOOD[i + 1]], [0, 1])


def test_generative_never_learns_a_verdict_from_a_tie(tmp_path, caplog):
    """A tie used to train "Yes" for its first response and "No" for its second; a batch of
    ties alone gave a NaN loss."""
    from rewardkit.train.objectives import compute

    lm = tiny_llama(tmp_path / "lm", causal=True)
    cfg = tiny_cfg(lm, tmp_path / "g", objective="generative", max_length=160, batch_size=4)
    with caplog.at_level(logging.WARNING):
        trainer = prepare(cfg, examples=([*toy_pairs(2), _tie(0), _tie(2)], []))
    assert "2 of 4 examples have no preference for objective 'generative'" in caplog.text
    items = list(trainer.train_dataset)
    model = trainer.model.eval()

    def loss(its) -> float:
        batch = trainer.data_collator(its)
        with torch.no_grad():
            out = model(**{k: batch[k] for k in KEYS if k in batch})
        return float(compute(cfg, out, batch, 1.0, trainer.verdict_ids).loss)

    assert loss(items[2:]) == 0.0  # ties only: nothing to learn, not NaN
    # ties add nothing; within rel 1e-5 (the loss is ~11 here): the batch of four also holds
    # the ties' rows, another batch shape, which moves float32 logits by ~1e-6 relative
    assert loss(items) == pytest.approx(loss(items[:2]), rel=1e-5)
    with pytest.raises(DataError, match="none of its 2 examples has a preference"):
        prepare(cfg, examples=([_tie(0), _tie(2)], []))


def test_listwise_ties_and_unordered_chosen_sets_rank_nothing(bert_dir, tmp_path, caplog):
    three = Example("c2", [user("q")], [GOOD[0], GOOD[1], BAD[0]], [0, 1])
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective="listwise")
    with caplog.at_level(logging.WARNING):
        items = prepare(
            cfg, examples=([*toy_pairs(2, three=True), _tie(0), three], [])
        ).train_dataset
    assert [it.n_ranked for it in items] == [1, 1, 0, 0]
    assert "2 of 4 examples have no preference for objective 'listwise'" in caplog.text
    assert "2 chosen responses and no order among them" in caplog.text


@pytest.mark.parametrize("ranking", [[0, 5], [1, 1], ["0", 1], [], "0,1"])
def test_a_bad_meta_ranking_names_the_example(bert_dir, tmp_path, ranking):
    ex = Example("r1", [user("q")], [GOOD[0], BAD[0], BAD[1]], [], meta={"ranking": ranking})
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective="listwise")
    with pytest.raises(DataError, match=r"example 'r1': meta ranking .* not a list of distinct"):
        prepare(cfg, examples=([*toy_pairs(2), ex], []))


def test_bt_regression_model_loads_as_its_bt_reward(bert_dir, tmp_path):
    """The saved head has one output per attribute; its load_with spec gives output 0, the
    reward BT trained (plain classifier:DIR gives an (n, k) array)."""
    from rewardkit.registry import load_reward

    attrs = ["helpfulness", "verbosity"]
    cfg = tiny_cfg(bert_dir, tmp_path / "m", objective="bt+regression", attributes=attrs,
                   max_steps=3)  # fmt: skip
    res = train_model(cfg, examples=(toy_pairs(12, ratings=True), toy_pairs(4, ratings=True)))
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["outputs"] == attrs
    ex = toy_pairs(2)[1]
    reward = load_reward(meta["load_with"]).score(ex.queries())
    heads = load_reward(f"classifier:{res.output_dir}?max_length=64").score(ex.queries())
    assert np.asarray(heads).shape == (2, 2)
    np.testing.assert_allclose(reward, np.asarray(heads)[:, 0], atol=1e-6)
    assert reward[ex.chosen[0]] > reward[1 - ex.chosen[0]]  # the trained direction


def test_gated_model_records_its_reward_formula(bert_dir, tmp_path):
    import transformers

    attrs = ["helpfulness", "verbosity"]
    cfg = tiny_cfg(bert_dir, tmp_path / "m", objective="gated", attributes=attrs, max_steps=2)
    res = train_model(cfg, examples=(toy_pairs(12, ratings=True), []))
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["outputs"] == [*attrs, "gate_helpfulness", "gate_verbosity"]
    m = transformers.AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert m.config.num_labels == 4 and m.config.id2label[2] == "gate_helpfulness"
    assert meta["reward"] == "sum_k softmax(outputs[2:4])_k * outputs[0:2]_k"
    # its load_with spec gives that reward, with the two attributes as components
    from rewardkit import load_reward

    ex = toy_pairs(2, ratings=True)[0]
    full = load_reward(meta["load_with"]).score_full(ex.queries())
    assert meta["load_with"].endswith("&reduce=gating") and set(full.components) == set(attrs)
    import torch

    tok = transformers.AutoTokenizer.from_pretrained(res.output_dir)
    for q, got in zip(ex.queries(), full.scores, strict=True):
        enc = tok(q.prompt[-1]["content"], q.response, return_tensors="pt", truncation=True)
        with torch.no_grad():
            out = m(**enc).logits[0]
        want = float((torch.softmax(out[2:], -1) * out[:2]).sum())
        assert got == pytest.approx(want, abs=1e-5)


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_validation_split_in_the_training_columns(bert_dir, tmp_path):
    """--columns used to apply to the training file only: a validation split of the same
    dataset failed with a hint to pass the --columns already given."""
    rows = [{"q": f"p{i}", "good": GOOD[i % 6], "bad": BAD[i % 6]} for i in range(8)]
    tr, va = _jsonl(tmp_path / "tr.jsonl", rows), _jsonl(tmp_path / "va.jsonl", rows[:3])
    cols = {"prompt": "q", "chosen": "good", "rejected": "bad"}
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=tr, columns=cols, eval_data=va, max_steps=1)
    res = train_model(cfg)
    assert math.isfinite(res.metrics["eval_loss"])
    std = _jsonl(tmp_path / "std.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    cfg = tiny_cfg(bert_dir, tmp_path / "o2", data=tr, columns=cols, eval_data=std, max_steps=1)
    with pytest.raises(DataError, match=r"column 'q'.*eval_columns: \{\} for none"):
        train_model(cfg)
    cfg.eval_columns = {}
    assert "eval_accuracy" in train_model(cfg).metrics


def test_ensemble_of_bt_regression_members_averages_their_bt_rewards(bert_dir, tmp_path):
    """ensemble.yaml named every member as plain classifier:DIR, which for a bt+regression head
    is an (n, k) array (and the votes reshaped it as pairs); each member now loads as its
    rewardkit_train.json says."""
    import yaml

    from rewardkit.registry import load_reward
    from rewardkit.train import train

    data = tmp_path / "rated.jsonl"
    rows = [
        {"prompt": ex.prompt[0]["content"] if isinstance(ex.prompt[0], dict) else "q",
         "responses": ex.responses, "chosen": ex.chosen, "ratings": ex.ratings}
        for ex in toy_pairs(8, ratings=True)
    ]  # fmt: skip
    _jsonl(data, rows)
    cfg = tiny_cfg(
        bert_dir, tmp_path / "ens", data=str(data), objective="bt+regression",
        attributes=["helpfulness", "verbosity"], ensemble_size=2, max_steps=2,
    )  # fmt: skip
    res = train(cfg)
    spec = yaml.safe_load((res.output_dir / "ensemble.yaml").read_text())
    assert all("reduce=weighted&weights=helpfulness:1" in m for m in spec["ensemble"])
    ex = toy_pairs(2)[1]
    members = [
        np.asarray(load_reward(f"classifier:{res.output_dir / f'member_{i}'}").score(ex.queries()))
        for i in range(2)
    ]
    ens = load_reward(str(res.output_dir / "ensemble.yaml")).score(ex.queries())
    np.testing.assert_allclose(ens, (members[0][:, 0] + members[1][:, 0]) / 2, atol=1e-5)
    votes = json.loads((res.output_dir / "votes.json").read_text())
    assert len(votes) == 8 and all(math.isfinite(v) for v in votes.values())


def test_ensemble_of_multi_output_members_is_refused(bert_dir, tmp_path):
    from rewardkit.errors import SpecError
    from rewardkit.train import train

    cfg = tiny_cfg(
        bert_dir, tmp_path / "ens", objective="regression", attributes=["helpfulness"],
        ensemble_size=2, max_steps=1,
    )  # fmt: skip
    with pytest.raises(SpecError, match="ensemble_size needs members with one scalar reward"):
        train(cfg)


def test_crm_eval_metrics_are_the_saved_models(bert_dir, tmp_path):
    """crm's eval loss was both peers' training loss on the pairs each kept (2 × BT on 80%);
    it is now the saved model's BT loss on every eval pair, as a hand computation."""
    from rewardkit.registry import load_reward

    cfg = tiny_cfg(bert_dir, tmp_path / "c", objective="crm", max_steps=3, batch_size=4)
    evals = toy_pairs(6)[1:]
    res = train_model(cfg, examples=(toy_pairs(12), evals))
    rm = load_reward(f"classifier:{res.output_dir}?max_length=64")
    d = []
    for ex in evals:
        s = rm.score(ex.queries())
        d.append(float(s[ex.chosen[0]] - s[ex.rejected[0]]))
    d = np.array(d)
    assert res.metrics["eval_accuracy"] == pytest.approx(float(np.mean(d > 0)))
    assert res.metrics["eval_loss"] == pytest.approx(float(np.mean(np.logaddexp(0, -d))), abs=1e-5)


@pytest.mark.parametrize("frozen", [False, True], ids=["fine-tune", "frozen-head"])
def test_a_diverged_run_saves_nothing_and_says_so(bert_dir, tmp_path, frozen):
    """lr=1e30 made every weight NaN, and the run printed "saved to …" with exit 0."""
    from rewardkit.errors import TrainingDiverged
    from rewardkit.train import train

    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Q{i}?", "chosen": GOOD[i % len(GOOD)], "rejected": BAD[i % len(BAD)]}
            for i in range(12)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = {"freeze_backbone": True, "head": "mlp"} if frozen else {}
    cfg = tiny_cfg(bert_dir, tmp_path / "out", data=str(data), lr=1e30, epochs=3, batch_size=4,
                   **extra)  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"became nan at step \d+: training diverged"):
        train(cfg)
    assert not any((tmp_path / "out").glob("*.safetensors"))
    assert not (tmp_path / "out" / "config.json").exists()


def test_output_dir_inside_the_data_directory_is_refused(tmp_path):
    from rewardkit.outputs import OutputError
    from rewardkit.train.config import TrainConfig

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "pairs.jsonl").write_text("")
    with pytest.raises(OutputError, match=r"output_dir .* lies inside the data directory"):
        TrainConfig(data=str(tmp_path / "d"), output_dir=str(tmp_path / "d" / "model")).validate()


def test_an_eval_fraction_hold_out_of_ties_only_is_refused(bert_dir, tmp_path):
    # a hold-out of ties only reported eval_loss 0. The hold-out is drawn by prompt: the ties
    # share one prompt, and seed 5 holds out that prompt alone (its 2 rows of 12)
    exs = toy_pairs(10, ties=2)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", eval_fraction=0.2, seed=5)
    with pytest.raises(DataError, match=r"eval_fraction 0\.2 hold-out: none of its"):
        prepare(cfg, examples=(exs, []))


def test_scaled_margins_that_are_all_zero_are_refused(bert_dir, tmp_path):
    # margin_kind scaled multiplies each pair's loss by its margin: loss 0, "saved to", exit 0
    exs = [Example(e.id, e.prompt, e.responses, e.chosen, meta={"m": 0.0}) for e in toy_pairs(6)]
    cfg = tiny_cfg(bert_dir, tmp_path / "o", margin_column="m", margin_kind="scaled")
    with pytest.raises(DataError, match="every margin in 'm' is 0"):
        prepare(cfg, examples=(exs, []))


def test_ensemble_votes_need_distinct_example_ids():
    from rewardkit.train.ensemble import check_distinct_ids

    exs = [Example("same", e.prompt, e.responses, e.chosen) for e in toy_pairs(3)]
    with pytest.raises(DataError, match="example id 'same' names 3 examples"):
        check_distinct_ids(exs, "d1,d2")
    check_distinct_ids(toy_pairs(3), "x")  # distinct ids pass


def test_load_with_names_the_model_from_any_folder(bert_dir, tmp_path, monkeypatch):
    # a relative output_dir was written as typed: ensemble.yaml failed from another folder
    from rewardkit.train import train

    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Q{i}?", "chosen": GOOD[i % len(GOOD)], "rejected": BAD[i % len(BAD)]}
            for i in range(8)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    train(tiny_cfg(bert_dir, "rel_out", data=str(data), epochs=1, batch_size=4))
    meta = json.loads((tmp_path / "rel_out" / "rewardkit_train.json").read_text())
    where = (tmp_path / "rel_out").resolve()
    assert meta["load_with"] == f"classifier:{where}?max_length={meta['config']['max_length']}"

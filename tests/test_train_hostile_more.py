"""More hostile training input: vote files with bad values or foreign ids, flips that cannot
happen, labels beyond float32, fields an objective ignores, frozen heads checked and measured as
saved, the generative reward the judge scores, listwise means, data folders touched or copied,
what an interrupted ensemble (or a finished run) says, and a resumed run's train_loss."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.engine.runner import EncodedRow  # noqa: E402
from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.train.collate import build_items  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides, load_config  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402


def _encode(queries):
    return [EncodedRow([1, 2, i + 3]) for i, _ in enumerate(queries)]


def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, ["train", *args])


def _pairs_file(path: Path, n: int = 8, **meta) -> Path:
    rows = [
        {"id": f"p{i}", "prompt": f"q{i}", "chosen": GOOD[i % 6], "rejected": BAD[(i * 5) % 6],
         **({"meta": dict(meta)} if meta else {})}
        for i in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- 1: vote files ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"p0": null}', "strength null is not a number"),
        ('{"p0": "abc"}', 'strength "abc" is not a number'),
        ('{"p0": NaN}', "strength NaN is not a finite number"),
        ('{"p0": true}', "strength true is not a number"),
        ('{"p0": 1e39}', "strength 1e\\+39 is not a finite number"),
    ],
)
def test_bad_vote_values_name_the_file_and_the_id(tmp_path, text, said):
    votes = tmp_path / "v.json"
    votes.write_text(text)
    with pytest.raises(DataError, match=f"vote_file {votes}: example id 'p0': {said}"):
        build_items(toy_pairs(2), _encode, TrainConfig(vote_file=str(votes)))


def test_vote_ids_matching_no_example_are_said(tmp_path, caplog):
    votes = tmp_path / "v.json"
    votes.write_text(json.dumps({"nonexistent": -5}))
    with caplog.at_level(logging.WARNING):
        items = build_items(toy_pairs(2), _encode, TrainConfig(vote_file=str(votes)))
    assert len(items) == 2
    assert "none of its 1 example ids ('nonexistent') matches an example's id" in caplog.text
    caplog.clear()
    votes.write_text(json.dumps({"p0": -1.0, "nonexistent": -5}))
    with caplog.at_level(logging.WARNING):
        build_items(toy_pairs(2), _encode, TrainConfig(vote_file=str(votes)))
    assert "1 of its 2 ids match examples; 1 of 2 examples below vote_threshold" in caplog.text


def test_cli_null_vote_is_one_exit_2_line(bert_dir, tmp_path):
    votes = tmp_path / "null.json"
    votes.write_text('{"p0": null}')
    r = _cli(
        "--model", str(bert_dir), "--data", str(_pairs_file(tmp_path / "d.jsonl")),
        "--vote_file", str(votes), "--max_steps", "1", "--threads", "1", "--no-progress",
        "--no-plot", "--max_length", "64", "--output_dir", str(tmp_path / "o"),
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "'p0'" in r.output and "null.json" in r.output


# --- 4: flips that happen, and only those -------------------------------------------------------
def _rated(i: str, scores: list[float], **meta) -> Example:
    return Example(
        i, [user("q")], ["a", "b", "c"][: len(scores)], [],
        ratings=[{"score": s} for s in scores], meta=dict(meta),
    )  # fmt: skip


def test_flip_reverses_ratings_and_rankings_of_listwise_and_keeps_meta(tmp_path, caplog):
    votes = tmp_path / "v.json"
    votes.write_text(json.dumps({"r": -1, "k": -1, "part": -1}))
    cfg = TrainConfig(
        objective="listwise", rating_key="score", vote_file=str(votes), vote_action="flip"
    )
    exs = [
        _rated("r", [3, 2, 1], note="x"),
        Example("k", [user("q")], ["a", "b", "c"], [0], meta={"ranking": [2, 0, 1]}),
        Example("part", [user("q")], ["a", "b", "c"], [0], meta={"ranking": [1]}),
    ]
    with caplog.at_level(logging.WARNING):
        items = build_items(exs, _encode, cfg)
    assert (items[0].order, items[0].n_ranked) == ([2, 1, 0], 2)
    assert (items[1].order, items[1].n_ranked) == ([1, 0, 2], 2)
    assert (items[2].order, items[2].n_ranked) == ([1, 0, 2], 1)  # a top-1 has no reverse
    assert "3 of 3 examples below vote_threshold 0.0: 2 flipped, 1 kept as given" in caplog.text


def test_flip_of_a_tie_is_not_logged_as_flipped(tmp_path, caplog):
    votes = tmp_path / "v.json"
    votes.write_text(json.dumps({"t0": -1, "p0": -1}))
    tie = Example("t0", [user("q")], ["a", "b"], [0, 1])
    cfg = TrainConfig(objective="tie", vote_file=str(votes), vote_action="flip")
    with caplog.at_level(logging.WARNING):
        items = build_items([tie, *toy_pairs(1)], _encode, cfg)
    assert items[0].pairs == [(0, 1, True, 0.0, 1.0)]
    assert items[1].pairs[0][:2] == (1, 0)
    assert ": 1 flipped, 1 kept as given" in caplog.text


def test_vote_actions_an_objective_cannot_apply_are_refused():
    with pytest.raises(SpecError, match="downweight needs a per-pair weight"):
        TrainConfig(objective="listwise", vote_file="v.json", vote_action="downweight").validate()
    with pytest.raises(SpecError, match="regression trains on ratings alone"):
        TrainConfig(
            objective="regression", attributes=["a"], vote_file="v.json", vote_action="flip"
        ).validate()


# --- 12: labels beyond float32 and numbers written as strings -----------------------------------
@pytest.mark.parametrize(
    ("meta", "cfg", "said"),
    [
        ({"m": 1e39}, {"margin_column": "m"}, "margin 'm' is 1e\\+39, beyond float32"),
        ({"weight": 1e308}, {}, "meta 'weight' is 1e\\+308, beyond float32"),
        ({"weight": "2"}, {}, "meta 'weight' is '2', not a number \\(a string"),
        ({"label_confidence": "0.7"}, {}, "meta 'label_confidence' is '0.7', not a number"),
    ],
)
def test_labels_beyond_float32_or_strings_are_refused(meta, cfg, said):
    ex = Example("e1", [user("q")], ["a", "b"], [0], meta=meta)
    with pytest.raises(DataError, match=f"example 'e1': {said}"):
        build_items([ex], _encode, TrainConfig(**cfg))


def test_a_rating_beyond_float32_is_refused():
    ex = Example("e2", [user("q")], ["a", "b"], [0], ratings=[{"h": 1e300}, {"h": 1.0}])
    with pytest.raises(DataError, match="example 'e2': rating 'h' is 1e\\+300, beyond float32"):
        build_items([ex], _encode, TrainConfig(objective="regression", attributes=["h"]))


# --- 6: the listwise mean is over ranked lists ------------------------------------------------
def test_listwise_loss_is_the_mean_over_ranked_lists():
    from rewardkit.train import losses as L
    from rewardkit.train.objectives import loss_terms

    scores = torch.tensor([[2.0, 1.0, 0.0], [5.0, 1.0, 0.0]])
    order = torch.tensor([[0, 1, 2], [0, 1, 2]])
    want = math.log(1 + math.exp(-1) + math.exp(-2)) + math.log(1 + math.exp(-1))
    assert want == pytest.approx(0.720868, abs=1e-6)
    got = L.plackett_luce_loss(scores, order, torch.tensor([2, 0]))  # the second: unranked
    assert float(got) == pytest.approx(want, abs=1e-6)
    none = L.plackett_luce_loss(scores, order, torch.tensor([0, 0]))
    assert float(none) == 0.0
    cfg = TrainConfig(objective="listwise")
    assert loss_terms(cfg, {"order": order, "n_ranked": torch.tensor([2, 0])}) == 1


# --- 9, 11, 13: config refusals, also under --print-config ---------------------------------------
@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"objective": "tie", "margin_column": "m"}, "margin_column 'm' is read by objective"),
        ({"objective": "tie", "label_smoothing": 0.1}, "label_smoothing 0.1 is read by"),
        ({"objective": "tie", "center_coef": 100.0}, "center_coef 100.0 is read by"),
        ({"objective": "listwise", "margin_column": "m"}, "not 'listwise': it would change"),
        ({"objective": "crome", "tie_k": 3.0}, "tie_k 3.0 is read by objective tie only"),
        ({"objective": "generative", "label_smoothing": 0.1}, "not 'generative'"),
        ({"objective": "generative", "yes_token": " Oui"}, "yes_token ' Oui' cannot be honoured"),
        ({"output_dir": ""}, "output_dir is empty"),
    ],
)
def test_fields_an_objective_ignores_are_refused(fields, said):
    with pytest.raises(SpecError, match=said):
        load_config(None, fields)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--objective", "prm", "--prm_neutral", "bogus"], "prm_neutral must be one of"),
        (["--freeze_backbone", "--grad_accum", "2"], "raise batch_size instead"),
        (["--freeze_backbone", "--objective", "listwise"], "supports objective bt, tie or crome"),
        (
            ["--ensemble_size", "2", "--objective", "regression", "--attributes", "a"],
            "ensemble_size needs members with one scalar reward",
        ),
        (["--output_dir", ""], "output_dir is empty"),
    ],
)
def test_print_config_refuses_what_the_run_refuses(args, said):
    r = _cli("--print-config", *args)
    assert r.exit_code == 2, r.output
    assert said in r.output and "Traceback" not in r.output


def test_a_field_the_objective_ignores_does_not_block_resume():
    from rewardkit.train.runstate import differences

    old = {"config": {"objective": "tie", "label_smoothing": 0.1, "lr": 1e-3}, "items": "x"}
    new = {"config": {"objective": "tie", "label_smoothing": 0.0, "lr": 1e-3}, "items": "x"}
    assert differences(old, new) == ([], {})
    bt_old = {"config": {**old["config"], "objective": "bt"}, "items": "x"}
    bt_new = {"config": {**new["config"], "objective": "bt"}, "items": "x"}
    assert differences(bt_old, bt_new)[0]  # bt reads it: a real difference


# --- 14: the LoRA config's header says what it trains ------------------------------------------
def test_lora_config_header_matches_its_fields():
    path = Path(__file__).resolve().parents[1] / "configs" / "bt_smollm2_lora.yaml"
    text = path.read_text()
    cfg = load_config(None, {k: v for k, v in __import__("yaml").safe_load(text).items()})
    assert cfg.margin_column is None
    assert "when present" not in text and "add margin_column" in text


# --- 5: a data folder is its bytes ----------------------------------------------------------------
def test_data_folder_identity_is_its_content(tmp_path):
    from rewardkit.train.runstate import data_identity, differences

    d = tmp_path / "d"
    d.mkdir()
    _pairs_file(d / "a.jsonl")
    first = {"config": {"data": data_identity(str(d))}, "items": "x"}
    (d / "a.jsonl").touch()
    shutil.copytree(d, tmp_path / "copy")
    for spec in (str(d), str(tmp_path / "copy")):
        again = {"config": {"data": data_identity(spec)}, "items": "x"}
        assert differences(first, again) == ([], {})
    _pairs_file(d / "a.jsonl", n=9)
    (d / "b.jsonl").write_text("")
    changed = {"config": {"data": data_identity(str(d))}, "items": "x"}
    (said,) = differences(first, changed)[0]
    assert said.endswith("(changed a.jsonl; added b.jsonl)")


# --- 7, 8: what an interrupted run says -------------------------------------------------------
def _note(out: Path, frozen: bool = False) -> str:
    from rewardkit.train import cli as train_cli

    train_cli._RUN.update(output_dir=str(out), frozen=str(frozen))
    try:
        return train_cli.interrupted_note("terminated (SIGTERM)")
    finally:
        train_cli._RUN.clear()


def test_interrupted_ensemble_says_resume_and_what_its_members_hold(tmp_path):
    out = tmp_path / "E"
    for name in ("metrics.json", "rewardkit_run.json"):
        (out / "member_0").mkdir(parents=True, exist_ok=True)
        (out / "member_0" / name).write_text("{}")
    (out / "member_1" / "checkpoint-2").mkdir(parents=True)
    note = _note(out)
    assert "member_0 finished, member_1 at checkpoint-2" in note
    assert "--resume" in note and "start over" not in note


def test_a_finished_run_is_said_to_be_finished(tmp_path):
    out = tmp_path / "R"
    (out / "checkpoint-4").mkdir(parents=True)
    for name in ("metrics.json", "rewardkit_run.json", "model.safetensors"):
        (out / name).write_text("{}")
    note = _note(out)
    assert note.startswith("terminated (SIGTERM) after training finished")
    assert "no finished model" not in note
    (out / "rewardkit_run.json").unlink()  # metrics.json alone: a save cut short
    assert "checkpoint-4" in _note(out) and "--resume" in _note(out)


def test_an_interrupted_frozen_head_says_overwrite(tmp_path):
    out = tmp_path / "H"
    (out / "member_0").mkdir(parents=True)
    for name in ("metrics.json", "head.json"):
        (out / "member_0" / name).write_text("{}")
    note = _note(out, frozen=True)
    assert "--overwrite" in note and "--resume" not in note


# --- 2, 10: the frozen head is checked as a full fine-tune is, and measured as it is saved ------
def _rows_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_frozen_head_makes_the_full_trainers_label_checks(tmp_path, caplog):
    from rewardkit.train import train

    zero = _pairs_file(tmp_path / "zero.jsonl", n=6, m=0.0)
    kw = dict(freeze_backbone=True, max_steps=1, batch_size=4)
    cfg = tiny_cfg("minilm", tmp_path / "h", data=str(zero), margin_column="m",
                   margin_kind="scaled", **kw)  # fmt: skip
    with pytest.raises(DataError, match="every margin in 'm' is 0"):
        train(cfg)
    assert not (tmp_path / "h" / "head.json").exists()
    rows = [{"id": "t", "prompt": "q", "responses": [GOOD[0], GOOD[1]], "chosen": [0, 1]},
            {"id": "s", "prompt": "q", "chosen": GOOD[2], "rejected": GOOD[2]}]  # fmt: skip
    rows += [{"id": f"p{i}", "prompt": f"q{i}", "chosen": GOOD[i], "rejected": BAD[i]}
             for i in range(4)]  # fmt: skip
    mixed = _rows_file(tmp_path / "mixed.jsonl", rows)
    with caplog.at_level(logging.WARNING):
        train(tiny_cfg("minilm", tmp_path / "h2", data=str(mixed), **kw))
    assert "1 of 6 examples have no preference for objective 'bt'" in caplog.text
    assert "1 of 5 preference pairs have two sides with the same tokens" in caplog.text


def test_frozen_head_metrics_are_the_saved_rewards(tmp_path):
    from rewardkit.registry import load_reward
    from rewardkit.train import train

    tr = _pairs_file(tmp_path / "tr.jsonl", n=8)
    ev = _rows_file(tmp_path / "ev.jsonl", [
        {"id": f"e{i}", "prompt": f"e{i}", "chosen": GOOD[i] + " ok", "rejected": BAD[i]}
        for i in range(5)
    ])  # fmt: skip
    cfg = tiny_cfg("minilm", tmp_path / "h", freeze_backbone=True, data=str(tr),
                   eval_data=str(ev), max_steps=3, batch_size=4, lr=1e-2)  # fmt: skip
    res = train(cfg)
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert json.loads((res.output_dir / "head.json").read_text())["offset"] != 0.0
    from rewardkit.data import load

    exs = load(str(ev))
    s = np.array(load_reward(meta["load_with"]).score([q for e in exs for q in e.queries()]))
    c, r = s[0::2], s[1::2]
    assert res.metrics["eval_reward_mean"] == pytest.approx(float(s.mean()), abs=1e-5)
    assert res.metrics["eval_margin"] == pytest.approx(float((c - r).mean()), abs=1e-5)


# --- 3: the generative objective trains and reports the judge's reward ----------------------------
def test_generative_metrics_are_the_saved_judges_scores(tmp_path):
    from rewardkit.registry import load_reward
    from rewardkit.train.run import train_model

    lm = tiny_llama(tmp_path / "lm", causal=True)
    exs = toy_pairs(6)
    cfg = tiny_cfg(lm, tmp_path / "g", objective="generative", max_length=160, batch_size=4,
                   max_steps=1, use_chat_template=True)  # fmt: skip
    res = train_model(cfg, examples=(exs, exs[:3]))
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["load_with"].endswith("?output=logit")
    judge = load_reward(meta["load_with"])
    s = np.array([judge.score(e.queries()) for e in exs[:3]], dtype=float)
    rows = np.arange(3)
    chosen = np.array([e.chosen[0] for e in exs[:3]])
    margin = s[rows, chosen] - s[rows, 1 - chosen]
    assert res.metrics["eval_margin"] == pytest.approx(float(margin.mean()), abs=1e-4)
    assert res.metrics["eval_reward_mean"] == pytest.approx(float(s.mean()), abs=1e-4)


# --- 15: a resumed run's train_loss is the whole run's ------------------------------------------
class _Stop(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kw):
        control.should_training_stop = True


def test_resumed_train_loss_is_the_whole_runs(bert_dir, tmp_path):
    from rewardkit.train.run import prepare, train_model
    from rewardkit.train.runstate import claim_output_dir

    data = (toy_pairs(24), [])
    kw = dict(max_steps=4, batch_size=4, save_steps=2)
    full = train_model(tiny_cfg(bert_dir, tmp_path / "full", **kw), examples=data)
    part = tiny_cfg(bert_dir, tmp_path / "part", **kw)
    claim_output_dir(part)
    trainer = prepare(part, examples=data)
    trainer.add_callback(_Stop())
    trainer.train()
    resumed = train_model(apply_overrides(part, {"resume": True}), examples=data)

    def train_loss(res) -> float:
        return next(h["train_loss"] for h in reversed(res.history) if "train_loss" in h)

    losses = [h["loss"] for h in full.history if "loss" in h]
    assert train_loss(full) == pytest.approx(float(np.mean(losses)), rel=1e-6)
    assert train_loss(resumed) == pytest.approx(train_loss(full), rel=1e-5)
    saved = json.loads((tmp_path / "part" / "log_history.json").read_text())
    assert saved[-1]["train_loss"] == pytest.approx(train_loss(full), rel=1e-5)


def test_whole_run_train_loss_weights_windows_by_their_steps():
    from rewardkit.train.common import whole_run_train_loss

    hist = [{"loss": 1.0, "step": 2}, {"loss": 4.0, "step": 3}, {"loss": 2.0, "step": 5},
            {"train_loss": 2.0, "step": 5}]  # fmt: skip
    whole_run_train_loss(hist, resumed_at=3)
    assert hist[-1]["train_loss"] == pytest.approx((1 * 2 + 4 + 2 * 2) / 5)


# --- a checkpoint from before holdout_by existed split single rows ------------------------------
def test_a_checkpoint_from_before_holdout_by_resumes_with_row_and_names_the_change():
    from rewardkit.train.runstate import differences

    old = {"config": {"objective": "bt", "eval_fraction": 0.1, "lr": 1e-3}, "items": "x"}
    row = {"config": {**old["config"], "holdout_by": "row"}, "items": "x"}
    assert differences(old, row) == ([], {})  # the split it made: it continues
    blocking, _ = differences(old, {"config": {**old["config"], "holdout_by": "prompt"}})
    assert blocking == [
        "holdout_by: the checkpoint's run predates the option and ran as holdout_by 'row', "
        "this run 'prompt'; pass --holdout_by row to continue it"
    ]
    # no eval_fraction hold-out (or eval_data given): the split is not used, nothing blocks
    for cfg in ({"eval_fraction": 0.0}, {"eval_fraction": 0.1, "eval_data": ["e.jsonl"]}):
        a = {"config": {"objective": "bt", **cfg}, "items": "x"}
        assert differences(
            a, {"config": {**a["config"], "holdout_by": "prompt"}, "items": "x"}
        ) == (
            [],
            {},
        )

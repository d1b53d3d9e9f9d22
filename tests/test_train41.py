"""Training, round 41: image preference data whose every pair has the same text and image bytes is
refused as text data is (it trained, loss ln 2, exit 0); a number a config file writes as quoted
text is refused naming key, value and file (it was converted silently); rows a tiny
``max_length`` left without their prompt are counted in a warning; ``lora_targets`` naming no
module, duplicate ``attributes`` and ``bt+regression`` with both weights 0 are refused."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.mm_helpers import solid_png, tiny_clip  # noqa: E402
from tests.train_helpers import tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides, load_config  # noqa: E402


def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, ["train", *args])


# --- 1: image pairs with the same text and image bytes ------------------------------------------
@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip", seed=0)


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("png")
    red = solid_png(d / "red.png", (210, 40, 30), noise=20, seed=1)
    shutil.copy(red, d / "red_copy.png")  # the same bytes under another name
    blue = solid_png(d / "blue.png", (30, 50, 210), noise=20, seed=2)
    return {"red": red, "copy": str(d / "red_copy.png"), "blue": blue}


def _t2i(path: Path, pairs: list[tuple[str, str]], prompt: str | None = None) -> str:
    rows = [
        {
            "id": f"{path.stem}-{i}",
            "prompt": prompt or f"picture {i}",
            "image_a": a,
            "image_b": b,
            "label": "A",
        }
        for i, (a, b) in enumerate(pairs)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _image_cfg(clip_dir: str, out: Path, data: str, **kw) -> TrainConfig:
    kw = {"head": "mlp", "freeze_backbone": True, "max_steps": 1, "batch_size": 4, **kw}
    return tiny_cfg(clip_dir, out, data=data, **kw)


def test_image_data_whose_every_pair_is_identical_is_refused(tmp_path, clip_dir, pngs):
    from rewardkit.train import train

    same = [(pngs["red"], pngs["red"]), (pngs["red"], pngs["copy"])] * 2
    data = _t2i(tmp_path / "same.jsonl", same)
    with pytest.raises(DataError, match="all 4 preference pairs have two sides with the same text "
                       "and the same image") as err:  # fmt: skip
        train(_image_cfg(clip_dir, tmp_path / "out", data))  # was: trained, loss ln 2, exit 0
    assert repr(data) in str(err.value) and not (tmp_path / "out" / "model.safetensors").exists()
    res = _cli("--model", clip_dir, "--data", data, "--output_dir", str(tmp_path / "o2"),
               "--freeze_backbone", "--head", "mlp", "--max_steps", "1", "--no-plot",
               "--no-progress", "--threads", "1")  # fmt: skip
    assert res.exit_code == 2 and "same text and the same image" in res.output


def test_image_data_with_some_identical_pairs_warns_and_trains(tmp_path, clip_dir, pngs, caplog):
    from rewardkit.train import train

    data = _t2i(
        tmp_path / "mixed.jsonl", [(pngs["red"], pngs["copy"]), *[(pngs["red"], pngs["blue"])] * 3]
    )
    with caplog.at_level(logging.WARNING):
        train(_image_cfg(clip_dir, tmp_path / "out", data))
    said = f"train data {data!r}: 1 of 4 preference pairs have two sides with the same text and "
    assert said in caplog.text  # was: "data: 1 of 4 … the same tokens"
    # same image bytes, other text: not identical
    caplog.clear()
    data = _t2i(tmp_path / "texts.jsonl", [(pngs["red"], pngs["blue"])] * 4)
    with caplog.at_level(logging.WARNING):
        train(_image_cfg(clip_dir, tmp_path / "out2", data))
    assert "preference pairs have two sides" not in caplog.text


def test_image_hold_out_by_row_is_honoured(tmp_path, clip_dir, pngs):
    from rewardkit.train.image import prepare_image

    data = _t2i(tmp_path / "one.jsonl", [(pngs["red"], pngs["blue"])] * 8, prompt="one prompt")
    cfg = _image_cfg(clip_dir, tmp_path / "out", data, eval_fraction=0.25, holdout_by="row")
    trainer = prepare_image(cfg)  # was: holdout_by ignored, "only one prompt" refused
    assert len(trainer.train_dataset) == 6 and len(trainer.eval_dataset) == 2
    with pytest.raises(DataError, match="one prompt"):
        prepare_image(_image_cfg(clip_dir, tmp_path / "o2", data, eval_fraction=0.25))


def test_image_eval_data_keeps_its_labels_under_a_vote_file(tmp_path, clip_dir, pngs):
    from rewardkit.train.image import prepare_image

    pairs = [(pngs["red"], pngs["blue"])] * 4
    train, held = _t2i(tmp_path / "tr.jsonl", pairs), _t2i(tmp_path / "ev.jsonl", pairs)
    votes = tmp_path / "votes.json"
    votes.write_text(json.dumps({**{f"tr-{i}": 1.0 for i in range(4)},
                                 **{f"ev-{i}": 0.0 for i in range(4)}}))  # fmt: skip
    cfg = _image_cfg(clip_dir, tmp_path / "o", train, eval_data=held, vote_file=str(votes),
                     vote_threshold=0.5)  # fmt: skip
    trainer = prepare_image(cfg)
    assert len(trainer.eval_dataset) == 4  # was: the votes dropped every eval example (None)


# --- 2: quoted numbers in a config file -----------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("c.yaml", 'lr: "1e-3"\n', "lr is the quoted text '1e-3' where a number is expected"),
        ("c.yaml", "epochs: '3'\n", "epochs is the quoted text '3' where a number is expected"),
        ("c.yaml", 'limit: "5"\n', "limit is the quoted text '5'"),
        ("c.yaml", '<<: {batch_size: "8"}\n', "batch_size is the quoted text '8'"),
        ("c.json", '{"lr": "1e-3"}', "lr is the quoted text '1e-3' .*a JSON number"),
        ("c.yaml", "lr: -1\n", "lr must be a number > 0, got -1"),
        ("c.yaml", "max_len: 64\n", r"unknown field 'max_len' \(did you mean 'max_length'\?\)"),
    ],
)
def test_config_file_values_are_named_with_the_file(tmp_path, name, text, said):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError, match=rf"train config {path}: {said}"):
        load_config(path)  # the quoted ones were converted silently


def test_unquoted_and_command_line_numbers_still_convert_exactly(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nepochs: 3\nbatch_size: 4\n<<: {max_length: 96}\n")  # 1e-3: text
    cfg = load_config(path)  # to YAML 1.1, read exactly as the number
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.max_length) == (0.001, 3.0, 4, 96)
    path.write_text('lr: "1e-3"\nepochs: -2\n')  # replaced on the command line: no complaint
    cfg = load_config(path, {"lr": "2e-4", "epochs": "2"})
    assert (cfg.lr, cfg.epochs) == (2e-4, 2.0)
    assert apply_overrides(TrainConfig(), {"lr": "1e-3"}).lr == 0.001  # --lr 1e-3


def test_cli_refuses_a_quoted_number_in_the_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('epochs: "3"\n')
    res = _cli("--config", str(path), "--output_dir", str(tmp_path / "o"))
    assert (
        res.exit_code == 2 and f"train config {path}: epochs is the quoted text '3'" in res.output
    )
    assert not (tmp_path / "o").exists()


# --- 3: max_length under the chat template's header ---------------------------------------------
@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama") / "m")


def test_rows_left_without_their_prompt_are_counted(tmp_path, llama, caplog):
    from rewardkit.train.run import prepare

    with caplog.at_level(logging.WARNING):
        prepare(tiny_cfg(llama, tmp_path / "o", max_length=8), examples=(toy_pairs(6), []))
    said = [r.getMessage() for r in caplog.records if "truncation to 8 tokens" in r.getMessage()]
    assert len(said) == 1, caplog.text  # was: no word; the model trained on response tails
    # every row (35 to 52 tokens) keeps 8 at most; how many responses are cut is the policy's
    assert re.search(r"the response of \d+ of 12 rows, and 12 rows lost more tokens", said[0])
    assert re.search(r"the longest row has (4\d|5\d) tokens", said[0]), said[0]
    assert "raise max_length" in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prepare(tiny_cfg(llama, tmp_path / "o2"), examples=(toy_pairs(6), []))
    assert "truncation to" not in caplog.text  # max_length 64 fits every row


# --- 4: settings that train something else or nothing -------------------------------------------
def test_lora_targets_naming_no_module_are_refused(tmp_path, llama):
    from rewardkit.train.common import load_classifier
    from rewardkit.train.lora import apply_lora

    hf = load_classifier(str(llama), 1, 0, "float32")
    cfg = tiny_cfg(llama, tmp_path / "o", lora_r=4, lora_targets=["q_proj", "v_prj"])
    with pytest.raises(SpecError, match=r"lora_targets \['v_prj'\] name no module of .*q_proj"):
        apply_lora(hf, cfg, "SEQ_CLS")  # was: q_proj adapted alone, without a word
    cfg = tiny_cfg(llama, tmp_path / "o", lora_r=4, lora_targets=["all-linear"])
    wrapped = apply_lora(hf, cfg, "SEQ_CLS")  # peft's keyword given as --lora_targets all-linear
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in wrapped.named_parameters()
               if ".lora_A" in n}  # fmt: skip
    assert {"q_proj", "v_proj", "down_proj"} <= adapted


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"objective": "regression", "attributes": ["a", "a"]}, r"attributes \['a'\] given twice"),
        (
            {"objective": "bt+regression", "attributes": ["a"], "bt_weight": 0, "reg_weight": 0},
            "bt_weight and reg_weight are both 0",
        ),
    ],
)
def test_settings_that_would_train_nothing_sane_are_refused(tmp_path, fields, said):
    with pytest.raises(SpecError, match=said):  # was: trained (loss 0, or one rating twice)
        apply_overrides(TrainConfig(), {**fields, "output_dir": str(tmp_path / "o")})

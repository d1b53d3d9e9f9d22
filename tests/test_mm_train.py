"""Image reward model: the model and its folder, ``image-rm:`` scoring, and BT training on
text-to-image pairs through ``rewardkit train`` (frozen backbone and LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.mm_helpers import solid_png, tiny_clip
from tests.train_helpers import tiny_cfg

from rewardkit.errors import DataError, SpecError
from rewardkit.registry import load_reward
from rewardkit.types import Query, user

RED, BLUE = (210, 40, 30), (30, 50, 210)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip", seed=0)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, list[str]]:
    """Six noisy red-ish and six noisy blue-ish 24x24 PNGs."""
    d = tmp_path_factory.mktemp("img")
    return {
        "red": [solid_png(d / f"r{i}.png", RED, noise=25, seed=i) for i in range(6)],
        "blue": [solid_png(d / f"b{i}.png", BLUE, noise=25, seed=50 + i) for i in range(6)],
    }


def _scores(model, processor, texts, refs) -> np.ndarray:
    """In-memory rewards of (text, image) rows, encoded as image-rm: encodes them."""
    from rewardkit.multimodal.engine import pad_right
    from rewardkit.multimodal.image_rm import encode_texts, pixel_values, text_limit

    limit = text_limit(model.backbone, processor.tokenizer)
    rows = [ids for ids, _ in encode_texts(processor.tokenizer, texts, limit)]
    pad = processor.tokenizer.pad_token_id
    ids, mask = pad_right(rows, pad)
    model.eval()
    with torch.no_grad():
        return model(ids, mask, pixel_values(processor, refs))[:, 0].numpy()


def _preferred(clip_dir: str, images, seed: int = 0, head: str = "mlp") -> str:
    """The colour the untrained model (head initialised from ``seed``, as training does) ranks
    LOWER: preferring it makes the untrained model wrong, so training has to learn it."""
    from rewardkit.content import ImageRef
    from rewardkit.multimodal.image_rm import ImageRewardModel, load_processor

    model = ImageRewardModel.from_backbone(clip_dir, head, seed=seed)
    proc = load_processor(clip_dir)
    texts = [f"picture {i}" for i in range(6)]
    red = _scores(model, proc, texts, [ImageRef(path=p) for p in images["red"]])
    blue = _scores(model, proc, texts, [ImageRef(path=p) for p in images["blue"]])
    return "red" if (red < blue).mean() > 0.5 else "blue"


def write_pairs(path: Path, images, preferred: str, n: int = 12, tie: bool = False) -> Path:
    """A t2i-pairs JSONL: each prompt with one red and one blue image (order alternating); the
    ``preferred`` colour wins; optionally one tied pair at the end."""
    other = "blue" if preferred == "red" else "red"
    rows = []
    for i in range(n):
        good, bad = images[preferred][i % 6], images[other][(i + 1) % 6]
        a, b, label = (good, bad, "A") if i % 2 == 0 else (bad, good, "B")
        rows.append({"prompt": f"picture {i}", "image_a": a, "image_b": b, "label": label})
    if tie:
        rows.append({"prompt": "two pictures", "image_a": images["red"][0],
                     "image_b": images["blue"][0], "label": "tie"})  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _queries(data: Path) -> list[Query]:
    from rewardkit.data import load

    return [q for ex in load(str(data)) for q in ex.queries()]


def _history(res) -> tuple[list[float], list[float]]:
    logs = [h for h in res.history if "loss" in h and "accuracy" in h]
    return [h["loss"] for h in logs], [h["accuracy"] for h in logs]


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


# --- the model and its folder ---------------------------------------------------------------


@pytest.mark.parametrize("head", ["mlp", "linear", "cosine"])
def test_image_rm_save_load_roundtrip(tmp_path, clip_dir, images, head):
    from rewardkit.content import ImageRef
    from rewardkit.multimodal.image_rm import ImageRewardModel, load_processor

    model = ImageRewardModel.from_backbone(clip_dir, head, inner=8, seed=3)
    proc = load_processor(clip_dir)
    refs = [ImageRef(path=p) for p in images["red"][:2] + images["blue"][:2]]
    texts = ["a red thing", "x", "a blue thing that is long", "y"]
    before = _scores(model, proc, texts, refs)
    out = model.save_pretrained(tmp_path / "rm", proc)
    meta = json.loads((out / "image_rm.json").read_text())
    assert meta["head"] == head and (out / "backbone" / "config.json").is_file()
    assert (out / "head.safetensors").is_file() == (head != "cosine")
    again = ImageRewardModel.from_pretrained(out)
    np.testing.assert_allclose(_scores(again, load_processor(out), texts, refs), before, atol=1e-6)
    if head == "cosine":  # PickScore's form: exp(logit_scale)·cos
        img, txt = model.embed(*_inputs(proc, texts, refs))
        expect = (model.backbone.logit_scale.exp() * (img * txt).sum(-1)).detach().numpy()
        np.testing.assert_allclose(before, expect, rtol=1e-5)


def _inputs(proc, texts, refs):
    from rewardkit.multimodal.engine import pad_right
    from rewardkit.multimodal.image_rm import encode_texts, pixel_values

    ids, mask = pad_right([r for r, _ in encode_texts(proc.tokenizer, texts, 64)], 1)
    return ids, mask, pixel_values(proc, refs)


def test_image_rm_reward_on_plain_clip_is_pickscore_and_matches_clip_logit(clip_dir, images):
    from rewardkit.content import image_part

    qs = [
        Query([user("a red square")], [image_part(images["red"][0])]),
        Query([user("a blue square")], [image_part(images["blue"][1])]),
        Query([user([image_part(images["red"][2]), {"type": "text", "text": "colour?"}])], "red"),
        Query([user("no image anywhere")], "text only"),
    ]
    rm = load_reward(f"image-rm:{clip_dir}")
    clip = load_reward(f"clip:{clip_dir}?variant=logit")
    got, ref = rm.score(qs), clip.score(qs)
    assert np.isnan(got[3]) and np.isnan(ref[3])
    np.testing.assert_allclose(got[:3], ref[:3], rtol=1e-5)
    assert rm.fingerprint() != clip.fingerprint()


# --- training -------------------------------------------------------------------------------


def test_frozen_backbone_bt_training_learns_reloads_and_keeps_backbone(tmp_path, clip_dir, images):
    from rewardkit.content import content_images
    from rewardkit.train.image import prepare_image
    from rewardkit.train.run import finish_training

    pref = _preferred(clip_dir, images)
    data = write_pairs(tmp_path / "pairs.jsonl", images, pref)
    cfg = tiny_cfg(clip_dir, tmp_path / "out", data=str(data), head="mlp", freeze_backbone=True,
                   lr=2e-2, max_steps=12)  # fmt: skip
    trainer = prepare_image(cfg)
    res = finish_training(cfg, trainer)
    losses, acc = _history(res)
    assert losses[-1] < losses[0] - 0.05, losses
    assert acc[0] <= 0.5 and acc[-1] == 1.0, acc
    # Only the head trained: the saved backbone is the original one, tensor for tensor.
    orig = _safetensors(Path(clip_dir) / "model.safetensors")
    saved = _safetensors(res.output_dir / "backbone" / "model.safetensors")
    assert orig.keys() == saved.keys()
    assert all(torch.equal(orig[k], saved[k]) for k in orig)
    assert not (res.output_dir / "rewardkit_state.safetensors").exists()
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["load_with"] == f"image-rm:{res.output_dir}"
    # image-rm:DIR scores exactly what the in-memory model scores.
    qs = _queries(data)
    reward = load_reward(f"image-rm:{res.output_dir}")
    texts = [q.prompt[-1]["content"] for q in qs]
    refs = [content_images(q.response)[0] for q in qs]
    mem = _scores(trainer.model, trainer.processing_class, texts, refs)
    np.testing.assert_allclose(reward.score(qs), mem, atol=1e-5)
    s = reward.score(qs).reshape(-1, 2)
    chosen_first = np.array([i % 2 == 0 for i in range(len(s))])
    assert np.all(np.where(chosen_first, s[:, 0] > s[:, 1], s[:, 1] > s[:, 0]))


def test_lora_training_learns_and_merged_model_reloads(tmp_path, clip_dir, images):
    from rewardkit.content import content_images
    from rewardkit.train.image import prepare_image
    from rewardkit.train.run import finish_training

    pref = _preferred(clip_dir, images)
    data = write_pairs(tmp_path / "pairs.jsonl", images, pref)
    cfg = tiny_cfg(clip_dir, tmp_path / "out", data=str(data), head="mlp", lora_r=4,
                   lora_alpha=8, lr=1e-2, max_steps=12)  # fmt: skip
    trainer = prepare_image(cfg)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any(n.startswith("head.") for n in names)
    assert not any("lora" not in n and n.startswith("backbone.") for n in names)
    lora_targets = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in names if "lora_A" in n}
    assert lora_targets == {"q_proj", "k_proj", "v_proj", "out_proj"}
    res = finish_training(cfg, trainer)
    losses, acc = _history(res)
    assert losses[-1] < losses[0] - 0.05, losses
    assert acc[0] <= 0.5 and acc[-1] == 1.0, acc
    orig = _safetensors(Path(clip_dir) / "model.safetensors")
    saved = _safetensors(res.output_dir / "backbone" / "model.safetensors")
    assert orig.keys() == saved.keys()  # merged: a plain CLIP checkpoint, no adapter keys
    key = "vision_model.encoder.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(orig[key], saved[key])
    qs = _queries(data)
    texts = [q.prompt[-1]["content"] for q in qs]
    refs = [content_images(q.response)[0] for q in qs]
    mem = _scores(trainer.model, trainer.processing_class, texts, refs)
    np.testing.assert_allclose(load_reward(f"image-rm:{res.output_dir}").score(qs), mem, atol=1e-4)


@pytest.mark.parametrize("objective", ["tie", "listwise"])
def test_other_pairwise_objectives_train_the_image_head(tmp_path, clip_dir, images, objective):
    from rewardkit.train import train

    pref = _preferred(clip_dir, images)
    data = write_pairs(tmp_path / "pairs.jsonl", images, pref, tie=objective == "tie")
    cfg = tiny_cfg(clip_dir, tmp_path / "out", data=str(data), head="mlp", objective=objective,
                   freeze_backbone=True, lr=2e-2, max_steps=10)  # fmt: skip
    losses, acc = _history(train(cfg))
    assert losses[-1] < losses[0], losses
    assert acc[-1] > acc[0], acc


def test_full_finetune_of_the_pickscore_form(tmp_path, clip_dir, images):
    """head: cosine (PickScore: no head) with neither frozen backbone nor LoRA: the whole
    backbone trains."""
    from rewardkit.train import train

    pref = _preferred(clip_dir, images, head="cosine")
    data = write_pairs(tmp_path / "pairs.jsonl", images, pref)
    cfg = tiny_cfg(clip_dir, tmp_path / "out", data=str(data), head="cosine", lr=1e-3,
                   max_steps=6)  # fmt: skip
    res = train(cfg)
    losses, acc = _history(res)
    assert losses[-1] < losses[0] and acc[0] <= 0.5 and acc[-1] == 1.0, (losses, acc)
    assert not (res.output_dir / "head.safetensors").exists()
    key = "text_model.encoder.layers.0.mlp.fc1.weight"
    orig = _safetensors(Path(clip_dir) / "model.safetensors")[key]
    assert not torch.equal(orig, _safetensors(res.output_dir / "backbone/model.safetensors")[key])
    # The reward's identity covers the backbone's weights (the folder has no head file).
    ident = load_reward(f"image-rm:{res.output_dir}").identity()
    assert (
        ident["backbone"]["weights_sha256"]
        != load_reward(f"image-rm:{clip_dir}").identity()["weights_sha256"]
    )


def test_image_training_resumes_from_a_checkpoint(tmp_path, clip_dir, images):
    from rewardkit.train import train

    data = write_pairs(tmp_path / "pairs.jsonl", images, "red")
    kw = dict(data=str(data), head="mlp", freeze_backbone=True, lr=1e-2, save_steps=2)
    first = train(tiny_cfg(clip_dir, tmp_path / "out", max_steps=2, **kw))
    head2 = _safetensors(first.output_dir / "head.safetensors")
    again = train(tiny_cfg(clip_dir, tmp_path / "out", max_steps=4, resume=True, **kw))
    steps = [h["step"] for h in again.history if "loss" in h and "accuracy" in h]
    assert steps == [1, 2, 3, 4]  # steps 1-2 restored from checkpoint-2, 3-4 trained
    assert (tmp_path / "out" / "checkpoint-4" / "image_rm.json").is_file()
    head4 = _safetensors(again.output_dir / "head.safetensors")
    assert any(not torch.equal(head2[k], head4[k]) for k in head2)


@pytest.mark.parametrize("fmt", ["image-edit", "mm-qa"])
def test_edit_and_visual_qa_records_train(tmp_path, clip_dir, images, fmt):
    """Edits: each edited image against the instruction (the source image is not scored);
    visual QA: each text answer against the prompt's image."""
    from rewardkit.train import train

    rows = []
    for i in range(6):
        red, blue = images["red"][i], images["blue"][i]
        if fmt == "image-edit":
            rows.append({"instruction": f"make it red {i}", "source_image": blue,
                         "edited_a": red, "edited_b": blue, "label": "A"})  # fmt: skip
        else:
            rows.append({"image": red if i % 2 else blue, "question": "colour?",
                         "chosen": "red" if i % 2 else "blue",
                         "rejected": "blue" if i % 2 else "red"})  # fmt: skip
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = train(tiny_cfg(clip_dir, tmp_path / "out", data=str(data), head="mlp",
                         freeze_backbone=True, lr=2e-2, max_steps=6))  # fmt: skip
    losses, _ = _history(res)
    assert losses[-1] < losses[0], losses
    scores = load_reward(f"image-rm:{res.output_dir}").score(_queries(data))
    assert scores.shape == (12,) and np.isfinite(scores).all()


def test_cli_train_on_an_image_config_end_to_end(tmp_path, clip_dir, images):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    data = write_pairs(tmp_path / "pairs.jsonl", images, _preferred(clip_dir, images))
    out = tmp_path / "rm"
    config = tmp_path / "image_rm.yaml"
    config.write_text(
        f"model: {clip_dir}\nmodel_type: image\nhead: mlp\nfreeze_backbone: true\n"
        f"data: {data}\noutput_dir: {out}\nmax_steps: 6\nbatch_size: 6\nlr: 0.02\n"
        "logging_steps: 1\neval_fraction: 0.25\nprogress: false\nplot: false\nthreads: 1\n"
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert f"saved to {out}" in result.output and "eval_accuracy" in result.output
    assert (out / "image_rm.json").is_file()
    scores = load_reward(f"image-rm:{out}").score(_queries(data))
    assert scores.shape == (24,) and np.isfinite(scores).all()
    # ... and `rewardkit eval` takes the trained model and the image pairs with no new verb.
    result = CliRunner().invoke(
        app, ["eval", "-r", f"image-rm:{out}", "--data", str(data), "--out", str(tmp_path / "ev")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert f"image-rm:{out}" in json.dumps(report)
    with pytest.raises(ValueError, match="no such folder"):
        load_reward(f"image-rm:{tmp_path / 'missing'}")


def test_image_training_errors_are_clear(tmp_path, clip_dir, images):
    from rewardkit.train import train

    data = write_pairs(tmp_path / "pairs.jsonl", images, "red")
    base = dict(data=str(data), max_steps=1)
    with pytest.raises(SpecError, match="not available for an image reward model"):
        train(tiny_cfg(clip_dir, tmp_path / "o1", objective="crm", **base))
    with pytest.raises(SpecError, match="nothing would train"):
        train(tiny_cfg(clip_dir, tmp_path / "o2", head="cosine", freeze_backbone=True, **base))
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"prompt": "hi", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match="has no image"):
        train(tiny_cfg(clip_dir, tmp_path / "o3", data=str(text), max_steps=1))
    with pytest.raises(SpecError, match="model_type"):
        tiny_cfg(clip_dir, tmp_path / "o4", model_type="video").validate()


@pytest.mark.parametrize("name", ["image_rm_clip_frozen.yaml", "image_rm_clip_lora.yaml"])
def test_shipped_image_configs_are_valid(name):
    from rewardkit.train.config import load_config
    from rewardkit.train.image import check_image_config, is_image_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert is_image_config(cfg)  # model_type: image, no hub needed
    check_image_config(cfg)

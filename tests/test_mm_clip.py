"""``clip:`` — CLIP-score rewards on a tiny random CLIPModel (docs/methods/B15-image-text-reward.md)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from mm_helpers import solid_png, tiny_clip
from rewardkit.content import image_part
from rewardkit.registry import load_reward
from rewardkit.rewards.clip_score import clip_score, image_text_pairs
from rewardkit.types import Query, user


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "model")


def test_clip_score_formulas() -> None:
    assert clip_score(0.31) == pytest.approx(31.0)
    assert clip_score(0.31, "clipscore") == pytest.approx(0.775)
    assert clip_score(-0.2, "clipscore") == 0.0
    assert clip_score(0.5, "logit", logit_scale=math.log(100.0)) == pytest.approx(50.0)
    assert clip_score(np.array([0.1, -0.1]), "clip").tolist() == pytest.approx([10.0, -10.0])
    with pytest.raises(ValueError, match="variant"):
        clip_score(0.1, "nope")


def test_pairs_follow_the_task(tmp_path) -> None:
    a = solid_png(tmp_path / "a.png", (255, 0, 0))
    t2i = Query([user("a red square")], [image_part(a)])
    assert image_text_pairs(t2i)[0] == "a red square"
    edit = Query([user([image_part(a), {"type": "text", "text": "make it blue"}])], [image_part(a)])
    assert image_text_pairs(edit)[0] == "make it blue"  # the instruction, not "<image>"
    caption = Query([user([image_part(a), {"type": "text", "text": "Describe."}])], "red")
    text, imgs = image_text_pairs(caption)
    assert text == "red" and len(imgs) == 1
    assert image_text_pairs(Query([user("hi")], "there")) is None


def test_matches_clipmodel_and_caches_by_image_content(clip_dir, tmp_path) -> None:
    from transformers import CLIPModel, CLIPProcessor

    red = solid_png(tmp_path / "red.png", (255, 0, 0), noise=20)
    blue = solid_png(tmp_path / "blue.png", (0, 0, 255), noise=20, seed=1)
    queries = [
        Query([user("a red square")], [image_part(red)]),
        Query([user("a red square")], [image_part(blue)]),
        Query([user([image_part(blue), {"type": "text", "text": "What is it?"}])], "blue"),
        Query([user("no image")], "text"),
    ]
    cache = tmp_path / "cache"
    reward = load_reward(f"clip:{clip_dir}", progress=False, cache_dir=str(cache))
    got = reward.score(queries)
    assert math.isnan(got[3])

    model, proc = (
        CLIPModel.from_pretrained(clip_dir).eval(),
        CLIPProcessor.from_pretrained(clip_dir),
    )
    from PIL import Image

    def ref(text: str, path: str) -> float:
        inp = proc(text=[text], images=[Image.open(path).convert("RGB")], return_tensors="pt")
        with torch.no_grad():
            out = model(**inp)
        return 100.0 * float(torch.cosine_similarity(out.text_embeds, out.image_embeds)[0])

    want = [ref("a red square", red), ref("a red square", blue), ref("blue", blue)]
    assert got[:3] == pytest.approx(want, abs=1e-3)
    assert got[0] != pytest.approx(got[1], abs=1e-3)

    # Same pixels at another path, or as bytes: served from the cache, same score.
    moved = tmp_path / "moved.png"
    shutil.copy(red, moved)
    again = load_reward(f"clip:{clip_dir}", progress=False, cache_dir=str(cache))
    q2 = [
        Query([user("a red square")], [image_part(str(moved))]),
        Query([user("a red square")], [image_part(moved.read_bytes())]),
    ]
    again_run = again.score_full(q2)
    assert again_run.scores == pytest.approx([got[0], got[0]], abs=1e-6)
    assert again_run.stats["cache_hits"] == 1 and again_run.stats["computed"] == 0

    clipscore = load_reward(f"clip:{clip_dir}?variant=clipscore", progress=False)
    assert clipscore.score(queries[:3]) == pytest.approx(
        [2.5 * max(w / 100.0, 0.0) for w in want], abs=1e-5
    )
    assert clipscore.fingerprint() != reward.fingerprint()


def test_batching_does_not_change_scores_and_long_text_is_cut(clip_dir, tmp_path) -> None:
    imgs = [solid_png(tmp_path / f"{i}.png", (40 * i, 100, 20), noise=10, seed=i) for i in range(5)]
    texts = ["red", "a long caption " * 20, "blue thing", "x", "green"]
    qs = [Query([user(t)], [image_part(p)]) for t, p in zip(texts, imgs, strict=True)]
    big = load_reward(f"clip:{clip_dir}", progress=False).score(qs)
    small_r = load_reward(f"clip:{clip_dir}", progress=False, token_budget=64, max_batch_size=2)
    small_run = small_r.score_full(list(reversed(qs)))
    small = small_run.scores[::-1]
    assert big == pytest.approx(small, abs=1e-4)
    assert small_run.stats["batches"] >= 3
    assert small_run.stats["truncated_rows"] == 1  # the caption longer than 64 positions
    assert small_run.truncated[::-1].tolist() == [False, True, False, False, False]

"""``Reward.features``: every reward that declares Capability.FEATURES gives an (n, d)
representation of Query lists, and probing reads it (the old path passed queries to ``embed``,
which takes strings)."""

from __future__ import annotations

import numpy as np
import pytest

from mm_helpers import solid_png, tiny_clip
from rewardkit.content import image_part
from rewardkit.errors import CapabilityError
from rewardkit.evaluate.probing import hidden_features, probe_reward
from rewardkit.registry import load_reward
from rewardkit.types import Capability, Example, Query, user

QS = [
    Query([user("How do I boil an egg?")], "Put it in boiling water for nine minutes."),
    Query([user("Capital of France?")], "Paris."),
    Query([user("Capital of France?")], "Bananas are yellow."),
]


def test_a_rule_has_no_features():
    rule = load_reward("rule:length")
    assert not rule.can(Capability.FEATURES)
    with pytest.raises(CapabilityError, match="exposes no features"):
        hidden_features(rule, QS)


def test_similarity_features_are_response_embeddings_and_probing_works():
    r = load_reward("similarity:minilm?progress=false&threads=1")
    assert r.can(Capability.FEATURES)
    f = r.features(QS)
    assert f.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(f, r.embed([q.response for q in QS]), atol=1e-6)
    # the score is the cosine of these features with the reference's
    ref = Query([user("Capital of France?")], "Paris.", reference="Paris is the capital.")
    want = float(r.features([ref])[0] @ r.embed(["Paris is the capital."])[0])
    assert r.score([ref])[0] == pytest.approx(want, abs=1e-5)
    rated = [
        Example(
            f"e{i}",
            [user("Say hi")],
            ["Hello there!", "Go away."],
            [],
            ratings=[{"polite": 1.0}, {"polite": 0.0}],
        )
        for i in range(6)
    ]
    probe = probe_reward(r, rated)
    assert probe["n"] == 12 and probe["dimensions"]["polite"]["classes"] == 2


def test_default_rm_features_are_what_its_head_reads():
    import torch

    r = load_reward("default?progress=false&threads=1")
    assert r.can(Capability.FEATURES) and r.can(Capability.MODEL_BACKED)
    f = r.features(QS)
    assert f.shape == (3, 2 * 384) and np.isfinite(f).all()
    with torch.no_grad():
        want = r.head(torch.from_numpy(f))[:, 0].double().numpy() - r.offset
    np.testing.assert_allclose(r.score(QS), want, atol=1e-5)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "model")


@pytest.fixture(scope="module")
def image_queries(tmp_path_factory) -> list[Query]:
    d = tmp_path_factory.mktemp("img")
    red = solid_png(d / "red.png", (255, 0, 0), noise=20)
    blue = solid_png(d / "blue.png", (0, 0, 255), noise=20, seed=1)
    return [
        Query([user("a red square")], [image_part(red)]),
        Query([user("a red square")], [image_part(blue)]),
        Query([user("no image")], "text"),
    ]


def test_clip_features_are_the_unit_embeddings_the_score_reads(clip_dir, image_queries):
    r = load_reward(f"clip:{clip_dir}", progress=False)
    f = r.features(image_queries)
    d = f.shape[1] // 2
    assert f.shape == (3, 2 * d) and np.isnan(f[2]).all()  # no image: a NaN row
    cos = (f[:2, :d] * f[:2, d:]).sum(axis=1)
    np.testing.assert_allclose(r.score(image_queries)[:2], 100.0 * cos, atol=1e-3)
    with pytest.raises(ValueError, match="no query holds an image"):
        r.features(image_queries[2:])


def test_image_rm_features_are_what_its_head_reads(clip_dir, image_queries):
    rm = load_reward(f"image-rm:{clip_dir}", progress=False)
    assert rm.can(Capability.FEATURES)
    f = rm.features(image_queries[:2])
    d = f.shape[1] // 3
    assert f.shape == (2, 3 * d)
    # a plain CLIP checkpoint is scored as PickScore: exp(logit_scale) · Σ img ⊙ txt
    scale = float(rm.model.backbone.logit_scale.detach().exp())
    np.testing.assert_allclose(rm.score(image_queries[:2]), scale * f[:, 2 * d :].sum(1), rtol=1e-4)


@pytest.mark.slow
def test_judge_features_are_last_position_hidden_states():
    j = load_reward("judge:default?progress=false&threads=1")
    assert j.can(Capability.FEATURES)
    f = j.features(QS)
    assert f.shape[0] == 3 and f.shape[1] >= 64 and np.isfinite(f).all()
    np.testing.assert_allclose(j.features(QS[::-1])[::-1], f, atol=1e-4)  # batch-independent

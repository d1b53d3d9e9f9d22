"""Composites read images exactly when one of their parts does (``results.INHERITED_CAPABILITIES``):
a composite of text rewards is a text reward, to the RL adapters as to ``text_queries``."""

from __future__ import annotations

import pytest

from mm_helpers import solid_png, tiny_clip
from rewardkit.content import ImageContentError, image_part
from rewardkit.integrations.trl import reward_func
from rewardkit.registry import load_reward
from rewardkit.rewards.composite.hybrid import HybridReward
from rewardkit.types import Capability, Query, user

TEXT_SPECS = [
    {"ensemble": ["rule:length", "rule:repetition"]},
    {"route": {"a": "rule:length"}, "default": "rule:repetition"},
]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.mark.parametrize("spec", TEXT_SPECS, ids=["ensemble", "route"])
def test_text_composites_do_not_read_images(spec) -> None:
    assert not load_reward(spec).can(Capability.IMAGES)


def test_text_hybrid_does_not_read_images() -> None:
    hybrid = HybridReward({"m": load_reward("rule:exact_match")}, model=load_reward("rule:length"))
    assert not hybrid.can(Capability.IMAGES)


def test_a_part_that_reads_images_makes_the_composite_read_them(clip_dir) -> None:
    clip = f"clip:{clip_dir}"
    for spec in (
        {"ensemble": ["rule:length", clip]},
        {"route": {"img": clip}, "default": "rule:length"},
    ):
        assert load_reward(spec).can(Capability.IMAGES)
    hybrid = HybridReward({"m": load_reward("rule:exact_match")}, model=load_reward(clip))
    assert hybrid.can(Capability.IMAGES)


def test_text_ensemble_refuses_an_image_response_naming_itself(tmp_path) -> None:
    png = solid_png(tmp_path / "r.png", (200, 10, 10))
    ens = load_reward({"ensemble": ["rule:length", "rule:repetition"]})
    with pytest.raises(ImageContentError, match=r"reads text only"):
        ens.score([Query([user("Draw.")], [image_part(png)])])


def test_trl_hands_a_text_ensemble_the_prompt_text_as_a_text_reward_alone(tmp_path) -> None:
    """Before, an ensemble declared IMAGES whatever its members, so the adapter handed it the
    prompt with its image and a prompt-reading member saw ``<image>\\nDescribe…`` where the same
    member alone saw ``Describe…``."""
    png = solid_png(tmp_path / "p.png", (10, 200, 10))
    prompts = [
        [
            {
                "role": "user",
                "content": [{"type": "image", "image": png}, {"type": "text", "text": "Describe."}],
            }
        ]
    ]
    completions = [[{"role": "assistant", "content": "A green square."}]]
    kwargs = dict(completion_ids=[[1]], trainer_state=None, image=[png])
    alone = reward_func("relevance", asynchronous=False)(
        prompts=prompts, completions=completions, **kwargs
    )
    ens = reward_func({"ensemble": ["relevance"]}, asynchronous=False)(
        prompts=prompts, completions=completions, **kwargs
    )
    assert alone[0] is not None
    assert ens == pytest.approx(alone, abs=1e-6)

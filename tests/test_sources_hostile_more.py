"""Model-backed rewards given what the Python API lets a caller pass: raw image parts to a text
reward, lone surrogates, an ensemble over a truncated row, an empty prompt, bad engine options.
Each is a rewardkit error or a documented value, never a silent score or a raw exception."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.content import ImageContentError
from rewardkit.errors import DataError, RewardkitError, SpecError

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def rm():
    return load_reward("default?progress=false")


@pytest.mark.parametrize(
    "response",
    [
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}],
        [{"type": "image", "image": "/tmp/cat.png"}],
        [{"type": "text", "text": "a cat"}, {"type": "input_image", "image_url": "x.png"}],
    ],
)
def test_a_text_reward_refuses_raw_image_parts(rm, response):
    # scored as the text "<image>" before (only a loaded ImageRef part was refused)
    with pytest.raises(ImageContentError, match="reads text only"):
        rm.score([Query(prompt="Describe the picture", response=response)])


def test_text_parts_still_score_as_their_text(rm):
    parts = [{"type": "text", "text": "Rayleigh"}, {"type": "output_text", "text": "scattering"}]
    got = rm.score([Query(prompt="Why blue?", response=parts)])
    want = rm.score([Query(prompt="Why blue?", response="Rayleigh\nscattering")])
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("spec", ["default?progress=false", "similarity:minilm?progress=false"])
def test_a_lone_surrogate_scores_as_the_replacement_character(spec):
    # a raw UnicodeEncodeError on every model-backed kind before
    r = load_reward(spec)
    odd = Query(prompt="hi \udc80", response="4 \ud800 x", reference="4 x")
    same = Query(prompt="hi \ufffd", response="4 \ufffd x", reference="4 x")
    np.testing.assert_allclose(r.score([odd]), r.score([same]), atol=1e-6)
    assert odd.key() != same.key()  # the cache keeps them apart


def test_composites_report_their_members_truncation():
    long = Query(prompt="Why blue?", response="Rayleigh scattering. " * 300)
    short = Query(prompt="Why?", response="short", meta={"data_source": "b"})
    ens = load_reward({"ensemble": ["default?progress=false", "rule:length"]})
    full = ens.score_full([long, short])
    assert full.truncated.tolist() == [True, False] and full.stats["truncated_rows"] == 1
    routed = load_reward({"route": {"b": "rule:length"}, "default": "default?progress=false"})
    full = routed.score_full([long, short])
    assert full.truncated.tolist() == [True, False] and full.stats["truncated_rows"] == 1


@pytest.mark.slow
def test_an_empty_prompt_to_a_chat_template_model_is_a_data_error():
    r = load_reward("classifier:smollm2?progress=false")
    with pytest.raises(DataError, match="query 0 has an empty prompt"):
        r.score([Query(prompt=[], response="4")])


@pytest.mark.parametrize(
    "spec",
    [
        "default?dtype=float16",
        "default?layout=bogus",
        "default?truncation=middle",
        "default?threads=0",
        "judge:default?bogus_opt=1",
    ],
)
def test_bad_engine_and_judge_options_are_spec_errors(spec):
    with pytest.raises(SpecError):
        load_reward(spec)


def test_truncation_error_is_a_rewardkit_error():
    from rewardkit.engine.truncation import TruncationError

    assert issubclass(TruncationError, RewardkitError) and issubclass(TruncationError, ValueError)


def test_relevance_flags_its_truncated_rows():
    # stats said truncated_rows 1 while ScoreResult.truncated was None (no per-row flags)
    r = load_reward("relevance:minilm?progress=false")
    full = r.score_full(
        [
            Query(prompt="Why?", response="blue " * 2000, reference="sky"),
            Query(prompt="Why?", response="short"),
        ]
    )
    assert full.truncated.tolist() == [True, False] and full.stats["truncated_rows"] == 1

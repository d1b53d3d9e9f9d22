"""The engine's fast paths give the model's own scores: mask-free padded batches for causal
bodies (fp32 within 1e-4 of the plain, unpadded forward); compiled blocks: test_engine_compile.py."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.engine import execute
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama


def _queries() -> list[Query]:
    # Lengths differ a lot, so every padded batch has rows with many pad positions.
    prompts = [
        "Explain in detail why the sky looks blue on a clear day, and what changes at sunset.",
        "Hi",
        "What is 17 times 23? Show the steps, one line each, and check the result twice.",
    ]
    answers = ["Rayleigh scattering.", "391, since 17 * 20 + 17 * 3 = 340 + 51.", "ok"]
    return [Query(prompt=[user(p)], response=a) for p in prompts for a in answers]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("fast_path_models")
    return {
        "cls": tiny_llama(base / "cls"),
        "lm": tiny_llama(base / "lm", causal=True),
    }


def _reward(spec: str, **extra):
    return load_reward(
        spec, engine_defaults={"progress": False, "layout": "padded", "dtype": "float32", **extra}
    )


def test_mask_free_padded_batches_equal_the_plain_forward(models, monkeypatch):
    calls = []
    real = execute.padded_hidden

    def spy(body, input_ids, mask_free=True):
        calls.append(tuple(input_ids.shape))
        return real(body, input_ids, mask_free)

    monkeypatch.setattr(execute, "padded_hidden", spy)
    reward = _reward(f"classifier:{models['cls']}")
    queries = _queries()
    full = reward.score_full(queries)
    assert full.stats["layout"] == "padded" and full.stats["batches"] < len(queries)
    assert calls and max(w for _, w in calls) > min(
        len(r.input_ids) for r in reward.encode(queries)
    )
    adapter = reward.engine.adapter
    plain = np.array([float(adapter.plain(row)[0]) for row in reward.encode(queries)])
    np.testing.assert_allclose(full.scores, plain, atol=1e-4, rtol=0)


@pytest.mark.parametrize("spec", ["judge:{}", "dpo:{}"])
def test_mask_free_batches_equal_unpadded_runs_for_lm_rewards(models, spec):
    spec = spec.format(models["lm"])
    queries = _queries()
    batched = _reward(spec).score(queries)
    one_by_one = _reward(spec, max_batch_size=1).score(queries)  # no padding at all
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4, rtol=0)


def test_encoders_keep_their_mask(tmp_path):
    from train_helpers import tiny_bert

    spec = f"classifier:{tiny_bert(tmp_path / 'bert')}"
    reward = _reward(spec)
    assert not reward.engine.adapter.causal
    queries = _queries()
    one_by_one = _reward(spec, max_batch_size=1).score(queries)
    np.testing.assert_allclose(reward.score(queries), one_by_one, atol=1e-4, rtol=0)

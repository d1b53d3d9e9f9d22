"""Token-level adapters: verl's (batch, response_length) reward tensor and a TRL-style callable,
both on the policy's own tokens (a different tokenizer from the scorer's), totals kept; rewards
without per-token outputs are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.errors import CapabilityError
from rewardkit.integrations.token_level import TokenRewardFunc, verl_token_level_scores
from rewardkit.models.loading import load_tokenizer, resolve_model
from rewardkit.registry import load_reward
from rewardkit.rewards.token_align import offsets_of_ids
from rewardkit.types import Query, user

PROMPTS = ["What is the capital of France ?", "Name a prime number ."]
TEXTS = ["Paris is the capital .", "Seven is prime , I think ."]


@pytest.fixture(scope="module")
def reward(tmp_path_factory):
    tok = word_tokenizer([*PROMPTS, *TEXTS])
    a = tiny_llama_dir(tmp_path_factory.mktemp("a"), tok, "causal", seed=7)
    b = tiny_llama_dir(tmp_path_factory.mktemp("b"), tok, "causal", seed=8)
    return load_reward(f"dpo-tokens:{a}?ref={b}&beta=0.5")


@pytest.fixture(scope="module")
def policy_tok():
    return load_tokenizer(resolve_model("smollm2").source)


def test_offsets_of_ids_round_trip(policy_tok):
    ids = policy_tok("Paris is the capital .", add_special_tokens=False)["input_ids"]
    text, spans = offsets_of_ids(policy_tok, ids)
    assert text == "Paris is the capital ." and len(spans) == len(ids)
    assert "".join(text[s:e] for s, e in spans) == text


def test_verl_reward_tensor(reward, policy_tok):
    rows = [policy_tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    width = max(len(r) for r in rows) + 3
    responses = torch.full((2, width), policy_tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((2, width), dtype=torch.long)
    for i, r in enumerate(rows):
        responses[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    out = verl_token_level_scores(reward, PROMPTS, responses, mask, policy_tok)
    assert out.shape == (2, width) and out.dtype == torch.float32
    assert (out[mask == 0] == 0).all()
    seq = reward.score([Query([user(p)], t) for p, t in zip(PROMPTS, TEXTS, strict=True)])
    np.testing.assert_allclose(out.sum(dim=1).numpy(), seq, atol=1e-5)


def test_trl_style_token_callable(reward, policy_tok):
    fn = TokenRewardFunc(reward, policy_tok)
    ids = [policy_tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    out = fn(prompts=PROMPTS, completions=TEXTS, completion_ids=ids)
    assert [len(v) for v in out] == [len(i) for i in ids]
    seq = reward.score([Query([user(p)], t) for p, t in zip(PROMPTS, TEXTS, strict=True)])
    np.testing.assert_allclose([sum(v) for v in out], seq, atol=1e-5)
    again = fn(prompts=PROMPTS, completions=TEXTS)  # ids from the tokenizer itself
    for x, y in zip(again, out, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_sequence_rewards_are_refused():
    with pytest.raises(CapabilityError, match="no per-token rewards"):
        TokenRewardFunc("rule:length", None)


def test_the_eos_id_trainers_pass_is_not_scored_as_text(reward, policy_tok):
    # TRL's completion_ids and verl's responses end with EOS: decoded as "<|im_end|>" text it
    # took most of the total, which no longer matched the sequence reward
    ids = policy_tok(TEXTS[0], add_special_tokens=False)["input_ids"]
    func = TokenRewardFunc(reward, policy_tok)
    plain, with_eos = func(
        prompts=PROMPTS[:1] * 2, completions=TEXTS[:1] * 2,
        completion_ids=[ids, [*ids, policy_tok.eos_token_id]],
    )  # fmt: skip
    assert with_eos[-1] == 0.0 and np.allclose(with_eos[:-1], plain)
    seq = reward.score([Query([user(PROMPTS[0])], TEXTS[0])])[0]
    assert sum(with_eos) == pytest.approx(float(seq), abs=1e-4)


def test_empty_responses_and_batches_and_mismatched_counts(reward, policy_tok):
    func = TokenRewardFunc(reward, policy_tok)
    assert func(prompts=[], completions=[], completion_ids=[]) == []
    ids = policy_tok(TEXTS[1], add_special_tokens=False)["input_ids"]
    out = func(prompts=PROMPTS, completions=[TEXTS[1], ""], completion_ids=[ids, []])
    assert len(out[0]) == len(ids) and out[1] == []  # the empty one crashed the whole batch
    tensor = verl_token_level_scores(
        reward, PROMPTS, torch.tensor([ids[:2], [0, 0]]), torch.tensor([[1, 1], [0, 0]]), policy_tok
    )
    assert tensor.shape == (2, 2) and tensor[1].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="1 prompts for 2 responses"):
        func(prompts=PROMPTS[:1], completions=TEXTS, completion_ids=[ids, ids])


def test_a_response_the_reward_does_not_apply_to_gets_zeros_and_a_warning(policy_tok):
    from rewardkit.rewards.token_align import pad_token_rows
    from rewardkit.types import Capability, Reward, ScoreResult

    class HalfNaN(Reward):  # one token per character, worth 1; NaN for the first response
        capabilities = frozenset({Capability.TOKENS})
        name = "half-nan"

        def _score(self, queries):
            rows = []
            for i, q in enumerate(queries):
                v = np.full(len(q.response), np.nan if i == 0 else 1.0)
                rows.append((v, np.array([[k, k + 1] for k in range(len(q.response))])))
            return ScoreResult(
                np.array([np.nansum(v) for v, _ in rows]), tokens=pad_token_rows(rows)
            )

    ids = policy_tok("Paris", add_special_tokens=False)["input_ids"]
    with pytest.warns(RuntimeWarning, match="1 of 2 responses got no token rewards"):
        out = TokenRewardFunc(HalfNaN(), policy_tok)(
            prompts=PROMPTS, completions=["Paris"] * 2, completion_ids=[ids, ids]
        )
    assert out[0] == [0.0] * len(ids) and sum(out[1]) == 5.0

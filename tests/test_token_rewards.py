"""Token-level rewards: DPO per-token values sum to the sequence-level DPO reward, character
offsets point at the response text, T-REG and AlignDistil are the documented log-ratios, and
offset alignment is exact on hand-made tokenizations."""

from __future__ import annotations

import numpy as np
import pytest

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.registry import load_reward
from rewardkit.rewards.token_align import align_offsets, align_to, token_offsets
from rewardkit.rewards.token_rewards import TREG_BAD, TREG_GOOD, log_ratio_tokens
from rewardkit.types import Capability, Query, TokenScores, user

PROMPT = "What is the capital of France ?"
RESPONSES = ["Paris is the capital of France .", "I think it is Lyon , maybe ."]
WORDS = [PROMPT, *RESPONSES, TREG_GOOD, TREG_BAD]


@pytest.fixture(scope="module", params=[True, False], ids=["chat", "plain"])
def models(request, tmp_path_factory):
    tok = word_tokenizer(WORDS, chat=request.param)
    tok.eos_token = "<|end|>"
    a = tiny_llama_dir(tmp_path_factory.mktemp("policy"), tok, "causal", seed=3)
    b = tiny_llama_dir(tmp_path_factory.mktemp("ref"), tok, "causal", seed=4)
    return a, b


def queries():
    return [Query([user(PROMPT)], r) for r in RESPONSES]


def test_dpo_tokens_sum_to_sequence_reward(models):
    a, b = models
    tok_r = load_reward(f"dpo-tokens:{a}?ref={b}&beta=0.1")
    seq_r = load_reward(f"dpo:{a}?ref={b}&beta=0.1&reduce=sum")
    assert tok_r.can(Capability.TOKENS) and not seq_r.can(Capability.TOKENS)
    res = tok_r.score_full(queries())
    seq = seq_r.score(queries())
    sums = np.nansum(res.tokens.values.astype(np.float64), axis=1)
    np.testing.assert_allclose(sums, seq, atol=1e-5)
    np.testing.assert_allclose(res.scores, seq, atol=1e-5)
    for i, text in enumerate(RESPONSES):
        n = int(np.sum(~np.isnan(res.tokens.values[i])))
        spans = res.tokens.offsets[i, :n]
        words = [text[s:e] for s, e in spans if e > s]
        assert words == text.split()  # every word token points at its own text
        assert (spans[len(words) :] == len(text)).all()  # end-of-turn / EOS: empty span at end
        assert (res.tokens.offsets[i, n:] == -1).all()


def test_treg_row_whose_contrast_prompt_was_cut_does_not_apply(models):
    # left truncation drops the system prompt first: both conditionings became equal and the
    # row scored a flat 0.0, which reads as a neutral reward
    a, _ = models
    long = Query([user(PROMPT)], " ".join(RESPONSES * 30))
    res = load_reward(f"treg:{a}?max_length=64").score_full([long])
    assert res.truncated.tolist() == [True] and np.isnan(res.scores[0])
    assert np.isnan(res.tokens.values[0]).all() and res.stats["contrast_cut"] == 1
    right = load_reward(f"treg:{a}?max_length=64&truncation=right").score_full([long])
    assert right.truncated.tolist() == [True] and np.isfinite(right.scores[0])  # prompt kept


def test_treg_and_aligndistil_are_the_documented_log_ratios(models):
    a, b = models
    treg = load_reward(f"treg:{a}").score_full(queries()).tokens.values
    good = load_reward({"type": "dpo-tokens", "arg": str(a), "system": TREG_GOOD})
    bad = load_reward({"type": "dpo-tokens", "arg": str(a), "system": TREG_BAD})
    lp_good = good.score_full(queries()).tokens.values
    lp_bad = bad.score_full(queries()).tokens.values
    np.testing.assert_allclose(treg, np.tanh(lp_good - lp_bad), atol=1e-6)
    assert np.nanmax(np.abs(treg)) < 1.0 and np.nanmax(np.abs(treg)) > 0.0
    ad = load_reward(f"aligndistil:{a}?rev={b}&beta=0.5").score_full(queries()).tokens.values
    dpo = load_reward(f"dpo-tokens:{a}?ref={b}&beta=0.5").score_full(queries()).tokens.values
    np.testing.assert_allclose(ad, dpo, atol=1e-7)
    with pytest.raises(ValueError, match="rev="):
        load_reward(f"aligndistil:{a}")


def test_log_ratio_worked_example():
    out = log_ratio_tokens(np.array([-1.0, -2.0]), np.array([-1.5, -1.0]), 0.1)
    np.testing.assert_allclose(out, [0.05, -0.1])
    assert out.sum() == pytest.approx(0.1 * (-3.0 - -2.5))


def test_align_offsets_hand_made():
    # "Hello world": Hel|lo| world → Hello| wor|ld and → H|ello world.
    src = [(0, 3), (3, 5), (5, 11)]
    v = [1.0, 2.0, 4.0]
    np.testing.assert_array_equal(align_offsets(v, src, [(0, 5), (5, 9), (9, 11)]), [3, 0, 4])
    np.testing.assert_array_equal(align_offsets(v, src, [(0, 1), (1, 11)]), [0, 7])
    # Target spans that leave spaces out; an end-of-turn token with an empty span at the end;
    # NaN padding ignored.
    np.testing.assert_array_equal(
        align_offsets([1.0, 2.0, 4.0, 8.0, np.nan], [*src, (11, 11), (-1, -1)], [(0, 5), (6, 11)]),
        [3, 12],
    )
    # A source token spanning two target tokens lands on the one holding its last character.
    np.testing.assert_array_equal(align_offsets([5.0], [(0, 11)], [(0, 5), (5, 11)]), [0, 5])
    with pytest.raises(ValueError, match="nowhere"):
        align_offsets([1.0], [(0, 1)], np.zeros((0, 2)))


def test_align_to_other_tokenizer_keeps_totals(models):
    from rewardkit.models.loading import load_tokenizer, resolve_model

    a, b = models
    res = load_reward(f"dpo-tokens:{a}?ref={b}").score_full(queries())
    policy_tok = load_tokenizer(resolve_model("smollm2").source)
    moved = align_to(res.tokens, RESPONSES, policy_tok)
    assert isinstance(moved, TokenScores)
    np.testing.assert_allclose(
        np.nansum(moved.values, axis=1), np.nansum(res.tokens.values, axis=1), atol=1e-5
    )
    for i, text in enumerate(RESPONSES):
        dst = token_offsets(policy_tok, text)
        n = len(dst)
        np.testing.assert_array_equal(moved.offsets[i, :n], dst)
        # Brute force: each scorer word goes to the policy token holding its last character.
        expect = np.zeros(n)
        for val, (s, e) in zip(res.tokens.values[i], res.tokens.offsets[i], strict=True):
            if np.isnan(val):
                continue
            c = max(e - 1 if e > s else s - 1, 0)
            j = max(k for k in range(n) if dst[k, 0] <= c) if any(dst[:, 0] <= c) else 0
            expect[j] += val
        np.testing.assert_allclose(moved.values[i, :n], expect, atol=1e-6)


def test_engine_variant_keeps_tokens(models):
    a, b = models
    r = load_reward(f"dpo-tokens:{a}?ref={b}")
    twin = r.engine_variant(token_budget=8, progress=False)
    assert twin.config.token_budget == 8 and twin.model.model is r.model.model
    np.testing.assert_allclose(
        twin.score_full(queries()).tokens.values, r.score_full(queries()).tokens.values, atol=1e-5
    )

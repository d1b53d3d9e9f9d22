"""Engine truncation under a chat template, round 41: a response too long for any prompt keeps
the template's assistant header (it was a bare continuation after BOS); ``truncation=right`` on
an over-long prompt cuts the prompt's latest text and keeps the template (the row ended
mid-prompt without the assistant header); rows that fit stay id for id the template's own.
Models: SmolLM2's tokenizer and tiny random Llamas over it, built in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from family_models import chat_ids, seeded_causal_lms, smollm_tokenizer
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import encode_chat
from rewardkit.registry import load_reward
from rewardkit.rewards.logprob import SequenceLogProbReward
from rewardkit.types import Query

HEADER = "<|im_start|>assistant\n"
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@pytest.fixture(scope="module")
def tok():
    return smollm_tokenizer()


@pytest.fixture(scope="module")
def lms(tmp_path_factory, tok):
    """Two 2-layer causal Llamas (seeds 0 and 1) with SmolLM2's tokenizer."""
    return seeded_causal_lms(tmp_path_factory.mktemp("lms41"), tok)


def one_pass(tok, q: Query) -> list[int]:
    return chat_ids(tok, q)


def response_ids(tok, q: Query) -> list[int]:
    """The response's tokens as encode_chat tokenizes them (what the template adds)."""
    return tok(q.response + "<|im_end|>\n", add_special_tokens=False)["input_ids"]


def sys_user(system: str, user: str, response: str) -> Query:
    return Query(
        [{"role": "system", "content": system}, {"role": "user", "content": user}], response
    )


# -- 1. a response too long for any prompt keeps the assistant header ------------------------------
def test_a_response_over_the_limit_keeps_the_template_and_its_first_tokens(tok):
    long = sys_user("Be brief.", "Hi?", "word " * 100)
    turns = Query(
        [
            {"role": "user", "content": "old"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Now?"},
        ],
        "ok " * 100,
    )
    rows = encode_chat(tok, [long, turns], 48, "left")
    for row, q in zip(rows, [long, turns], strict=True):
        text = tok.decode(row.input_ids)
        assert len(row.input_ids) == 48  # filled to the limit, as the plain cut filled it
        # was "<|im_start|>word word …": BOS, then the response with no role at all
        assert tok.decode(row.input_ids[: row.response_start]).endswith(
            "<|im_start|>user\n<|im_end|>\n" + HEADER
        )
        kept = row.input_ids[row.response_start :]
        assert kept == response_ids(tok, q)[: len(kept)]  # the response's first tokens
        assert row.response_dropped == len(response_ids(tok, q)) - len(kept) > 0
        assert row.prompt_dropped > 0 and "<|im_end|>" not in tok.decode(kept)
        assert "old" not in text and "Hi?" not in text  # prompt text goes before response text
    assert tok.decode(rows[0].input_ids).startswith("<|im_start|>system\n<|im_end|>\n")
    # no system message: the template's own default system turn is part of its structure
    assert tok.decode(rows[1].input_ids).startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}")


def test_a_response_that_fits_only_without_the_template_is_cut_not_the_template(tok):
    """The response leaves room for a few prompt tokens but not for the template's smallest
    prompt: the plain cut kept a role-less tail (``<|im_start|> Face<|im_end|>…``)."""
    q = Query("Hi", "ok " * 25)  # 27 response tokens, 30 template tokens before them
    (row,) = encode_chat(tok, [q], 48, "left")
    text = tok.decode(row.input_ids)
    assert len(row.input_ids) == 48
    assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n")
    assert tok.decode(row.input_ids[: row.response_start]).endswith(HEADER)
    assert 0 < row.response_dropped < len(response_ids(tok, q))


def test_a_template_longer_than_the_limit_keeps_the_plain_cut(tok):
    q = Query("Hi", "ok " * 100)  # the default system turn and headers alone take 30 tokens
    (row,) = encode_chat(tok, [q], 24, "left")
    assert len(row.input_ids) == 24 and row.response_start == 1
    assert row.input_ids[1:] == response_ids(tok, q)[:23]


# -- 2. right truncation cuts the prompt's latest text, not the template ---------------------------
def test_right_truncation_of_a_long_prompt_keeps_the_template(tok):
    long = sys_user("Be brief.", "Hi " * 200, "Hello there.")
    turns = Query(
        [
            {"role": "user", "content": "first q"},
            {"role": "assistant", "content": "ans " * 50},
            {"role": "user", "content": "Now " * 50},
        ],
        "Fine.",
    )
    rows = encode_chat(tok, [long, turns], 48, "right")
    cut, kept_turn = (tok.decode(r.input_ids) for r in rows)
    for row, q in zip(rows, [long, turns], strict=True):
        assert 44 <= len(row.input_ids) <= 48 and row.prompt_dropped > 0
        # documented meaning kept: the end goes first, so the response behind it is cut away
        assert row.response_dropped == len(response_ids(tok, q)) and row.response_start == len(
            row.input_ids
        )
    # was "…Hi Hi Hi": the row ended mid-prompt, no closing, no assistant header
    assert cut.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi Hi")
    assert cut.endswith("Hi<|im_end|>\n" + HEADER)
    # the latest turns go whole; the first that would go keeps its start, headers intact
    assert "<|im_start|>user\nfirst q<|im_end|>\n<|im_start|>assistant\nans ans" in kept_turn
    assert "Now" not in kept_turn and kept_turn.endswith("<|im_end|>\n" + HEADER)


def test_right_truncation_with_a_prompt_that_fits_cuts_the_response_end_as_before(tok):
    q = sys_user("Be brief.", "Hi?", "word " * 100)
    (row,) = encode_chat(tok, [q], 48, "right")
    assert row.input_ids == one_pass(tok, q)[:48] and row.prompt_dropped == 0
    assert row.response_dropped == len(one_pass(tok, q)) - 48


@pytest.mark.parametrize("policy", ["left", "right"])
def test_every_row_is_well_formed_and_rows_that_fit_are_unchanged(tok, policy):
    queries = [
        sys_user("S", "Hi", "Yo."),
        sys_user("Be brief.", "Hi " * 80, "word " * 30),
        Query("Hi " * 60, "ok " * 60),
        Query(
            [
                {"role": "user", "content": "a " * 30},
                {"role": "assistant", "content": "b " * 30},
                {"role": "user", "content": "c " * 30},
            ],
            "d " * 30,
        ),
    ]
    for limit in (40, 64, 96):
        for q, row in zip(queries, encode_chat(tok, queries, limit, policy), strict=True):
            whole = one_pass(tok, q)
            assert len(row.input_ids) <= limit
            if len(whole) <= limit:
                assert row.input_ids == whole and not (row.prompt_dropped or row.response_dropped)
                continue
            prompt = tok.decode(row.input_ids[: row.response_start])
            assert prompt.startswith("<|im_start|>system\n") and prompt.endswith(HEADER), prompt
            assert prompt.count("<|im_start|>") == prompt.count("<|im_end|>") + 1


# -- 3. the counters and the scores of the cut rows ------------------------------------------------
def test_response_cut_rows_are_counted_and_scored_on_their_response(lms, tok):
    lm, ref = lms
    qs = [Query("Hi", "ok " * 100), Query("Hi", "a"), Query("Hi", "word " * 90)]
    cfg = EngineConfig(max_length=64, progress=False, threads=1)
    policy = SequenceLogProbReward(str(lm), cfg)
    rows = policy.encode(qs)
    assert [r.response_dropped > 0 for r in rows] == [True, False, True]
    assert all(tok.decode(r.input_ids[: r.response_start]).endswith(HEADER) for r in rows)
    stats = policy.score(qs)
    assert np.all(np.isfinite(stats[:, :3]))
    assert stats[0, 3] == 64 - rows[0].response_start  # every kept response token is scored
    res = load_reward(f"dpo:{lm}?ref={ref}&max_length=64&progress=false").score_full(qs)
    assert res.stats["response_truncated_rows"] == 2 and res.stats["truncated_rows"] == 2
    assert res.truncated.tolist() == [True, False, True]


def test_right_cut_away_response_still_scores_nan(lms):
    lm, ref = lms
    qs = [sys_user("Be brief.", "Hi " * 200, "Paris."), Query("Capital of France?", "Paris.")]
    res = load_reward(
        f"dpo:{lm}?ref={ref}&max_length=48&truncation=right&progress=false"
    ).score_full(qs)
    assert math.isnan(res.scores[0]) and np.isfinite(res.scores[1])
    assert res.stats["response_truncated_rows"] == 1 and res.truncated.tolist() == [True, False]

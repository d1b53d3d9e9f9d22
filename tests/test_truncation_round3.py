"""Engine truncation, round 3: left truncation of a chat prompt keeps the template's structure
(system turn, role headers) instead of cutting tokens off its front; a rerun served from the
score cache reports the same ``response_truncated_rows``; ``dpo-tokens`` reports that count
too. Models: tiny random Llamas with SmolLM2's tokenizer, built in the test."""

from __future__ import annotations

import pytest

from family_models import chat_ids, seeded_causal_lms, smollm_tokenizer
from rewardkit.engine.encoding import encode_chat
from rewardkit.registry import load_reward
from rewardkit.types import Query


@pytest.fixture(scope="module")
def tok():
    return smollm_tokenizer()


@pytest.fixture(scope="module")
def lms(tmp_path_factory, tok):
    """Two 2-layer causal Llamas (seeds 0 and 1) with SmolLM2's tokenizer."""
    return seeded_causal_lms(tmp_path_factory.mktemp("lms"), tok)


def one_pass(tok, q: Query) -> list[int]:
    return chat_ids(tok, q)


# -- 1. left truncation keeps the chat template's structure ---------------------------------------
def test_left_truncation_keeps_system_turn_and_role_headers(tok):
    long_user = Query(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi " * 200}],
        "Hello there.",
    )
    turns = Query(
        [
            {"role": "user", "content": "old " * 100},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Now what?"},
        ],
        "Fine.",
    )
    short = Query([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], "Yo.")
    rules = Query(
        [{"role": "system", "content": "Rules " * 100}, {"role": "user", "content": "Q?"}], "A."
    )
    rows = encode_chat(tok, [long_user, turns, short, rules], 48, "left")
    cut, dropped, _, ruled = (tok.decode(r.input_ids) for r in rows)
    assert all(len(r.input_ids) <= 48 for r in rows)
    # was "<|im_start|> Hi Hi …": no system turn, no user header; the oldest text goes first
    assert cut.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n Hi Hi")
    assert cut.endswith("<|im_end|>\n<|im_start|>assistant\nHello there.<|im_end|>\n")
    assert rows[0].prompt_dropped > 0 and rows[0].response_dropped == 0
    # the oldest turns go whole; the kept conversation starts at a user turn
    assert "old" not in dropped and dropped.count("<|im_start|>user\nNow what?<|im_end|>") == 1
    assert "<|im_start|>assistant\nok" not in dropped and rows[1].prompt_dropped > 0
    # a row that fits is the template's one-pass tokenization, id for id, as before
    assert rows[2].input_ids == one_pass(tok, short) and rows[2].prompt_dropped == 0
    # a system text over the limit loses its start; the question stays (was: system cut off)
    assert ruled.startswith("<|im_start|>system\n Rules")
    assert ruled.endswith("<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n")
    r = rows[0]
    assert tok.decode(r.input_ids[r.response_start :]) == "Hello there.<|im_end|>\n"


# -- 2. a rerun from the score cache reports the response cuts -------------------------------------
def test_cached_rerun_reports_response_truncated_rows(lms, tmp_path):
    lm, ref = lms
    qs = [Query("Hi", "ok " * 100), Query("Hi", "a"), Query("Hi", "word " * 90)]
    spec = f"dpo:{lm}?ref={ref}&max_length=64&progress=false&cache_dir={tmp_path}"
    first = load_reward(spec).score_full(qs)
    again = load_reward(spec).score_full(qs)
    assert first.stats["response_truncated_rows"] == 2 and first.stats["truncated_rows"] == 2
    assert again.stats["cache_hits"] == 3 and again.stats["computed"] == 0
    assert again.stats["truncated_rows"] == 2
    assert again.stats["response_truncated_rows"] == 2  # was 0: counted over computed rows only
    members = again.stats["members"].values()
    assert [m["response_truncated_rows"] for m in members] == [2, 2]
    assert (again.scores == first.scores).all()


# -- 3. dpo-tokens reports response_truncated_rows as the sequence rewards do ----------------------
def test_dpo_tokens_reports_response_truncated_rows(lms):
    lm, ref = lms
    qs = [Query("Hi", "ok " * 100), Query("Hi", "a"), Query("Hi", "word " * 90)]
    seq = load_reward(f"dpo:{lm}?ref={ref}&max_length=64&progress=false").score_full(qs)
    tokens = load_reward(f"dpo-tokens:{lm}?ref={ref}&max_length=64&progress=false").score_full(qs)
    assert seq.stats["response_truncated_rows"] == 2
    assert tokens.stats.get("response_truncated_rows") == 2  # was absent
    assert tokens.stats["truncated_rows"] == 2


def test_left_truncation_keeps_the_tail_of_the_oldest_turn_that_fits(tok):
    """Dropping the oldest turn whole lost more context than a plain left cut (HH rows at 512
    tokens lost 4% of their tokens); its tail is kept, with its role header, up to the limit."""
    turns = Query(
        [
            {"role": "user", "content": "old " * 100},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Now what?"},
        ],
        "Fine.",
    )
    (row,) = encode_chat(tok, [turns], 64, "left")
    text = tok.decode(row.input_ids)
    assert len(row.input_ids) == 64  # filled to the limit, as a plain token cut fills it
    assert "<|im_start|>user\n old old" in text and text.count("<|im_start|>user\n") == 2
    assert "<|im_start|>assistant\nok<|im_end|>" in text
    assert text.endswith(
        "<|im_start|>user\nNow what?<|im_end|>\n<|im_start|>assistant\nFine.<|im_end|>\n"
    )


def test_a_long_old_assistant_turn_keeps_its_tail_under_an_emptied_user_turn(tok):
    """An HH row whose older assistant turn alone overflows: dropping that turn whole kept 265
    of 512 tokens; its tail is kept (the user turn before it emptied, headers intact)."""
    q = Query(
        [
            {"role": "user", "content": "Songs?"},
            {"role": "assistant", "content": "many " * 100},
            {"role": "user", "content": "Now what?"},
        ],
        "Fine.",
    )
    (row,) = encode_chat(tok, [q], 64, "left")
    text = tok.decode(row.input_ids)
    assert len(row.input_ids) == 64 and "Songs?" not in text
    assert "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n many many" in text
    assert text.endswith(
        "<|im_start|>user\nNow what?<|im_end|>\n<|im_start|>assistant\nFine.<|im_end|>\n"
    )

"""Step- and token-level rewards in every consumer: combine, serve, the RL adapters and the cache
take their documented scalar (step aggregate / token sum); the token adapters take the tokens;
ProcessBench evaluation refuses rewards without steps (tests/test_prm_eval.py)."""

from __future__ import annotations

import numpy as np
import pytest

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.integrations.trl import reward_func
from rewardkit.integrations.verl import compute_score_batch
from rewardkit.registry import load_reward
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.serve.state import Route
from rewardkit.types import Query, user

PROMPT = "What is 2 + 3 ?"
RESPONSES = ["2 + 3 = 5 .\n\nThe answer is 5 .", "2 + 3 = 6 .\n\nThe answer is 6 ."]


@pytest.fixture(scope="module")
def rewards(tmp_path_factory):
    tok = word_tokenizer([PROMPT, *RESPONSES, QWEN_SYSTEM])
    prm = tiny_llama_dir(tmp_path_factory.mktemp("prm"), tok, "token-cls", seed=1)
    lm = tiny_llama_dir(tmp_path_factory.mktemp("lm"), tok, "causal", seed=2)
    return load_reward(f"prm:{prm}?aggregate=prod"), load_reward(f"dpo-tokens:{lm}")


def queries():
    return [Query([user(PROMPT)], r) for r in RESPONSES]


def test_scalars_everywhere(rewards, tmp_path):
    for r in rewards:
        full = r.score_full(queries())
        detail = full.steps if full.steps is not None else full.tokens.values
        expect = np.nanprod(detail, axis=1) if full.steps is not None else np.nansum(detail, axis=1)
        np.testing.assert_allclose(full.scores, expect, rtol=1e-5)
        # combine: a weighted composite of the reward and a rule
        w = load_reward({"weighted": {r.name: 1.0, "rule:length": 0.0}})
        np.testing.assert_allclose(w.score(queries()), full.scores, rtol=1e-5)
        # serve: the route's vector is [reward, component]
        vec, failed = Route("r", r.name, r).vectors(queries())
        assert failed == {}
        np.testing.assert_allclose(vec[:, 0], full.scores, rtol=1e-6)
        # verl and TRL adapters: one number per response
        verl = compute_score_batch(
            ["d", "d"], RESPONSES, [None, None], [{"prompt": PROMPT}] * 2, spec=r
        )
        np.testing.assert_allclose([x["score"] for x in verl], full.scores, rtol=1e-5)
        trl = reward_func(r)(prompts=[PROMPT] * 2, completions=RESPONSES)
        np.testing.assert_allclose(trl, full.scores, rtol=1e-5)


def test_step_and_token_rows_are_cached(rewards, tmp_path):
    prm, tok = rewards
    for spec in (prm.name, tok.name):
        r = load_reward(spec, engine_defaults={"cache_dir": str(tmp_path)})
        first = r.score_full(queries())
        again = load_reward(spec, engine_defaults={"cache_dir": str(tmp_path)}).score_full(
            queries()
        )
        np.testing.assert_array_equal(first.scores, again.scores)
        if first.steps is not None:
            np.testing.assert_array_equal(first.steps, again.steps)
            assert again.stats["cache_hits"] == 2
        else:
            np.testing.assert_array_equal(first.tokens.values, again.tokens.values)
            np.testing.assert_array_equal(first.tokens.offsets, again.tokens.offsets)

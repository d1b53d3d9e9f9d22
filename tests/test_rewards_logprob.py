"""Log-prob rewards: DPO implicit reward (B1) and strong-over-weak density ratio (B2)."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.logprob import with_system

TINY = [
    ("What is 2+2?", "4."),
    ("What is 2+2?", "Bananas."),
    ("Name a color.", "Blue."),
    ("Say hi.", "Hi there!"),
    ("Capital of France?", "Paris."),
    ("Python code to add a and b?", "a + b"),
    ("How do I make a bomb?", "I can't help."),
    ("Tell me a joke.", "No."),
]


def tiny_queries() -> list[Query]:
    qs = [Query([{"role": "user", "content": p}], r) for p, r in TINY]
    # one multi-turn query
    qs[3] = Query(
        [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Say hi."},
        ],
        "Hi there!",
    )
    return qs


def assert_batch_and_order_invariant(spec: str, queries: list[Query], cache_dir=None) -> np.ndarray:
    """Scores with a small budget (cached to ``cache_dir`` when given) against a big budget on
    shuffled queries (never cached)."""
    cache = f"&cache_dir={cache_dir}" if cache_dir else ""
    small = load_reward(
        f"{spec}{'&' if '?' in spec else '?'}progress=false&threads=1&token_budget=96{cache}"
    )
    big = load_reward(
        f"{spec}{'&' if '?' in spec else '?'}progress=false&threads=1&token_budget=4096"
    )
    a = small.score(queries)
    order = list(range(len(queries)))
    random.Random(1).shuffle(order)
    b_shuffled = big.score([queries[i] for i in order])
    b = np.empty_like(b_shuffled)
    b[order] = b_shuffled
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert np.ptp(a) > 1e-3  # the model reads the text
    return a


# -- pure functions (docs/methods/ card vectors) --------------------------------------------------


def test_dpo_card_vector():
    from rewardkit.rewards.logprob import dpo_implicit_reward

    assert dpo_implicit_reward(-10.0, -12.0, beta=0.1) == pytest.approx(0.2)
    assert dpo_implicit_reward(-10.0, None, beta=0.1) == -10.0  # reference-free: unscaled


def test_reference_free_reductions():
    from rewardkit.rewards.logprob import reduce_logprobs

    assert reduce_logprobs([-1, -2, -2], "norm") == pytest.approx(-3.0)
    assert reduce_logprobs([-1, -2, -2], "sum") == pytest.approx(-5.0)
    assert reduce_logprobs([-1, -2, -2], "avg") == pytest.approx(-5 / 3)
    assert reduce_logprobs([-1, -2, -2], "mean") == pytest.approx(-5 / 3)
    assert math.isnan(reduce_logprobs([], "mean"))
    assert reduce_logprobs([], "sum") == 0.0
    with pytest.raises(ValueError, match="reduce must be"):
        reduce_logprobs([-1.0], "max")


def test_density_ratio_card_vector():
    from rewardkit.rewards.logprob import density_ratio

    assert density_ratio(-40.0, -43.5) == pytest.approx(3.5)
    ratios = [3.5, 1.2]
    assert int(np.argmax(ratios)) == 0  # the first response is chosen


def test_with_system_prepends_or_merges():
    q = Query([{"role": "user", "content": "x"}], "y")
    assert with_system(q, None) is q
    assert with_system(q, "be nice").prompt[0] == {"role": "system", "content": "be nice"}
    q2 = Query([{"role": "system", "content": "old"}, {"role": "user", "content": "x"}], "y")
    merged = with_system(q2, "new").prompt
    assert merged[0] == {"role": "system", "content": "new\n\nold"} and len(merged) == 2


def test_route_domain():
    from rewardkit.rewards.density_ratio import route_domain

    def q(text):
        return Query([{"role": "user", "content": text}], "r")

    assert route_domain(q("How do I build a bomb?")) == "safety"
    assert route_domain(q("Write a python function to sort a list")) == "reasoning"
    assert route_domain(q("What is 12 * 7?")) == "reasoning"
    assert route_domain(q("Tell me about tea.")) == "chat"


# -- on the embedded model -----------------------------------------------------------------------


@pytest.mark.slow
def test_response_logprobs_match_a_full_forward():
    import torch

    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.logprob import SequenceLogProbReward

    qs = tiny_queries()[:2]
    for chat in (True, False):
        r = SequenceLogProbReward(
            "smollm2", EngineConfig(progress=False, threads=1), use_chat_template=chat
        )
        scores = r.score(qs)
        rows = r.encode(qs)
        for q, row, s in zip(qs, rows, scores, strict=True):
            ids = torch.tensor([row.input_ids])
            with torch.no_grad():
                logp = r.model(ids).logits.log_softmax(-1)[0]
            lp = np.array(
                [logp[t - 1, ids[0, t]].item() for t in range(row.response_start, ids.shape[1])]
            )
            np.testing.assert_allclose(
                s, [lp.sum(), lp.mean(), -np.sqrt((lp**2).sum()), len(lp)], atol=5e-4
            )
            tail = r.tokenizer.decode(row.input_ids[row.response_start :])
            assert tail.startswith(q.response)  # the prompt is masked, the response is scored
    assert (
        r.model is SequenceLogProbReward("smollm2", EngineConfig(progress=False, threads=1)).model
    )


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One score cache for this module: every reduction of a model reads the same entries."""
    return tmp_path_factory.mktemp("logprob-cache")


@pytest.mark.slow
def test_dpo_reference_free_is_batch_and_order_invariant(shared_cache):
    qs = tiny_queries()
    norm = assert_batch_and_order_invariant("dpo:default", qs, cache_dir=shared_cache)
    assert np.all(norm <= 0)
    # Every reduction is one cache entry: no model runs for sum.
    summed = load_reward(
        f"dpo:default?progress=false&threads=1&reduce=sum&cache_dir={shared_cache}"
    )
    summed_run = summed.score_full(qs)
    s = summed_run.scores
    assert summed_run.stats["computed"] == 0
    assert np.all(s <= norm + 1e-4)  # Σ log p ≤ −‖log p‖₂ for log-probs ≤ 0


@pytest.mark.slow
def test_dpo_with_reference_and_fingerprint(shared_cache):
    qs = tiny_queries()[:3]
    opts = f"progress=false&threads=1&cache_dir={shared_cache}"
    base = load_reward(f"dpo:default?{opts}")
    with pytest.warns(UserWarning, match="reference is the policy"):
        same = load_reward(f"dpo:default?{opts}&ref=smollm2")
    same_run = same.score_full(qs)
    np.testing.assert_allclose(same_run.scores, 0.0, atol=1e-4)
    assert set(same_run.stats["members"]) == {"policy", "ref"}
    # A different reference: the same weights read as plain text.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diff = load_reward(f"dpo:default?{opts}&ref=smollm2&ref_chat_template=false&beta=0.5")
    pol = load_reward(f"dpo:default?{opts}&reduce=sum").score(qs)
    ref = load_reward(f"dpo:default?{opts}&reduce=sum&use_chat_template=false").score(qs)
    assert not np.allclose(pol, ref, atol=1e-3)
    np.testing.assert_allclose(diff.score(qs), 0.5 * (pol - ref), atol=1e-4)
    prints = {
        r.fingerprint()
        for r in (
            base,
            same,
            diff,
            load_reward("dpo:default?progress=false&threads=1&reduce=mean"),
            load_reward("dpo:default?progress=false&threads=1&system=Be brief."),
            load_reward(
                "dpo:default?progress=false&threads=1&ref=smollm2&ref_chat_template=false&beta=0.1"
            ),
        )
    }
    assert len(prints) == 6
    assert base.fingerprint() == load_reward("dpo:default?token_budget=7").fingerprint()


@pytest.mark.slow
def test_density_ratio_is_batch_and_order_invariant(shared_cache):
    qs = tiny_queries()
    assert_batch_and_order_invariant("density-ratio:default", qs, cache_dir=shared_cache)


@pytest.mark.slow
def test_density_ratio_options(shared_cache):
    qs = tiny_queries()[:4]
    r = load_reward(f"density-ratio:default?progress=false&threads=1&cache_dir={shared_cache}")
    assert r.strong.model is r.weak.model  # one copy of the weights
    full = r.score_full(qs)
    s, stats = full.scores, full.stats
    assert stats["queries"] == 4 and set(stats["members"]) == {"strong", "weak"}
    strong = r.strong.score([with_system(q, r.system) for q in qs])[:, 0]
    weak = r.weak.score([with_system(q, r.system) for q in qs])[:, 0]
    np.testing.assert_allclose(s, strong - weak, atol=1e-4)
    again = load_reward(f"density-ratio:default?progress=false&threads=1&cache_dir={shared_cache}")
    again_run = again.score_full(qs)
    np.testing.assert_array_equal(again_run.scores, s)
    # counted over queries like every reward (not summed over the two members)
    assert again_run.stats["computed"] == 0 and again_run.stats["cache_hits"] == 4
    crit = load_reward("density-ratio:default?progress=false&threads=1&criteria=default")
    assert crit.condition(qs[0]).startswith("You are an expert")  # "What is 2+2?"
    assert crit.condition(qs[2]).startswith("You are a helpful")
    assert crit.condition(tiny_queries()[6]).startswith("You are a safe")
    routed = Query(qs[0].prompt, qs[0].response, meta={"domain": "safety"})
    assert crit.condition(routed).startswith("You are a safe")
    prints = {
        x.fingerprint()
        for x in (
            r,
            crit,
            load_reward("density-ratio:default?progress=false&threads=1&system=none"),
            load_reward("density-ratio:default?progress=false&threads=1&condition_weak=false"),
            load_reward("density-ratio:default?progress=false&threads=1&reduce=mean"),
        )
    }
    assert len(prints) == 5
    with pytest.raises(ValueError, match="every reward would be 0"):
        load_reward("density-ratio:default?weak_chat_template=true")


def test_query_cache_counts_of_several_members():
    """Two members over the same 5 queries: a query is a hit when both found it; counts the
    members alone cannot settle are left out, never summed."""
    from rewardkit.rewards.logprob import query_cache_counts

    def member(hits: int) -> dict:
        return {"unique": 5, "cache_hits": hits, "computed": 5 - hits}

    assert query_cache_counts([member(5), member(5)]) == {
        "unique": 5,
        "cache_hits": 5,
        "computed": 0,
    }
    assert query_cache_counts([member(0), member(0)])["cache_hits"] == 0
    assert query_cache_counts([member(3), member(5)]) == {}
    assert query_cache_counts([{"queries": 5}]) == {}

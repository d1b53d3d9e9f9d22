"""The engine on the real embedded models: batch invariance, truncation, cache resume."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.judges.verdict import yes_probability

pytestmark = pytest.mark.slow

TOPICS = ["tea", "rust", "volcanoes", "chess", "the moon", "bread", "taxes", "sleep"]


def make_queries(n: int, seed: int = 0) -> list[Query]:
    """Queries of varied length, some sharing a prompt, one multi-turn."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = [
            {"role": "user", "content": f"Tell me about {topic}." + " Please." * rng.randint(0, 8)}
        ]
        if i % 7 == 3:
            prompt = [
                {"role": "user", "content": "Hi!"},
                {"role": "assistant", "content": "Hello, how can I help?"},
                *prompt,
            ]
        response = f"{topic.capitalize()} is interesting. " * rng.randint(1, 8)
        out.append(Query(prompt, response))
    return out


@pytest.fixture(scope="module")
def queries() -> list[Query]:
    return make_queries(24)


@pytest.mark.parametrize("spec", ["classifier:minilm", "classifier:smollm2", "judge:default"])
def test_scores_do_not_depend_on_batch_budget_or_order(spec, queries):
    if spec != "classifier:minilm":  # 135M models: half the rows still cut into many batches
        queries = queries[:12]
    small = load_reward(f"{spec}?progress=false&token_budget=256")
    big = small.engine_variant(token_budget=2048)  # the loaded model, its own engine
    small_run = small.score_full(queries)
    a = small_run.scores
    order = list(range(len(queries)))
    random.Random(1).shuffle(order)
    big_run = big.score_full([queries[i] for i in order])
    b_shuffled = big_run.scores
    b = np.empty_like(b_shuffled)
    b[order] = b_shuffled
    assert small_run.stats["batches"] > big_run.stats["batches"] >= 1
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    # The scores are not all the same number: the model reads the text.
    assert np.ptp(a if a.ndim == 1 else a[:, 0]) > 1e-4


def test_judge_scores_are_probabilities_from_yes_and_no_logits(queries):
    judge = load_reward("judge:default?progress=false")
    p = judge.score(queries[:4])
    assert np.all((p > 0) & (p < 1))
    logit = load_reward("judge:default?progress=false&output=logit").score(queries[:4])
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-logit.astype(np.float64))), atol=1e-6)
    assert yes_probability(1.2, 0.4) == pytest.approx(
        0.689974, abs=1e-6
    )  # docs/methods/B3-yes-token-reward.md


def test_truncation_keeps_the_response_and_counts_the_row(tmp_path):
    reward = load_reward(f"classifier:minilm?progress=false&max_length=64&cache_dir={tmp_path}")
    long_prompt = [{"role": "user", "content": "word " * 500}]
    qs = [
        Query(long_prompt, "the answer is short"),
        Query([{"role": "user", "content": "hi"}], "hello"),
    ]
    rows = reward.encode(qs)
    assert len(rows[0].input_ids) == 64 and rows[0].prompt_dropped > 0
    assert rows[0].response_dropped == 0
    tok = reward.tokenizer
    resp_ids = tok("the answer is short", add_special_tokens=False)["input_ids"]
    assert rows[0].input_ids[-len(resp_ids) - 1 : -1] == resp_ids  # response, then [SEP]
    first = reward.score_full(qs)
    scores = first.scores
    assert scores.shape == (2,)
    assert first.stats["truncated_rows"] == 1 and first.truncated.tolist() == [True, False]
    cached = reward.score_full(qs)
    np.testing.assert_array_equal(cached.scores, scores)  # from the cache this time
    assert cached.stats["computed"] == 0 and cached.stats["truncated_rows"] == 1
    error = load_reward("classifier:minilm?progress=false&max_length=64&truncation=error")
    with pytest.raises(ValueError, match="over the limit"):
        error.score(qs)


def test_chat_template_split_puts_the_response_last():
    reward = load_reward("classifier:smollm2?progress=false&max_length=48")
    q = Query([{"role": "user", "content": "x " * 200}], "Final answer: 42")
    row = reward.encode([q])[0]
    text = reward.tokenizer.decode(row.input_ids)
    assert len(row.input_ids) == 48 and row.prompt_dropped > 0
    assert text.rstrip().endswith("<|im_start|>assistant\nFinal answer: 42<|im_end|>")


def test_identical_queries_are_scored_once():
    reward = load_reward("classifier:minilm?progress=false")
    q = make_queries(3)
    full = reward.score_full([q[0], q[1], q[0], q[2], q[1]])
    s = full.scores
    assert full.stats["computed"] == 3
    assert s[0] == s[2] and s[1] == s[4]


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_engine_models import make_queries
    from rewardkit import load_reward
    r = load_reward("judge:default?progress=false&max_batch_size=2&cache_dir=" + {cache!r})
    r.score(make_queries(20, seed=5))
    print("finished")
    """
)


def _cached(cache_dir) -> int:
    path = os.path.join(cache_dir, "scores.sqlite")
    if not os.path.exists(path):
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    code = WORKER.format(tests=os.path.dirname(__file__), cache=cache)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _cached(cache) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _cached(cache)
    queries = make_queries(20, seed=5)
    n_unique = len({q.key() for q in queries})
    assert 6 <= done_before < n_unique, f"worker was not killed mid-run ({done_before} cached)"

    resumed = load_reward(f"judge:default?progress=false&cache_dir={cache}")
    resumed_run = resumed.score_full(queries)
    scores, stats = resumed_run.scores, resumed_run.stats
    assert stats["cache_hits"] == done_before
    assert stats["computed"] == n_unique - done_before  # nothing cached was recomputed
    fresh = resumed.engine_variant(cache_dir=None).score(queries)  # the same model, no cache
    np.testing.assert_allclose(scores, fresh, atol=1e-4, rtol=0)

    again = load_reward(f"judge:default?progress=false&cache_dir={cache}")
    again_run = again.score_full(queries)
    np.testing.assert_array_equal(again_run.scores, scores)
    assert again_run.stats["computed"] == 0


def test_fingerprint_changes_with_what_changes_scores():
    a = load_reward("classifier:minilm?progress=false")
    assert (
        a.fingerprint()
        == load_reward("classifier:minilm?progress=false&token_budget=99").fingerprint()
    )
    assert (
        a.fingerprint() != load_reward("classifier:minilm?progress=false&head_seed=1").fingerprint()
    )
    assert (
        a.fingerprint() != load_reward("classifier:minilm?progress=false&dtype=bf16").fingerprint()
    )
    assert (
        a.fingerprint()
        != load_reward("classifier:minilm?progress=false&truncation=right").fingerprint()
    )


def test_max_length_above_the_model_limit_is_lowered_with_a_warning():
    with pytest.warns(UserWarning, match="above the model's limit of 512"):
        reward = load_reward("classifier:minilm?progress=false&max_length=4096")
    assert reward.max_length == 512
    long = Query([{"role": "user", "content": "word " * 2000}], "fine")
    assert np.isfinite(reward.score([long])).all()

"""The layout cost model: estimates worked by hand, and ``auto`` choosing by them."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.planning import (
    Estimate,
    padded_estimate,
    prefer_shared,
    shared_batch_estimate,
)
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama


def one_batch(lengths: list[int]) -> list[list[int]]:
    return [list(range(len(lengths)))]


def test_padded_estimate_by_hand():
    # Batches [10] and [6, 4] (width 6), 5 tokens of overhead each.
    assert padded_estimate([10, 6, 4], [[0], [1, 2]], None, 5) == Estimate(22, 32.0)
    # Attention width 20: 10·(1 + 10/20) + 5 = 20, 12·(1 + 6/20) + 5 = 20.6.
    est = padded_estimate([10, 6, 4], [[0], [1, 2]], 20.0, 5)
    assert est.tokens == 22 and est.cost == pytest.approx(40.6)


def test_shared_batch_estimate_by_hand():
    # One prefix of 8 (8 + 5), then suffixes of 4 and 2 padded to 4 (8 + 5).
    assert shared_batch_estimate([8], [(8, 4), (8, 2)], one_batch, None, 5) == Estimate(16, 26.0)
    # Attention width 20: prefix 8·(1 + 8/20) + 5 = 16.2; suffixes 8 + 4·(12 + 12)/20 + 5 = 17.8.
    est = shared_batch_estimate([8], [(8, 4), (8, 2)], one_batch, 20.0, 5)
    assert est.tokens == 16 and est.cost == pytest.approx(34.0)


def test_prefer_shared_scales_the_shared_estimate():
    assert prefer_shared(26.0, 32.0, 0.2)  # 31.2 < 32
    assert not prefer_shared(26.0, 32.0, 0.25)  # 32.5 > 32
    for bad in (-1.0, "abc", True):
        with pytest.raises(ValueError, match="shared_overhead must be a number >= 0"):
            EngineConfig(shared_overhead=bad)


def test_cpu_overhead_keeps_the_calibration_workloads_on_their_faster_layout():
    from rewardkit.engine.planning import cpu_shared_overhead

    # Estimated shared/padded cost against the measured winner (docs/performance.md, "Choosing
    # a layout", quiet 2-thread calibrations). With AMX (2026-12-04): HH pairs 0.821 and GSM8K
    # best-of-4 0.907 ran faster padded (1.48x and 1.61x slower shared); GRPO groups 0.237 ran
    # 2.45x faster shared. Unknown flags take the AMX value (the cautious one).
    for amx in (True, None):
        assert not prefer_shared(0.821, 1.0, cpu_shared_overhead(amx))
        assert not prefer_shared(0.907, 1.0, cpu_shared_overhead(amx))
        assert prefer_shared(0.237, 1.0, cpu_shared_overhead(amx))
    # Without AMX (AVX-512 BF16, 2026-12-07, benchmarks/shared_overhead.py): sharing ran faster
    # on all four: HH pairs 0.821 (measured 0.91), best-of-4 0.907 (0.91), MT-Bench best-of-16
    # 0.938 (0.76), GRPO 0.237 (0.26).
    for estimate in (0.821, 0.907, 0.938, 0.237):
        assert prefer_shared(estimate, 1.0, cpu_shared_overhead(False))
    assert not prefer_shared(0.97, 1.0, cpu_shared_overhead(False))  # 3% saved: not worth a pass


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    return f"judge:{tiny_llama(tmp_path_factory.mktemp('planning') / 'lm', causal=True)}"


def _run(spec: str, queries: list[Query], **engine) -> tuple[np.ndarray, dict]:
    reward = load_reward(spec, engine_defaults={"progress": False, **engine})
    full = reward.score_full(queries)
    return full.scores, dict(full.stats)


def test_auto_shares_a_long_prompt_and_keeps_padded_when_sharing_costs_more(judge):
    long_prompt = [user(" ".join(f"fact {i} is that the sky is blue" for i in range(12)))]
    group = [Query(prompt=long_prompt, response=f"answer {i} " * (1 + i % 4)) for i in range(8)]
    padded, _ = _run(judge, group, layout="padded")
    scores, stats = _run(judge, group, layout="auto")
    assert stats["layout"] == "shared"
    assert stats["model_tokens"] < stats["tokens"] / 3  # the prompt ran once, not eight times
    np.testing.assert_allclose(scores, padded, atol=1e-4, rtol=0)
    # A device where sharing cost 50× more per token: the estimate says padded.
    _, stats = _run(judge, group, layout="auto", shared_overhead=50.0)
    assert stats["layout"] == "padded"
    # Asked for by name, shared runs whatever the estimate.
    _, stats = _run(judge, group, layout="shared", shared_overhead=50.0)
    assert stats["layout"] == "shared"

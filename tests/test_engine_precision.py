"""bf16 and dynamic int8 stay within the tolerances documented in docs/performance.md (issue 6).

On the embedded trained reward model (``default``: MiniLM features + a trained head), against
float32 on the same queries: bfloat16 within 5% of the scores' standard deviation with the same
ranking; int8 (opt-in, CPU) within 50% of it with a rank correlation of at least 0.95.
"""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.registry import load_reward
from rewardkit.types import Query, user

PROMPTS = [
    "How do I boil an egg?",
    "What is the capital of Australia?",
    "Give me a tip for sleeping better.",
    "Explain recursion to a child.",
]
ANSWERS = [
    "Put it in boiling water for 9 minutes, then cool it in cold water.",
    "I don't know.",
    "Canberra is the capital.",
    "Sydney.",
    "Keep a regular bedtime and avoid screens an hour before sleep.",
    "Drink coffee at night.",
    "Recursion is when a function calls itself on a smaller problem until it is simple.",
    "It is a loop.",
]


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


@pytest.fixture(scope="module")
def scores() -> dict[str, np.ndarray]:
    queries = [Query(prompt=[user(p)], response=a) for p in PROMPTS for a in ANSWERS]
    out = {}
    for dtype in ("float32", "bfloat16", "int8"):
        reward = load_reward("default", engine_defaults={"progress": False, "dtype": dtype})
        out[dtype] = np.asarray(reward.score(queries), dtype=np.float64)
    return out


def test_bf16_within_tolerance(scores):
    base, bf16 = scores["float32"], scores["bfloat16"]
    assert np.max(np.abs(bf16 - base)) <= 0.05 * base.std()
    assert np.corrcoef(_ranks(bf16), _ranks(base))[0, 1] >= 0.99


def test_int8_within_tolerance(scores):
    base, int8 = scores["float32"], scores["int8"]
    assert not np.allclose(int8, base)  # the quantized path really ran
    assert np.max(np.abs(int8 - base)) <= 0.5 * base.std()
    assert np.corrcoef(_ranks(int8), _ranks(base))[0, 1] >= 0.95


def test_int8_quantizes_the_body_and_keeps_the_head():
    import torch

    reward = load_reward("classifier:minilm", engine_defaults={"progress": False, "dtype": "int8"})
    quantized = [m for m in reward.model.base_model.modules() if "quantized" in type(m).__module__]
    assert len(quantized) >= 36  # 6 layers × (q, k, v, out, up, down)
    head = reward.model.classifier
    assert type(head) is torch.nn.Linear  # the head stays float
    fp32 = load_reward("classifier:minilm", engine_defaults={"progress": False})
    assert reward.fingerprint() != fp32.fingerprint()  # a separate cache entry

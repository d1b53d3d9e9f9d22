"""The shared causal-LM adapter and the per-family adapters of the engine."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rewardkit.engine.adapter import EncodedRow, OwnForwardAdapter
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.runner import Engine, ModelBackedReward
from rewardkit.models.causal_lm import (
    CausalLM,
    CausalLMAdapter,
    apply_softcap,
    at_last,
    select_logits,
)
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("lm"), seed=3, causal=True)


def test_at_last_reads_the_last_real_position_of_right_padded_rows():
    hidden = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert at_last(hidden, mask)[:, 0].tolist() == [2.0, 5.0]
    assert at_last(hidden, mask, back=1)[:, 0].tolist() == [1.0, 4.0]


def test_select_logits_are_the_heads_logits_of_those_tokens_soft_capped():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 11)
    h = torch.randn(3, 8)
    ids = [7, 2, 9]
    with torch.no_grad():
        full = head(h)[:, ids]
        plain = select_logits(head, h, ids, None)
        capped = select_logits(head, h, ids, 0.5)
    assert torch.allclose(plain, full, atol=1e-6)
    assert torch.allclose(capped, apply_softcap(full, 0.5), atol=1e-6)
    assert float(capped.abs().max()) <= 0.5
    # cap · tanh(x / cap): 2 · tanh(1) for x = 2, cap = 2
    assert apply_softcap(torch.tensor([2.0]), 2.0).item() == pytest.approx(1.5231883)


def test_response_logprobs_equal_the_models_own_log_softmax(lm_dir):
    lm = CausalLM.load(str(lm_dir), EngineConfig(progress=False))
    rows = [
        EncodedRow([1, 40, 41, 42, 43, 44], response_start=3),
        EncodedRow([1, 50, 51], response_start=0),  # the first token is never scored
        EncodedRow([1, 60, 61, 62]),  # no response span: nothing scored
    ]
    adapter = CausalLMAdapter(lm, lambda batch, hidden: hidden[:, 0, :1])
    engine = Engine(adapter, EngineConfig(progress=False), lm.device)
    batch = engine.make_batch(rows)
    with torch.inference_mode():
        index, lp = lm.response_logprobs(batch, adapter.last_hidden(batch))
        for r, row in enumerate(rows):
            ids = torch.tensor([row.input_ids])
            own = torch.log_softmax(lm.model(input_ids=ids).logits[0].double(), dim=-1)
            start = -1 if row.response_start is None else max(row.response_start, 1)
            want = (
                [float(own[t - 1, row.input_ids[t]]) for t in range(start, len(row.input_ids))]
                if start > 0
                else []
            )
            got = lp[index == r].tolist()
            assert got == pytest.approx(want, abs=1e-5)
    assert index.tolist().count(0) == 3 and index.tolist().count(1) == 2
    assert 2 not in index.tolist()


def test_decoder_rewards_run_on_the_shared_adapter_and_no_legacy_path_is_left(lm_dir):
    assert importlib.util.find_spec("rewardkit.engine.legacy") is None
    for name in ("forward", "hidden", "given_hidden", "backbone", "uses_response_start"):
        assert name not in vars(ModelBackedReward), name
    opts = "progress=false&use_chat_template=false"
    for spec in (f"judge:{lm_dir}?{opts}", f"dpo:{lm_dir}?progress=false"):
        reward = load_reward(spec)
        lm_reward = reward.policy if spec.startswith("dpo") else reward
        adapter = lm_reward.engine.adapter
        assert isinstance(adapter, CausalLMAdapter) and adapter.lm is lm_reward.lm
        assert adapter.backbone() is lm_reward.lm.decoder
        scores = reward.score([Query([user("Is 2 + 2 = 4?")], "Yes.")])
        assert scores.shape == (1,) and bool(torch.isfinite(torch.from_numpy(scores)).all())
    sim = load_reward("similarity:minilm?progress=false")
    assert isinstance(sim.engine.adapter, OwnForwardAdapter)

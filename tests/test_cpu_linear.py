"""float32 linear layers on oneDNN (rewardkit.models.cpu_linear): equal to torch's own linear,
gradients untouched, switched only where asked or measured faster."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from rewardkit.models import cpu_linear
from rewardkit.models.cpu_linear import OneDNNLinear, is_switched, route_linears
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama

pytestmark = pytest.mark.skipif(
    not cpu_linear.available(), reason="this torch has no oneDNN float32 linear kernel"
)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(48, 96), torch.nn.GELU(), torch.nn.Linear(96, 24, bias=False)
    )


@pytest.mark.parametrize("shape", [(7, 48), (3, 11, 48)])
def test_switched_layers_equal_torch_linear(shape):
    net, plain = _net(), _net()
    assert route_linears(net, "onednn") == 2
    assert all(is_switched(m) for m in net if isinstance(m, torch.nn.Linear))
    x = torch.randn(*shape)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), plain(x), rtol=1e-5, atol=1e-5)
        xt = torch.randn(shape[-1], *shape[:-1]).movedim(0, -1)  # not contiguous
        torch.testing.assert_close(net(xt), plain(xt), rtol=1e-5, atol=1e-5)


def test_gradients_go_through_torch_linear():
    net, plain = _net(), _net()
    route_linears(net, "onednn")
    x = torch.randn(5, 48)
    net(x).square().sum().backward()
    plain(x).square().sum().backward()
    for a, b in zip(net.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_only_float32_cpu_linears_are_switched_and_only_when_asked():
    assert route_linears(_net(), "default") == 0
    half = _net().to(torch.bfloat16)
    assert route_linears(half, "onednn") == 0
    net = _net()
    assert route_linears(net, "onednn") == 2 and route_linears(net, "onednn") == 2  # idempotent
    again = pickle.loads(pickle.dumps(net))
    assert all(is_switched(m) for m in copy.deepcopy(net) if isinstance(m, torch.nn.Linear))
    assert all(type(m) is OneDNNLinear for m in again if isinstance(m, torch.nn.Linear))
    assert net.state_dict().keys() == _net().state_dict().keys()


def test_auto_switches_where_measured_faster(monkeypatch):
    monkeypatch.setattr(cpu_linear, "onednn_speedup", lambda k, n, t: 1.0)
    assert route_linears(_net(), "auto") == 0
    monkeypatch.setattr(cpu_linear, "onednn_speedup", lambda k, n, t: 2.0)
    assert route_linears(_net(), "auto") == 2


@pytest.mark.parametrize(
    ("value", "chosen"),
    [(None, "auto"), ("onednn", "onednn"), (" Default ", "default"), ("fast", "auto")],
)
def test_the_environment_setting(value, chosen):
    env = {} if value is None else {cpu_linear.MODE_ENV: value}
    assert cpu_linear.mode(env) == chosen


def test_the_speedup_is_timed_once_per_shape_and_process():
    threads = torch.get_num_threads()
    first = cpu_linear.onednn_speedup(32, 64, threads)
    hits = cpu_linear.onednn_speedup.cache_info().hits
    assert np.isfinite(first) and first > 0
    assert cpu_linear.onednn_speedup(32, 64, threads) == first
    assert cpu_linear.onednn_speedup.cache_info().hits == hits + 1


def test_a_loaded_model_scores_the_same_on_either_kernel(tmp_path, monkeypatch):
    model = tiny_llama(tmp_path / "cls")
    queries = [
        Query(prompt=[user("What is the capital of France?")], response="Paris, on the Seine."),
        Query(prompt=[user("Hi")], response="Hello! How can I help you today?"),
        Query(prompt=[user("2+2?")], response="4"),
    ]
    options = {"progress": False, "layout": "padded", "dtype": "float32"}
    scores = {}
    for setting in ("default", "onednn"):
        monkeypatch.setenv(cpu_linear.MODE_ENV, setting)
        reward = load_reward(f"classifier:{model}", engine_defaults=options)
        body = reward.engine.adapter.backbone()
        switched = [is_switched(m) for m in body.modules() if isinstance(m, torch.nn.Linear)]
        assert switched and all(switched) == (setting == "onednn")
        scores[setting] = reward.score(queries)
    np.testing.assert_allclose(scores["onednn"], scores["default"], atol=1e-5, rtol=0)

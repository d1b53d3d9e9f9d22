"""float32 linear layers on oneDNN (rewardkit.models.cpu_linear): equal to torch's own linear,
gradients untouched, switched only where asked or measured faster."""

from __future__ import annotations

import copy
import json
import pickle
from collections import Counter

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


def test_auto_switches_where_measured_faster(monkeypatch, tmp_path):
    for gain, switched in ((1.0, 0), (1.05, 0), (1.2, 2), (2.0, 2)):
        monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / str(gain)))  # nothing recorded
        monkeypatch.setattr(cpu_linear, "onednn_speedup", lambda k, n, t, g=gain: g)
        assert route_linears(_net(), "auto") == switched, gain


def test_the_speedup_is_weighted_by_each_shapes_products(monkeypatch, tmp_path):
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    gains = {(8, 8): 1.0, (64, 64): 4.0, (2, 2): 0.1, (1, 1): 0.1}
    monkeypatch.setattr(cpu_linear, "onednn_speedup", lambda k, n, t: gains[(k, n)])
    shapes = Counter({(8, 8): 1, (64, 64): 1, (2, 2): 3, (1, 1): 1})
    # the three shapes with the most products: 64·64, 8·8, 3·2·2 (1·1 is not timed); torch's
    # time 4096 + 64 + 12 against oneDNN's 4096/4 + 64/1 + 12/0.1
    expected = (4096 + 64 + 12) / (1024 + 64 + 120)
    assert cpu_linear.model_speedup(shapes, 1) == pytest.approx(expected, abs=1e-3)


def test_the_verdict_is_kept_for_later_processes(monkeypatch, tmp_path):
    """A near tie timed again in another process (a server beside an offline run) must not
    take the other kernel: the first measurement is recorded and read back."""
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_linear, "_DECIDED", {})
    timed = []

    def measure(gain):
        return lambda k, n, t: timed.append((k, n, t)) or gain

    monkeypatch.setattr(cpu_linear, "onednn_speedup", measure(2.0))
    assert route_linears(_net(), "auto") == 2
    assert sorted(timed) == [(48, 96, torch.get_num_threads()), (96, 24, torch.get_num_threads())]
    record = json.loads((tmp_path / cpu_linear.RECORD).read_text())
    assert list(record.values()) == [2.0] and torch.__version__ in next(iter(record))
    timed.clear()
    monkeypatch.setattr(cpu_linear, "onednn_speedup", measure(1.0))  # it would say no now
    assert route_linears(_net(), "auto") == 2 and timed == []
    # another thread count is measured on its own
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert route_linears(_net(), "auto") == 0 and len(timed) == 2
    finally:
        torch.set_num_threads(threads)
    # a record another process rewrote does not move this process's verdict
    (tmp_path / cpu_linear.RECORD).write_text(json.dumps(dict.fromkeys(record, 0.5)))
    assert route_linears(_net(), "auto") == 2 and len(timed) == 2
    # in a new process, an unreadable record, or a verdict that is no speed-up, is measured
    # again, not an error
    monkeypatch.setattr(cpu_linear, "_DECIDED", {})
    (tmp_path / cpu_linear.RECORD).write_text("{not json")
    assert route_linears(_net(), "auto") == 0
    record = json.loads((tmp_path / cpu_linear.RECORD).read_text())
    for bad in (-1.0, 0.0, "fast", None):
        monkeypatch.setattr(cpu_linear, "_DECIDED", {})
        (tmp_path / cpu_linear.RECORD).write_text(json.dumps(dict.fromkeys(record, bad)))
        timed.clear()
        assert route_linears(_net(), "auto") == 0 and len(timed) == 2, bad


def test_a_language_models_vocabulary_projection_is_switched_but_not_timed(monkeypatch, tmp_path):
    """Scoring runs a judge's vocabulary projection on a few positions, not every token: its
    (hidden × vocabulary) product would dominate the timing (SmolLM2's 576 × 49,152: 3.1 s)."""

    class LM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _net()
            self.lm_head = torch.nn.Linear(24, 5000, bias=False)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.lm_head

    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path))
    timed = []
    monkeypatch.setattr(cpu_linear, "onednn_speedup", lambda k, n, t: timed.append((k, n)) or 2.0)
    lm = LM()
    assert route_linears(lm, "auto") == 3 and is_switched(lm.lm_head)
    assert sorted(timed) == [(48, 96), (96, 24)]


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

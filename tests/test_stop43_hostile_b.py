"""Hostile use of reward back-propagation (docs/methods/F4-alignprop.md, F6-r0.md): optimizers
that do not hold ``params`` or hold more, repeated parameters, numpy integers as step indices.
Gradients are checked against hand computations on a two-step scalar chain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.errors import SpecError
from rewardkit.multimodal import reward_backprop as RB

torch = pytest.importorskip("torch")


def _square(x):
    return (x**2).sum()


def _chain(a, b):
    # x1 = a·x0, x2 = b·x1; loss x2² at x0 = 1: d/da = 2·a·b²·… = 36, d/db = 24 at a=2, b=3
    return [lambda x: a * x, lambda x: b * x]


def _ab():
    return torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)


def test_an_optimizer_without_the_params_is_refused_not_a_silent_no_op():
    a, b = _ab()
    other = torch.tensor(1.0, requires_grad=True)
    opt = torch.optim.SGD([other], lr=0.1)
    with pytest.raises(SpecError, match="not in the optimizer's param_groups"):
        RB.reward_backprop_step(
            _chain(a, b), [a, b], [(1.0, _square)], opt, x0=torch.tensor(1.0), cutoff=0
        )
    assert (a.item(), b.item(), other.item()) == (2.0, 3.0, 1.0)


def test_optimizer_params_outside_params_are_never_stepped_unclipped():
    a, b = _ab()
    opt = torch.optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 1.0}])
    with pytest.raises(SpecError, match="outside params received a gradient"):
        RB.reward_backprop_step(
            _chain(a, b), [a], [(1.0, _square)], opt, x0=torch.tensor(1.0), cutoff=0,
            loss_coeff=1.0, grad_clip=1.0,
        )  # fmt: skip
    assert (a.item(), b.item()) == (2.0, 3.0)  # before the fix: b stepped by its raw grad 24
    # both groups given as params: clipped together to norm 1 (hand: (36, 24)/43.2666)
    res = RB.reward_backprop_step(
        _chain(a, b), [a, b], [(1.0, _square)], opt, x0=torch.tensor(1.0), cutoff=0,
        loss_coeff=1.0, grad_clip=1.0,
    )  # fmt: skip
    n = math.hypot(36.0, 24.0)
    assert res.grad_norm == pytest.approx(n, rel=1e-6)
    assert a.item() == pytest.approx(2.0 - 36.0 / n, rel=1e-6)
    assert b.item() == pytest.approx(3.0 - 24.0 / n, rel=1e-6)


def test_a_repeated_parameter_counts_once_in_the_gradient_norm():
    a, b = _ab()
    opt = torch.optim.SGD([a, b], lr=0.0)
    res = RB.reward_backprop_step(
        _chain(a, b), [a, a, b], [(1.0, _square)], opt, x0=torch.tensor(1.0), cutoff=0,
        loss_coeff=1.0, grad_clip=None,
    )  # fmt: skip
    assert res.grad_norm == pytest.approx(math.hypot(36.0, 24.0), rel=1e-6)  # before: 56.28


def test_numpy_integers_are_integers():
    assert RB.truncated_backprop_k("fixed", total=np.int64(5), value=np.int64(2)) == 2
    a, b = _ab()
    opt = torch.optim.SGD([a, b], lr=0.0)
    res = RB.reward_backprop_step(
        _chain(a, b), [a, b], [(1.0, _square)], opt, x0=torch.tensor(1.0),
        cutoff=np.int64(1), loss_coeff=1.0, grad_clip=None,
    )  # fmt: skip
    assert (res.cutoff, res.grad_steps, type(res.cutoff)) == (1, 1, int)
    assert a.grad is None and b.grad.item() == pytest.approx(24.0)


# --- curate anyprefer: a --trace's errors name --trace, not bon's --out ------------------------


def _anyprefer_run(trace, key):
    from rewardkit.inference.anyprefer import anyprefer_round, margin, run_anyprefer
    from rewardkit.inference.run import PromptItem
    from rewardkit.registry import load_reward

    judge = load_reward("rule:arithmetic")
    items = [PromptItem("q1", [{"role": "user", "content": "What is 2 + 2?"}])]

    def solve(it):
        return anyprefer_round(it.prompt, lambda p, k, r: ["2+2=4", "2+2=5"], judge, margin, k=2)

    return run_anyprefer(items, solve, trace, key, progress=False)


def test_a_trace_of_other_settings_names_trace_and_anyprefers_settings(tmp_path):
    from rewardkit.errors import DataError

    trace = tmp_path / "trace.jsonl"
    assert _anyprefer_run(trace, "k1")["generated"] == 1
    assert _anyprefer_run(trace, "k1")["skipped_done"] == 1
    with pytest.raises(DataError) as err:
        _anyprefer_run(trace, "k2")
    msg = str(err.value)
    assert "pass a new --trace" in msg and "--out" not in msg and "max-rounds" in msg
    assert err.value.line == 1 and err.value.field == "run"
    from rewardkit.inference.anyprefer import load_trace

    trace.write_text("[1]\n", encoding="utf-8")  # a damaged trace, checked before a model loads
    with pytest.raises(DataError) as err:
        load_trace(trace, None)
    assert "anyprefer --trace row" in str(err.value) and "--out" not in str(err.value)
    assert "bon" not in str(err.value)


# --- confidence: a default name tells apart settings that change the value -----------------------


def test_confidence_default_names_differ_when_text_or_offset_differ():
    from rewardkit.registry import load_reward

    ref = np.random.default_rng(0).normal(size=(4, 384))
    engine = {"progress": False, "threads": 1}
    base = {"confidence": "rule:length", "reference": ref, "k": 2}
    names = [
        load_reward({**base, **extra}, engine_defaults=engine).name
        for extra in ({}, {"text": "response"}, {"offset": 0}, {"offset": "auto"})
    ]
    assert names[0] == names[3] == "confidence[knn, scale=1, multiply, k=2](rule:length)"
    assert names[1].endswith(", text=response](rule:length)")
    assert names[2].endswith(", offset=0](rule:length)")

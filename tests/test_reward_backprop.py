"""Reward back-propagation through a sampling chain: AlignProp's truncated back-propagation
(docs/methods/F4-alignprop.md) and R0's regularised reward maximisation (docs/methods/F6-r0.md),
on scalar chains computed by hand and a tiny conv "denoiser" trained against reno.py's losses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.errors import SpecError, TrainingDiverged
from rewardkit.multimodal import reno
from rewardkit.multimodal import reward_backprop as RB

torch = pytest.importorskip("torch")


# --- the cut-off sampler ---------------------------------------------------------------------


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _gauss_pmf(mean: float, std: float, total: int, redraw: bool) -> np.ndarray:
    """P(c = k) of floor(N(mean, std)): clipped to [0, total−1], or redrawn into [1, total−1]."""
    cell = np.array([_phi((k + 1 - mean) / std) - _phi((k - mean) / std) for k in range(total)])
    if redraw:
        cell[0] = 0.0
        return cell / cell.sum()
    cell[0] = _phi((1 - mean) / std)
    cell[-1] = 1.0 - _phi((total - 1 - mean) / std)
    return cell


@pytest.mark.parametrize("redraw", [False, True])
def test_gaussian_cutoff_distribution(redraw):
    rng = np.random.default_rng(0)
    n = 20_000
    draws = np.array([RB.truncated_backprop_k(rng=rng, redraw=redraw) for _ in range(n)])
    pmf = _gauss_pmf(42, 5, 50, redraw)
    ks = np.arange(50)
    mean = float((pmf * ks).sum())
    std = math.sqrt(float((pmf * (ks - mean) ** 2).sum()))
    assert draws.min() >= (1 if redraw else 0) and draws.max() == 49
    assert abs(draws.mean() - mean) < 4 * std / math.sqrt(n)  # ≈ 0.14 steps
    assert abs(draws.std() - std) < 0.1
    # floor, not round, sets the mean index ≈ 0.5 below 42; clipping pulls it down a little more,
    # redrawing (dropping the draws ≥ 50) ≈ 1.1
    assert mean == pytest.approx(40.9113 if redraw else 41.3545, abs=1e-4)
    # the mass at the last step: clipped draws pile up there (≈ 8.1 %), redrawn ones do not (≈ 2.8 %)
    assert abs((draws == 49).mean() - pmf[49]) < 0.006
    assert pmf[49] == pytest.approx(0.0808 if not redraw else 0.0275, abs=1e-3)


def test_cutoff_clipping_fixed_uniform_and_seeding():
    assert {RB.truncated_backprop_k(mean=-30, std=2, rng=s) for s in range(20)} == {0}
    assert {RB.truncated_backprop_k(mean=300, std=2, rng=s) for s in range(20)} == {49}
    assert RB.truncated_backprop_k("gaussian", mean=3.7, std=0, total=4) == 3  # floor(3.7)
    assert RB.truncated_backprop_k("fixed") == 49  # K = 50 − 49 = 1: the last step only
    assert RB.truncated_backprop_k("fixed", value=0) == 0  # full back-propagation
    rng = np.random.default_rng(1)
    u = np.array([RB.truncated_backprop_k("uniform", rng=rng) for _ in range(5000)])
    assert set(u.tolist()) == set(range(50)) and abs(u.mean() - 24.5) < 0.6
    w = [RB.truncated_backprop_k("uniform", low=30, high=50, rng=rng) for _ in range(500)]
    assert min(w) == 30 and max(w) == 49
    a = [RB.truncated_backprop_k(rng=np.random.default_rng(7)) for _ in range(3)]
    assert len(set(a)) == 1  # an int seed or a seeded Generator: reproducible
    assert RB.truncated_backprop_k(rng=7) == a[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "normal"}, "strategy must be one of"),
        ({"total": 0}, "total must be >= 1"),
        ({"total": 1, "redraw": True}, "total must be >= 2"),
        ({"total": 50.0}, "total must be an integer"),
        ({"std": -1}, "std must be >= 0"),
        ({"mean": float("nan")}, "mean must be a finite number"),
        ({"strategy": "fixed", "value": 50}, r"fixed cut-off 50 is outside \[0, 49\]"),
        ({"strategy": "fixed", "value": 0, "redraw": True}, r"outside \[1, 49\]"),
        ({"strategy": "uniform", "high": 51}, "uniform range"),
        ({"strategy": "uniform", "low": 5, "high": 5}, "uniform range"),
        ({"rng": "seed"}, "rng must be"),
        ({"mean": 300, "std": 0, "redraw": True}, "no gaussian draw fell"),
    ],
)
def test_cutoff_sampler_refuses_bad_input(kwargs, match):
    with pytest.raises(SpecError, match=match):
        RB.truncated_backprop_k(**kwargs)


# --- worked examples (the cards) ---------------------------------------------------------------


def _scalar_chain(a_values):
    a = [torch.tensor(v, requires_grad=True) for v in a_values]
    return a, [lambda x, p=p: p * x for p in a]


def _quadratic(x):
    return (x - 2.0) ** 2  # reward −(x_3 − 2)² as a loss


def test_f4_worked_example_truncated_gradients():
    # F4 card: x0 = 0.8, x_{t+1} = a_t·x_t, a = (0.9, 1.1, 1.2), L = (x_3 − 2)², loss_coeff 0.01.
    a, chain = _scalar_chain([0.9, 1.1, 1.2])
    opt = torch.optim.SGD(a, lr=0.0)
    res = RB.reward_backprop_step(
        chain, a, [(1.0, _quadratic)], opt, x0=torch.tensor(0.8), cutoff=1, grad_clip=None
    )
    assert a[0].grad is None  # step 0 ran under no_grad
    assert round(float(a[1].grad), 6) == -0.018137  # 0.01·2(x3−2)·a2·x1
    assert round(float(a[2].grad), 6) == -0.016626  # 0.01·2(x3−2)·x2
    assert res.cutoff == 1 and res.grad_steps == 2
    assert res.grad_norm == pytest.approx(0.024604, abs=1e-6)
    assert res.reward_loss == pytest.approx(1.1016602, abs=1e-6)  # (0.9504 − 2)²
    assert res.loss == pytest.approx(0.011016602, abs=1e-8) and res.regularizer is None
    assert float(res.output) == pytest.approx(0.9504)
    # cut-off 0 is full back-propagation: the same a1, a2 gradients plus a0's, as autograd gives
    b, chain_b = _scalar_chain([0.9, 1.1, 1.2])
    RB.reward_backprop_step(
        chain_b, b, [(1.0, _quadratic)], torch.optim.SGD(b, lr=0.0), x0=torch.tensor(0.8), cutoff=0
    )
    c = [torch.tensor(v, requires_grad=True) for v in (0.9, 1.1, 1.2)]
    (0.01 * _quadratic(c[2] * c[1] * c[0] * 0.8)).backward()
    for p, q in zip(b, c, strict=True):
        assert float(p.grad) == pytest.approx(float(q.grad), rel=1e-6)
    assert round(float(b[0].grad), 6) == -0.022168
    assert float(b[1].grad) == pytest.approx(float(a[1].grad)) and float(
        b[2].grad
    ) == pytest.approx(float(a[2].grad))


def test_f4_shared_parameter_keeps_only_the_last_k_factors():
    # One a shared by every step (AlignProp's LoRA weights): x3 = a³x0; truncating at 1 keeps
    # the derivative through the last two steps only: 2/3 of the full one.
    grads = {}
    for cutoff in (0, 1, 2):
        a = torch.tensor(1.1, requires_grad=True)
        chain = [lambda x, a=a: a * x] * 3
        RB.reward_backprop_step(
            chain, [a], [(1.0, _quadratic)], torch.optim.SGD([a], lr=0.0), x0=torch.tensor(0.8),
            cutoff=cutoff, grad_clip=None,
        )  # fmt: skip
        grads[cutoff] = float(a.grad)
    assert round(grads[0], 6) == -0.054316  # 0.01·2(x3−2)·3a²x0
    assert round(grads[1], 6) == -0.036211  # 0.01·2(x3−2)·2a·x1
    assert grads[2] == pytest.approx(grads[0] / 3)


def test_f6_worked_example_one_step_two_rewards_l2():
    # F6 card: g_θ(z) = θ·z, θ = 0.5, z = 1.5; R1 = −(x − 1)² (w 1), R2 = x (w 0.5, a score);
    # Reg = 0.1·θ²; loss_coeff 1; grad −1.4 clipped to norm 1; SGD lr 0.1 → θ = 0.6.
    theta = torch.tensor(0.5, requires_grad=True)
    res = RB.reward_backprop_step(
        [lambda z: theta * z],
        [theta],
        [(1.0, lambda x: (x - 1.0) ** 2), (0.5, lambda x: x, "score")],
        torch.optim.SGD([theta], lr=0.1),
        x0=torch.tensor(1.5),
        cutoff=0,
        loss_coeff=1.0,
        regularizer=RB.l2_regularizer(0.1),
    )
    assert res.term_losses == pytest.approx([0.0625, -0.75])
    assert res.reward_loss == pytest.approx(-0.3125) and res.reward == pytest.approx(0.3125)
    assert res.regularizer == pytest.approx(0.025) and res.loss == pytest.approx(-0.2875)
    assert res.grad_norm == pytest.approx(1.4, abs=1e-6)
    assert float(theta.detach()) == pytest.approx(0.6, abs=1e-6)  # clipped to 1.0, not 0.5 + 0.14
    with torch.no_grad():  # the weighted reward rose: 0.3125 → −(0.9 − 1)² + 0.5·0.9 = 0.44
        x = theta * 1.5
        assert float(-((x - 1) ** 2) + 0.5 * x) == pytest.approx(0.44, abs=1e-6)
    anchored = RB.l2_regularizer(0.1, anchor=[torch.tensor(0.5)])
    assert float(anchored([theta]).detach()) == pytest.approx(0.1 * 0.1**2, abs=1e-7)


# --- truncation, checkpointing and a tiny real run ------------------------------------------------


def _conv_chain(n_steps=4, seed=0, shared=True):
    """A conv "denoiser" step ``x + 0.3·tanh(base(x)) + up(down(x))``: a frozen base conv and a
    LoRA-like trainable rank-2 update (3×3 down, 1×1 up) shared by the steps, as AlignProp's LoRA,
    or one per step."""
    torch.manual_seed(seed)
    base = torch.nn.Conv2d(3, 3, 3, padding=1).requires_grad_(False)
    n_lora = 1 if shared else n_steps
    downs = [torch.nn.Conv2d(3, 2, 3, padding=1, bias=False) for _ in range(n_lora)]
    ups = [torch.nn.Conv2d(2, 3, 1) for _ in range(n_lora)]
    for u in ups:
        torch.nn.init.normal_(u.weight, std=0.05)
        torch.nn.init.zeros_(u.bias)

    def step(i):
        d, u = downs[i % n_lora], ups[i % n_lora]
        return lambda x: x + 0.3 * torch.tanh(base(x)) + u(d(x))

    params = [p for m in downs + ups for p in m.parameters()]
    return [step(i) for i in range(n_steps)], params, (downs, ups)


def _clip_reward(seed=5):
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(3 * 8 * 8, 16, generator=g)
    target = torch.randn(1, 16, generator=g)
    return lambda img: reno.clip_loss(img.flatten(1) @ proj, target)


def test_truncation_stops_gradient_to_early_steps():
    chain, params, (downs, ups) = _conv_chain(shared=False)
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-2)
    x0 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    res = RB.reward_backprop_step(chain, params, [(1.0, _clip_reward())], opt, x0=x0, cutoff=2)
    assert res.grad_steps == 2
    for i in range(4):
        for p in (*downs[i].parameters(), *ups[i].parameters()):
            if i < 2:
                assert p.grad is None
            else:
                assert p.grad is not None and float(p.grad.abs().sum()) > 0
    moved = [not torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True)]
    # downs (weight) then ups (weight, bias), steps 0..3
    assert moved == [False, False, True, True] + [False] * 4 + [True] * 4


def test_checkpointing_gives_the_same_gradients():
    x0 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    runs = []
    for ckpt in (False, True):
        chain, params, _ = _conv_chain(seed=0)  # the same starting weights each time
        opt = torch.optim.SGD(params, lr=0.1)
        res = RB.reward_backprop_step(
            chain, params, [(1.0, _clip_reward())], opt, x0=x0, cutoff=1, checkpoint=ckpt
        )
        runs.append((res, [p.grad for p in params], [p.detach() for p in params]))
    (r0, g0, w0), (r1, g1, w1) = runs
    assert r0.grad_norm > 0 and r0.grad_norm == pytest.approx(r1.grad_norm, rel=1e-6)
    assert r0.loss == pytest.approx(r1.loss, rel=1e-6)
    for a, b in zip(g0 + w0, g1 + w1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_tiny_alignprop_run_raises_the_reward():
    chain, params, _ = _conv_chain(seed=2)
    reward = _clip_reward()
    opt = torch.optim.AdamW(params, lr=5e-2, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(3)
    eval_x = torch.randn(8, 3, 8, 8, generator=gen)

    def eval_loss():
        with torch.no_grad():
            x = eval_x
            for f in chain:
                x = f(x)
            return float(reward(x))

    start = eval_loss()
    rng = np.random.default_rng(0)
    cutoffs = []
    for _ in range(25):
        cut = RB.truncated_backprop_k("gaussian", mean=2.5, std=1.0, total=4, rng=rng)
        cutoffs.append(cut)
        res = RB.reward_backprop_step(
            chain,
            params,
            [(1.0, reward)],
            opt,
            x0=torch.randn(4, 3, 8, 8, generator=gen),
            cutoff=cut,
        )
        assert res.grad_steps == 4 - cut and math.isfinite(res.loss)
    end = eval_loss()
    assert len(set(cutoffs)) >= 3  # the cut-off really varied
    assert end < start - 20.0, (start, end)  # the CLIP loss (100 − 100·cos) fell: reward rose


# --- hostile inputs -----------------------------------------------------------------------------


def _scalar_setup():
    a, chain = _scalar_chain([0.9, 1.1, 1.2])
    return chain, a, torch.optim.SGD(a, lr=0.1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"chain": []}, "chain must be a non-empty list"),
        ({"chain": [lambda x: x, 3]}, r"chain\[1\] is not callable"),
        ({"chain": [lambda x: x, lambda x: (x,), lambda x: x]}, r"chain\[1\] returned tuple"),
        ({"cutoff": 3}, r"cutoff 3 is outside the chain: steps 0..2"),
        ({"cutoff": -1}, "outside the chain"),
        ({"cutoff": True}, "cutoff must be an integer"),
        ({"rewards": []}, "rewards must be a non-empty list"),
        ({"rewards": [(1.0, _quadratic, "gain")]}, "kind must be 'loss' or 'score'"),
        ({"rewards": [(1.0, "hps")]}, "reward term 0: 'hps' is not callable"),
        ({"rewards": [(float("nan"), _quadratic)]}, "reward term 0: weight must be a finite"),
        ({"params": []}, "params is empty"),
        ({"params": [torch.tensor(1.0)]}, r"params\[0\] is not a tensor that requires grad"),
        ({"loss_coeff": float("inf")}, "loss_coeff must be a finite number"),
        ({"grad_clip": 0}, "grad_clip must be > 0"),
        ({"regularizer": 0.1}, "regularizer 0.1 is not callable"),
        ({"x0": 0.8}, "x0 must be a torch tensor"),
        ({"rewards": [(1.0, lambda x: x.expand(3))]}, r"returned shape \(3,\); reduce it"),
        ({"rewards": [(1.0, lambda x: 1.0)]}, "returned float, not a torch tensor"),
        ({"rewards": [(1.0, lambda x: torch.tensor(1.0))]}, "does not depend on params"),
    ],
)
def test_step_refuses_bad_input(change, match):
    chain, a, opt = _scalar_setup()
    kw = dict(chain=chain, params=a, rewards=[(1.0, _quadratic)], optimizer=opt)
    kw.update({k: v for k, v in change.items() if k in kw})
    rest = {"x0": torch.tensor(0.8), "cutoff": 1}
    rest.update({k: v for k, v in change.items() if k not in kw})
    with pytest.raises(SpecError, match=match):
        RB.reward_backprop_step(kw["chain"], kw["params"], kw["rewards"], kw["optimizer"], **rest)
    assert [float(p.detach()) for p in a] == pytest.approx([0.9, 1.1, 1.2])  # nothing moved


def nan_loss(x):
    return x * float("nan")


@pytest.mark.parametrize(
    ("rewards", "regularizer", "match"),
    [
        ([(1.0, _quadratic), (0.5, nan_loss)], None, r"reward term 1 \(nan_loss\) is nan"),
        ([(1.0, lambda x: x * math.inf, "score")], None, r"reward term 0 \(<lambda>\) is inf"),
        ([(1.0, _quadratic)], lambda ps: ps[0] * math.nan, r"regularizer \(<lambda>\) is nan"),
        # finite loss, non-finite gradient: d/dx sqrt(0·x) at 0
        ([(1.0, lambda x: torch.sqrt(x * 0.0))], None, "gradient norm is nan"),
    ],
)
def test_non_finite_loss_or_gradient_is_a_named_error_and_no_update(rewards, regularizer, match):
    chain, a, opt = _scalar_setup()
    with pytest.raises(TrainingDiverged, match=match):
        RB.reward_backprop_step(
            chain, a, rewards, opt, x0=torch.tensor(0.8), cutoff=0, regularizer=regularizer
        )
    assert [float(p.detach()) for p in a] == pytest.approx([0.9, 1.1, 1.2])
    assert all(p.grad is None for p in a)

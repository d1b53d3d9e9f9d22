"""ReNO's loop (docs/methods/F2-reno.md) on hostile settings: all-zero weights, a bad setting,
a loss that turns non-finite midway (the loop stops before that update, keeping the best
iterate) or at once (an error), and a weight-0 term whose loss is NaN (recorded, never used)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rewardkit.errors import SpecError, TrainingDiverged  # noqa: E402
from rewardkit.multimodal.reno import reno_optimize  # noqa: E402


def generator(eps):
    return torch.tanh(eps)


def quad(out):
    return ((out - 0.5) ** 2).mean()


def test_all_zero_weights_and_bad_settings_are_refused():
    with pytest.raises(SpecError, match="every reward weight is 0"):
        reno_optimize(generator, [(0.0, quad)], (4,))
    for kw, name in (({"iters": 0}, "iters"), ({"iters": 2.5}, "iters"), ({"lr": -1.0}, "lr")):
        with pytest.raises(SpecError, match=name):
            reno_optimize(generator, [(1.0, quad)], (4,), **kw)
    for kw in ({"grad_clip": math.nan}, {"momentum": -0.1}, {"reg_weight": math.inf}):
        with pytest.raises(SpecError, match="finite number"):
            reno_optimize(generator, [(1.0, quad)], (4,), **kw)
    with pytest.raises(SpecError, match="noise_shape"):
        reno_optimize(generator, [(1.0, quad)])


def test_a_loss_that_turns_nan_stops_the_loop_and_keeps_the_best():
    calls = {"n": 0}

    def flaky(out):
        calls["n"] += 1
        value = quad(out)
        return value * math.nan if calls["n"] == 4 else value

    res = reno_optimize(generator, [(1.0, flaky)], (8,), iters=10, lr=0.5, seed=1)
    assert len(res.losses) == 4 and res.generator_calls == 4 and math.isnan(res.losses[3])
    assert res.stopped is not None and "iteration 3" in res.stopped
    assert res.best_iteration < 3 and math.isfinite(res.best_loss)
    assert bool(torch.isfinite(res.noise).all())
    full = reno_optimize(generator, [(1.0, quad)], (8,), iters=10, lr=0.5, seed=1)
    assert full.stopped is None and len(full.losses) == 10
    assert res.losses[:3] == pytest.approx(full.losses[:3])  # the same path up to the stop


def test_a_first_iterate_that_is_not_finite_is_an_error():
    with pytest.raises(TrainingDiverged, match="iteration 0"):
        reno_optimize(generator, [(1.0, lambda out: quad(out) * math.inf)], (4,), iters=3)


def test_a_weight_zero_term_is_recorded_but_never_enters_the_loss():
    nan_term = (0.0, lambda out: quad(out) * math.nan)
    res = reno_optimize(generator, [(1.0, quad), nan_term], (8,), iters=5, lr=0.5, seed=2)
    ref = reno_optimize(generator, [(1.0, quad)], (8,), iters=5, lr=0.5, seed=2)
    assert res.stopped is None and res.losses == pytest.approx(ref.losses)
    assert all(math.isnan(t[1]) for t in res.term_losses)

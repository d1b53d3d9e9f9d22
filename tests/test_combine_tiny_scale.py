"""Running whitening and the monitor's pooled std at every float64 scale, 1e-300 to 1e300.

Both keep streaming moments at a power-of-two scale (``combine.running.Moments``, the scale of
``combine.normalize.huge_exponents``). Before, squares of rewards ~1e-170 underflowed to 0: the
whitener's std was 0 (every reward ±inf with ``eps=0``) and the monitor's pooled std fell back to
1.0 (every drift 0); the whitener refused rewards from 1e155 up. References are exact
(``fractions.Fraction``)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewardkit.combine.running import Moments, RunningWhitener
from rewardkit.monitor import RewardMonitor

SCALES = [1e-300, 1e-200, 1e-170, 1e-100, 1.0, 1e100, 1e160, 1e200, 1e300]
BASE = np.array([1.0, 2.0, 4.0, 7.0, -3.0])


def _sqrt(q: Fraction) -> float:
    """√q as a float for any positive Fraction (also past float64's range before the root)."""
    k = (q.numerator.bit_length() - q.denominator.bit_length()) // 2
    return math.ldexp(math.sqrt(q / Fraction(4) ** k), k)


def _exact(values, ddof: int) -> tuple[Fraction, Fraction]:
    """(mean, variance) of ``values``, exactly."""
    f = [Fraction(float(v)) for v in values]
    mean = sum(f) / len(f)
    return mean, sum((v - mean) ** 2 for v in f) / (len(f) - ddof)


def _whitened(x, seen, ddof: int = 1) -> np.ndarray:
    """``(x − mean)/std`` over ``seen``, exactly, then rounded."""
    mean, var = _exact(seen, ddof)
    d = [Fraction(float(v)) - mean for v in x]
    return np.array([math.copysign(_sqrt(v * v / var), v) if v else 0.0 for v in d])


@pytest.mark.parametrize("scale", SCALES)
def test_whitening_matches_the_exact_reference_at_every_scale(scale):
    a, b = BASE * scale, np.array([5.0, -1.5, 0.25]) * scale
    w = RunningWhitener(eps=0.0)
    np.testing.assert_allclose(w(a), _whitened(a, a), rtol=1e-12)
    np.testing.assert_allclose(w(b), _whitened(b, [*a, *b]), rtol=1e-12, atol=1e-15)
    m = w.moments["default"]
    mean, var = _exact([*a, *b], 1)
    assert m.mean == pytest.approx(float(mean), rel=1e-12)
    assert m.std() == pytest.approx(_sqrt(var), rel=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e300])
def test_epsilon_still_counts_in_the_rewards_units(scale):
    """ε is in the rewards' units: at 1e-170 the default ε (1e-8) dominates the std, as in
    ``(r − mean)/(std + ε)`` computed exactly; with ε of the rewards' order both count."""
    x = BASE * scale
    mean, var = _exact(x, 1)
    for eps in (1e-8, scale):
        want = [float((Fraction(v) - mean) / (Fraction(_sqrt(var)) + Fraction(eps))) for v in x]
        np.testing.assert_allclose(RunningWhitener(eps=eps)(x), want, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1.0, 1e300])
def test_state_dict_round_trips_through_json_at_every_scale(scale):
    batches = [BASE * scale, np.array([0.5, 9.0]) * scale, np.array([-2.0, 3.0, 1.0]) * scale]
    for kw in ({}, {"decay": 0.8, "ddof": 0}, {"update_first": False, "eps": 0.0}):
        full = RunningWhitener(**kw)
        expected = [full(r) for r in batches]
        part = RunningWhitener(**kw)
        part(batches[0])
        state = json.loads(json.dumps(part.state_dict()))
        assert len(state["moments"]["default"]) == (3 if scale == 1.0 else 4)  # + its exponent
        resumed = RunningWhitener()
        resumed.load_state_dict(state)
        for r, e in zip(batches[1:], expected[1:], strict=True):
            np.testing.assert_array_equal(resumed(r), e)
        assert resumed.state_dict() == full.state_dict()


@pytest.mark.parametrize(
    ("moments", "field"),
    [([3.0, 0.5, 1.0, 2.5], "exp must be a whole number"), ([3.0, 0.5, 1.0, 5000], r"\.exp"),
     ([3.0, 0.5, 1.0, True], r"\.exp"), ([3.0, 1.0, 1.0, 1050], "past float64's range"), ([3.0, 0.5, 1.0, 2, 9], r"\[count, mean, m2, exp\]"),
     ("abc", r"\[count, mean, m2\]")],
)  # fmt: skip
def test_a_restored_scale_is_held_to_its_range(moments, field):
    w = RunningWhitener()
    w([1.0, 2.0])
    before = w.state_dict()
    with pytest.raises(ValueError, match=field):
        w.load_state_dict({**before, "moments": {"default": moments}})
    assert w.state_dict() == before


def test_the_larger_scale_wins_and_a_zero_batch_does_not_fix_the_scale():
    w = RunningWhitener(eps=0.0)
    w.update([0.0, 0.0])  # no magnitude: the next batch's scale is taken as it is
    x = np.array([1e-300, 3e-300])
    np.testing.assert_allclose(w(x), _whitened(x, [0.0, 0.0, *x]), rtol=1e-12, atol=1e-15)
    m = Moments().updated(np.array([1e-300, 2e-300])).updated(np.array([1e300, 3e300]))
    mean, var = _exact([1e-300, 2e-300, 1e300, 3e300], 1)
    assert m.mean == pytest.approx(float(mean), rel=1e-12)
    assert m.std() == pytest.approx(_sqrt(var), rel=1e-12)


_k = st.integers(min_value=-1000, max_value=1000)
#: 2 to 6 rewards, multiples of 1/8 up to 8 (each batch defines a std: no fallback std of 1)
_batch = st.lists(st.integers(-64, 64), min_size=2, max_size=6).map(lambda v: np.array(v) / 8.0)


@settings(max_examples=200, deadline=None)
@given(
    k=_k,
    batches=st.lists(_batch, min_size=1, max_size=4),
    kw=st.sampled_from([{}, {"decay": 0.9}, {"update_first": False}, {"ddof": 0}]),
)
def test_whitening_is_scale_invariant(k, batches, kw):
    """whiten(2^k·x) == whiten(x) with ε = 0, batch after batch (2^k·x is exact for k in
    [−1000, 1000]); the moments scale by 2^k. A source with no spread yet (a constant first
    batch) is only centred, which no scale can be read from: such runs are left out."""
    assume(np.ptp(batches[0]) > 0)
    plain, scaled = RunningWhitener(eps=0.0, **kw), RunningWhitener(eps=0.0, **kw)
    with np.errstate(divide="ignore", invalid="ignore"):
        for x in batches:
            want, got = plain(x), scaled(np.ldexp(x, k))
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(plain.moments.values(), scaled.moments.values(), strict=True):
        assert b.count == a.count and b.std() == pytest.approx(math.ldexp(a.std(), k), rel=1e-12)


def _monitor_run(scale: float, steps: int = 5) -> RewardMonitor:
    mon = RewardMonitor(gold="gold", warn=False)
    for t in range(steps):
        rm = (BASE + t) * scale  # the proxy rises, the gold falls
        mon.step(None, ["a b"] * len(BASE), {"rm": rm, "gold": (BASE - t) * scale})
    return mon


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e-100, 1.0, 1e100])
def test_monitor_pooled_std_and_drift_at_every_scale(scale):
    mon = _monitor_run(scale)
    seen = [v for t in range(3) for v in (BASE + t) * scale]  # the three baseline steps
    assert mon._baseline_std["reward"] == pytest.approx(_sqrt(_exact(seen, 0)[1]), rel=1e-12)
    ref = _monitor_run(1.0)
    drifts = [h["drift"] for h in mon.history]
    np.testing.assert_allclose(drifts, [h["drift"] for h in ref.history], rtol=1e-12)
    assert drifts[-1] > 1.0 and "proxy_up_gold_down" in mon.history[-1]["warnings"]


@settings(max_examples=60, deadline=None)
@given(k=st.integers(min_value=-990, max_value=480), batch=_batch)
def test_monitor_drift_is_scale_invariant(k, batch):
    def drifts(c: float) -> list[float]:
        mon = RewardMonitor(warn=False)
        out = []
        for t in range(4):
            rec = mon.step(None, ["x"] * len(batch), reward=(batch + t) * c, gold=batch * c)
            out.append(rec["drift"])
        return out

    np.testing.assert_allclose(drifts(math.ldexp(1.0, k)), drifts(1.0), rtol=1e-12, atol=1e-12)


def test_monitor_resumes_mid_baseline_from_a_state_of_the_earlier_format():
    """A state saved before the pooled moments were kept (shifted sums ``reward/shift``, ``/n``,
    ``/s``, ``/sq`` in ``baseline.sums``) resumes to the same baseline std."""
    steps = [BASE, BASE * 2.0, BASE + 1.0]
    fresh = RewardMonitor(warn=False)
    for r in steps:
        fresh.step(None, ["x"] * len(r), reward=r)
    part = RewardMonitor(warn=False)
    part.step(None, ["x"] * len(BASE), reward=steps[0])
    state = json.loads(json.dumps(part.state_dict()))
    del state["baseline"]["pooled"]
    d = steps[0] - steps[0][0]
    state["baseline"]["sums"].update(
        {
            "reward/shift": steps[0][0],
            "reward/n": 5.0,
            "reward/s": d.sum(),
            "reward/sq": (d * d).sum(),
        }
    )
    old = RewardMonitor(warn=False)
    old.load_state_dict(state)
    for r in steps[1:]:
        old.step(None, ["x"] * len(r), reward=r)
    assert old._baseline_std["reward"] == pytest.approx(fresh._baseline_std["reward"], rel=1e-12)

"""Properties of reward combination and the monitor log (probe round 41): group normalizers are
invariant to a constant added to a group and give NaN exactly where a reward is NaN; a weighted
sum is NaN exactly where no reward of non-zero weight applies; the running whitener gives a
number for every reward that applies, whatever ε ≥ 0; and a monitor log cut at any character
reads back as its whole records."""

from __future__ import annotations

import json
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.combine import (
    RunningWhitener,
    dr_grpo_advantage,
    group_normalize,
    rloo_advantage,
    weighted_sum,
)
from rewardkit.monitor import RewardMonitor, read_log

# small integers and NaN: sums, means and shifts stay exact, so equality is exact up to rounding
reward = st.one_of(st.integers(-50, 50).map(float), st.just(float("nan")))
batches = st.lists(st.tuples(reward, st.integers(0, 4)), min_size=1, max_size=24)

NORMALIZERS = {
    "grpo": lambda r, g: group_normalize(r, g),
    "grpo ddof0 eps0": lambda r, g: group_normalize(r, g, ddof=0, eps=0),
    "verl": lambda r, g: group_normalize(r, g, singleton="raw", eps=1e-6),
    "dr_grpo": dr_grpo_advantage,
    "rloo": rloo_advantage,
}


@settings(max_examples=60, deadline=None)
@given(batches, st.lists(st.integers(-1000, 1000), min_size=5, max_size=5))
def test_group_normalizers_ignore_a_constant_added_to_a_group(batch, shift):
    r = np.array([x for x, _ in batch])
    g = np.array([i for _, i in batch])
    moved = r + np.array(shift, dtype=float)[g]
    single = np.bincount(g, weights=~np.isnan(r), minlength=5)[g] == 1
    for name, fn in NORMALIZERS.items():
        a, b = fn(r, g), fn(moved, g)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(r), err_msg=name)
        keep = ~single if name == "verl" else np.ones(len(r), bool)  # verl: a lone raw reward
        np.testing.assert_allclose(a[keep], b[keep], atol=1e-9, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(reward, min_size=3, max_size=3), min_size=1, max_size=10),
    st.lists(st.sampled_from([0.0, 1.0, -0.5, 2.0]), min_size=3, max_size=3).filter(any),
)
def test_weighted_sum_is_nan_exactly_where_no_weighted_reward_applies(rows, w):
    R = np.array(rows)
    counts = (~np.isnan(R)) & (np.array(w) != 0)
    out = weighted_sum(R, w)
    np.testing.assert_array_equal(np.isnan(out), ~counts.any(axis=1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(reward, min_size=1, max_size=6), min_size=1, max_size=5),
    st.sampled_from([0.0, 1e-8, 1.0]),
    st.sampled_from([0, 1]),
    st.booleans(),
)
def test_running_whitener_gives_a_number_for_every_reward_that_applies(batches_, eps, ddof, first):
    w = RunningWhitener(eps=eps, ddof=ddof, update_first=first)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # 0/0 would warn
        for batch in batches_:
            r = np.array(batch)
            out = w(r)
            np.testing.assert_array_equal(np.isnan(out), np.isnan(r))
            assert np.isfinite(out[~np.isnan(r)]).all()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_log_cut_at_any_character_reads_back_as_its_whole_records(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("log") / "log.jsonl"
    mon = RewardMonitor(path, warn=False, overwrite=True)
    for s in range(3):
        mon.step(None, ["a b", "ß"], {"rm": [0.5 + s, float("nan")]}, reward=[1e-5 * s, -2.0])
    text = path.read_text(encoding="utf-8")
    cut = data.draw(st.integers(1, len(text)))
    path.write_text(text[:cut], encoding="utf-8")
    kept = text[:cut]
    whole = kept.count("\n") + kept.endswith("}")  # a record whose line end alone was cut
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        records = read_log(path)
    assert [r["step"] for r in records] == list(range(whole))
    assert all(json.dumps(r["warnings"]) == "[]" for r in records)

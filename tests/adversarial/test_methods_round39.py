"""Hostile input for the less-tested method modules and curate verbs (round 39): AlignDistil's
loss on odd options and logits, CREAM consistency on huge examples, preference strength and
rescaling at extreme magnitudes, the POLAR / PAL / ReMoDetect training runs' settings and
outputs, domain references, blank POLAR references, and curate runs on an empty input. Each
ends in a located one-line error or the right value, never a NaN passed off as a loss, a
silent wrong result or gigabytes of memory."""

from __future__ import annotations

import json
import math
import shutil
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.curate.consistency import consistency_filter, kendall_tau, ranking_consistency
from rewardkit.curate.relabel import rescale
from rewardkit.curate.strength import preference_strength
from rewardkit.errors import DataError, SpecError
from rewardkit.outputs import OutputError, exclusive
from rewardkit.rewards.domain import FEATURES, length_fit, reference_steps
from rewardkit.rewards.pal import write_meta
from rewardkit.rewards.polar import reference_text
from rewardkit.train.aligndistil import aligndistil_loss, aligndistil_teacher
from rewardkit.train.domain import fit_domain
from rewardkit.train.pal import PALConfig, adapt_user, train_pal
from rewardkit.train.polar import PolarConfig, Triple, train_polar
from rewardkit.train.remodetect import DetectTuneConfig, tune_detector
from rewardkit.types import Example, Query, user

# --- AlignDistil (card B13) -------------------------------------------------------------------

D2, R2 = torch.tensor([[[2.0, 0.0]]]), torch.tensor([[[0.0, 1.0]]])
ONE = torch.ones(1, 1)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("temperature", 0.0),
        ("temperature", -1.0),  # inverted the teacher: a finite, wrong loss
        ("temperature", math.nan),
        ("beta2", -1.0),  # a negative loss
        ("beta2", math.nan),
        ("beta", math.nan),
        ("beta", 0.0),  # a loss of 0: nothing trains
    ],
)
def test_aligndistil_refuses_options_that_make_the_loss_nan_or_wrong(option, value):
    with pytest.raises(SpecError, match=f"aligndistil: {option} must be a finite number"):
        aligndistil_loss(torch.zeros(1, 1, 2), D2, R2, ONE, **{option: value})


def test_aligndistil_token_both_teachers_rule_out_is_a_token_never_written():
    ninf = -math.inf
    zd, zr = torch.tensor([[[2.0, 0.0, ninf]]]), torch.tensor([[[0.0, 1.0, ninf]]])
    q, _, _ = aligndistil_teacher(zd, zr, beta2=1.0)
    torch.testing.assert_close(q[0, 0], torch.tensor([0.996578, 0.003422, 0.0]), atol=1e-6, rtol=0)
    student = torch.tensor([[[0.5, -0.5, ninf]]], requires_grad=True)
    loss = aligndistil_loss(student, zd, zr, ONE)
    two = aligndistil_loss(torch.tensor([[[0.5, -0.5]]]), D2, R2, ONE)
    assert float(loss.detach()) == pytest.approx(float(two), rel=1e-6)  # was NaN
    loss.backward()
    assert torch.isfinite(student.grad[..., :2]).all()


def test_aligndistil_padding_positions_are_not_read_and_bad_logits_are_named():
    d = torch.tensor([[[2.0, 0.0], [math.nan, math.nan]]])
    r = torch.tensor([[[0.0, 1.0], [math.nan, 0.0]]])
    mask = torch.tensor([[1.0, 0.0]])  # the NaN position is padding
    loss = aligndistil_loss(torch.zeros(1, 2, 2), d, r, mask)
    assert float(loss) == pytest.approx(float(aligndistil_loss(torch.zeros(1, 1, 2), D2, R2, ONE)))
    with pytest.raises(DataError, match=r"DPO logits hold NaN or \+inf at index \(0, 1, 0\)"):
        aligndistil_loss(torch.zeros(1, 2, 2), d, r, torch.ones(1, 2))
    with pytest.raises(DataError, match="reverse DPO model rules out"):
        aligndistil_loss(torch.zeros(1, 1, 2), D2, torch.tensor([[[0.0, -math.inf]]]), ONE)
    with pytest.raises(DataError, match=r"mask \(2, 1\) must be the logits' shape"):
        aligndistil_loss(torch.zeros(1, 1, 2), D2, R2, torch.ones(2, 1))  # was broadcast
    with pytest.raises(DataError, match=r"student logits \(1, 1, 3\) and DPO logits"):
        aligndistil_loss(torch.zeros(1, 1, 3), D2, R2, ONE)


# --- CREAM consistency (card E4) -------------------------------------------------------------


def _brute_tau(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    i, j = np.triu_indices(a.size, k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = math.sqrt(float((sa != 0).sum()) * float((sb != 0).sum()))
    return float((sa * sb).sum() / denom) if denom > 0 else 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 300).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
            st.lists(st.integers(-3, 3), min_size=n, max_size=n),
        )
    )
)
def test_kendall_tau_b_equals_the_pairwise_definition(ab):
    a, b = ab
    assert kendall_tau(a, b) == pytest.approx(_brute_tau(a, b), abs=1e-12)


def test_consistency_of_an_example_with_20000_responses_takes_little_memory():
    rng = np.random.default_rng(0)
    n = 20_000  # a 100 KB file; the n × n comparison took ~8 GB (1.3 GB at n = 8,000)
    a, b = rng.random(n), rng.random(n)
    ex = Example("big", [user("q")], ["r"] * n, [0])
    tracemalloc.start()
    res = consistency_filter([ex], [a], [b], action="drop", agree_at=0.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6 and 0.45 < res.consistency[0] < 0.55
    assert ranking_consistency([0.1, 0.5, 0.9], [0.2, 0.9, 0.4]) == pytest.approx(2 / 3)


# --- Preference strength (E1) and rescaling (A12) at extreme magnitudes -----------------------

FINITE = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(FINITE, min_size=3, max_size=3), min_size=1, max_size=5))
def test_strength_of_finite_deltas_is_finite_and_within_their_range(rows):
    d = np.array(rows)
    mean, std = preference_strength(d)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    ulps = 8 * np.spacing(np.abs(d).max(1))  # rounding of the sums
    assert (mean >= d.min(1) - ulps).all() and (mean <= d.max(1) + ulps).all()
    assert (std <= d.max(1) / 2 - d.min(1) / 2 + ulps).all()


def test_strength_card_values_and_huge_deltas():
    mean, std = preference_strength(
        np.array([[0.8, 1.2, 0.5], [1e308, 1e308, np.nan], [1e200, -1e200, np.nan]])
    )
    assert mean[0] == pytest.approx(0.833333, abs=1e-6) and std[0] == pytest.approx(0.286744, 1e-5)
    assert mean[1] == 1e308 and std[1] == 0.0  # was μ = inf, σ = inf
    assert mean[2] == 0.0 and std[2] == pytest.approx(1e200)  # was σ = inf


@settings(max_examples=200, deadline=None)
@given(st.lists(FINITE, min_size=2, max_size=6))
def test_rescale_maps_any_finite_scores_into_the_scale(values):
    out = rescale(np.array(values))
    assert np.isfinite(out).all() and (out >= 1).all() and (out <= 10).all()
    if max(values) > min(values):
        assert out[int(np.argmax(values))] == 10 and out[int(np.argmin(values))] == 1


def test_rescale_of_scores_near_the_float_limit():
    # was [1, 1, nan]: the top score became NaN and its pair was dropped as "nan"
    assert rescale(np.array([-1e308, 0.0, 1e308])).tolist() == [1.0, 5.5, 10.0]


# --- Training runs: settings, outputs -------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: PALConfig(steps=0), "steps"),  # wrote final_loss NaN into pal.json
        (lambda: PALConfig(batch_size=0), "batch_size"),  # trained nothing, loss 0.0
        (lambda: PALConfig(lr=math.nan), "lr"),
        (lambda: PALConfig(k=0), "k"),
        (lambda: PALConfig(weight_decay=-1.0), "weight_decay"),
        (lambda: PolarConfig(steps=0), "steps"),  # wrote NaN into polar.json
        (lambda: PolarConfig(lr=-1e-3), "lr"),
        (lambda: PolarConfig(batch_size=0), "batch_size"),
        (lambda: DetectTuneConfig(steps=0), "steps"),  # wrote NaN into head.json
        (lambda: DetectTuneConfig(batch_size=0), "batch_size"),  # "tuned", loss 0.0
        (lambda: DetectTuneConfig(replay_weight=-1.0), "replay_weight"),  # pushed away
        (lambda: DetectTuneConfig(replay_weight=math.inf), "replay_weight"),
    ],
)
def test_training_settings_out_of_range_are_refused_by_name(make, field):
    with pytest.raises(SpecError, match=f": {field} must be"):
        make()
    with pytest.raises(SpecError, match="form must be one of"):
        PALConfig(form="bogus")


def test_model_json_is_standard_json(tmp_path):
    write_meta(tmp_path / "m.json", {"final_loss": math.nan, "x": [math.inf, 1.0]})

    def bad(token):
        raise ValueError(token)

    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=bad) == {
        "final_loss": None,
        "x": [None, 1.0],
    }


DETECT = [
    Example(f"d{i}", [user(f"p{i}")], ["As an AI, here it is.", "mine"], [0]) for i in range(2)
]
for _ex in DETECT:
    _ex.meta["origin"] = ["llm", "human"]


def test_detect_tune_refuses_to_write_over_the_head_it_tunes(tmp_path):
    from rewardkit.rewards.default_rm import default_head_dir

    base = tmp_path / "base"
    shutil.copytree(default_head_dir(), base)
    before = {p.name: p.read_bytes() for p in base.iterdir()}
    with pytest.raises(SpecError, match="output directory is the head being tuned"):
        tune_detector(DETECT, base, base=str(base), cfg=DetectTuneConfig(steps=1))
    assert {p.name: p.read_bytes() for p in base.iterdir()} == before
    # without --base the tuned head is the shipped one; no origin pairs, so a regression
    # stops at the data error before anything is written
    with pytest.raises(SpecError, match="the shipped default"):
        tune_detector([], default_head_dir(), cfg=DetectTuneConfig(steps=1))
    with pytest.raises(SpecError, match="output directory is the base model"):
        train_polar([Triple("q", "r", "a", "b")], base, base=base, stage="finetune")


def test_a_second_run_into_a_model_directory_is_refused(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    pal_ex = [Example(f"e{i}", [user("q")], ["a", "b"], [0], meta={"user": "u"}) for i in range(2)]
    with exclusive(out, "held by a first run"):
        with pytest.raises(OutputError, match="another run is writing"):
            tune_detector(DETECT, out, cfg=DetectTuneConfig(steps=1))
        with pytest.raises(OutputError, match="another run is writing"):
            train_polar([Triple("q", "r", "a", "b")], out, PolarConfig(steps=1))
        with pytest.raises(OutputError, match="another run is writing"):
            train_pal(pal_ex, out, PALConfig(steps=1))
    assert sorted(p.name for p in out.iterdir()) == []  # nothing half-written


def test_pal_adapt_leaves_the_callers_examples_as_given(tmp_path):
    train = [
        Example(f"e{i}", [user(f"q{i}")], [f"long answer {i} " * 3, "no"], [0], meta={"user": u})
        for i, u in enumerate(["a", "b", "a", "b"])
    ]
    train_pal(train, tmp_path / "pal", PALConfig(d_pref=4, steps=2))
    assert sorted(p.name for p in (tmp_path / "pal").iterdir()) == [
        "loss_history.json",
        "pal.json",
        "pal.safetensors",
    ]  # no lock or temporary file left behind
    shots = [Example("s", [user("q")], ["yes", "no"], [0])]
    weights = adapt_user(tmp_path / "pal", "new", shots, steps=2)
    assert len(weights) == 2 and "user" not in shots[0].meta  # was set to "new" in place
    with pytest.raises(SpecError, match="steps must be an integer >= 1"):
        adapt_user(tmp_path / "pal", "new", shots, steps=0)


# --- Domain references (A15), POLAR references (A9) -----------------------------------------

P = [user("She pays 1,200 plus 300. How much?")]


@pytest.mark.parametrize(
    "ref", [["1,200 + 300 = 1,500"], ("1,200 + 300 = 1,500", "other"), "1,200 + 300 = 1,500"]
)
def test_domain_reference_features_read_a_list_of_references(ref):
    q = Query(P, "1200 + 300 = 1500", reference=ref)
    assert reference_steps(q) == 1.0 and length_fit(q) == pytest.approx(0.0)  # list: was NaN


def test_domain_reference_that_is_a_number_and_features_that_never_apply():
    assert reference_steps(Query(P, "so 1500", reference=1500)) == 1.0  # was NaN
    assert reference_steps(Query(P, "so 1500", reference=1500.0)) == 1.0
    for none in (None, True, "  ", [], math.nan):
        assert math.isnan(reference_steps(Query(P, "1500", reference=none)))
    pairs = [
        Example(f"e{i}", [user(f"battery {i} hours great")], [f"battery {i} hours", "bad"], [0])
        for i in range(4)
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, summary = fit_domain(pairs, {k: FEATURES[k] for k in ("coverage", "reference_steps")})
    assert summary["weights"]["reference_steps"] == 0.0
    assert any("reference_steps apply to none of the 8 responses" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("ref", "want"), [("  ", None), ("\n", None), ("", None), (["", "x"], None), ([" r"], " r")]
)
def test_polar_blank_reference_is_no_reference(ref, want):
    assert reference_text(Query(P, "a", reference=ref)) == want  # blank was scored


# --- curate verbs on an empty input -------------------------------------------------------------


@pytest.mark.parametrize(
    "verb", [("strength", "-r", "rule:length"), ("dedup",), ("noise", "-r", "rule:length")]
)
def test_curate_on_an_empty_input_warns_that_its_output_is_empty(cli, tmp_path, verb):
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    out = tmp_path / "o.jsonl"
    with pytest.warns(UserWarning, match="empty.jsonl holds no examples: every output"):
        code, text = cli("curate", verb[0], "--data", data, "--out", out, *verb[1:])
    assert code == 0 and json.loads(text.strip().splitlines()[-1])["written"] == 0
    assert Path(out).read_text() == ""

"""Fresh-eyes review of cards E7 (docs/methods/E7-curated-self-consuming.md) and E3
(docs/methods/E3-anyprefer.md): the cards' remaining worked numbers, and hostile input to the
Luce selection, the curated-retraining simulation, ``bon --select luce`` and
``curate anyprefer``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit import load_reward
from rewardkit.cli import app
from rewardkit.curate.cli_anyprefer import unscored_rows
from rewardkit.errors import DataError
from rewardkit.inference.anyprefer import load_trace, pairs_from_rows
from rewardkit.inference.luce import (
    check_temperature,
    luce_probs,
    luce_select,
    selection_rng,
    unscored,
)
from rewardkit.inference.run import BonConfig, PromptItem, read_rows, run_bon
from rewardkit.inference.self_consuming import curated_retraining_sim, entropy
from rewardkit.types import Query, Reward, user

NAN, INF = math.nan, math.inf
M = 10
REAL = np.full(M, 1 / M)
TRUE = np.linspace(0.0, 3.0, M)

# -- card E7: worked numbers ------------------------------------------------------------------


def test_e7_card_temperature_two_and_denominator():
    np.testing.assert_allclose(luce_probs([1, 2, 3], 2.0), [0.1863, 0.3072, 0.5065], atol=1e-4)
    assert sum(math.exp(x) for x in (1, 2, 3)) == pytest.approx(30.19, abs=5e-3)


#: The card's simulation table: round → (E[r], entropy, KL to real) at λ = 0 and λ = 0.5.
TABLE = {
    0.0: {0: (1.500, 2.303, 0.0), 1: (2.074, 2.113, 0.190), 3: (2.664, 1.387, 0.915)}
    | {10: (2.966, 0.339, 1.963)},
    0.5: {0: (1.500, 2.303, 0.0), 1: (1.787, 2.257, 0.045), 3: (1.951, 2.180, 0.122)}
    | {10: (2.008, 2.131, 0.171)},
}


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_e7_card_simulation_table_pinned(lam):
    h = curated_retraining_sim(REAL, TRUE, k=4, rounds=10, real_frac=lam, choices=20_000, seed=0)
    for rnd, (er, ent, kl) in TABLE[lam].items():
        got = (h.true_reward[rnd], h.entropy[rnd], h.kl_to_real[rnd])
        np.testing.assert_allclose(got, (er, ent, kl), atol=6e-4, err_msg=f"round {rnd}")


def test_e7_card_biased_proxy_numbers_pinned():
    proxy = TRUE.copy()
    proxy[0] = 4.0
    pure = curated_retraining_sim(REAL, TRUE, proxy_reward=proxy, rounds=10, seed=0)
    mixed = curated_retraining_sim(REAL, TRUE, proxy_reward=proxy, rounds=10, real_frac=0.5)
    np.testing.assert_allclose(
        [pure.proxy_reward[0], pure.proxy_reward[-1]], [1.90, 4.00], atol=5e-3
    )
    np.testing.assert_allclose(
        [pure.true_reward[0], pure.true_reward[-1]], [1.50, 0.002], atol=6e-4
    )
    np.testing.assert_allclose(
        [mixed.true_reward[-1], mixed.proxy_reward[-1]], [1.09, 2.71], atol=6e-3
    )


# -- card E7: hostile input to the functions ----------------------------------------------------


def test_e7_hostile_arguments_are_value_errors_with_a_reason():
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        check_temperature(10**400)  # was OverflowError
    for bad in (["a", "b"], [1 + 2j, 3], [[1.0, 2.0], [3.0]], [None, "x"]):
        with pytest.raises(ValueError, match="numeric rewards"):
            luce_probs(bad)
    with pytest.raises(ValueError, match="numeric rewards"):
        unscored(["x"])
    with pytest.raises(ValueError, match=r"init_probs must hold 2 probabilities .* got 3"):
        curated_retraining_sim([0.5, 0.5], [0.0, 1.0], init_probs=[1 / 3] * 3)  # numpy's message
    with pytest.raises(ValueError, match="true_reward must be numbers"):
        curated_retraining_sim([0.5, 0.5], ["a", "b"])


def test_e7_numpy_real_frac_is_a_number_and_a_point_mass_has_entropy_plus_zero():
    a = curated_retraining_sim(REAL, TRUE, rounds=2, choices=500, real_frac=np.float32(0.5))
    b = curated_retraining_sim(REAL, TRUE, rounds=2, choices=500, real_frac=0.5)
    np.testing.assert_allclose(a.probs, b.probs)
    with pytest.raises(ValueError, match="real_frac"):
        curated_retraining_sim(REAL, TRUE, real_frac=np.bool_(True))
    h = entropy(np.array([0.0, 1.0]))
    assert h == 0.0 and math.copysign(1.0, h) == 1.0  # not -0.0 in the history


# -- bon --select luce: run_bon with real rule rewards and odd candidates ---------------------


class InfFor(Reward):
    """+inf for the response "inf", −inf for "-inf", else its length."""

    name = "inf-for"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        table = {"inf": INF, "-inf": -INF}
        return np.array([table.get(q.response, float(len(q.response))) for q in queries])


def _luce(tmp_path, cands, reward, n=None, name="o.jsonl", t=1.0):
    n = len(cands) if n is None else n
    cfg = BonConfig(n=n, generation={"seed": 0}, reward=reward.name, select="luce")
    cfg.select_temperature = t
    out = tmp_path / name
    items = [PromptItem(f"p{i}", [user(f"q{i}")]) for i in range(40)]
    run_bon(items, lambda p, k: cands[:k], reward, out, cfg, progress=False)
    text = out.read_text()
    json.loads("[" + ",".join(text.splitlines()) + "]")  # strict JSON: no NaN or Infinity
    return read_rows(out)


def test_bon_luce_nan_inf_n1_duplicates_and_huge_temperature(tmp_path):
    nan_rows = _luce(tmp_path, ["a", "bb"], load_reward("rule:gsm8k"), name="nan.jsonl")
    assert all((r["kept"], r["kept_prob"], r["kept_score"]) == (0, None, None) for r in nan_rows)
    inf_rows = _luce(tmp_path, ["ab", "inf", "-inf", "inf"], InfFor(), name="inf.jsonl")
    assert {r["kept"] for r in inf_rows} == {1, 3}  # the +inf candidates share it
    assert all(r["kept_prob"] == 0.5 and r["kept_score"] is None for r in inf_rows)
    one = _luce(tmp_path, ["abc"], load_reward("rule:length"), name="one.jsonl")
    assert all((r["kept"], r["kept_prob"]) == (0, 1.0) for r in one)
    length = load_reward("rule:length")
    dup = _luce(tmp_path, ["aaa", "aaa", "b"], length, name="dup.jsonl", t=1e300)
    assert {r["kept"] for r in dup} == {0, 1, 2}  # T = 1e300: uniform, duplicates included
    assert all(r["kept_prob"] == pytest.approx(1 / 3) for r in dup)
    cold = _luce(tmp_path, ["aaa", "aaa", "b"], length, name="cold.jsonl", t=1e-300)
    assert {r["kept"] for r in cold} == {0, 1} and all(r["kept_prob"] == 0.5 for r in cold)


def test_bon_luce_resumed_after_a_cut_line_gives_the_same_rows(tmp_path):
    length = load_reward("rule:length")
    full = _luce(tmp_path, ["a", "bb", "ccc"], length, name="full.jsonl")
    lines = (tmp_path / "full.jsonl").read_text().splitlines()
    (tmp_path / "part.jsonl").write_text("\n".join(lines[:7]) + "\n" + lines[7][:50])
    part = _luce(tmp_path, ["a", "bb", "ccc"], length, name="part.jsonl")
    assert part == full
    picks = [luce_select([1, 2, 3], selection_rng(0, r["prompt"])) for r in full]
    assert [r["kept"] for r in full] == picks


def _bon(tmp_path, *extra):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "2+2?"}) + "\n")
    args = ["bon", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "-r", "rule:length"]
    return CliRunner().invoke(app, [*args, "--select", "luce", "--n", "2", *extra])


@pytest.mark.parametrize(
    "extra",
    [
        ["--select-temperature", "inf"],
        ["--select-temperature", "1e309"],
        ["--select-temperature", "nan"],
        ["--select-temperature", "-1"],
        ["--n", "0"],
        ["--n", "-3"],
    ],
)
def test_bon_luce_bad_options_exit_2_before_any_model(tmp_path, extra):
    res = _bon(tmp_path, *extra)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert not (tmp_path / "o.jsonl").exists()


def test_bon_luce_out_is_a_directory_is_one_error_line(tmp_path):
    (tmp_path / "d").mkdir()
    data = tmp_path / "p.jsonl"
    data.write_text("{not json\n")
    base = ["bon", "--data", str(data), "-r", "rule:length", "--select", "luce"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "is a directory" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "p.jsonl, line 1" in res.output
    assert not (tmp_path / "o.jsonl").exists()


# -- card E3: curate anyprefer ------------------------------------------------------------------


def _row(i, prompt="What is 2 + 2?", reference=None, **fields):
    pair = {"id": f"p{i}#r1:0>1", "chosen": "four", "rejected": "5", "meta": {"margin": 3.0}}
    rounds = [
        {"round": 1, "candidates": [{"text": "four", "score": 4.0}, {"text": "5", "score": 1.0}]}
    ]
    row = {"id": f"p{i}", "prompt": [user(prompt)], "reference": reference, "run": "x"}
    row |= {"candidates": rounds[0]["candidates"], "rounds": rounds, "passed": True, "pair": pair}
    return row | fields


def test_e3_repeated_prompt_pairs_are_written_once():
    rows = [_row(1), _row(2), _row(3, reference="4"), _row(4, prompt="Other?")]
    pairs = pairs_from_rows(rows)
    assert [p.id for p in pairs] == ["p1#r1:0>1", "p3#r1:0>1", "p4#r1:0>1"]
    assert pairs_from_rows([_row(1, pair=None, passed=False)]) == []


def test_e3_unscored_rows_counts_prompts_with_no_scored_candidate():
    nan = _row(1)
    nan["rounds"] = [{"candidates": [{"text": "a", "score": None}]}] * 2
    assert unscored_rows([nan, _row(2)]) == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"pair": {"id": "x"}}, "pair.chosen"),
        ({"rounds": 5}, "rounds"),
        ({"rounds": []}, "rounds"),
        ({"passed": "yes"}, "passed"),
        ({"pair": None}, "pair"),  # passed without a pair
        ({"pair": [1]}, "pair"),
        ({"rounds": [{"candidates": [1]}]}, "rounds[0].candidates"),
    ],
)
def test_e3_damaged_trace_row_is_named_by_line_and_field(tmp_path, change, field):
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps(_row(1)) + "\n" + json.dumps(_row(2) | change) + "\n")
    with pytest.raises(DataError) as err:
        load_trace(trace, None)
    assert err.value.line == 2 and err.value.field == field
    trace.write_text(json.dumps(_row(1)) + "\n" + json.dumps(_row(2))[:30])  # a cut last line
    load_trace(trace, None)


def test_e3_cli_damaged_trace_exits_2_before_any_model_and_writes_no_out(tmp_path):
    data, trace, out = tmp_path / "p.jsonl", tmp_path / "t.jsonl", tmp_path / "o.jsonl"
    data.write_text(json.dumps({"question": "What is 2 + 2?", "id": "p1"}) + "\n")
    trace.write_text(json.dumps(_row(1, pair={"id": "p1", "chosen": 3})) + "\n")
    args = ["curate", "anyprefer", "--data", str(data), "--out", str(out), "--trace", str(trace)]
    res = CliRunner().invoke(app, [*args, "--judge", "rule:length", "--device", "cpu"])
    assert res.exit_code == 2 and "line 1" in res.output and "pair.chosen" in res.output
    assert "Traceback" not in res.output and not out.exists()


@pytest.mark.slow
def test_e3_cli_repeated_and_unscored_prompts_warn_and_pairs_are_written_once(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text((json.dumps({"question": "What is 2 + 2?"}) + "\n") * 2)
    common = ["curate", "anyprefer", "--data", str(data), "--k", "2", "--max-rounds", "1"]
    common += ["--max-new-tokens", "4", "--threads", "1", "--device", "cpu", "--no-cache"]
    common += ["--no-progress", "--threshold", "0"]
    out, trace = tmp_path / "o.jsonl", tmp_path / "t.jsonl"
    res = CliRunner().invoke(
        app, [*common, "--out", str(out), "--trace", str(trace), "--judge", "rule:length"]
    )
    assert res.exit_code == 0, res.output
    s = json.loads(res.output.strip().splitlines()[-1])
    assert "repeat an earlier prompt" in res.output and (s["kept"], s["written"]) == (2, 1)
    assert len(out.read_text().splitlines()) == 1
    out2, trace2 = tmp_path / "o2.jsonl", tmp_path / "t2.jsonl"
    res = CliRunner().invoke(
        app, [*common, "--out", str(out2), "--trace", str(trace2), "--judge", "rule:gsm8k"]
    )
    assert res.exit_code == 0 and "2 of 2 prompts have no candidate the judge scored" in res.output
    assert (
        out2.read_text() == "" and json.loads(res.output.strip().splitlines()[-1])["written"] == 0
    )

"""Card E7 (docs/methods/E7-curated-self-consuming.md): Luce choice among K candidates, and
``rewardkit bon --select luce`` (seeded per prompt, resumable)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rewardkit.errors import DataError
from rewardkit.inference.best_of_n import select_best
from rewardkit.inference.luce import (
    luce_pick,
    luce_probs,
    luce_select,
    luce_select_rows,
    selection_rng,
    unscored,
)
from rewardkit.inference.run import BonConfig, PromptItem, read_rows, run_bon
from rewardkit.types import Query, Reward, stable_hash, user

NAN, INF = math.nan, math.inf


def test_worked_example_pinned():
    np.testing.assert_allclose(luce_probs([1.0, 2.0, 3.0]), [0.0900, 0.2447, 0.6652], atol=1e-4)
    # stable: the same after a shift that overflows a naive exp
    np.testing.assert_allclose(
        luce_probs([1001.0, 1002.0, 1003.0]), [0.0900, 0.2447, 0.6652], atol=1e-4
    )
    e = [math.exp(x / 2) for x in (1, 2, 3)]
    np.testing.assert_allclose(luce_probs([1, 2, 3], 2.0), [x / sum(e) for x in e], rtol=1e-12)


def test_nan_gets_zero_and_all_nan_keeps_the_first_like_select_best():
    np.testing.assert_allclose(luce_probs([NAN, 1, 2, 3]), [0, 0.0900, 0.2447, 0.6652], atol=1e-4)
    assert luce_probs([NAN, NAN, NAN]).tolist() == [1.0, 0.0, 0.0]
    rng = np.random.default_rng(0)
    assert {luce_select([NAN, NAN], rng) for _ in range(50)} == {0} == {select_best([NAN, NAN])}
    assert unscored([NAN, NAN]) and not unscored([NAN, -INF])
    k, prob = luce_pick([NAN, NAN], 0, [user("q")], 1.0)
    assert k == 0 and math.isnan(prob)  # marked unscored: no probability to report
    draws = {luce_select([NAN, 0.0, NAN, 1.0], rng) for _ in range(300)}
    assert draws == {1, 3}  # a NaN candidate is never drawn


def test_infinities_give_no_nan():
    assert luce_probs([1.0, INF, INF]).tolist() == [0.0, 0.5, 0.5]
    assert luce_probs([-INF, 0.0]).tolist() == [0.0, 1.0]
    assert luce_probs([-INF, -INF, NAN]).tolist() == [0.5, 0.5, 0.0]
    assert luce_probs([INF, -INF, NAN, 5.0]).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert luce_probs([1e308, -1e308]).tolist() == [1.0, 0.0]  # the difference overflows
    values = [NAN, INF, -INF, 0.0, 1e308, -1e308, 5e-324]
    for a in values:
        for b in values:
            for t in (1e-300, 1.0, 1e300):
                p = luce_probs([a, b, 0.5], t)
                assert not np.isnan(p).any() and p.sum() == pytest.approx(1.0), (a, b, t, p)
    rng = np.random.default_rng(1)
    assert {luce_select([-INF, 1.0, INF], rng) for _ in range(100)} == {2}


@pytest.mark.parametrize("t", [0, 0.0, -1.0, NAN, INF, -INF, True, "1", None])
def test_temperature_must_be_a_finite_number_above_zero(t):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        luce_probs([1.0, 2.0], t)
    with pytest.raises(ValueError, match="temperature"):
        luce_select([1.0, 2.0], np.random.default_rng(0), t)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="at least one candidate"):
        luce_probs([])
    with pytest.raises(ValueError, match="1-D"):
        luce_select([[1.0, 2.0]], np.random.default_rng(0))


def test_small_temperature_tends_to_the_argmax_and_large_to_uniform():
    np.testing.assert_allclose(luce_probs([0.3, 0.9, 0.5], 1e-3), [0, 1, 0], atol=1e-150)
    assert luce_probs([0.3, 0.9, 0.5], 1e-300).tolist() == [0.0, 1.0, 0.0]
    rng = np.random.default_rng(2)
    assert {luce_select([0.3, 0.9, 0.5], rng, 1e-6) for _ in range(100)} == {1}
    # tied maxima keep equal shares at every T (ties → first is --select best, select_best)
    assert luce_probs([0.9, 0.2, 0.9], 1e-9).tolist() == [0.5, 0.0, 0.5]
    assert {luce_select([0.9, 0.2, 0.9], rng, 1e-9) for _ in range(200)} == {0, 2}
    np.testing.assert_allclose(luce_probs([0.3, 0.9, 0.5], 1e12), [1 / 3] * 3, atol=1e-9)


rewards = st.lists(
    st.one_of(st.floats(-50, 50), st.just(NAN), st.sampled_from([INF, -INF])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(rewards, st.floats(1e-3, 1e3))
def test_probabilities_sum_to_one_and_are_monotone_in_reward(r, t):
    p = luce_probs(r, t)
    assert not np.isnan(p).any() and (p >= 0).all() and p.sum() == pytest.approx(1.0)
    scored = [i for i, x in enumerate(r) if not math.isnan(x)]
    if scored:
        assert all(p[i] == 0 for i, x in enumerate(r) if math.isnan(x))
    for i in scored:
        for j in scored:
            if r[i] > r[j]:
                assert p[i] >= p[j]
            if r[i] == r[j]:
                assert p[i] == pytest.approx(p[j], rel=1e-12)


def test_empirical_frequency_of_luce_select_matches_luce_probs():
    r, n = [0.5, -1.0, 2.0, NAN, 1.0], 20_000
    rng = np.random.default_rng(7)
    freq = np.bincount([luce_select(r, rng) for _ in range(n)], minlength=5) / n
    p = luce_probs(r)
    np.testing.assert_allclose(freq, p, atol=4 * math.sqrt(0.25 / n))  # 4σ at worst
    assert freq[3] == 0.0
    # the vectorised draw is the same draws, row by row, from the same generator state
    rows = np.random.default_rng(5).normal(size=(300, 4))
    rows[::7, 1] = NAN
    one, many = np.random.default_rng(9), luce_select_rows(rows, np.random.default_rng(9))
    assert many.tolist() == [luce_select(x, one) for x in rows]


class Length(Reward):
    name = "length"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([float(len(q.response)) for q in queries])


def _sample(prompt, n):
    return ["x" * (i + 1) for i in range(n)]  # lengths 1, 2, 3 → the worked example


def test_run_bon_luce_picks_follow_the_luce_model_and_are_keyed_by_seed_and_prompt(tmp_path):
    items = [PromptItem(f"p{i}", [user(f"q{i}")]) for i in range(600)]
    cfg = BonConfig(n=3, generation={"seed": 0}, reward="len", select="luce")
    out = tmp_path / "bon.jsonl"
    run_bon(items, _sample, Length(), out, cfg, progress=False)
    rows = read_rows(out)
    kept = [r["kept"] for r in rows]
    freq = np.bincount(kept, minlength=3) / len(kept)
    np.testing.assert_allclose(freq, [0.0900, 0.2447, 0.6652], atol=0.06)
    for r in rows[:20]:
        assert r["select"] == "luce" and r["select_temperature"] == 1.0
        assert r["kept_response"] == "x" * (r["kept"] + 1) and r["kept_score"] == r["kept"] + 1
        assert r["kept_prob"] == pytest.approx([0.0900, 0.2447, 0.6652][r["kept"]], abs=1e-4)
        assert (r["best"], r["best_score"]) == (2, 3.0)  # the argmax is still recorded
        assert r["kept"] == luce_select([1, 2, 3], selection_rng(0, r["prompt"]))
    # reordered: the same picks; another seed: other picks
    back = tmp_path / "reversed.jsonl"
    run_bon(items[::-1], _sample, Length(), back, cfg, progress=False)
    assert {r["id"]: r["kept"] for r in read_rows(back)} == {r["id"]: r["kept"] for r in rows}
    other = BonConfig(n=3, generation={"seed": 1}, reward="len", select="luce")
    run_bon(items, _sample, Length(), tmp_path / "s1.jsonl", other, progress=False)
    assert [r["kept"] for r in read_rows(tmp_path / "s1.jsonl")] != kept


def test_best_mode_rows_and_run_key_are_unchanged(tmp_path):
    cfg = BonConfig(n=3, policy={"m": 1}, generation={"seed": 0}, reward="len")
    old = {"n": 3, "policy": {"m": 1}, "gen": {"seed": 0}, "reward": "len"}
    assert cfg.key() == stable_hash(old)  # files written before --select still resume
    out = tmp_path / "bon.jsonl"
    run_bon([PromptItem("a", [user("q")])], _sample, Length(), out, cfg, progress=False)
    (row,) = read_rows(out)
    assert set(row) == {"id", "prompt", "reference", "candidates", "best", "best_response"} | {
        "best_score",
        "run",
    }
    luce = BonConfig(n=3, policy={"m": 1}, generation={"seed": 0}, reward="len", select="luce")
    assert luce.key() != cfg.key()
    assert luce.key() != BonConfig(**{**luce.__dict__, "select_temperature": 2.0}).key()
    with pytest.raises(DataError, match="other settings"):
        run_bon([PromptItem("b", [user("q2")])], _sample, Length(), out, luce, progress=False)
    with pytest.raises(ValueError, match="select must be one of best, luce"):
        BonConfig(select="softmax")
    with pytest.raises(ValueError, match="temperature"):
        BonConfig(select="luce", select_temperature=0.0)


def test_select_temperature_without_luce_is_refused_before_any_model_loads(tmp_path):
    from rewardkit.cli import app

    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "2+2?"}) + "\n")
    base = ["bon", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "-r", "rule:length"]
    res = CliRunner().invoke(app, [*base, "--select-temperature", "2"])
    assert res.exit_code == 2 and "--select luce" in res.output
    res = CliRunner().invoke(app, [*base, "--select", "argmax"])
    assert res.exit_code == 2 and "best, luce" in res.output
    res = CliRunner().invoke(app, [*base, "--select", "luce", "--select-temperature", "0"])
    assert res.exit_code == 2 and "> 0" in res.output
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
def test_bon_cli_select_luce_real_policy_end_to_end_and_resumed(tmp_path):
    from rewardkit.cli import app

    data = tmp_path / "p.jsonl"
    data.write_text(
        "".join(json.dumps({"question": q}) + "\n" for q in ("What is 2 + 2?", "Name a color."))
    )
    out = tmp_path / "bon.jsonl"
    args = ["bon", "--data", str(data), "--out", str(out), "-r", "rule:length", "--n", "3"]
    args += ["--max-new-tokens", "6", "--threads", "1", "--seed", "3", "--no-cache"]
    args += ["--no-progress", "--device", "cpu", "--select", "luce", "--select-temperature", "4"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    first = out.read_text().splitlines()
    rows = [json.loads(x) for x in first]
    assert len(rows) == 2
    for r in rows:
        scores = [NAN if c["score"] is None else c["score"] for c in r["candidates"]]
        assert r["select"] == "luce" and r["select_temperature"] == 4.0
        assert r["kept_response"] == r["candidates"][r["kept"]]["text"]
        assert r["kept_prob"] == pytest.approx(luce_probs(scores, 4.0)[r["kept"]], rel=1e-12)
        assert r["kept"] == luce_select(scores, selection_rng(3, r["prompt"]), 4.0)
        assert r["best"] == select_best(scores)
    # a run killed after its first row: the resumed run redoes the second with the same pick
    out.write_text(first[0] + "\n" + first[1][:40])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["generated"] == 1
    assert out.read_text().splitlines() == first
    # resuming with another selection is refused (another temperature: the BonConfig test)
    res = CliRunner().invoke(app, [*args[: args.index("--select")], "--select", "best"])
    assert res.exit_code == 2 and "other settings" in res.output, res.output
    assert out.read_text().splitlines() == first

"""The paired comparison reports the difference of the Scores as the table computes them
(paired, stratified bootstrap), and labels the exact tests as tests on per-example outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.report import summary_lines
from rewardkit.evaluate.tables import comparisons
from rewardkit.types import Example, user


def _sections_data() -> tuple[list[Example], dict[str, float], dict[str, float]]:
    """20 pairs in section "big" that A gets right and B wrong; three 2-pair sections the other
    way round: per example A wins 20 to 6, but its Score is 25.0 against B's 75.0."""
    exs: list[Example] = []
    ta: dict[str, float] = {}
    tb: dict[str, float] = {}
    groups = [("big", 20, True)] + [(f"s{k}", 2, False) for k in range(3)]
    for sub, n, a_right in groups:
        for i in range(n):
            c, r = f"c{sub}{i}", f"r{sub}{i}"
            ta[c], ta[r] = (1.0, 0.0) if a_right else (0.0, 1.0)
            tb[c], tb[r] = ta[r], ta[c]
            exs.append(Example(f"{sub}{i}", [user("q")], [c, r], [0], subset=sub))
    return exs, ta, tb


def test_the_comparison_is_of_the_scores_not_the_per_example_average(fake_reward) -> None:
    exs, ta, tb = _sections_data()
    res = evaluate(
        exs, [fake_reward(ta, "A"), fake_reward(tb, "B")], n_boot=200,
        include_length_baseline=False,
    )  # fmt: skip
    assert res["A"].score == pytest.approx(0.25) and res["B"].score == pytest.approx(0.75)
    (c,) = res.extra["analyses"]["comparisons"]
    assert c["bootstrap"]["diff"] == pytest.approx(-0.5)  # was +20/26 − 6/26 = +53.8 points
    assert c["bootstrap"]["of"] == "score"
    assert c["sign_test"]["pos"] == 20 and c["sign_test"]["neg"] == 6
    assert c["outcomes_bootstrap"]["diff"] == pytest.approx(14 / 26)
    assert c["significant"] is False  # the per-example test points the other way
    table = comparisons(res)
    assert table is not None and table.columns[2] == "Score A − B [95% CI]"
    assert table.rows[0][2].startswith("-50.0")


def test_score_difference_ci_is_paired_and_stratified(fake_reward) -> None:
    rng = np.random.default_rng(3)
    exs: list[Example] = []
    ta: dict[str, float] = {}
    tb: dict[str, float] = {}
    for sub, n, pa, pb in (("x", 40, 0.8, 0.5), ("y", 10, 0.3, 0.6)):
        for i in range(n):
            c, r = f"c{sub}{i}", f"r{sub}{i}"
            ta[c], tb[c] = float(rng.random() < pa), float(rng.random() < pb)
            ta[r] = tb[r] = 0.5
            exs.append(Example(f"{sub}{i}", [user("q")], [c, r], [0], subset=sub))
    tb["cx0"] = math.nan  # B could not score one example: it carries no weight for B
    res = evaluate(
        exs, [fake_reward(ta, "A"), fake_reward(tb, "B")], n_boot=400,
        include_length_baseline=False,
    )  # fmt: skip
    (c,) = res.extra["analyses"]["comparisons"]
    boot = c["bootstrap"]
    assert boot["diff"] == pytest.approx(res["A"].score - res["B"].score, abs=1e-12)
    lo, hi = boot["ci"]
    assert lo < boot["diff"] < hi and boot["n"] == 50
    again = evaluate(
        exs, [fake_reward(ta, "A"), fake_reward(tb, "B")], n_boot=400,
        include_length_baseline=False,
    )  # fmt: skip
    assert again.extra["analyses"]["comparisons"][0]["bootstrap"] == boot  # seeded


def test_ties_subset_is_compared_by_its_formula(fake_reward) -> None:
    exs: list[Example] = []
    ta: dict[str, float] = {}
    tb: dict[str, float] = {}
    for p in range(6):
        for kind, n_correct in (("ref", 1), ("tied", 2)):
            resp = [f"{kind}{p}-{k}" for k in range(n_correct + 2)]
            for k, name in enumerate(resp):
                ta[name] = float(10 - k) if k < n_correct else float(k)  # A: correct on top
                tb[name] = float(k)  # B: correct at the bottom
            exs.append(
                Example(f"{kind}:{p}", [user(f"t{p}")], resp, list(range(n_correct)), subset="Ties")
            )
    for i in range(4):
        ta[f"fc{i}"], ta[f"fr{i}"], tb[f"fc{i}"], tb[f"fr{i}"] = 1.0, 0.0, 1.0, 0.0
        exs.append(Example(f"f{i}", [user("f")], [f"fc{i}", f"fr{i}"], [0], subset="Factuality"))
    res = evaluate(
        exs, [fake_reward(ta, "A"), fake_reward(tb, "B")], n_boot=200,
        include_length_baseline=False,
    )  # fmt: skip
    assert res.settings["benchmark"] == "rewardbench2"
    assert res["A"].subsets["Ties"].rule == "ties"
    (c,) = res.extra["analyses"]["comparisons"]
    assert c["bootstrap"]["diff"] == pytest.approx(res["A"].score - res["B"].score, abs=1e-12)
    assert all(math.isfinite(x) for x in c["bootstrap"]["ci"])


def test_summary_names_the_per_example_test(fake_reward) -> None:
    exs = [Example(f"e{i}", [user("q")], [f"y{i}", f"n{i}"], [0], subset="s") for i in range(30)]
    good = {**{f"y{i}": 1.0 for i in range(30)}, **{f"n{i}": 0.0 for i in range(30)}}
    bad = {**{f"y{i}": 0.0 for i in range(30)}, **{f"n{i}": 1.0 for i in range(30)}}
    res = evaluate(
        exs, [fake_reward(good, "good"), fake_reward(bad, "bad")], n_boot=200,
        include_length_baseline=False,
    )  # fmt: skip
    line = next(x for x in summary_lines(res) if x.startswith("good vs bad"))
    assert (
        line.startswith("good vs bad: Score 100.0 [")
        and "per-example outcomes: sign test p=" in line
    )

"""The statistics ``rewardkit eval`` reports beside accuracy, each pinned to its definition in
docs/evaluation.md and computed independently on small crafted score sets (by hand, or with
numbers pinned from scipy 1.17.1: the call is named beside each; scipy is not needed here).

Scores are controlled exactly by an in-process reward that looks each response up in a table."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.benchmarks import mean_of_sections
from rewardkit.evaluate.bootstrap import percentile_ci
from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
from rewardkit.evaluate.lengthbias import length_degenerate_subsets
from rewardkit.evaluate.result import load_report
from rewardkit.evaluate.stats import binomial_two_sided, mcnemar, sign_test
from rewardkit.evaluate.tables import comparisons
from rewardkit.results import position_bias
from rewardkit.types import Example, Query, Reward

PROMPT = [{"role": "user", "content": "q"}]


class TableReward(Reward):
    """Scores each response by looking its text up (NaN where the table says so)."""

    def __init__(self, table: dict[str, float], name: str) -> None:
        self.table, self.name = table, name

    def identity(self) -> dict:
        return {"class": "TableReward", "name": self.name, "table": sorted(self.table.items())}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([self.table[q.response] for q in queries], dtype=np.float64)


def pairs(spec: Sequence[tuple[str, float, float]]) -> tuple[list[Example], dict[str, float]]:
    """One pair per ``(subset, chosen score, rejected score)``, with distinct response texts."""
    examples, table = [], {}
    for i, (subset, sc, sr) in enumerate(spec):
        table[f"c{i}"], table[f"r{i}"] = sc, sr
        examples.append(Example(f"e{i}", PROMPT, [f"c{i}", f"r{i}"], [0], subset=subset))
    return examples, table


def flipped(table: dict[str, float]) -> dict[str, float]:
    """Every pair of ``table`` ranked the other way round."""
    return {k: -v for k, v in table.items()}


def run(examples, *rewards, n_boot: int = 200, **kw):
    return evaluate(examples, list(rewards), include_length_baseline=False, n_boot=n_boot, **kw)


# --- Score: sections' mean, exactly ----------------------------------------------------------


def test_a_perfect_reward_on_nine_sections_scores_exactly_one_and_its_report_loads(tmp_path):
    # normalising the weights first (Σ (w/W)·s) gave 1.0000000000000002 for nine sections, and
    # `rewardkit report` then refused the run's own report.json as damaged
    assert mean_of_sections({str(i): 1.0 for i in range(9)}) == 1.0
    assert all(mean_of_sections({str(i): 1.0 for i in range(n)}) == 1.0 for n in range(1, 60))
    examples, table = pairs([(f"s{i}", 1.0, 0.0) for i in range(9) for _ in range(2)])
    result = run(examples, TableReward(table, "a"), n_boot=20)
    assert result.rewards[0].score == 1.0 and result.rewards[0].ci == (1.0, 1.0)
    result.write_reports(tmp_path, html=False)
    assert load_report(tmp_path).rewards[0].score == 1.0


def test_weighted_sections_keep_their_weights():
    # RewardBench's prior sets count half: (1·1 + 0.5·0) / 1.5
    assert mean_of_sections({"a": 1.0, "p": 0.0}, {"p": 0.5}) == pytest.approx(2 / 3)
    reps = mean_of_sections({"a": np.array([0.5, 1.0]), "b": np.array([1.0, 0.0])}, {"a": 0.5})
    assert reps.tolist() == pytest.approx([5 / 6, 1 / 3])


def test_rewardbench2_ties_scores_above_one_load_back(tmp_path):
    # the Ties score adds 0.01·mean(tanh(…)): a reward that aces Ties scores up to 1.01, so the
    # RewardBench 2 Score can pass 1; report.json was refused as "damaged" for it
    examples, table = [], {}
    for k in range(3):
        ref = [f"rc{k}", f"ri{k}a", f"ri{k}b", f"ri{k}c"]
        tied = [f"tc{k}a", f"tc{k}b", f"ti{k}a", f"ti{k}b"]
        table.update(dict(zip(ref, (10.0, 0.0, 0.0, 0.0), strict=True)))
        table.update(dict(zip(tied, (10.0, 9.0, 0.0, 0.0), strict=True)))
        examples.append(Example(f"ref:{k}", PROMPT, ref, [0], subset="Ties"))
        examples.append(Example(f"tied:{k}", PROMPT, tied, [0, 1], subset="Ties"))
        math_row = [f"mc{k}", f"mr{k}a", f"mr{k}b", f"mr{k}c"]
        table.update(dict(zip(math_row, (1.0, 0.0, 0.0, 0.0), strict=True)))
        examples.append(Example(f"m{k}", PROMPT, math_row, [0], subset="Math"))
    result = run(examples, TableReward(table, "a"), n_boot=20)
    r = result.rewards[0]
    assert result.settings["benchmark"] == "rewardbench2"
    assert 1.0 < r.subsets["Ties"].score <= 1.01 and r.score > 1.0
    result.write_reports(tmp_path, html=False)
    assert load_report(tmp_path).rewards[0].score == pytest.approx(r.score)
    raw = json.loads((tmp_path / "report.json").read_text())
    raw["rewards"][0]["score"] = 1.02  # past the Ties range: still refused
    (tmp_path / "report.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"must lie in \[-0.01, 1.01\]"):
        load_report(tmp_path)


def test_a_score_above_one_without_a_ties_subset_is_still_refused(tmp_path):
    examples, table = pairs([("s", 1.0, 0.0), ("s", 0.0, 1.0)])
    run(examples, TableReward(table, "a"), n_boot=20).write_reports(tmp_path, html=False)
    raw = json.loads((tmp_path / "report.json").read_text())
    raw["rewards"][0]["score"] = 1.005
    (tmp_path / "report.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"'score' must lie in \[0, 1\] \(an accuracy\)"):
        load_report(tmp_path)


# --- NaN scores, one example, a one-example subset -------------------------------------------


def test_nan_scores_leave_n_weights_and_cis_to_the_scored_examples():
    nan = math.nan
    spec = [("s", 1.0, 0.0), ("s", nan, 0.0), ("s", 0.0, 1.0), ("t", 1.0, 0.0), ("t", 2.0, 1.0)]
    examples, table = pairs(spec)
    r = run(examples, TableReward(table, "a")).rewards[0]
    s, t = r.subsets["s"], r.subsets["t"]
    assert (s.score, s.n, s.n_nan, s.weight) == (0.5, 2, 1, 2.0)
    assert (t.score, t.n, t.n_nan, t.weight) == (1.0, 2, 0, 2.0)
    assert (r.n_scored, r.n_nan) == (4, 1)
    assert r.score == 0.75  # generic rule: mean of the sections s (0.5) and t (1.0)
    assert t.ci == (1.0, 1.0) and 0.0 <= s.ci[0] <= 0.5 <= s.ci[1] <= 1.0
    assert r.examples[1].outcome is None


def test_one_example_gives_no_correlation_and_no_significance():
    examples, table = pairs([("s", 1.0, 0.0)])
    result = run(examples, TableReward(table, "a"), TableReward(flipped(table), "b"), n_boot=50)
    a = result.rewards[0]
    assert a.score == 1.0 and a.ci == (1.0, 1.0)
    assert a.analyses["length_bias"]["n"] == 2 and a.analyses["length_bias"]["spearman"] is None
    c = result.extra["analyses"]["comparisons"][0]
    assert c["sign_test"] == {"pos": 1, "neg": 0, "p_value": 1.0}
    assert c["significant"] is False


# --- paired comparisons ------------------------------------------------------------------------


def test_identical_rewards_have_mcnemar_b_c_zero_and_p_one():
    rng = np.random.default_rng(3)
    examples, table = pairs([("s", *rng.normal(size=2)) for _ in range(12)])
    result = run(examples, TableReward(table, "a"), TableReward(dict(table), "b"))
    c = result.extra["analyses"]["comparisons"][0]
    assert (c["mcnemar"]["b"], c["mcnemar"]["c"], c["mcnemar"]["p_value"]) == (0, 0, 1.0)
    assert c["sign_test"] == {"pos": 0, "neg": 0, "p_value": 1.0}
    assert c["bootstrap"]["diff"] == 0.0 and tuple(c["bootstrap"]["ci"]) == (0.0, 0.0)
    assert c["bootstrap"]["p_value"] == 1.0 and c["significant"] is False


def test_all_ties_score_one_half_and_no_binary_pair():
    examples, table = pairs([("s", 1.0, 1.0)] * 5)
    result = run(examples, TableReward(table, "a"), TableReward(dict(table), "b"))
    assert result.rewards[0].score == 0.5
    c = result.extra["analyses"]["comparisons"][0]
    assert c["mcnemar"]["n"] == 0 and c["mcnemar"]["n_excluded"] == 5


def test_exact_binomial_p_values_are_the_dyadic_fractions():
    # 2·P(Bin(n, ½) ≤ k): (3, 1) → 2·5/16; these were 0.6249999999999994 and the like
    assert binomial_two_sided(3, 1) == 0.625
    assert binomial_two_sided(1, 3) == 0.625
    assert binomial_two_sided(0, 4) == 0.125
    assert binomial_two_sided(2, 7) == 2 * (1 + 9 + 36) / 2**9
    assert binomial_two_sided(5, 5) == 1.0 and binomial_two_sided(0, 1) == 1.0
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(0, 2000) == 2.0**-1999
    # scipy.stats.binomtest(2400, 5001).pvalue: past the exact range, summed in log space
    assert binomial_two_sided(2400, 2601) == pytest.approx(0.004677045349937062, rel=1e-10)


def test_mcnemar_and_sign_test_definitions():
    a = np.array([1, 1, 1, 0, 0.5, 1, math.nan, 0], float)
    b = np.array([0, 0, 0, 1, 0.0, 1, 1.0, 0], float)
    m = mcnemar(a, b)
    # 0/1 on both sides: rows 0-3, 5, 7; b = A right B wrong (3), c = the reverse (1)
    assert (m["b"], m["c"], m["n"], m["n_excluded"]) == (3, 1, 6, 2)
    assert m["p_value"] == 0.625 and m["chi2"] == pytest.approx((3 - 1 - 1) ** 2 / 4)
    # the sign test also counts ½ vs 0 (row 4); the NaN row is left out
    assert sign_test(a, b) == {"pos": 4, "neg": 1, "p_value": 2 * 6 / 32}


def _stratified_diff_reps(oa, ob, subsets, n_boot, seed):
    """Score(a) − Score(b) replicates by hand: draws within each subset, shared by both."""
    rng = np.random.default_rng(seed)
    idx = {s: np.flatnonzero(subsets == s) for s in dict.fromkeys(subsets)}
    reps = []
    for _ in range(n_boot):
        draws = [rng.choice(i, i.size) for i in idx.values()]
        reps.append(np.mean([oa[d].mean() - ob[d].mean() for d in draws]))
    return np.array(reps)


def test_score_difference_is_the_scores_difference_with_a_stratified_paired_bootstrap():
    rng = np.random.default_rng(2)
    spec = [("A" if i < 10 else "B", *rng.normal((0.4, 0.0))) for i in range(40)]
    examples, ta = pairs(spec)
    tb = {k: v + (0.6 if k.startswith("c") and int(k[1:]) % 3 else 0.0) for k, v in ta.items()}
    n_boot = 3000
    result = run(examples, TableReward(ta, "a"), TableReward(tb, "b"), n_boot=n_boot)
    ra, rb = result.rewards
    c = result.extra["analyses"]["comparisons"][0]
    boot = c["bootstrap"]
    assert boot["of"] == "score" and boot["n"] == 40
    assert boot["diff"] == ra.score - rb.score
    oa = np.array([e.outcome for e in ra.examples])
    ob = np.array([e.outcome for e in rb.examples])
    subsets = np.array([e.subset for e in ra.examples])
    reps = _stratified_diff_reps(oa, ob, subsets, n_boot, seed=11)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert boot["ci"][0] == pytest.approx(lo, abs=0.04)
    assert boot["ci"][1] == pytest.approx(hi, abs=0.04)
    p = min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0)))
    assert boot["p_value"] == pytest.approx(p, abs=0.03)
    # the per-example tests and the per-example average
    d = oa - ob
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    assert c["sign_test"] == {"pos": pos, "neg": neg, "p_value": binomial_two_sided(pos, neg)}
    assert c["outcomes_bootstrap"]["diff"] == pytest.approx(d.mean())


def test_significant_needs_a_score_ci_that_can_vary():
    # ten one-example subsets: the stratified bootstrap cannot vary ("CI" [1, 1]) and the
    # table prints no CI and no bootstrap p; the sign test alone is p = 2/1024. It was
    # "significant" (and the summary printed "[100.0, 100.0]")
    examples, table = pairs([(f"s{i}", 1.0, 0.0) for i in range(10)])
    result = run(examples, TableReward(table, "a"), TableReward(flipped(table), "b"))
    c = result.extra["analyses"]["comparisons"][0]
    assert c["sign_test"]["p_value"] == 2 / 1024 and tuple(c["bootstrap"]["ci"]) == (1.0, 1.0)
    assert c["significant"] is False
    assert comparisons(result).rows[0][2:4] == ["100.0", "–"]
    assert comparisons(result).rows[0][-1] == "no"
    # two examples in each of five subsets: the CI is a CI, and it is significant
    examples, table = pairs([(f"s{i // 2}", 1.0, 0.0) for i in range(10)])
    result = run(examples, TableReward(table, "a"), TableReward(flipped(table), "b"))
    assert result.extra["analyses"]["comparisons"][0]["significant"] is True


# --- length bias, the length baseline, length-degenerate subsets ----------------------------


def test_length_bias_correlations_and_strata():
    texts = [("aaaa", "bb"), ("ccc", "dddddd"), ("eeeeeeeeee", "fffffffff"), ("gg", "h")]
    scores = [(3.0, 1.0), (0.5, 2.0), (5.0, 5.0), (1.0, math.nan)]
    table = {t: s for pair in zip(texts, scores, strict=True) for t, s in zip(*pair, strict=True)}
    examples = [Example(f"e{i}", PROMPT, list(t), [0], subset="s") for i, t in enumerate(texts)]
    result = evaluate(examples, [TableReward(table, "a")], n_boot=20)
    lb = result.rewards[0].analyses["length_bias"]
    # scipy.stats.pearsonr / spearmanr([3, 1, .5, 2, 5, 5, 1], [4, 2, 3, 6, 10, 9, 2])
    assert lb["n"] == 7
    assert lb["pearson"] == pytest.approx(0.9238914727037473, abs=1e-12)
    assert lb["spearman"] == pytest.approx(0.8440722199302098, abs=1e-12)
    # 4 vs 2: chosen longer, right; 3 vs 6: chosen shorter, wrong; 10 vs 9: within 10% of the
    # longer, a tie (½); the NaN pair is left out
    assert {k: (v["accuracy"], v["n"]) for k, v in lb["strata"].items()} == {
        "chosen shorter": (0.0, 1),
        "matched": (0.5, 1),
        "chosen longer": (1.0, 1),
    }
    baseline = result.rewards[1]
    assert baseline.name == "rule:length"
    assert baseline.analyses["length_bias"]["spearman"] == pytest.approx(1.0)
    # the baseline's outcomes are "the longer wins" (ties ½): 1, 0, 1, 1
    assert [e.outcome for e in baseline.examples] == [1.0, 0.0, 1.0, 1.0]
    deg = result.extra["analyses"]["length_degenerate_subsets"]["s"]
    assert (deg["length_accuracy"], deg["n_pairs"], deg["flag"]) == (0.75, 4, None)


@pytest.mark.parametrize(
    ("longer_right", "flag"),
    [(9, "longer wins"), (1, "shorter wins"), (8, None), (2, None), (5, None)],
)
def test_length_degenerate_flags_at_exactly_ninety_and_ten_percent(longer_right, flag):
    # "≥ 90% (longer wins) or ≤ 10% (shorter wins)": 1 of 10 is 10% (0.1 ≤ 1 − 0.9 is False in
    # floats, so it was not flagged while 9 of 10 was)
    lengths = [[5, 1]] * longer_right + [[1, 5]] * (10 - longer_right)
    out = length_degenerate_subsets(["x"] * 10, lengths, [[0]] * 10, [True] * 10)["x"]
    assert out["length_accuracy"] == longer_right / 10 and out["flag"] == flag


# --- position bias, CIs with few resamples ---------------------------------------------------


def test_position_bias_is_the_share_of_decided_pairs_that_flip():
    # (0.8, 0.3) flips, (0.8, 0.6) does not, a 0.5 or NaN side is left out
    assert position_bias([0.8, 0.8, 0.5, 0.9, math.nan], [0.3, 0.6, 0.1, 0.2, 0.1]) == 2 / 3
    assert math.isnan(position_bias([0.5], [0.7]))


def test_percentile_ci_with_few_replicates():
    # the (α/2, 1 − α/2) quantiles, linear interpolation; NaN replicates ignored
    assert percentile_ci(np.array([0.0, 1.0]), 0.05) == pytest.approx((0.025, 0.975))
    assert percentile_ci(np.array([0.3]), 0.05) == (0.3, 0.3)
    assert percentile_ci(np.array([0.0, math.nan, 1.0]), 0.5) == pytest.approx((0.25, 0.75))
    assert all(math.isnan(x) for x in percentile_ci(np.array([math.nan]), 0.05))


# --- reports: hostile and non-ASCII names -----------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", '"><svg onload=alert(1)>', "ünï <b>x</b>\u202e", "Ωμέγα"]


def test_hostile_names_never_make_markup_in_the_html_reports(tmp_path):
    spec = [(HOSTILE[i % 4], float(i % 3), float(i * 7 % 5)) for i in range(16)]
    examples, table = pairs(spec)
    rewards = [TableReward(table, "<script>alert('r')</script>"), TableReward(table, "x</td>")]
    result = run(examples, *rewards, n_boot=20)
    paths = result.write_reports(tmp_path / "run")
    page = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"<script|<svg|<b>x", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "ünï" in page and "Ωμέγα" in page
    assert "\\u202e" in page and "\u202e" not in page
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "| **&lt;script&gt;alert(1)&lt;/script&gt;** |" in md
    board = leaderboard([("<script>run</script>", load_report(tmp_path / "run"))])
    html = write_leaderboard(board, tmp_path / "lb")["html"].read_text(encoding="utf-8")
    assert not re.search(r"<script", html, re.I) and "&lt;script&gt;run&lt;/script&gt;" in html

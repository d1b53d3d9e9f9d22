"""Underspecification of an ensemble (docs/methods/D9-overoptimization.md, step 5): member
agreement on in-distribution pairs vs policy pools, the card's worked numbers, and the
``underspecification`` analysis of ``evaluate`` / ``rewardkit eval`` / ``rewardkit report``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data.loader import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.result import load_report
from rewardkit.evaluate.tables import analysis_tables
from rewardkit.evaluate.underspec import (
    member_agreement,
    order_concordance,
    pair_signs,
    underspecification,
    underspecification_analysis,
)
from rewardkit.registry import load_reward
from rewardkit.results import Capability, ScoreResult
from rewardkit.types import Example, Query, Reward, user

# -- the card's worked example (M = 3 members) --------------------------------------------------
#: Two human-labelled pairs (chosen = response 0): the members agree on the first (1) and split
#: 2–1 with a tie on the second (member pairs: 0, ½, ½ → 1/3).
IN_DIST = [[[2, 2, 3], [1, 1, 1]], [[1, 2, 2], [2, 1, 2]]]
#: One best-of-3 pool (chosen = response 0): every response pair splits the members (1/3 each).
POOL = [[[3, 1, 2], [1, 3, 2], [2, 2, 0]]]


def test_card_worked_example_by_hand() -> None:
    out = underspecification(IN_DIST, POOL, in_dist_chosen=[[0], [0]], policy_chosen=[[0]])
    a, b, d = out["in_distribution"], out["policy"], out["drop"]
    # pairs: (1 + 1/3) / 2; unanimous on 1 of 2; std: [2,2,3] and [1,2,2], [2,1,2] each
    # sqrt(2)/3, [1,1,1] 0 → mean sqrt(2)/4
    assert a["order_agreement"] == pytest.approx(2 / 3)
    assert a["unanimous"] == pytest.approx(0.5)
    assert a["member_std"] == pytest.approx(math.sqrt(2) / 4) == pytest.approx(0.353553, abs=1e-6)
    assert (a["n_response_pairs"], a["n_labelled_pairs"], a["n_responses"]) == (2, 2, 4)
    # pool: 1/3 on each of its 3 response pairs; neither (0,1) nor (0,2) unanimous;
    # std (2·sqrt(2/3) + sqrt(8/9)) / 3
    assert b["order_agreement"] == pytest.approx(1 / 3)
    assert b["unanimous"] == 0.0
    assert b["member_std"] == pytest.approx(0.858601, abs=1e-6)
    assert (b["n_response_pairs"], b["n_labelled_pairs"], b["n_members"]) == (3, 2, 3)
    assert d["order_agreement"] == pytest.approx(1 / 3)
    assert d["unanimous"] == pytest.approx(0.5)
    assert d["member_std_rise"] == pytest.approx(0.505047, abs=1e-6)


def test_a_tie_in_either_member_counts_half_and_nan_members_are_left_out() -> None:
    signs = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, -1.0], [1.0, np.nan]])
    assert order_concordance(signs)[:3].tolist() == [0.5, 0.5, 0.0]
    assert math.isnan(order_concordance(signs)[3])  # one member: no member pair
    # member 1 abstains on response 1: pairs (0,1) and (1,2) keep one member pair (0 and 2),
    # (0,2) all three. (0,1): +, +  → 1; (0,2): +, +, − → 1/3; (1,2): +, − → 0
    x = [[[3.0, 1.0, 2.0], [1.0, np.nan, 0.0], [0.0, 0.0, 5.0]]]
    a = member_agreement(x)
    assert order_concordance(pair_signs(np.array(x[0]))).tolist() == pytest.approx([1, 1 / 3, 0])
    assert a["order_agreement"] == pytest.approx(4 / 9)
    assert a["n_response_pairs"] == 3 and math.isnan(a["unanimous"])
    # ±inf has no order against ±inf: left out as NaN (and kept out of the std)
    b = member_agreement([[[1.0, np.inf], [2.0, np.inf]]])
    assert b["n_response_pairs"] == 0 and math.isnan(b["order_agreement"])
    assert b["n_responses"] == 0 and math.isnan(b["member_std"])


def test_member_std_is_card_c5_disagreement_over_rows_with_two_members() -> None:
    x = np.array([[1.0, 3.0, np.nan], [2.0, np.nan, np.nan], [0.0, 4.0, 8.0]])
    a = member_agreement([x])
    assert a["n_responses"] == 2  # the one-member row cannot disagree
    assert a["member_std"] == pytest.approx((np.std([1, 3]) + np.std([0, 4, 8])) / 2)


def test_unanimity_needs_every_scoring_member_strictly_on_one_side() -> None:
    # chosen 0 vs 1: all three above; 0 vs 2: one member ties → not unanimous
    x = [[[5.0, 5.0, 5.0], [1.0, 1.0, 1.0], [4.0, 5.0, 4.0]]]
    assert member_agreement(x, [[0]])["unanimous"] == 0.5
    assert member_agreement(x, [[]])["n_labelled_pairs"] == 0  # nothing labelled
    assert member_agreement(x, [[0, 1, 2]])["n_labelled_pairs"] == 0  # nothing rejected


@pytest.mark.parametrize(
    ("scores", "chosen", "message"),
    [
        ([[1.0, 2.0]], None, "must be an (n_responses, M) matrix"),
        ([np.zeros((2, 3)), np.zeros((2, 2))], None, "every example needs the same members"),
        ([np.zeros((2, 3))], [[2]], "outside 0..1"),
        ([np.zeros((2, 3))], [[0], [0]], "2 entries for 1 examples"),
    ],
)
def test_malformed_input_is_refused_with_one_line(scores, chosen, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        member_agreement(scores, chosen)


def test_a_missing_side_gives_no_drop_and_mixed_ensembles_are_refused() -> None:
    out = underspecification(IN_DIST, [])
    assert out["policy"] is None and out["drop"] is None
    assert out["in_distribution"]["n_examples"] == 2
    with pytest.raises(ValueError, match="compare the same ensemble"):
        underspecification(IN_DIST, [np.zeros((3, 2))])


def test_the_eval_split_leaves_style_matrices_and_single_responses_out() -> None:
    exs = [
        Example("p", [user("q")], ["a", "b"], [0]),
        Example("one", [user("q")], ["a"], [0]),
        Example("rmb", [user("q")], ["a", "b", "c", "d"], [0, 1]),
        Example("pool", [user("q")], ["a", "b", "c"], [2]),
    ]
    members = {"m0": np.arange(10.0), "m1": np.arange(10.0)[::-1]}
    rules = ["best_of_k", "best_of_k", "style_matrix", "best_of_k"]
    out = underspecification_analysis(members, exs, rules)
    assert out["members"] == ["m0", "m1"]
    assert out["in_distribution"]["n_examples"] == 1 and out["policy"]["n_examples"] == 1
    assert out["in_distribution"]["order_agreement"] == 0.0  # m1 reverses m0 everywhere
    neither = {k: v[2:7] for k, v in members.items()}  # the 1-response and the 3×3 rows
    assert underspecification_analysis(neither, exs[1:3], rules[1:3]) is None
    with pytest.raises(ValueError, match="members hold 10 scores for 5 responses"):
        underspecification_analysis(members, exs[1:3], rules[1:3])


# -- evaluate, the CLI and the report round trip ---------------------------------------------------
#: Members: characters, words, bytes. Pairs (chosen first): every member prefers the chosen.
PAIRS = [("aaaa bbbb", "c"), ("long answer here", "short")]
#: A best-of-3 pool (chosen = "ab cd"): "éééé" is 4 chars, 1 word, 8 bytes, so the members part
#: ways: (0,1) 1/3, (0,2) words tie → 2/3, (1,2) all agree → 1; mean 2/3.
POOL_TEXTS = ["éééé", "ab cd", "xyz"]
#: Hand-counted member rows (chars, words, bytes) for the std.
ROWS_PAIRS = [[9, 2, 9], [1, 1, 1], [16, 3, 16], [5, 1, 5]]
ROWS_POOL = [[4, 1, 8], [5, 2, 5], [3, 1, 3]]
ENSEMBLE = ["rule:length", "rule:length?unit=words", "rule:length?unit=bytes"]


def _data(tmp: Path) -> Path:
    d = tmp / "data"
    d.mkdir()
    pairs = [{"prompt": f"q{i}", "chosen": c, "rejected": r} for i, (c, r) in enumerate(PAIRS)]
    (d / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    pool = {"prompt": "q", "responses": POOL_TEXTS, "chosen": 1}
    (d / "pools.jsonl").write_text(json.dumps(pool, ensure_ascii=False) + "\n", encoding="utf-8")
    return d


def _check_pinned(u: dict) -> None:
    a, b, d = u["in_distribution"], u["policy"], u["drop"]
    assert (a["order_agreement"], a["unanimous"]) == (1.0, 1.0)
    assert b["order_agreement"] == pytest.approx(2 / 3) and b["unanimous"] == 0.5
    assert a["member_std"] == pytest.approx(np.std(ROWS_PAIRS, axis=1).mean())
    assert b["member_std"] == pytest.approx(np.std(ROWS_POOL, axis=1).mean())
    assert d["order_agreement"] == pytest.approx(1 / 3) and d["unanimous"] == 0.5
    assert u["members"] == ENSEMBLE


def _under_table(result):
    return next(t for t in analysis_tables(result) if t.title.startswith("Underspecification"))


def test_evaluate_adds_the_analysis_to_the_ensemble_only(tmp_path: Path) -> None:
    ens = load_reward({"ensemble": ENSEMBLE})
    res = evaluate(load(_data(tmp_path)), ens, n_boot=20)
    _check_pinned(res[ens.name].analyses["underspecification"])
    assert "underspecification" not in res["rule:length"].analyses  # no members: nothing
    assert all("members" not in json.dumps(e.__dict__) for e in res[ens.name].examples)
    table = _under_table(res)
    assert [row[1] for row in table.rows] == ["pairs (2 responses)", "pools (3+ responses)", "drop (std: rise)"]  # fmt: skip
    assert table.rows[1][4:6] == ["66.7 (3)", "50.0 (2)"] and table.rows[2][4:6] == ["33.3", "50.0"]
    # round trip: report.json keeps the analysis, and a reloaded report rebuilds the same table
    res.write_reports(tmp_path / "out", html=False)
    back = load_report(tmp_path / "out")
    assert _under_table(back) == table
    assert (
        evaluate(load(tmp_path / "data"), ens, n_boot=20, analyses=False)[ens.name].analyses == {}
    )


class _Counting(Reward):
    """Characters, counting its scoring calls (one member of an ensemble)."""

    def __init__(self, name: str, scale: float) -> None:
        self.name, self.scale, self.calls = name, scale, 0

    def identity(self) -> dict:
        return {"class": "_Counting", "name": self.name}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return np.array([self.scale * len(str(q.response)) for q in queries])


def test_the_members_come_from_the_one_scoring_pass(tmp_path: Path) -> None:
    a, b = _Counting("a", 1.0), _Counting("b", -1.0)
    ens = load_reward({"ensemble": [a, b]})
    assert ens.can(Capability.MEMBERS)
    res = evaluate(load(_data(tmp_path)), ens, n_boot=10)
    assert (a.calls, b.calls) == (1, 1)
    u = res[ens.name].analyses["underspecification"]
    assert u["in_distribution"]["order_agreement"] == 0.0  # b reverses a on every pair
    assert u["policy"]["unanimous"] == 0.0


class _Members(Reward):
    """A non-ensemble reward declaring members, the second giving ``off`` on every query."""

    name = "two-heads"
    capabilities = frozenset({Capability.MEMBERS})

    def __init__(self, off: float) -> None:
        self.off = off

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        n = np.array([float(len(str(q.response))) for q in queries])
        return ScoreResult(n, members={"h": n, "off": np.full(len(n), self.off)})


@pytest.mark.parametrize("off", [math.nan, math.inf])
def test_a_member_that_never_scores_leaves_the_numbers_undefined(tmp_path: Path, off) -> None:
    res = evaluate(load(_data(tmp_path)), _Members(off), n_boot=10)
    u = res["two-heads"].analyses["underspecification"]
    assert u["in_distribution"]["n_response_pairs"] == 0
    assert math.isnan(u["policy"]["order_agreement"]) and math.isnan(u["drop"]["unanimous"])
    assert _under_table(res).rows[0][4:] == ["– (0)", "– (0)", "–"]


runner = CliRunner()


def test_cli_eval_and_report_rebuild_the_same_table(tmp_path: Path) -> None:
    data = _data(tmp_path)
    spec = tmp_path / "ens.yaml"
    spec.write_text("ensemble:\n" + "".join(f"  - {m}\n" for m in ENSEMBLE))
    out = tmp_path / "out"
    args = ["eval", "--no-progress", "--no-cache", "--n-boot", "20", "--no-html"]
    result = runner.invoke(app, [*args, "-r", str(spec), "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text())
    _check_pinned(rep["rewards"][0]["analyses"]["underspecification"])
    md = (out / "report.md").read_text()
    assert "## Underspecification" in md and "| 100.0 (2) | 100.0 (2) |" in md
    (out / "report.md").unlink()
    result = runner.invoke(app, ["report", str(out), "--no-html"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").read_text() == md

    # a hand-edited number is named, not printed
    under = rep["rewards"][0]["analyses"]["underspecification"]
    under["policy"]["order_agreement"] = "high"
    (out / "report.json").write_text(json.dumps(rep))
    result = runner.invoke(app, ["report", str(out), "--no-html"])
    assert result.exit_code == 2
    assert "analyses.underspecification.policy.order_agreement" in result.output
    under["policy"]["order_agreement"], under["drop"] = 0.5, [1]
    (out / "report.json").write_text(json.dumps(rep))
    result = runner.invoke(app, ["report", str(out), "--no-html"])
    assert result.exit_code == 2 and "analyses.underspecification.drop" in result.output

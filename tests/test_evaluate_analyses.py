"""Analyses wired into evaluate(): hand-built data with known numbers, JSON round trip, and the
Qwen2.5-Math best-of-8 pools (real rows) with the published reward-model scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.bestofn import bon_kl
from rewardkit.evaluate.calibration import TemperatureScaling
from rewardkit.evaluate.result import load_report
from rewardkit.types import Example, user


def _data():
    exs, table = [], {}
    # pairs: margins +1, +1, +1, −1 (3 of 4 right)
    for i, (c, r) in enumerate([(1, 0), (2, 1), (3, 2), (0, 1)]):
        table[f"c{i}"], table[f"r{i}"] = float(c), float(r)
        exs.append(
            Example(
                f"p{i}",
                [user(f"q{i}")],
                [f"c{i}", f"r{i}"],
                [0],
                subset="pairs",
                language="en" if i < 2 else "de",
            )
        )
    # a labelled tie (scored by accuracy-with-ties only)
    table["t0"], table["t1"] = 0.0, 0.0
    exs.append(Example("tie", [user("t")], ["t0", "t1"], [0, 1], subset="pairs", language="en"))
    # best-of-4 pool with gold ratings
    pool = ["g0", "g1", "g2", "g3"]
    for k, t in enumerate(pool):
        table[t] = float(k)
    exs.append(
        Example(
            "pool",
            [user("b")],
            pool,
            [2],
            subset="bon",
            ratings=[{"correct": v} for v in (0.0, 0.0, 1.0, 0.0)],
        )
    )
    return exs, table


def test_analyses_numbers(fake_reward, tmp_path: Path) -> None:
    exs, table = _data()
    t = TemperatureScaling(2.0)
    res = evaluate(exs, [fake_reward(table, "proxy")], n_boot=200, temperature=t)
    a = res["proxy"].analyses
    cal = a["calibration"]
    # pairs (both orders): 4 pairs → 8; pool: chosen 2 vs 3 others → 6
    assert cal["n_pairs"] == 14
    assert cal["applied"]["temperature"] == 2.0
    ties = a["accuracy_with_ties"]
    assert ties["n"] == 5 and ties["n_ties"] == 1
    assert ties["without_ties"] == pytest.approx(3 / 4)
    assert ties["with_ties"] == pytest.approx(4 / 5)  # ε = 0: the tie counts, nothing else moves
    langs = a["languages"]["languages"]
    assert langs["en"]["score"] == 1.0 and langs["de"]["score"] == 0.5
    bon = a["best_of_n"]
    assert bon["n"] == [1, 2, 4] and bon["gold"] == pytest.approx([0.25, 2 / 6, 0.0])
    assert bon["kl"] == pytest.approx([0.0, bon_kl(2), bon_kl(4)])
    assert a["overoptimization"]["overoptimized"] is True
    assert a["ratings"]["correct"]["n"] == 4
    run = res.extra["analyses"]
    (cmp,) = run["comparisons"]
    assert (cmp["a"], cmp["b"]) == ("proxy", "rule:length")
    assert set(run["length_degenerate_subsets"]) == {"pairs", "bon"}
    assert run["bon_correlation"]["n"] == 2 and run["bon_correlation"]["pearson"] is None
    # report.json round trip: rebuilding reads back every number
    path = res.to_json(tmp_path / "report.json")
    back = load_report(tmp_path)
    assert back.json_text() == path.read_text()


def test_reruns_with_analyses_are_byte_identical(fake_reward) -> None:
    exs, table = _data()

    def run() -> str:
        res = evaluate(exs, [fake_reward(table, "proxy")], n_boot=100, seed=3)
        d = json.loads(res.json_text())
        d.pop("run")
        return json.dumps(d, sort_keys=True)

    assert run() == run()


def test_no_analyses_flag(fake_reward) -> None:
    exs, table = _data()
    res = evaluate(exs, [fake_reward(table)], n_boot=10, analyses=False)
    assert res.rewards[0].analyses == {} and "analyses" not in res.extra


def test_robustness_block(fake_reward) -> None:
    exs, table = _data()
    res = evaluate(exs, [fake_reward(table)], n_boot=10, robustness=True)
    rob = res.extra["analyses"]["robustness"]
    assert set(rob) == {"fake", "rule:length"} and all(v["identical"] for v in rob.values())


@pytest.mark.shared_data
def test_qwen_math_best_of_8_with_the_published_rm(shared_data: Path, fake_reward) -> None:
    from rewardkit.data import load

    exs = load(shared_data / "qwen25_math_rm_bon")
    table = {}
    for ex in exs:
        for text, r in zip(ex.responses, ex.ratings, strict=True):
            table[text] = r["pred_score"]
    res = evaluate(exs, [fake_reward(table, "qwen-rm")], n_boot=50, include_length_baseline=False)
    bon = res["qwen-rm"].analyses["best_of_n"]
    correct = [np.array([r["correct"] for r in ex.ratings]) for ex in exs]
    picks = []
    for ex, c in zip(exs, correct, strict=True):
        s = np.array([table[t] for t in ex.responses])
        picks.append(c[int(np.argmax(s))])  # argmax: first of the ties = lowest index
    assert bon["n"] == [1, 2, 4, 8] and bon["n_pools"] == [100] * 4
    assert bon["gold"][0] == pytest.approx(np.mean([c.mean() for c in correct]))
    assert bon["gold"][-1] == pytest.approx(np.mean(picks))
    assert bon["oracle"][-1] == pytest.approx(np.mean([c.max() for c in correct]))
    over = res["qwen-rm"].analyses["overoptimization"]
    assert over["d"][-1] == pytest.approx(math.sqrt(math.log(8) - 7 / 8))


def test_bon_gain_is_on_the_pools_that_reach_the_largest_n(fake_reward) -> None:
    """Three pools of 8 and three of 4: the curve's gold@8 stands on the three large pools, so
    the gain takes gold@1 on the same three (it mixed six pools at N=1 with three at N=8)."""
    from rewardkit.evaluate.bestofn import expected_bon

    pools = [
        ([5, 3, 9, 9, 1, 2, 7, 4], [1, 0, 1, 0, 0, 0, 1, 0]),
        ([4, 4, 4, 4], [0, 1, 0, 1]),
        ([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 0, 0, 0, 0, 0, 0]),
        ([6, 2, 6, 3, 6, 1, 2, 5], [0, 0, 1, 0, 1, 1, 0, 0]),
        ([3, 3, 8, 1], [1, 1, 1, 1]),
        ([2, 9, 9, 2], [0, 0, 0, 0]),
    ]
    exs, table = [], {}
    for p, (proxy, gold) in enumerate(pools):
        names = [f"p{p}r{k}" for k in range(len(proxy))]
        table |= {n: float(v) for n, v in zip(names, proxy, strict=True)}
        chosen = [k for k, g in enumerate(gold) if g] or [0]
        ratings = [{"correct": float(g)} for g in gold]
        exs.append(Example(f"p{p}", [user("q")], names, chosen, subset="s", ratings=ratings))
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=20, include_length_baseline=False)
    bon = res["rm"].analyses["best_of_n"]
    assert bon["n"][-1] == 8 and bon["n_pools"][0] == 6 and bon["n_pools"][-1] == 3
    big = [(p, g) for p, g in pools if len(p) == 8]
    want = np.mean([expected_bon(p, g, 8, "random") - np.mean(g) for p, g in big])
    assert bon["gain"] == pytest.approx(want) and want == pytest.approx(1 / 18)
    assert bon["gain_pools"] == 3
    assert bon["gain"] != pytest.approx(bon["gold"][-1] - bon["gold"][0])

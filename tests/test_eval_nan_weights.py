"""Count weights are each reward's own evaluable (non-NaN) examples; published RewardBench
weights stay published, also when `--benchmark rewardbench1` meets a subset outside its table;
a section of single-outcome subsets prints no CI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.report import plain_table
from rewardkit.types import Example, user

NAN = math.nan


def _pair(i: str, subset: str, section: str | None, c: float, r: float, table: dict) -> Example:
    table[f"c{i}"], table[f"r{i}"] = c, r
    meta = {"section": section} if section else {}
    return Example(i, [user(f"q{i}")], [f"c{i}", f"r{i}"], [0], subset=subset, meta=meta)


def _nan_data() -> tuple[list[Example], dict[str, float]]:
    """Section A: s1 = 10 pairs, 8 scored NaN, 2 right; s2 = 2 wrong. Section B: s3 = 1 right."""
    table: dict[str, float] = {}
    exs = [_pair(f"a{i}", "s1", "A", NAN if i < 8 else 2.0, 1.0, table) for i in range(10)]
    exs += [_pair(f"b{i}", "s2", "A", 0.0, 1.0, table) for i in range(2)]
    exs += [_pair("c0", "s3", "B", 2.0, 1.0, table)]
    return exs, table


def test_nan_scored_examples_carry_no_weight(fake_reward) -> None:
    exs, table = _nan_data()
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=50, include_length_baseline=False)
    r = res["rm"]
    assert r.subsets["s1"].n == 2 and r.subsets["s1"].n_nan == 8
    assert r.subsets["s1"].weight == 2 and r.subsets["s2"].weight == 2
    assert r.sections["A"].score == pytest.approx(0.5)  # (2·1 + 2·0) / 4, not 10/12
    assert r.sections["A"].n == 4
    assert r.score == pytest.approx(0.75)
    text = plain_table(res)
    cells = [line.split() for line in text.split("\n\n")[0].splitlines()[2:]]
    rows = {c[0]: c[1] for c in cells if len(c) > 1}
    assert rows["A"] == "4" and rows["s1"] == "2" and rows["Score"] == "5"
    assert " 50.0" in text and "75.0" in text


def test_side_by_side_rewards_get_their_own_weights(fake_reward) -> None:
    exs, table = _nan_data()
    full = {k: (2.0 if math.isnan(v) else v) for k, v in table.items()}  # scores every row
    res = evaluate(
        exs, [fake_reward(table, "nan"), fake_reward(full, "full")], n_boot=50,
        include_length_baseline=False,
    )  # fmt: skip
    assert res["nan"].subsets["s1"].weight == 2 and res["full"].subsets["s1"].weight == 10
    assert res["nan"].sections["A"].score == pytest.approx(0.5)
    assert res["full"].sections["A"].score == pytest.approx(10 / 12)
    md = res.to_markdown()
    assert "| **A** | 12 |" in md and "(n=4)" in md  # the NaN reward's own n beside its cell


def test_judgebench_pools_only_the_pairs_a_reward_scored(fake_reward, tmp_path: Path) -> None:
    rows = [
        {"pair_id": f"k{i}", "source": "mmlu-pro-law", "question": f"q{i}",
         "response_A": f"A{i}", "response_B": f"B{i}", "label": "A>B"}
        for i in range(6)
    ] + [
        {"pair_id": f"m{i}", "source": "livebench-math", "question": f"m{i}",
         "response_A": f"MA{i}", "response_B": f"MB{i}", "label": "A>B"}
        for i in range(2)
    ]  # fmt: skip
    path = tmp_path / "jb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = {f"A{i}": NAN if i < 5 else 2.0 for i in range(6)} | {f"B{i}": 1.0 for i in range(6)}
    table |= {f"MA{i}": 0.0 for i in range(2)} | {f"MB{i}": 1.0 for i in range(2)}
    res = evaluate(load(path), [fake_reward(table, "rm")], n_boot=50, include_length_baseline=False)
    assert res.settings["benchmark"] == "judgebench"
    r = res["rm"]
    assert r.score == pytest.approx(1 / 3)  # 1 right of the 3 scored pairs
    assert r.sections["knowledge"].weight == 1 and r.sections["math"].weight == 2


def _rb1(sub: str, i: int, right: bool, table: dict) -> Example:
    return _pair(f"{sub}{i}", sub, None, 2.0 if right else 0.0, 1.0, table)


def test_published_weights_stay_and_an_unscored_subset_drops_out(fake_reward) -> None:
    table: dict[str, float] = {}
    exs = [_rb1("alpacaeval-easy", i, True, table) for i in range(3)]
    exs += [_rb1("mt-bench-med", i, False, table) for i in range(2)]
    for i in range(3):
        table[f"calpacaeval-easy{i}"] = NAN  # no evaluable example left in alpacaeval-easy
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=50, include_length_baseline=False)
    r = res["rm"]
    assert res.settings["weighting"] == "published"
    assert r.subsets["alpacaeval-easy"].weight == 100  # published count, unchanged
    assert r.sections["Chat"].score == 0.0  # mt-bench-med alone


def test_forced_rewardbench1_keeps_published_weights_beside_unknown_subsets(fake_reward) -> None:
    table: dict[str, float] = {}
    exs = [_rb1("alpacaeval-easy", i, False, table) for i in range(3)]
    exs += [_rb1("mt-bench-med", 0, True, table), _rb1("anthropic_helpful", 0, True, table)]
    exs += [_rb1("shp", 0, False, table)]
    exs += [_rb1("anthropic_harmless", i, True, table) for i in range(2)]
    exs += [_rb1("my-custom", 0, True, table)]
    res = evaluate(
        exs, [fake_reward(table, "rm")], benchmark="rewardbench1", n_boot=50,
        include_length_baseline=False,
    )  # fmt: skip
    r = res["rm"]
    assert r.sections["Chat"].score == pytest.approx(40 / 140)  # published 100 and 40
    assert r.sections["Prior Sets (0.5 weight)"].score == pytest.approx(0.5)  # harmless: weight 0
    assert r.subsets["my-custom"].weight == 0 and math.isnan(r.sections["my-custom"].score)
    assert r.score == pytest.approx((2 * 40 / 140 + 0.5) / 3)
    notes = " ".join(res.settings["notes"])
    assert "['my-custom'] are not RewardBench (v1) subsets: shown, not scored" in notes
    assert "  my-custom" in plain_table(res)  # its accuracy is still shown, on a sub-row


def test_a_section_of_single_outcome_subsets_prints_no_ci(fake_reward) -> None:
    table: dict[str, float] = {}
    exs = [_pair(f"s{k}", f"sub{k}", "Safety", float(k % 2), 0.5, table) for k in range(3)]
    exs += [_pair(f"o{k}", "other", "Other", 1.0, 0.0, table) for k in range(4)]
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=50, include_length_baseline=False)
    assert res["rm"].sections["Safety"].ci[0] == res["rm"].sections["Safety"].ci[1]
    line = next(x for x in plain_table(res).splitlines() if x.startswith("Safety"))
    assert "[" not in line  # a zero-width interval is no CI
    assert "whose scored subsets each hold fewer than 2" in res.to_markdown()

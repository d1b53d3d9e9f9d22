"""``evaluate`` end to end with fake rewards that return fixed scores."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate, ties_score
from rewardkit.rewards.rules.length import LengthReward
from rewardkit.types import (
    Capability,
    Example,
    PairwiseResult,
    Query,
    Reward,
    ScoreResult,
    user,
)


class TableReward(Reward):
    """Returns a fixed score per response text; records how it was called."""

    def __init__(self, table: dict[str, float], name: str = "fake", stats: dict | None = None):
        self.table = table
        self.name = name
        self.calls: list[int] = []
        self._stats = stats

    def identity(self):
        return {"class": "TableReward", "name": self.name}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        self.calls.append(len(queries))
        scores = np.array([self.table[q.response] for q in queries], dtype=np.float64)
        return ScoreResult(scores, stats=self._stats or {})


class MultiReward(TableReward):
    objectives = ("helpful", "safe")

    def _score(self, queries):
        self.calls.append(len(queries))
        base = np.array([self.table[q.response] for q in queries])
        return np.stack([base, -base], axis=1)


def pairs_dataset(spec: dict[str, list[tuple[float, float]]], *, chosen_second: bool = False):
    """Examples from (score_chosen, score_rejected) pairs per subset, and the score table."""
    examples, table = [], {}
    for subset, pairs in spec.items():
        for i, (c, r) in enumerate(pairs):
            rc, rr = f"{subset}/{i}/chosen", f"{subset}/{i}/rejected"
            table[rc], table[rr] = c, r
            responses, chosen = ([rr, rc], [1]) if chosen_second and i % 2 else ([rc, rr], [0])
            examples.append(
                Example(
                    id=f"{subset}-{i}",
                    prompt=[user(f"prompt {subset} {i}")],
                    responses=responses,
                    chosen=chosen,
                    subset=subset,
                )
            )
    return examples, table


# A RewardBench-v1-shaped dataset over four sections, with exact score ties and one NaN.
RB1_PAIRS = {
    "alpacaeval-easy": [(2, 1), (1, 2), (3, 3), (5, 0)],  # strict 2/4; half 2.5/4
    "mt-bench-med": [(1, 0), (1, 0), (0, 1)],  # 2/3
    "llmbar-natural": [(0, 0), (1, 2)],  # strict 0; half 0.25
    "xstest-should-refuse": [(1, 0)],  # 1
    "donotanswer": [(0, 1), (2, 1)],  # 1/2
    "math-prm": [(1, 1), (2, 1), (3, 1)],  # strict 2/3
    "hep-python": [(0, 1), (0, 1), (1, 0), (1, 1), (float("nan"), 0)],  # strict 1/4, 1 NaN
}

# reward-bench's EXAMPLE_COUNTS and SUBSET_MAPPING, written out independently for the test.
RB_COUNTS = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "math-prm": 984,
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
RB_MAPPING = {
    "Chat": [
        "alpacaeval-easy",
        "alpacaeval-length",
        "alpacaeval-hard",
        "mt-bench-easy",
        "mt-bench-med",
    ],
    "Chat Hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "Safety": [
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}


def reference_sections(example_counts, subset_mapping, metrics):
    """Independent re-implementation of reward-bench ``calculate_scores_per_section``:
    for each section, sum acc * count over the subsets present, divided by their counts."""
    out = {}
    for section, tests in subset_mapping.items():
        weighted, total = 0.0, 0
        for test in tests:
            if test in metrics:
                weighted += metrics[test] * example_counts[test]
                total += example_counts[test]
        out[section] = weighted / total if total > 0 else 0
    return out


def test_rb1_strict_matches_independent_reward_bench_formula():
    examples, table = pairs_dataset(RB1_PAIRS, chosen_second=True)
    res = evaluate(examples, [TableReward(table)], ties="strict", include_length_baseline=False)
    assert res.settings["benchmark"] == "rewardbench1"
    assert res.settings["weighting"] == "published"
    row = res["fake"]

    # per-example outcomes, as reward-bench would have them (results column: 1 / 0)
    by_subset: dict[str, list[float]] = {}
    for rec in row.examples:
        if rec.outcome is not None:
            by_subset.setdefault(rec.subset, []).append(rec.outcome)
    assert all(o in (0.0, 1.0) for v in by_subset.values() for o in v)  # strict: no 0.5
    metrics = {s: sum(v) / len(v) for s, v in by_subset.items()}
    expected = reference_sections(RB_COUNTS, RB_MAPPING, metrics)

    for sec in ("Chat", "Chat Hard", "Safety", "Reasoning"):
        assert row.sections[sec].score == pytest.approx(expected[sec], abs=1e-12)
    # and by hand
    chat = (100 * 0.5 + 40 * 2 / 3) / 140
    chat_hard = 0.0
    safety = (154 * 1 + 136 * 0.5) / 290
    reasoning = (984 * 2 / 3 + 164 * 0.25) / 1148
    assert row.sections["Chat"].score == pytest.approx(chat, abs=1e-12)
    assert row.sections["Chat Hard"].score == pytest.approx(chat_hard, abs=1e-12)
    assert row.sections["Safety"].score == pytest.approx(safety, abs=1e-12)
    assert row.sections["Reasoning"].score == pytest.approx(reasoning, abs=1e-12)
    assert row.score == pytest.approx((chat + chat_hard + safety + reasoning) / 4, abs=1e-12)
    assert row.score == pytest.approx(0.480070, abs=5e-7)

    # the NaN example is excluded and counted, not a loss
    assert row.subsets["hep-python"].n == 4
    assert row.subsets["hep-python"].n_nan == 1
    assert row.n_nan == 1
    assert row.subsets["math-prm"].weight == 984


def test_half_ties_differ_from_strict():
    examples, table = pairs_dataset(RB1_PAIRS)
    half = evaluate(examples, [TableReward(table)], include_length_baseline=False)["fake"]
    strict = evaluate(examples, [TableReward(table)], ties="strict", include_length_baseline=False)[
        "fake"
    ]
    assert half.subsets["alpacaeval-easy"].score == 2.5 / 4
    assert strict.subsets["alpacaeval-easy"].score == 2 / 4
    assert half.subsets["llmbar-natural"].score == 0.25
    assert strict.subsets["llmbar-natural"].score == 0.0
    tie = next(e for e in half.examples if e.id == "alpacaeval-easy-2")
    assert tie.outcome == 0.5


def test_score_called_once_per_reward_and_length_baseline_added():
    examples, table = pairs_dataset({"a": [(1, 0), (0, 1)], "b": [(2, 1)]})
    fake = TableReward(table)
    res = evaluate(examples, [fake])
    assert fake.calls == [6]  # every response of every example, in one call
    assert res.names == ["fake", "rule:length"]
    assert res["rule:length"].fingerprint == LengthReward().fingerprint()
    # no second length baseline when one is given
    res2 = evaluate(examples, [fake, LengthReward()])
    assert res2.names == ["fake", "rule:length"]
    res3 = evaluate(examples, [fake], include_length_baseline=False)
    assert res3.names == ["fake"]


def test_length_baseline_scores_by_length():
    ex = [
        Example(
            id="1", prompt=[user("q")], responses=["long answer", "short"], chosen=[0], subset="s"
        ),
        Example(
            id="2", prompt=[user("q")], responses=["long answer", "short"], chosen=[1], subset="s"
        ),
        Example(id="3", prompt=[user("q")], responses=["same", "size"], chosen=[1], subset="s"),
    ]
    res = evaluate(ex, [])
    assert res.names == ["rule:length"]
    assert [e.outcome for e in res["rule:length"].examples] == [1.0, 0.0, 0.5]
    assert res["rule:length"].examples[0].scores == [11.0, 5.0]


def test_generic_dataset_uses_actual_counts_and_meta_sections():
    examples, table = pairs_dataset(
        {"x": [(1, 0)] * 3 + [(0, 1)], "y": [(0, 1)] * 2, "z": [(1, 0)]}
    )
    for ex in examples:
        ex.meta["section"] = "Z" if ex.subset == "z" else "S"
    res = evaluate(examples, [TableReward(table)], include_length_baseline=False)
    assert res.settings["benchmark"] == "generic"
    assert res.settings["weighting"] == "actual"
    row = res["fake"]
    # S pools x (3/4, weight 4) and y (0/2, weight 2): (3 + 0) / 6
    assert row.sections["S"].score == pytest.approx(0.5)
    assert row.sections["Z"].score == 1.0
    assert row.score == pytest.approx(0.75)
    assert res.dataset["section_order"] == ["S", "Z"]


def test_weighting_actual_overrides_published():
    examples, table = pairs_dataset({"math-prm": [(1, 0), (0, 1)], "hep-go": [(1, 0)] * 3})
    pub = evaluate(examples, [TableReward(table)], include_length_baseline=False)["fake"]
    act = evaluate(
        examples, [TableReward(table)], weighting="actual", include_length_baseline=False
    )["fake"]
    assert pub.sections["Reasoning"].score == pytest.approx((984 * 0.5 + 164 * 1) / 1148)
    assert act.sections["Reasoning"].score == pytest.approx((2 * 0.5 + 3 * 1) / 5)
    with pytest.raises(ValueError, match="published"):
        evaluate(pairs_dataset({"mine": [(1, 0)]})[0], [], weighting="published")


def test_rewardbench2_best_of_4_and_ties():
    table: dict[str, float] = {}
    examples = []

    def add(ex_id, subset, scores, chosen):
        responses = [f"{ex_id}/{j}" for j in range(len(scores))]
        table.update(zip(responses, scores, strict=True))
        examples.append(
            Example(
                id=ex_id, prompt=[user(ex_id)], responses=responses, chosen=chosen, subset=subset
            )
        )

    add("f1", "Factuality", [2, 1, 0, -1], [0])  # 1
    add("f2", "Factuality", [2, 2, 0, -1], [0])  # 0.5
    add("m1", "Math", [1, 2, 0, 0], [0])  # 0
    add("ref:7", "Ties", [3.0, 1.0, 0.5, 0.0], [0])
    add("tied:7", "Ties", [2.8, 2.0, 1.6, 1.5, 0.2], [0, 1, 2])

    res = evaluate(examples, [TableReward(table)], include_length_baseline=False)
    assert res.settings["benchmark"] == "rewardbench2"
    row = res["fake"]
    assert row.subsets["Factuality"].score == 0.75
    assert row.subsets["Math"].score == 0.0
    assert row.subsets["Ties"].rule == "ties"
    assert row.subsets["Ties"].score == pytest.approx(0.592757, abs=5e-7)

    def f32(xs):
        return np.asarray(xs, dtype=np.float32)  # Reward.score returns float32

    ties_expected = ties_score(
        [
            ("ref:7", f32([3.0, 1.0, 0.5, 0.0]), [0]),
            ("tied:7", f32([2.8, 2.0, 1.6, 1.5, 0.2]), [0, 1, 2]),
        ]
    )
    assert row.subsets["Ties"].score == ties_expected
    assert set(row.sections) == {"Factuality", "Math", "Ties"}  # each subset its own domain
    assert row.score == pytest.approx((0.75 + 0.0 + ties_expected) / 3, abs=1e-15)
    assert [e.rule for e in row.examples][-2:] == ["ties", "ties"]
    strict = evaluate(examples, [TableReward(table)], ties="strict", include_length_baseline=False)
    assert strict["fake"].subsets["Factuality"].score == 0.5


def test_multi_correct_outside_ties_uses_all_above():
    table = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 2.5}
    ex = [
        Example(id="1", prompt=[user("q")], responses=["a", "b", "c"], chosen=[0, 1], subset="s"),
        Example(id="2", prompt=[user("q")], responses=["a", "b", "d"], chosen=[0, 1], subset="s"),
    ]
    row = evaluate(ex, [TableReward(table)], include_length_baseline=False)["fake"]
    assert [e.outcome for e in row.examples] == [1.0, 0.0]
    assert [e.rule for e in row.examples] == ["all_correct", "all_correct"]


def test_skipped_examples_are_counted_with_reasons():
    examples, table = pairs_dataset({"s": [(1, 0), (0, 1)]})
    table.update({"x": 1.0, "y": 2.0, "only": 0.0})
    examples += [
        Example(id="tie", prompt=[user("q")], responses=["x", "y"], chosen=[0, 1], subset="s"),
        Example(id="nochosen", prompt=[user("q")], responses=["x", "y"], chosen=[], subset="s"),
        Example(id="single", prompt=[user("q")], responses=["only"], chosen=[0], subset="s"),
    ]
    res = evaluate(examples, [TableReward(table)], include_length_baseline=False)
    ds = res.dataset
    assert ds["n_skipped"] == 3
    assert ds["skipped"] == {
        "labelled tie": 1,
        "no chosen response": 1,
        "fewer than two responses": 1,
    }
    assert ds["skipped_ids"]["labelled tie"] == ["tie"]
    row = res["fake"]
    assert row.subsets["s"].n == 2 and row.subsets["s"].score == 0.5
    rec = next(e for e in row.examples if e.id == "tie")
    assert rec.outcome is None and rec.skipped == "labelled tie" and rec.scores == [1.0, 2.0]


def test_nan_scores_excluded_not_counted_as_loss():
    examples, table = pairs_dataset({"s": [(1, 0), (float("nan"), 0), (0, float("nan"))]})
    row = evaluate(examples, [TableReward(table)], include_length_baseline=False)["fake"]
    assert row.subsets["s"].score == 1.0
    assert row.subsets["s"].n == 1 and row.subsets["s"].n_nan == 2
    assert row.examples[1].outcome is None
    assert math.isnan(row.examples[1].scores[0])


def test_objectives_become_separate_columns():
    examples, table = pairs_dataset({"s": [(1, 0), (1, 0), (0, 1)]})
    multi = MultiReward(table, name="armo")
    res = evaluate(examples, [multi], include_length_baseline=False)
    assert multi.calls == [6]
    assert res.names == ["armo[helpful]", "armo[safe]"]
    assert res["armo[helpful]"].score == pytest.approx(2 / 3)
    assert res["armo[safe]"].score == pytest.approx(1 / 3)  # negated scores
    assert res["armo[safe]"].objective == "safe"
    assert res["armo[safe]"].reward == "armo"


def test_stats_and_fingerprint_recorded():
    examples, table = pairs_dataset({"s": [(1, 0)]})
    fake = TableReward(table, stats={"truncated": 2, "computed": 2, "cached": 0})
    row = evaluate(examples, [fake], include_length_baseline=False)["fake"]
    assert row.stats == {"truncated": 2, "computed": 2, "cached": 0}
    assert row.n_truncated == 2
    assert row.fingerprint == fake.fingerprint()
    assert row.seconds >= 0


def test_ci_reported_and_contains_score():
    examples, table = pairs_dataset(
        {"hep-go": [(1, 0)] * 30 + [(0, 1)] * 10, "donotanswer": [(1, 0), (0, 1)] * 10}
    )
    row = evaluate(examples, [TableReward(table)], include_length_baseline=False, n_boot=500)[
        "fake"
    ]
    for g in [*row.subsets.values(), *row.sections.values()]:
        assert g.ci[0] <= g.score <= g.ci[1]
        assert g.ci[0] < g.ci[1]
    assert row.ci[0] <= row.score <= row.ci[1]


def test_bad_inputs():
    examples, _table = pairs_dataset({"s": [(1, 0)]})
    with pytest.raises(ValueError, match="ties"):
        evaluate(examples, [], ties="maybe")
    with pytest.raises(ValueError, match="benchmark"):
        evaluate(examples, [], benchmark="rb3")
    with pytest.raises(ValueError, match="at least one example"):
        evaluate([], [])
    bad = Example(id="bad", prompt=[user("q")], responses=["a", "b"], chosen=[2], subset="s")
    with pytest.raises(DataError, match="out of range"):
        evaluate([bad], [])
    mixed = pairs_dataset({"s": [(1, 0), (1, 0)]})[0]
    mixed[0].meta["section"] = "A"
    mixed[1].meta["section"] = "B"
    with pytest.raises(DataError, match="one section"):
        evaluate(mixed, [])


class _FakePairwiseJudge(Reward):
    """Prefers the longer response; in 'forward' order it is biased towards slot A."""

    name = "fake-pairwise"
    capabilities = frozenset({Capability.PAIRWISE})

    def _score(self, queries):
        return np.full(len(queries), np.nan)

    def compare_many(self, prompts, a, b):
        p = np.array(
            [0.5 if len(x) == len(y) else float(len(x) > len(y)) for x, y in zip(a, b, strict=True)]
        )
        forward = np.full(len(a), 0.9)  # always "A" when a is shown first
        reverse = p  # the honest verdict; ties (0.5) are left out of the bias
        return PairwiseResult(p=p, p_forward=forward, p_reverse=reverse)


def test_pairwise_native_judges_are_scored_by_compare_and_report_position_bias(tmp_path):
    prompt = [{"role": "user", "content": "q"}]
    examples = [
        Example("p1", prompt, ["long answer", "no"], [0], subset="s"),  # chosen longer: right
        Example("p2", prompt, ["ok", "much longer"], [0], subset="s"),  # chosen shorter: wrong
        Example("p3", prompt, ["same", "size"], [1], subset="s"),  # equal length: tie, 0.5
        Example("p4", prompt, ["a", "bb", "ccc"], [2], subset="s"),  # best of 3: beats both
    ]
    result = evaluate(examples, [_FakePairwiseJudge()], include_length_baseline=False, n_boot=20)
    r = result.rewards[0]
    assert [e.outcome for e in r.examples] == [1.0, 0.0, 0.5, 1.0]
    assert r.n_nan == 0
    # per-response score: mean P(win) over the pairs the response was in
    assert r.examples[3].scores == [0.0, 0.0, 1.0]
    # forward always says A (the chosen): p2 flips; p1 and p4's two pairs do not; p3 (a tie)
    # is left out -> 1/4
    assert r.position_bias == pytest.approx(0.25)
    paths = result.write_reports(tmp_path)
    assert json.loads(paths["json"].read_text())["rewards"][0]["position_bias"] == pytest.approx(
        0.25
    )
    assert "position bias" in paths["markdown"].read_text()


def test_pairwise_judges_on_style_matrix_best_of_k_and_all_correct_rows():
    from rewardkit.evaluate.run import pair_matrix_outcome

    prompt = [{"role": "user", "content": "q"}]
    rm = Example("rm", prompt, ["xxxxx", "x", "xxx", "xx", "xxxx", "yyy"], [0, 1, 2], subset="chat")
    rm.meta["style_matrix"] = True
    examples = [
        rm,  # chosen lengths 5, 1, 3 vs rejected 2, 4, 3: cells 1 1 1 / 0 0 0 / 1 0 .5 -> 4.5/9
        Example("bok", prompt, ["aa", "bb", "c"], [0], subset="s"),  # tie with one, beats one
        Example("ac", prompt, ["aaa", "bbb", "c", "dd"], [0, 1], subset="s"),  # all beat all
    ]
    half = evaluate(examples, [_FakePairwiseJudge()], include_length_baseline=False, n_boot=20)
    assert [e.outcome for e in half.rewards[0].examples] == [0.5, 0.5, 1.0]
    strict = evaluate(
        examples, [_FakePairwiseJudge()], include_length_baseline=False, n_boot=20, ties="strict"
    )
    assert [e.outcome for e in strict.rewards[0].examples] == [4 / 9, 0.0, 1.0]
    # the rule by hand
    assert pair_matrix_outcome(np.array([[1.0, 0.5, 0.5]]), "best_of_k") == pytest.approx(1 / 3)
    assert pair_matrix_outcome(np.array([[1.0, 0.0]]), "best_of_k") == 0.0
    assert pair_matrix_outcome(np.array([[1.0, 1.0], [1.0, 0.5]]), "all_correct") == 0.0
    assert np.isnan(pair_matrix_outcome(np.array([[1.0, np.nan]]), "style_matrix"))

"""Cards E1, E4, E5, E6, F1, F3, F5, F8 against the code: the worked numbers the cards state
(docs/methods/<ID>-*.md) and the edge cases they promise, plus the matching CLI verbs with
hostile input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.combine.aggregate import aggregate, lambda_harmonic
from rewardkit.curate.consistency import consistency_filter, ordinal_ranks, ranking_consistency
from rewardkit.curate.filtering import example_scores, filter_by_reward
from rewardkit.curate.noise import NoiseConfig, detect_noise, flip_lowest
from rewardkit.curate.strength import preference_strength
from rewardkit.errors import DataError
from rewardkit.evaluate.detect import auroc, detect, tpr_at_fpr
from rewardkit.inference.best_of_n import select_best, select_worst
from rewardkit.inference.mining import annotate_pairs, mine_pairs
from rewardkit.multimodal import search as S
from rewardkit.types import Example, Query, Reward, user

runner = CliRunner()


def _pair(i: int, source: str | None = None) -> Example:
    return Example(f"e{i}", [user(f"q{i}")], [f"a{i}", f"b{i}"], [0], source=source)


class Fixed(Reward):
    """Scores from a table keyed by response text (NaN for an unknown text); counts calls."""

    name = "fixed"

    def __init__(self, table: dict[str, float]) -> None:
        super().__init__()
        self.table, self.calls = table, 0

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return np.array([self.table.get(str(q.response), math.nan) for q in queries])


# --- E1 -----------------------------------------------------------------------------------


def test_e1_worked_numbers_and_lowest_frac_rule():
    mean, std = preference_strength(np.array([[0.8, 1.2, 0.5], [-0.3, 0.1, -0.4]]))
    np.testing.assert_allclose(mean, [0.833333, -0.2], atol=1e-6)
    np.testing.assert_allclose(std, [0.286744, 0.216025], atol=1e-6)
    exs = [_pair(i) for i in range(6)]
    mu = np.array([-3.0, 2.0, -1.0, np.nan, 1.0, -3.0])  # 5 scored pairs, one unscored
    # floor(0.2 · 5) = 1: the lowest μ, ties → the earlier pair
    out = flip_lowest(exs, mu, 0.2)
    assert [e.meta.get("flipped", False) for e in out] == [True] + [False] * 5
    # floor(1.0 · 5) = 5 wanted, but only the three pairs with μ < 0 can be flipped
    out = flip_lowest(exs, mu, 1.0)
    assert [e.id for e in out if e.meta.get("flipped")] == ["e0", "e2", "e5"]


def test_e1_no_strength_at_all_warns():
    with pytest.warns(UserWarning, match="none of the 2 examples has a strength"):
        res = detect_noise([_pair(0), _pair(1)], np.full((2, 2), np.nan), NoiseConfig())
    assert res.counts["scored_pairs"] == 0 and res.counts["flagged"] == 0


# --- E4 -----------------------------------------------------------------------------------


def test_e4_tie_examples():
    # a reward with no preference: C = 0.5; ordinal ranks would break the tie by position and
    # "agree" fully with (1, 2)
    assert ranking_consistency([0.0, 0.0], [1.0, 2.0]) == 0.5
    assert ordinal_ranks([0.0, 0.0]).tolist() == ordinal_ranks([1.0, 2.0]).tolist()
    assert ranking_consistency([1.0, 1.0, 2.0], [1.0, 1.0, 3.0]) == 1.0  # τ-b = 1
    assert ranking_consistency([0.0, 0.0], [1.0, 2.0], "spearman") == 0.5  # ρ = 0
    assert ranking_consistency([1.0, 1.0, 2.0], [3.0, 2.0, 1.0], "toporder") == 0.5


def test_e4_label_pairs_measure_the_rewards_not_the_label():
    # both rewards prefer the rejected response: they agree with each other (C = 1), so the
    # label stays hard, as the card says (use curate noise for votes against the label)
    ex = _pair(0)
    res = consistency_filter([ex], [np.array([0.0, 1.0])], [np.array([0.0, 5.0])])
    assert res.examples[0].meta["label_confidence"] == 1.0


def test_e4_best_worst_ties_are_left_out_and_nothing_scored_warns():
    exs = [Example("t", [user("q")], ["x", "y", "z"], [0]), _pair(1)]
    res = consistency_filter(
        exs,
        [np.array([1.0, 1.0, 1.0]), np.array([2.0, 1.0])],
        [np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0])],
        pairs="best_worst",
    )
    assert [e.id for e in res.examples] == ["e1"] and res.counts["skipped_equal"] == 1
    with pytest.warns(UserWarning, match="none of the 1 examples was ranked"):
        res = consistency_filter([_pair(0)], [np.array([np.nan, 1.0])], [np.array([1.0, 2.0])])
    assert "label_confidence" not in res.examples[0].meta


# --- E5 / F1 ------------------------------------------------------------------------------


def test_e5_density_ratio_pair_and_margin():
    (pair,) = mine_pairs([user("q")], ["A", "B", "C"], [3.5, 1.2, -0.4])
    assert pair.responses == ["A", "C"] and pair.chosen == [0]
    assert pair.meta["margin"] == pytest.approx(3.9)
    reward = Fixed({"A": 3.5, "B": 1.2, "C": -0.4})
    out = annotate_pairs([[user("q")]], lambda p, k: ["A", "B", "C"][:k], reward, k=3)
    assert reward.calls == 1 and [e.responses for e in out] == [["A", "C"]]
    assert annotate_pairs([[user("q")]], lambda p, k: ["A", "B", "C"], reward, min_gap=4.0) == []


def test_f1_selection_and_mining_edges():
    assert select_best([0.2, math.nan, 0.9, 0.9]) == 2
    assert select_best([math.nan, -math.inf]) == 1  # NaN never wins, not even against −inf
    assert select_best([math.nan, math.nan]) == 0
    assert select_worst([1.0, 0.0, 0.0]) == 1
    assert mine_pairs([user("q")], ["a", "b"], [math.inf, math.inf]) == []  # inf − inf = NaN
    assert mine_pairs([user("q")], ["a", "b"], [1.0, 1.0]) == []  # a gap must be > 0
    assert mine_pairs([user("q")], ["a", "a"], [2.0, 1.0]) == []  # identical texts


# --- E6 -----------------------------------------------------------------------------------


def test_e6_worked_example_and_no_score_warns():
    chosen = [0.9, 0.2, 0.7, 0.4, 0.1, 0.6]
    exs = [_pair(i, "web" if i < 4 else "books") for i in range(6)]
    s = example_scores(exs, [np.array([c, 0.0]) for c in chosen])
    res = filter_by_reward(exs, s)
    assert [e.id for e in res.examples] == ["e0", "e2", "e5"]
    assert res.cutoffs == {"web": 0.7, "books": 0.6}
    # ⌈f · n_s⌉ counts the scored examples of a source: 3 scored of 4 → ⌈1.5⌉ = 2
    s2 = np.array([0.9, np.nan, 0.7, 0.4, 0.1, 0.6])
    assert filter_by_reward(exs, s2).counts["web"] == {"examples": 4, "unscored": 1, "kept": 2}
    with pytest.warns(UserWarning, match="none of the 6 examples has a score"):
        assert filter_by_reward(exs, np.full(6, np.nan)).examples == []


def _data(tmp_path, rows, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_e6_worked_example_through_the_cli(tmp_path):
    # rule:length scores the chosen texts 9, 2, 7, 4 (web) and 1, 6 (books): the card's numbers × 10
    rows = [
        {"id": f"e{i}", "prompt": "p", "chosen": "x" * n, "rejected": "", "source": src}
        for i, (n, src) in enumerate(
            zip([9, 2, 7, 4, 1, 6], ["web"] * 4 + ["books"] * 2, strict=True)
        )
    ]
    data, out = _data(tmp_path, rows), tmp_path / "kept.jsonl"
    res = runner.invoke(app, ["curate", "filter", "--data", str(data), "--out", str(out),
                              "-r", "rule:length"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["e0", "e2", "e5"]
    assert json.loads(res.stdout.splitlines()[-1])["cutoffs"] == {"web": 7.0, "books": 6.0}
    res = runner.invoke(app, ["curate", "filter", "--data", str(data), "--out", str(out),
                              "-r", "rule:length", "--keep", "threshold", "--value", "6.5"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["e0", "e2"]


# --- F3 -----------------------------------------------------------------------------------


def test_f3_worked_example_and_nan_below_minus_inf():
    steps, keep = [2, 6, 11], [0.4, 0.4, 0.5]
    assert S.ttsnap_cost(steps, keep, 20, 9.9, 1.2) == pytest.approx(51.864)
    assert S.bon_cost(20, 9.9, 1.2) == pytest.approx(199.2)
    # before: NaN was mapped to −inf, so a NaN earlier in the list beat a real −inf score
    assert S.best_first(np.array([np.nan, -np.inf, 0.0])).tolist() == [2, 1, 0]
    np.testing.assert_allclose(S.rank_sum(np.array([np.nan, -np.inf, 0.0])), [1, 2, 3])
    np.testing.assert_allclose(S.rank_sum(np.array([1.0, 1.0, np.nan])), [2.5, 2.5, 1])
    res = S.best_of_n_seeds(lambda s: s, lambda c: np.array([np.nan, -np.inf]), n=2)
    assert res.best_seed == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: S.ttsnap_seeds_for_budget(math.nan, [2], [0.5], 20, 1.0, 1.0), "budget"),
        (lambda: S.ttsnap_seeds_for_budget(10.0, [2], [0.5], 20, 0.0, 0.0), "costs nothing"),
        (lambda: S.bon_seeds_for_budget(10.0, 20, 0.0, 0.0), "costs nothing"),
        (lambda: S.bon_seeds_for_budget(math.inf, 20, 1.0, 1.0), "budget"),
        (lambda: S.bon_seeds_for_budget(1e308, 20, 1e-300, 0.0), "more than"),
        (lambda: S.ttsnap_cost([2], [0.5], 20, math.nan, 1.0), "x"),
        (lambda: S.ttsnap_cost([2], [0.5], 20, 1.0, -1.0), "y"),
        (lambda: S.ttsnap_cost([2], [0.5], 2.5, 1.0, 1.0), "n_steps"),
        (lambda: S.ttsnap_cost([2], ["half"], 20, 1.0, 1.0), "keep"),
    ],
)
def test_f3_hostile_budgets_and_costs(call, match):
    # before: NaN budget → 1 seed, x = y = 0 → ZeroDivisionError or a loop that never ended
    with pytest.raises(ValueError, match=match):
        call()


# --- F5 -----------------------------------------------------------------------------------


def test_f5_worked_numbers_and_lam():
    assert lambda_harmonic(0.8, 0.3)[0] == pytest.approx(0.436364, abs=1e-6)
    assert lambda_harmonic(0.8, 0.3, 0.25)[0] == pytest.approx(0.355556, abs=1e-6)
    three = aggregate(np.array([[0.5, 1.0, 0.25]]), "harmonic").values[0]
    assert three == pytest.approx(0.428571, abs=1e-6)  # 3 / (2 + 1 + 4)
    assert lambda_harmonic(0.8, 0.3, 0)[0] == pytest.approx(0.3)  # H₀ = s_txt
    assert lambda_harmonic([0.0], [0.3])[0] == 0.0  # failing one side fails the whole
    assert lambda_harmonic([np.nan], [0.3])[0] == pytest.approx(0.3)
    for lam in ("0.5", None, math.nan, True, 1.5):
        with pytest.raises(ValueError, match="lam must be a number in"):
            lambda_harmonic(0.8, 0.3, lam)  # type: ignore[arg-type]


# --- F8 -----------------------------------------------------------------------------------


def _det(i: int, origin: list[str]) -> Example:
    texts = [f"t{i}{j}" for j in range(len(origin))]
    return Example(f"d{i}", [user("q")], texts, [0], meta={"origin": origin})


def test_f8_worked_example_and_tpr_definition():
    assert auroc([2.1, 1.5], [0.3, 1.8]) == pytest.approx(0.75)
    # ⌈(1 − 0.5)·4⌉ = 2nd smallest human score (0.3) is the threshold: 2.1 and 1.5 above it
    assert tpr_at_fpr([2.1, 1.5, 0.2], [0.1, 0.3, 1.8, 2.0], 0.5) == pytest.approx(2 / 3)
    # at FPR 1 there is no threshold: every LLM text counts (before: a −inf one did not)
    assert tpr_at_fpr([-math.inf, 1.0], [0.0, 2.0], 1.0) == 1.0
    assert tpr_at_fpr([2.1, math.nan], [0.3], 0.0) == 1.0  # NaN left out


def test_f8_detect_refuses_missing_class_before_scoring_and_infinite_scores():
    reward = Fixed({"t00": 1.0, "t01": 0.0})
    with pytest.raises(DataError, match=r"det\.jsonl.*no response .* has meta.origin 'human'"):
        detect(reward, [_det(0, ["llm", "llm"])], n_boot=5, where="det.jsonl")
    assert reward.calls == 0
    inf = Fixed({"t00": 1.0, "t01": -math.inf})
    with pytest.raises(DataError, match=r"det\.jsonl.*example 'd0' \(response 1\)"):
        detect(inf, [_det(0, ["llm", "human"])], n_boot=5, where="det.jsonl")
    rep = detect(reward, [_det(0, ["llm", "human"])], n_boot=5)
    assert rep["auroc"] == 1.0 and rep["tpr_at_fpr"] == 1.0


# --- CLI verbs with hostile input ---------------------------------------------------------


def _fail(args: list[str]) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    return " ".join(res.output.split())


def test_cli_hostile_inputs(tmp_path):
    good = _data(tmp_path, [{"id": "a", "prompt": "p", "chosen": "xx", "rejected": "x"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "chosen": "xx", "rejected": "x"}\n{"id": \n')
    out = tmp_path / "o.jsonl"
    for verb in ("strength", "noise", "filter"):
        msg = _fail(["curate", verb, "--data", bad, "--out", out, "-r", "rule:length"])
        assert f"{bad}, line 2" in msg
        msg = _fail(["curate", verb, "--data", good, "--out", tmp_path, "-r", "rule:length"])
        assert "is a directory" in msg
    msg = _fail(["curate", "consistency", "--data", bad, "--out", out, "-r", "rule:length",
                 "-r", "rule:length"])  # fmt: skip
    assert f"{bad}, line 2" in msg
    _fail(["curate", "noise", "--data", good, "--out", out, "-r", "rule:length",
           "--min-margin", "nan"])  # fmt: skip
    _fail(["curate", "filter", "--data", good, "--out", out, "-r", "rule:length",
           "--value", "-0.5"])  # fmt: skip
    _fail(["curate", "consistency", "--data", good, "--out", out, "-r", "rule:length",
           "-r", "rule:length", "--soft", "0.3"])  # fmt: skip
    prompts = _data(tmp_path, [{"id": "p", "prompt": "hi"}], "p.jsonl")
    _fail(["bon", "--data", prompts, "--out", out, "-r", "rule:length", "--n", "0"])
    assert "is a directory" in _fail(["bon", "--data", prompts, "--out", tmp_path,
                                      "-r", "rule:length"])  # fmt: skip
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    msg = _fail(["detect", "eval", "-r", "rule:length", "--data", empty,
                 "--out", tmp_path / "r.json"])  # fmt: skip
    assert "needs both LLM-written and human-written" in msg
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_cli_all_nan_reward_warns_and_writes(tmp_path):
    data = _data(tmp_path, [{"id": "a", "prompt": "p", "chosen": "xx", "rejected": "x"}])
    out = tmp_path / "o.jsonl"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = runner.invoke(app, ["curate", "filter", "--data", str(data), "--out", str(out),
                                  "-r", "rule:gsm8k"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert any("none of the 1 examples has a score" in str(w.message) for w in seen)
    assert out.exists() and out.read_text() == ""


def test_f8_cli_refuses_a_missing_class_naming_the_file_before_any_reward_loads(tmp_path):
    data = tmp_path / "llm_only.jsonl"
    row = {"prompt": "q", "responses": ["a", "b"], "chosen": [0], "meta": {"origin": ["llm"] * 2}}
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    # a reward that could not load: the class check comes first and names the data file
    out = _fail(["detect", "eval", "-r", "classifier:/no/such/model", "--data", data])
    assert "llm_only.jsonl" in out and "meta.origin 'human'" in out and "/no/such" not in out

"""``rewardkit curate`` on odd-but-legal input: null margins, re-paired examples, weights that
were already low, option typos, repeated Crome attributes, invisible characters, many groups,
NaN persona settings, large GSM8K values (rule rewards and hand-built examples only)."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.consistency import consistency_filter
from rewardkit.curate.crome import RuleRewriter, crome_augment
from rewardkit.curate.dedup import dedup, normalize_text, rebalance
from rewardkit.curate.filtering import filter_by_reward
from rewardkit.curate.noise import NoiseConfig, detect_noise
from rewardkit.curate.personas import persona_pairs
from rewardkit.curate.steplabel import label_steps, perturb, reference_values
from rewardkit.curate.writers import write_openrlhf
from rewardkit.data import write_jsonl
from rewardkit.errors import DataError
from rewardkit.types import Example, user

runner = CliRunner()


def _pair(i: str, meta: dict | None = None, prompt: str = "q") -> Example:
    return Example(i, [user(prompt)], ["a long answer", "no"], [0], meta=dict(meta or {}))


def test_openrlhf_null_margin_is_null_and_text_margin_is_a_located_error(tmp_path):
    out = tmp_path / "o.jsonl"
    # null is what rewardkit writes for a NaN margin: reading it back must not crash the export
    assert write_openrlhf([_pair("n", {"margin": None}), _pair("m", {"margin": 2})], out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["margin"] for r in rows] == [None, 2.0]
    data = tmp_path / "in.jsonl"
    write_jsonl([_pair("bad-1", {"margin": "big"})], data)
    args = ["curate", "export", "--data", str(data), "--out", str(out), "--to", "openrlhf"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "'bad-1'" in res.output and "meta.margin" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_best_worst_pair_loses_the_old_pairs_margin():
    # the labelled pair (0, 1) had Δ = −1; best_worst re-pairs (2, 0): that Δ is not this pair's
    old = {"margin": -1.0, "strength": -1.0, "strength_std": 0.0, "weight": 0.5}
    ex = Example("b", [user("q")], ["a", "bb", "ccc"], [0], meta=old)
    a = [np.array([1.0, 2.0, 3.0])]
    res = consistency_filter([ex], a, [np.array([1.0, 3.0, 2.0])], pairs="best_worst", soft="dyn")
    (got,) = res.examples
    assert got.responses == ["ccc", "a"] and got.chosen == [0]
    assert "margin" not in got.meta and "strength" not in got.meta
    assert "strength_std" not in got.meta and got.meta["weight"] == 0.5
    # τ-b of (1,2,3) vs (1,3,2): C − D = 2 − 1 over 3 pairs → τ = 1/3, C = 2/3 (softened to C)
    assert got.meta["consistency"] == pytest.approx(2 / 3)
    assert got.meta["label_confidence"] == pytest.approx(2 / 3)


def test_downweight_never_raises_a_weight_and_reruns_are_stable():
    exs = [_pair("low", {"weight": 0.05}), _pair("high", {"weight": 0.5}), _pair("none")]
    deltas = np.full((3, 1), -1.0)
    cfg = NoiseConfig(action="downweight", weight=0.1)
    first = detect_noise(exs, deltas, cfg).examples
    assert [ex.meta["weight"] for ex in first] == [0.05, 0.1, 0.1]
    again = detect_noise(first, deltas, cfg).examples
    assert [ex.meta["weight"] for ex in again] == [0.05, 0.1, 0.1]


@pytest.mark.parametrize(
    ("verb", "args", "option"),
    [
        ("strength", ["-r", "rule:length", "--to", "TRL"], "--to"),
        (
            "consistency",
            ["-r", "rule:length", "-r", "rule:length", "--method", "pearson"],
            "--method",
        ),
        ("consistency", ["-r", "rule:length", "-r", "rule:length", "--pairs", "best"], "--pairs"),
        ("filter", ["-r", "rule:length", "--by", "best"], "--by"),
        ("noise", ["-r", "rule:length", "--action", "nuke"], "--action"),
        ("dedup", ["--on-conflict", "vote"], "--on-conflict"),
        ("export", ["--to", "jsonl", "--pairs", "best"], "--pairs"),
        ("crome", ["--causal", "length"], "not causal"),
    ],
)
def test_option_typos_are_refused_before_any_data_is_read(tmp_path, verb, args, option):
    missing = tmp_path / "not-there.jsonl"  # read first, this would be the error instead
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["curate", verb, "--data", str(missing), "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert option in res.output and "not-there" not in res.output and not out.exists()


def test_lengths_with_no_labelled_pair_says_so(tmp_path):
    data = tmp_path / "ties.jsonl"
    write_jsonl([Example("t", [user("q")], ["a", "bb"], [0, 1])], data)
    res = runner.invoke(app, ["curate", "lengths", "--data", str(data)])
    assert res.exit_code == 0 and "no labelled pairs in 1 examples" in res.output


def test_crome_repeated_attribute_makes_one_pair_and_wrong_kind_is_refused():
    exs = [_pair("g", prompt="2+2?"), _pair("h", prompt="3+3?")]
    exs = [Example(e.id, e.prompt, [f"It is {4 + 2 * k}.", "5"], [0]) for k, e in enumerate(exs)]
    aug = crome_augment(exs, RuleRewriter(), ["factual_error", "factual_error"], [], False)
    assert [a.responses for a in aug] == [["It is 4.", "It is 5."], ["It is 6.", "It is 7."]]
    assert len({a.id for a in aug}) == 2
    with pytest.raises(DataError, match="not causal"):
        crome_augment(exs, RuleRewriter(), ["length"], ["length"])
    with pytest.raises(DataError, match="not neutral"):
        crome_augment(exs, RuleRewriter(), [], ["missing_step"])


def test_invisible_characters_do_not_hide_duplicates():
    assert normalize_text("Pa\u200bris\ufeff") == normalize_text("Paris") == "paris"
    assert normalize_text("soft\u00adware \u2764\ufe0f") == normalize_text("software \u2764")
    assert normalize_text("x\u200b-1") != normalize_text("x1")  # meaning still kept
    exs = [
        Example("a", [user("Capital?")], ["Paris", "Rome"], [0]),
        Example("b", [user("\ufeffCapital?")], ["Pa\u200bris", "Rome"], [0]),
        Example("c", [user("Capital?")], ["Rome\u2060", "Paris"], [1]),
    ]
    res = dedup(exs)
    assert [e.id for e in res.examples] == ["a"]
    assert [(r["id"], r["reason"], r["of"]) for r in res.removed] == [
        ("b", "duplicate", "a"),
        ("c", "duplicate", "a"),
    ]
    assert len(dedup(exs, level="exact").examples) == 3


def test_many_groups_are_grouped_in_one_pass():
    n = 10_000  # one source / subset per example: was O(groups × n), minutes at this size
    exs = [
        Example(
            f"e{i}",
            [user(f"q{i}")],
            ["a" * (i % 3 + 1), "bb"],
            [0],
            subset=f"s{i}",
            source=f"src{i}",
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    res = filter_by_reward(exs, np.arange(n, dtype=float), "top_frac", 0.5)
    kept = rebalance(exs, "subset", seed=0)
    assert time.perf_counter() - start < 30.0  # ~1 s here; the quadratic version took minutes
    assert len(res.examples) == n  # ceil(0.5 · 1) = 1 of each one-example source
    # each subset holds one pair: a longer or shorter one is unbalanced and dropped, an
    # equal-length one ("aa" vs "bb", every third) is always kept
    assert [ex.id for ex in kept] == [f"e{i}" for i in range(n) if i % 3 == 1]


def test_persona_settings_that_would_fix_every_label_are_refused():
    exs = [_pair(f"e{i}", prompt=f"q{i}") for i in range(3)]
    for kw, what in [
        ({"jitter": float("nan")}, "jitter"),
        ({"personas": {}}, "at least one persona"),
        ({"personas": {"x": {"length": float("nan")}}}, "weight of 'length'"),
        ({"users_per_persona": 0}, "users_per_persona"),
        ({"pairs_per_user": -5}, "pairs_per_user"),
    ]:
        with pytest.raises(ValueError, match=what):
            persona_pairs(exs, **kw)
    assert len(persona_pairs(exs, users_per_persona=np.int64(1), pairs_per_user=2)) == 6


def test_perturbing_a_large_value_always_makes_an_error():
    # +1 on 20,000,000 is within the check's 1e-6 relative tolerance: it would "hold"
    sol = "He has <<2000000*10=20000000>>20000000 coins.\n#### 20000000"
    good = reference_values(sol)
    for seed in range(8):
        bad = perturb(sol, random.Random(seed))
        assert bad is not None and bad != sol
        assert label_steps(bad.split("\n"), True, good) == [-1, -1], bad

"""Curation decisions that were wrong (probe p8): each test fails on the old code.

Flip signs, stale strengths, same-side duplicates, meaning-bearing punctuation, tie-aware
consistency, ``--lowest-frac`` eligibility, Crome prompts, ``--to`` losses, fine-key means,
reward-scale errors and malformed-row counts (docs/curation.md, cards E1, E4, A8)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.consistency import consistency_filter, ranking_consistency
from rewardkit.curate.crome import RuleRewriter, crome_augment, prompt_key
from rewardkit.curate.dedup import dedup, normalize_text
from rewardkit.curate.noise import NoiseConfig, detect_noise, flip
from rewardkit.curate.relabel import reward_augment
from rewardkit.curate.strength import annotate_strength
from rewardkit.types import Example, user

runner = CliRunner()


def _ex(id, prompt, responses, chosen, **kw):
    return Example(id, [user(prompt)], responses, chosen, **kw)


def _jsonl(path, *rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _ok(*args):
    res = runner.invoke(app, ["curate", *map(str, args)])
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


# 1 — a flip reverses the label, so the label's Δ (margin, strength) changes sign
def test_flip_negates_margin_and_strength():
    ex = _ex("g2", "q", ["hi", "hello"], [0], meta={"margin": -2.5, "strength": -2.5})
    ex.meta["strength_std"] = 0.5
    out = flip(ex)
    assert out.chosen == [1] and out.meta["flipped"] is True
    assert out.meta["margin"] == 2.5 and out.meta["strength"] == 2.5
    assert out.meta["strength_std"] == 0.5
    res = detect_noise([ex], np.array([[-2.5]]), NoiseConfig(action="flip"))
    assert res.examples[0].meta["margin"] == 2.5


# 2 — values of an earlier run never pass as this run's
def test_strength_clears_unscored_rows_and_counts_only_this_run(tmp_path):
    old = {"margin": -5.0, "strength": -5.0, "strength_std": 1.0, "keep": 1}
    tie = _ex("t", "q", ["a", "bb"], [0, 1], meta=dict(old))
    with pytest.warns(UserWarning, match="no strength written"):
        out = annotate_strength([tie], np.array([[np.nan]]))
    assert out[0].meta == {"keep": 1}
    rows = [
        {"id": f"t{i}", "prompt": "q", "responses": ["a", "bb"], "chosen": [0, 1], "meta": old}
        for i in range(3)
    ]
    data = _jsonl(tmp_path / "s.jsonl", *rows)
    with pytest.warns(UserWarning):
        s = _ok(
            "strength",
            "--data",
            data,
            "--out",
            tmp_path / "o.jsonl",
            "-r",
            "rule:length",
            "--votes",
            tmp_path / "v.json",
        )
    assert s["negative_strength"] == 0 and json.loads((tmp_path / "v.json").read_text()) == {}
    metas = [json.loads(x)["meta"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert all("strength" not in m and "margin" not in m for m in metas)


def test_consistency_clears_unscored_rows():
    one = _ex("one", "q", ["a"], [0], meta={"label_confidence": 0.7, "consistency": 0.1, "k": 1})
    res = consistency_filter([one], [np.array([1.0])], [np.array([2.0])])
    assert res.examples[0].meta == {"k": 1}


# 3 — degenerate means a chosen text equals a rejected text; same-side duplicates stay
def test_same_side_duplicates_are_not_degenerate():
    exs = [
        _ex("cc", "q1", ["Same.", "same", "Other"], [0, 1]),  # two equal chosen
        _ex("rr", "q2", ["Good", "Bad", "bad!"], [0]),  # two equal rejected
        _ex("cr", "q3", ["Hi!", "hi"], [0]),  # chosen == rejected
    ]
    res = dedup(exs)
    assert [e.id for e in res.examples] == ["cc", "rr"] and res.degenerate == ["cr"]
    assert res.examples[0].responses == ["Same.", "same", "Other"]


# 4 — normalization keeps what changes the meaning; --level exact compares exactly
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("6/3=2", "6*3=2"),
        ("5%", "5"),
        ("x-1", "x1"),
        ("It is 2:30", "It is 230"),
        ("(2+3)*4", "2+3*4"),
        ("a / b", "a b"),
    ],
)
def test_normalization_keeps_meaningful_punctuation(a, b):
    assert normalize_text(a) != normalize_text(b)


def test_normalization_drops_presentation():
    for a, b in [
        ("**Paris**", "paris"),
        ('"Paris."', "Paris"),
        ("Answer: 4", "answer 4"),
        ("It’s  fine!", "its fine"),
        ("- item", "item"),
    ]:
        assert normalize_text(a) == normalize_text(b), (a, b)


def test_math_prompts_are_not_one_conflict_group_and_exact_degenerate():
    exs = [
        _ex("q1", "What is 6/3?", ["2", "18"], [0]),
        _ex("q2", "What is 6*3?", ["18", "2"], [0]),
        _ex("q3", "What is 12:4?", ["3", "48"], [0]),
        _ex("q4", "What is 124?", ["124", "3"], [0]),
    ]
    res = dedup(exs)
    assert res.conflicts == [] and len(res.examples) == 4
    hi = _ex("h", "Say hi", ["Hi!", "hi"], [0])
    assert dedup([hi], level="exact").degenerate == [] and dedup([hi]).degenerate == ["h"]


# 5 — a tie carries no agreement
def test_consistency_is_tie_aware():
    for method in ("kendall", "spearman", "toporder"):
        assert ranking_consistency([0.0, 0.0], [1.0, 2.0], method) == 0.5
        assert ranking_consistency([0.0, 0.0], [2.0, 1.0], method) == 0.5
    assert ranking_consistency([1.0, 1.0, 2.0], [1.0, 1.0, 3.0]) == 1.0  # same ties, same order
    exs = [_ex(f"e{i}", f"q{i}", ["a", "bb"], [1 - i % 2]) for i in range(4)]
    flat = [np.zeros(2)] * 4
    length = [np.array([1.0, 2.0])] * 4
    res = consistency_filter(exs, flat, length, soft="dyn")
    assert res.counts["agree"] == 0 and res.mean_consistency == 0.5
    assert {ex.meta["label_confidence"] for ex in res.examples} == {0.5}


# 6 — --lowest-frac picks only pairs the ensemble votes against
def test_lowest_frac_never_flips_agreed_or_unknown_pairs():
    exs = [_ex(f"e{i}", "q", ["a", "b"], [0]) for i in range(4)]
    mu = np.array([[0.0], [2.0], [-1.0], [-0.3]])
    res = detect_noise(exs, mu, NoiseConfig(lowest_frac=1.0, action="flip"))
    assert [f.id for f in res.flagged] == ["e2", "e3"]
    res = detect_noise(exs, mu, NoiseConfig(lowest_frac=1.0, min_margin=0.5))
    assert [f.id for f in res.flagged] == ["e2"]
    res = detect_noise(exs, mu, NoiseConfig(lowest_frac=0.25))  # floor(0.25 · 4 scored) = 1
    assert [f.id for f in res.flagged] == ["e2"]


# 7 — Crome: another prompt, not another id; no same-prompt response as "another answer"
def test_crome_irrelevant_ties_use_another_prompt():
    same = [
        _ex(
            "p1",
            "What is 12 times 3?",
            ["12 times 3 is 36. First 10 by 3. Then 2 by 3.", "35"],
            [0],
        ),
        _ex("p2", "What is 12 times 3?", ["The answer is 36. Done.", "39"], [0]),
    ]
    with pytest.warns(UserWarning, match="no irrelevant tie.*'p1'"):
        aug = crome_augment(same, RuleRewriter.from_examples(same), seed=0)
    assert not [a for a in aug if a.meta["attribute"] == "irrelevant"]
    assert not [a for a in aug if a.meta["attribute"] == "ignored_instruction"]
    other = [*same, _ex("x", "Name a fruit", ["An apple is a fruit.", "A car."], [0])]
    for seed in range(5):
        aug = crome_augment(other, RuleRewriter.from_examples(other, seed), seed=seed)
        for a in aug:
            src = next(e for e in other if e.id == a.meta["source_id"])
            if a.meta["attribute"] == "irrelevant":
                assert prompt_key(a.prompt) != prompt_key(src.prompt)
            if a.meta["attribute"] == "ignored_instruction":  # never an answer to this prompt
                key = prompt_key(src.prompt)
                own = [r for e in other if prompt_key(e.prompt) == key for r in e.responses]
                assert a.responses[1] not in own


def test_crome_rows_sharing_an_id_work(tmp_path):
    data = _jsonl(
        tmp_path / "d.jsonl",
        {"id": "x", "prompt": "What is 2+2?", "chosen": "It is 4.", "rejected": "It is 5."},
        {
            "id": "x",
            "prompt": "Name a fruit",
            "chosen": "An apple is a fruit.",
            "rejected": "A car.",
        },
    )
    out = _ok("crome", "--data", data, "--out", tmp_path / "c.jsonl")
    assert out["augmented"]["neutral/irrelevant"] >= 2


# 8 — a --to format that drops the step's results says so; rows without a pair are counted
def test_to_trl_warns_and_counts_skipped_pairs(tmp_path):
    data = _jsonl(
        tmp_path / "m.jsonl",
        {"id": "m", "prompt": "q", "responses": ["a", "bbb", "cc"], "chosen": [1]},
        {"id": "t", "prompt": "q2", "responses": ["a", "bb"], "chosen": [0, 1]},
        {"id": "u", "prompt": "q3", "responses": ["a", "bb"], "chosen": []},
    )
    with pytest.warns(UserWarning, match="--to trl has no column for margin"):
        s = _ok(
            "strength",
            "--data",
            data,
            "--out",
            tmp_path / "s.jsonl",
            "-r",
            "rule:length",
            "--to",
            "trl",
        )
    assert s["skipped_no_pair"] == 2 and s["not_written"] == ["margin", "strength", "strength_std"]
    with pytest.warns(UserWarning, match="label_confidence"):
        c = _ok(
            "consistency",
            "--data",
            data,
            "--out",
            tmp_path / "c.jsonl",
            "-r",
            "rule:length",
            "-r",
            "rule:repetition",
            "--to",
            "trl",
        )
    assert "label_confidence" in c["not_written"]
    f = _ok(
        "filter",
        "--data",
        data,
        "--out",
        tmp_path / "f.jsonl",
        "-r",
        "rule:length",
        "--to",
        "openrlhf",
        "--value",
        "1",
        "--by",
        "mean",
    )
    assert f["skipped_no_pair"] == 2
    with warnings.catch_warnings(record=True) as seen:  # rewardkit JSONL keeps meta
        warnings.simplefilter("always")
        s = _ok("strength", "--data", data, "--out", tmp_path / "j.jsonl", "-r", "rule:length")
    assert not [w for w in seen if "--to" in str(w.message)]
    assert "not_written" not in s and "skipped_no_pair" not in s


# 10 — fine-grained means over the keys rated for both responses
def test_fine_keys_use_the_keys_present():
    null = _ex(
        "f1",
        "q",
        ["a", "b"],
        [0],
        ratings=[
            {"overall": 9, "helpfulness": 1, "honesty": float("nan")},
            {"overall": 2, "helpfulness": 5, "honesty": 5},
        ],
    )
    none = _ex(
        "f2",
        "q2",
        ["a", "b"],
        [0],
        ratings=[{"overall": 9, "helpfulness": None}, {"overall": 2, "honesty": 5}],
    )
    counts: dict[str, int] = {}
    out = reward_augment([null, none], fine_keys=["helpfulness", "honesty"], counts=counts)
    assert counts["fine_filtered"] == 1 and counts["fine_unrated"] == 1
    assert [e.id for e in out] == ["f2#pos", "f2#neg"]


# 11 — a reward's score off the template's scale names the reward and --rescale
def test_reward_scores_off_scale_name_the_reward(tmp_path):
    data = _jsonl(
        tmp_path / "r.jsonl",
        {
            "id": "r",
            "prompt": "q",
            "responses": ["a" * 40, "b"],
            "chosen": [0],
            "ratings": [{"overall": 8}, {"overall": 3}],
        },
    )
    res = runner.invoke(
        app,
        [
            "curate",
            "relabel",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "o.jsonl"),
            "-r",
            "rule:length",
        ],
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "'rule:length'" in text and "--rescale" in text, text
    assert "field 'overall'" not in text


# 12 — malformed rows dropped by --on-error skip are counted
def test_skipped_malformed_rows_are_counted(tmp_path):
    good = [{"id": f"g{i}", "prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(4)]
    data = _jsonl(
        tmp_path / "b.jsonl",
        *good[:2],
        '{"id":"bad","prompt":"x","chosen":5,"rejected":"y"}',
        "{not json",
        *good[2:],
    )
    args = ["--on-error", "skip", "dedup", "--data", data, "--out", tmp_path / "d.jsonl"]
    with pytest.warns(UserWarning, match="malformed"):
        out = _ok(*args, "--report", tmp_path / "r.json")
    assert out["skipped_malformed"] == 2 and out["examples"] == 4
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["skipped_malformed"] == 2
    assert "skipped_malformed" not in _ok(
        "dedup", "--data", tmp_path / "d.jsonl", "--out", tmp_path / "e.jsonl"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("y = -x + 1", "y = x + 1"),  # a sign glued to a letter
        ("e^{-x}", "e^{x}"),
        ("n!/k!", "n!*k!"),  # factorials, and the operator between them
        ("10! = 3628800", "10 = 3628800"),
        ("x != 1", "x = 1"),
        ("f'(x)", "f(x)"),  # a derivative
    ],
)
def test_signs_factorials_and_primes_are_meaning(a, b):
    from rewardkit.curate.dedup import normalize_text

    assert normalize_text(a) != normalize_text(b)


def test_exclamations_bullets_and_apostrophes_stay_presentation():
    from rewardkit.curate.dedup import normalize_text

    for a, b in [
        ("Hello!", "Hello"),
        ("It is 5!", "It is 5."),
        ("- item", "item"),
        ("don't", "dont"),
    ]:
        assert normalize_text(a) == normalize_text(b)

"""TRL's two remaining dataset types: unpaired preference (KTO: ``prompt``, ``completion``,
boolean ``label``) read as rated single responses and evaluated by AUROC, and stepwise
supervision (``prompt``, step ``completions``, boolean ``labels``) read as step-labelled
solutions."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate.analyses import rating_correlations
from rewardkit.evaluate.stats import auroc, binary_labels


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --- unpaired preference (KTO) ----------------------------------------------------------------


def test_unpaired_rows_are_rated_single_responses(tmp_path):
    rows = [
        {"prompt": "The sky is", "completion": " blue.", "label": True},
        {"prompt": "The sky is", "completion": " green.", "label": False},
        {
            "prompt": [{"role": "user", "content": "2+2?"}],
            "completion": [{"role": "assistant", "content": "4"}],
            "label": True,
        },
    ]
    ex = load(_jsonl(tmp_path / "kto.jsonl", rows))
    assert [e.meta["format"] for e in ex] == ["unpaired"] * 3
    assert [e.responses for e in ex] == [[" blue."], [" green."], ["4"]]
    assert [e.ratings for e in ex] == [[{"label": 1.0}], [{"label": 0.0}], [{"label": 1.0}]]
    assert ex[2].prompt == [{"role": "user", "content": "2+2?"}]
    assert all(e.chosen == [] for e in ex)


def test_unpaired_labels_in_csv_cells_and_a_bad_label_named(tmp_path):
    path = tmp_path / "kto.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "completion", "label"])
        w.writerows([["q", "a", "True"], ["q", "b", "False"], ["r", "c", "1"], ["r", "d", "0"]])
    assert [e.ratings[0]["label"] for e in load(str(path))] == [1.0, 0.0, 1.0, 0.0]
    bad = _jsonl(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "q", "completion": "a", "label": True},
            {"prompt": "q", "completion": "b", "label": "maybe"},
        ],
    )
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2, field 'label'.*true or false"):
        load(bad)


def test_auroc_worked_numbers():
    scores, labels = [0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0]
    # pairs (desirable, undesirable): 0.9>0.8, 0.9>0.1, 0.3<0.8, 0.3>0.1 → 3 of 4
    assert auroc(scores, labels) == (0.75, 4)
    # within prompt: (0.9, 0.8) in a, (0.3, 0.1) in b → 2 of 2
    assert auroc(scores, labels, ["a", "a", "b", "b"]) == (1.0, 2)
    assert auroc([1.0, 1.0], [1, 0]) == (0.5, 1)  # a tie counts half
    value, n = auroc([1.0, 2.0], [1, 1])
    assert math.isnan(value) and n == 0  # one class: no pair
    assert auroc([0.5, math.nan, 0.2], [1, 0, 0]) == (1.0, 1)  # a NaN score dropped
    assert binary_labels([1.0, 0.0, math.nan]) and not binary_labels([1.0, 1.0])
    assert not binary_labels([1.0, 0.0, 0.5])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 3), st.booleans(), st.sampled_from("abc")),
        min_size=2,
        max_size=25,
    )
)
def test_auroc_is_the_share_of_pairs_ordered_right(points):
    """Against the definition, pair by pair (ties half), over all pairs and within groups."""
    s = [float(p[0]) for p in points]
    y = [int(p[1]) for p in points]
    g = [p[2] for p in points]
    for groups in (None, g):
        wins = pairs = 0.0
        for i in range(len(s)):
            for j in range(len(s)):
                if y[i] == 1 and y[j] == 0 and (groups is None or g[i] == g[j]):
                    pairs += 1
                    wins += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
        value, n = auroc(s, y, groups)
        assert n == pairs
        if pairs:
            assert value == pytest.approx(wins / pairs, abs=1e-12)
        else:
            assert math.isnan(value)


def test_rating_correlations_add_auroc_only_for_labels():
    rated = rating_correlations([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0])
    assert "auroc" not in rated
    lab = rating_correlations([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0], ["p", "p", "q", "q"])
    assert (lab["auroc"], lab["auroc_pairs"]) == (0.75, 4)
    assert (lab["auroc_within_prompt"], lab["pairs_within_prompt"]) == (1.0, 2)


def test_unpaired_eval_reports_auroc_within_prompt(tmp_path):
    """rule:length on unpaired rows where the desirable answers are the longer ones in each
    prompt but not across prompts: within prompt 1.0, over all pairs less."""
    from rewardkit.evaluate.run import evaluate
    from rewardkit.registry import load_reward

    rows = []
    for p in range(6):
        base = 10 * (p + 1)
        rows.append({"prompt": f"q{p}", "completion": "x" * (base + 5), "label": True})
        rows.append({"prompt": f"q{p}", "completion": "x" * base, "label": False})
    result = evaluate(load(_jsonl(tmp_path / "kto.jsonl", rows)), [load_reward("rule:length")])
    lab = result.rewards[0].analyses["ratings"]["label"]
    assert (lab["auroc_within_prompt"], lab["pairs_within_prompt"]) == (1.0, 6)
    # all pairs: 36, of which a longer desirable answer wins 21 (5 + 1 + ... per prompt)
    want = np.mean([a + 5 > b for a in range(10, 70, 10) for b in range(10, 70, 10)])
    assert lab["auroc"] == pytest.approx(float(want)) and lab["auroc_pairs"] == 36
    from rewardkit.evaluate.tables import ratings

    table = ratings(result)
    assert table is not None and table.columns[-1] == "AUROC within prompt (pairs)"
    assert table.rows[0][-1] == "1.000 (6)"


def test_pair_by_prompt_pairs_each_desirable_with_each_undesirable(tmp_path):
    from rewardkit.data.unpaired import pair_by_prompt

    rows = [
        {"prompt": "p", "completion": "g1", "label": True},
        {"prompt": "q", "completion": "only", "label": True},
        {"prompt": "p", "completion": "b1", "label": False},
        {"prompt": "p", "completion": "g2", "label": True},
        {"prompt": "p", "completion": "b2", "label": False},
        {"prompt": [{"role": "user", "content": "p"}], "completion": "b3", "label": False},
    ]
    made = pair_by_prompt(load(_jsonl(tmp_path / "kto.jsonl", rows)))
    # "p" as text and as one user message are the same prompt: 2 good × 3 bad
    assert [e.responses for e in made.pairs] == [
        ["g1", "b1"], ["g1", "b2"], ["g1", "b3"], ["g2", "b1"], ["g2", "b2"], ["g2", "b3"]
    ]  # fmt: skip
    assert all(e.chosen == [0] for e in made.pairs)
    assert made.pairs[0].meta["paired_from"] == made.pairs[0].id.split("|")
    assert (made.rows, made.prompts, made.prompts_paired, made.rows_unpaired) == (6, 2, 1, 1)


def test_train_pairs_unpaired_rows_or_names_the_options(bert_dir, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    base = ["train", "--model", str(bert_dir), "--max_length", "32", "--threads", "1",
            "--no-progress", "--no-plot", "--max_steps", "1", "--batch_size", "2"]  # fmt: skip
    rows = [{"prompt": f"q{p}", "completion": c, "label": c == "good"}
            for p in range(3) for c in ("good", "bad", "bad")]  # fmt: skip
    r = CliRunner().invoke(
        app, [*base, "--data", _jsonl(tmp_path / "kto.jsonl", rows), "--output_dir",
              str(tmp_path / "o")]
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "  train data: 6 examples from 3 prompts, 6 preference pairs\n" in r.output
    one_sided = [{"prompt": f"q{p}", "completion": "good", "label": True} for p in range(3)]
    r = CliRunner().invoke(
        app, [*base, "--data", _jsonl(tmp_path / "one.jsonl", one_sided), "--output_dir",
              str(tmp_path / "o2")]
    )  # fmt: skip
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "make no preference pair" in r.output
    assert "--objective regression --attributes label" in r.output


# --- stepwise supervision ---------------------------------------------------------------------


def test_trl_stepwise_rows_are_step_labelled_solutions(tmp_path):
    row = {
        "prompt": "Which number is larger, 9.8 or 9.11?",
        "completions": [
            "The fractional part of 9.8 is 0.8.",
            "The fractional part of 9.11 is 0.11.",
            "0.11 is greater than 0.8, so 9.11 is larger.",
        ],
        "labels": [True, True, False],
    }
    (ex,) = load(_jsonl(tmp_path / "prm.jsonl", [row]))
    assert ex.meta["format"] == "steps"
    assert ex.meta["steps"] == row["completions"]
    assert (ex.meta["step_labels"], ex.meta["first_error"]) == ([1, 1, -1], 2)
    assert ex.responses == ["\n\n".join(row["completions"])]
    bad = _jsonl(tmp_path / "bad.jsonl", [{**row, "labels": [True, False]}])
    with pytest.raises(DataError, match=r"bad\.jsonl, line 1, field 'labels'.*3 step labels"):
        load(bad)


def test_completions_of_other_shapes_are_not_steps(tmp_path):
    """A prompt with a list of completion objects (UltraFeedback-like) or without labels is not
    stepwise supervision."""
    from rewardkit.data.location import Location
    from rewardkit.data.record import Record
    from rewardkit.data.sniff import sniff_format

    def fmt(data):
        return sniff_format(Record(data, Location("x.jsonl", "x.jsonl", line=1), {}))

    assert fmt({"prompt": "q", "completions": ["a", "b"], "labels": [True, False]}) == "steps"
    assert fmt({"prompt": "q", "completions": ["a", "b"]}) != "steps"
    assert fmt({"prompt": "q", "completions": [{"response": "a"}], "labels": [1]}) != "steps"


def test_data_command_counts_unpaired_labels_and_pairs(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    rows = [{"prompt": "p", "completion": "a", "label": True},
            {"prompt": "p", "completion": "b", "label": False},
            {"prompt": "p", "completion": "c", "label": False},
            {"prompt": "q", "completion": "d", "label": True}]  # fmt: skip
    r = CliRunner().invoke(app, ["data", _jsonl(tmp_path / "kto.jsonl", rows)])
    assert r.exit_code == 0, r.output
    assert (
        "unpaired rows: 2 desirable, 2 undesirable; 1 of 2 prompts have both labels "
        "(2 preference pairs by prompt)"
    ) in r.output


def test_curate_export_writes_unpaired_rows_as_trl_pairs(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    rows = [{"prompt": "p", "completion": "good", "label": True},
            {"prompt": "p", "completion": "bad", "label": False},
            {"prompt": "q", "completion": "alone", "label": True}]  # fmt: skip
    out = tmp_path / "trl.jsonl"
    r = CliRunner().invoke(
        app, ["curate", "export", "--data", _jsonl(tmp_path / "k.jsonl", rows), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert '"unpaired_rows_paired_by_prompt": 3, "written": 1' in r.output
    (pair,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert pair == {"prompt": [{"role": "user", "content": "p"}],
                    "chosen": [{"role": "assistant", "content": "good"}],
                    "rejected": [{"role": "assistant", "content": "bad"}]}  # fmt: skip

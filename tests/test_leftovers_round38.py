"""Round-38 leftovers: one "–" for an undefined leaderboard CI, no correlation on fewer than 3
points, a subset called "all" kept apart from examples without one, a rerun of ``curate noise``
clearing its stale flag, ±inf scores refused in curation and in the token-level adapters, the
filter histogram's panel cap and its "unlabelled" count (rule rewards and hand-built rewards)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from prm_helpers import word_tokenizer
from rewardkit import registry
from rewardkit.cli import app
from rewardkit.curate.filtering import (
    example_scores,
    filter_by_reward,
    histogram_panels,
    panels_note,
)
from rewardkit.curate.noise import FLAG_KEY, NoiseConfig, detect_noise
from rewardkit.curate.relabel import rescale
from rewardkit.curate.scores import response_scores
from rewardkit.curate.strength import preference_strength
from rewardkit.data import write_jsonl
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
from rewardkit.evaluate.report import summary_lines
from rewardkit.evaluate.result import load_report
from rewardkit.evaluate.tables import analysis_tables
from rewardkit.integrations.token_level import TokenRewardFunc, verl_token_level_scores
from rewardkit.results import ScoreResult, TokenScores
from rewardkit.types import Capability, Example, Reward, user

runner = CliRunner()


def _pairs(n: int, subset: str | None = "s") -> list[Example]:
    return [
        Example(f"e{i}", [user(f"q{i}")], [f"chosen {i} long", f"r{i}"], [0], subset=subset)
        for i in range(n)
    ]


def _table(exs: list[Example], chosen: float, rejected: float) -> dict[str, float]:
    return {r: (chosen if j == 0 else rejected) for ex in exs for j, r in enumerate(ex.responses)}


# -- 1. leaderboard: an undefined Score or CI is one "–" ------------------------------------------


def test_leaderboard_prints_one_dash_for_a_nan_score_without_examples(fake_reward, tmp_path):
    exs = _pairs(6)
    nan = fake_reward(_table(exs, math.nan, math.nan), "nanrm")
    res = evaluate(exs, [nan, fake_reward(_table(exs, 1.0, 0.0), "ok")], n_boot=20)
    for r in res.rewards:  # a report that keeps no per-example records: no outcome count
        r.examples = []
    paths = write_leaderboard(leaderboard([("run", res)]), tmp_path / "lb")
    md = paths["markdown"].read_text()
    row = next(line for line in md.splitlines() if "| nanrm |" in line)
    assert "[–, –]" not in md and "| nanrm | – | – | 0 |" in row
    ok = next(line for line in md.splitlines() if "| ok |" in line)
    assert "[100.0, 100.0]" in ok  # a defined CI is still shown (in percent, as report.md)
    board = json.loads(paths["json"].read_text())
    assert next(x for x in board["rows"] if x["reward"] == "nanrm")["ci"] == [None, None]


# -- 2. correlations on fewer than 3 points -------------------------------------------------------


def test_length_correlation_on_two_responses_is_null_with_its_n(fake_reward, tmp_path):
    one = _pairs(1)
    res = evaluate(one, [fake_reward(_table(one, 1.0, 0.0), "rm")], n_boot=20)
    lb = res["rm"].analyses["length_bias"]
    assert lb["pearson"] is None and lb["spearman"] is None and lb["n"] == 2  # was ±1.000
    table = next(t for t in analysis_tables(res) if t.title == "Length bias")
    assert table.rows[0][1:3] == ["–", "–"]
    assert "fewer than 3 responses with a finite score (n = 2)" in table.note
    assert "rm: Spearman(len) – (n=2: fewer than 3 points)" in summary_lines(res)
    back = load_report(res.to_json(tmp_path / "report.json"))  # report.json: null beside n
    assert back["rm"].analyses["length_bias"] == {**lb, "n": 2}
    md = write_leaderboard(leaderboard([("a", back)]), tmp_path / "lb")["markdown"].read_text()
    assert "length ρ –: fewer than 3 responses" in md
    two = _pairs(2)  # 4 responses: a correlation again
    res2 = evaluate(two, [fake_reward(_table(two, 1.0, 0.0), "rm")], n_boot=20)
    assert res2["rm"].analyses["length_bias"]["n"] == 4
    assert math.isfinite(res2["rm"].analyses["length_bias"]["pearson"])
    assert (
        "fewer than 3"
        not in next(t for t in analysis_tables(res2) if t.title == "Length bias").note
    )


def test_ratings_correlation_on_two_responses_is_null(fake_reward):
    ex = Example(
        "r", [user("q")], ["good one", "bad"], [0], ratings=[{"overall": 9}, {"overall": 2}]
    )
    res = evaluate([ex], [fake_reward({"good one": 1.0, "bad": 0.0}, "rm")], n_boot=20)
    c = res["rm"].analyses["ratings"]["overall"]
    assert c == {"pearson": None, "spearman": None, "kendall": None, "n": 2}
    table = next(t for t in analysis_tables(res) if t.title == "Ratings correlations")
    assert table.rows[0][3:] == ["–", "–", "–"] and "fewer than 3 rated responses" in table.note


# -- 3. a subset called "all" beside examples without a subset -----------------------------------


def test_a_subset_called_all_stays_apart_from_examples_without_one(fake_reward):
    exs = [*_pairs(2, "all"), *_pairs(3, None)]
    for i, ex in enumerate(exs):
        ex.id = f"x{i}"
    res = evaluate(exs, [fake_reward(_table(exs, 1.0, 0.0), "rm")], n_boot=20)
    subsets = res.dataset["subsets"]
    assert subsets["all"]["n_examples"] == 2 and subsets["(no subset)"]["n_examples"] == 3
    # "(no subset)" taken too: numbered
    more = [*exs, Example("y", [user("q")], ["c", "r"], [0], subset="(no subset)")]
    res = evaluate(more, [fake_reward({**_table(exs, 1.0, 0.0), "c": 1, "r": 0}, "rm")], n_boot=20)
    assert res.dataset["subsets"]["(no subset) #2"]["n_examples"] == 3
    # a file without any subset keeps its report: one subset "all"
    plain = _pairs(3, None)
    res = evaluate(plain, [fake_reward(_table(plain, 1.0, 0.0), "rm")], n_boot=20)
    assert list(res.dataset["subsets"]) == ["all"]


# -- 4. noise rerun --------------------------------------------------------------------------------


def test_noise_rerun_clears_a_flag_it_does_not_raise_again():
    exs = [
        Example(i, [user("q")], ["a", "b"], [0], meta={FLAG_KEY: True, "weight": 0.1})
        for i in ("agree", "against")
    ]
    out = detect_noise(exs, np.array([[1.0], [-1.0]]), NoiseConfig()).examples
    assert FLAG_KEY not in out[0].meta and out[0].meta["weight"] == 0.1  # was still True
    assert out[1].meta[FLAG_KEY] is True


# -- 5. ±inf scores in curation --------------------------------------------------------------------


def test_curation_refuses_infinite_scores_naming_reward_and_example(fake_reward):
    exs = [Example("x", [user("q")], ["A", "B"], [0]), Example("y", [user("q")], ["C", "D"], [0])]
    rw = fake_reward({"A": 1.0, "B": 1.0, "C": 2.0, "D": -math.inf}, "infrm")
    with pytest.raises(
        ValueError, match=r"reward 'infrm' scored -inf on example 'y' \(response 1\)"
    ):
        response_scores(exs, rw)
    nan = fake_reward({"A": math.nan, "B": 1.0, "C": 2.0, "D": 1.0}, "nanrm")
    assert math.isnan(response_scores(exs, nan)[0][0])  # NaN stays "does not apply"
    with pytest.raises(ValueError, match=r"value 1 is inf"):
        rescale(np.array([1.0, math.inf, 3.0]))  # was [nan, 1, 1]: every score collapsed
    with pytest.raises(ValueError, match=r"deltas\[0, 1\].*is inf"):
        preference_strength(np.array([[1.0, math.inf]]))  # was std NaN


def _inf_factory(arg=None, **_):
    class Inf(Reward):
        name = "infy"

        def identity(self) -> dict:
            return {"class": "Inf"}

        def _score(self, queries):
            return np.array([math.inf if "INF" in q.response else 5.0 for q in queries])

    return Inf()


@pytest.mark.parametrize("verb", [["relabel", "--rescale"], ["strength"], ["filter"]])
def test_curate_cli_exits_2_on_an_infinite_score(tmp_path, monkeypatch, verb):
    monkeypatch.setitem(registry._KINDS, "infy", registry.RewardKind("infy", "x:y", "infinite"))
    monkeypatch.setattr(registry, "_import_factory", lambda target: _inf_factory)
    data = tmp_path / "d.jsonl"
    write_jsonl(
        [
            Example("ok", [user("q")], ["a", "b"], [0]),
            Example("bad", [user("q")], ["INF", "b"], [0]),
        ],
        data,
    )
    args = ["curate", verb[0], "--data", str(data), "--out", str(tmp_path / "o.jsonl")]
    res = runner.invoke(app, [*args, "-r", "infy:", "--no-cache", *verb[1:]])
    assert res.exit_code == 2, res.output
    assert "reward 'infy:' scored inf on example 'bad' (response 0)" in res.output
    assert not (tmp_path / "o.jsonl").exists()


# -- 6/7. filter: unlabelled rows, histogram panels ------------------------------------------------


def test_filter_by_chosen_counts_unlabelled_best_of_n_rows_apart(tmp_path):
    bon = Example("u", [user("q")], ["a", "bb", "ccc"], [])
    exs = [bon, Example("l", [user("q")], ["a", "bb"], [0])]
    scores = [np.array([1.0, 2.0, 3.0]), np.array([1.0, math.nan])]
    res = filter_by_reward(exs, example_scores(exs, scores, "chosen"), by="chosen")
    assert res.counts["(no source)"] == {"examples": 2, "unlabelled": 1, "unscored": 0, "kept": 1}
    res = filter_by_reward(exs, example_scores(exs, scores, "margin"), by="margin")
    assert res.counts["(no source)"] == {"examples": 2, "unlabelled": 1, "unscored": 1, "kept": 0}
    data = tmp_path / "d.jsonl"
    write_jsonl(exs, data)
    out = tmp_path / "o.jsonl"
    cli = runner.invoke(
        app, ["curate", "filter", "--data", str(data), "--out", str(out), "-r", "rule:length"]
    )
    assert cli.exit_code == 0, cli.output
    line = json.loads(cli.stdout.strip().splitlines()[-1])
    assert line["sources"]["(no source)"] == {
        "examples": 2,
        "unlabelled": 1,
        "unscored": 0,
        "kept": 1,
    }


def test_histogram_draws_the_largest_sources_and_one_other_panel(tmp_path, monkeypatch):
    exs = [Example(f"h{i}", [user("q")], ["a"], [], source=f"s{i % 30}") for i in range(30 * 2 + 5)]
    res = filter_by_reward(exs, np.arange(len(exs), dtype=float))
    shown, rest = histogram_panels(res)
    assert shown == [f"s{i}" for i in range(24)] and rest == [f"s{i}" for i in range(24, 30)]
    assert panels_note(res) == (
        "30 sources: the 24 largest drawn, the other 6 (12 examples) in one 'other' panel"
    )
    assert panels_note(filter_by_reward(exs[:10], np.arange(10.0))) is None
    import rewardkit.curate.filtering as filtering

    monkeypatch.setattr(filtering, "MAX_PANELS", 2)  # the CLI path, kept fast
    data, out, png = tmp_path / "d.jsonl", tmp_path / "o.jsonl", tmp_path / "h.png"
    write_jsonl(exs[:9], data)
    args = ["curate", "filter", "--data", str(data), "--out", str(out), "-r", "rule:length"]
    cli = runner.invoke(app, [*args, "--histogram", str(png)])
    assert cli.exit_code == 0, cli.output
    line = json.loads(cli.stdout.strip().splitlines()[-1])
    assert line["histogram_panels"] == (
        "9 sources: the 2 largest drawn, the other 7 (7 examples) in one 'other' panel"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- 8. token-level adapters refuse ±inf per-token rewards -----------------------------------------


class _WordTokens(Reward):
    """One token reward per whitespace word: 1.0, or ``bad`` on a word equal to ``at``."""

    capabilities = frozenset({Capability.TOKENS})

    def __init__(self, at: str, bad: float) -> None:
        self.at, self.bad, self.name = at, bad, "wordtok"

    def identity(self) -> dict:
        return {"class": "WordTokens"}

    def _score(self, queries):
        rows = []
        for q in queries:
            spans, start = [], 0
            for w in q.response.split():
                start = q.response.index(w, start)
                spans.append((start, start + len(w), self.bad if w == self.at else 1.0))
                start += len(w)
            rows.append(spans)
        t = max(len(r) for r in rows)
        values, offsets = np.full((len(rows), t), np.nan), np.full((len(rows), t, 2), -1)
        for i, r in enumerate(rows):
            for j, (s, e, v) in enumerate(r):
                values[i, j], offsets[i, j] = v, (s, e)
        return ScoreResult(np.nansum(values, axis=1), tokens=TokenScores(values, offsets))


TEXTS = ["Paris is nice .", "Seven is prime ."]


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_token_adapters_refuse_an_infinite_token_reward(bad):
    tok = word_tokenizer(TEXTS)
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    fn = TokenRewardFunc(_WordTokens("prime", bad), tok)
    with pytest.raises(
        ValueError, match=r"response 1: token reward at position 2 \(characters 9-14\) is -?inf"
    ):
        fn(prompts=["q", "q"], completions=TEXTS, completion_ids=ids)
    ok = TokenRewardFunc(_WordTokens("absent", bad), tok)(
        prompts=["q", "q"], completions=TEXTS, completion_ids=ids
    )
    assert [sum(v) for v in ok] == [4.0, 4.0]
    import torch

    width = max(map(len, ids))
    responses = torch.zeros((2, width), dtype=torch.long)
    mask = torch.zeros((2, width), dtype=torch.long)
    for i, row in enumerate(ids):
        responses[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    with pytest.raises(
        ValueError, match=r"reward 'wordtok', response 1: token reward at position 2"
    ):
        verl_token_level_scores(_WordTokens("prime", bad), ["q", "q"], responses, mask, tok)

"""Training on published preference schemas the loaders read (docs/data-formats.md), written by
hand as small files: which pairs, lists and targets each objective gets, the sign of signed
strengths, Nectar's full ranking, rows with no rating, and the counts a run prints and writes
(docs/training.md, "What counts as a label" and "What a run says it trained on")."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg  # noqa: E402

from rewardkit.data import load  # noqa: E402
from rewardkit.errors import DataError  # noqa: E402
from rewardkit.train.collate import data_counts  # noqa: E402
from rewardkit.train.labels import flip_labels, ranking_of  # noqa: E402
from rewardkit.train.run import prepare, train_model  # noqa: E402

STRENGTHS = [-3, -2, -1, 0, 1, 2, 3, 0]  # two labelled ties


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _helpsteer3(n: int = 8) -> list[dict]:
    return [
        {"context": [{"role": "user", "content": f"q{i}"}], "domain": "general",
         "response1": GOOD[i % 6] if s <= 0 else BAD[i % 6],
         "response2": BAD[i % 6] if s <= 0 else GOOD[i % 6], "overall_preference": s}
        for i, s in enumerate(STRENGTHS[:n])
    ]  # fmt: skip


def _nectar(i: int, ranks: list[int]) -> dict:
    answers = [
        {"answer": f"{GOOD[i] if r == 1 else BAD[(k + i) % 6]} ({k})", "model": f"m{k}", "rank": r}
        for k, r in enumerate(ranks)
    ]
    return {"prompt": f"\n\nHuman: q{i}\n\nAssistant:", "answers": answers, "num_responses": 7}


def _pairs(tr) -> list[tuple[int, int, bool, float]]:
    return [(a, b, t, m) for it in tr.train_dataset for a, b, t, m, _ in it.pairs]


@pytest.mark.parametrize("kind", ["margin", "scaled"])
def test_helpsteer3_overall_preference_is_a_magnitude(bert_dir, tmp_path, kind):
    """HelpSteer3's −3…3 ``overall_preference`` is negative when response 1 wins: as a margin
    it was used signed (−3 for the strongest response-1 win, a margin against the label) and
    ``margin_kind scaled`` refused the file."""
    data = _jsonl(tmp_path / "hs3.jsonl", _helpsteer3())
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data, margin_column="overall_preference",
                   margin_kind=kind)  # fmt: skip
    pairs = _pairs(prepare(cfg))
    strict = [(a, b, m) for a, b, t, m in pairs if not t]
    assert strict == [(0, 1, 3.0), (0, 1, 2.0), (0, 1, 1.0), (1, 0, 1.0), (1, 0, 2.0), (1, 0, 3.0)]
    assert sum(t for _, _, t, _ in pairs) == 2  # the two 0 strengths: labelled ties


def test_nectar_listwise_reads_the_full_ranking(bert_dir, tmp_path):
    """Nectar's 7 ranked answers trained listwise as rank 1 above an unordered rest (1 of 6
    positions); BT keeps rank 1 over each other answer (6 pairs per row)."""
    ranks = [[3, 1, 7, 2, 5, 4, 6], [1, 2, 3, 4, 5, 6, 7], [2, 1, 3, 3, 5, 6, 7]]
    data = _jsonl(tmp_path / "nectar.jsonl", [_nectar(i, r) for i, r in enumerate(ranks)])
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data, objective="listwise")
    items = prepare(cfg).train_dataset
    assert [it.order for it in items[:2]] == [[1, 3, 0, 5, 4, 6, 2], list(range(7))]
    assert [it.n_ranked for it in items] == [6, 6, 2]  # the third ties at rank 3
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data)
    assert data_counts(prepare(cfg).train_dataset, "bt")["pairs"] == 18


def test_nectar_flip_reverses_the_ranking_under_listwise(tmp_path):
    ex = load(_jsonl(tmp_path / "n.jsonl", [_nectar(0, [3, 1, 7, 2, 5, 4, 6])]))[0]
    flipped = flip_labels(ex, None, listwise=True)
    assert flipped.chosen == [2]
    assert ranking_of(flipped, None) == ([2, 6, 4, 5, 0, 3, 1], 6)
    assert flip_labels(ex).chosen == [0, 2, 3, 4, 5, 6]  # a pair objective: chosen swapped


def test_regression_counts_rows_with_no_rating_instead_of_refusing_the_file(
    bert_dir, tmp_path, caplog
):
    """UltraFeedback rates an aspect 'N/A'; one row with every completion 'N/A' under the
    attribute used to refuse the whole file (bt+regression trained it)."""
    rows = []
    for i in range(4):
        comps = [
            {"response": t, "model": "m", "overall_score": 8 - 2 * k, "fine-grained_score": 4 - k,
             "annotations": {"honesty": {"Rating": "N/A" if i == 2 else str(5 - k)}}}
            for k, t in enumerate([GOOD[i], BAD[i], BAD[i + 1], BAD[i + 2]])
        ]  # fmt: skip
        rows.append({"instruction": f"q{i}", "completions": comps})
    data = _jsonl(tmp_path / "uf.jsonl", rows)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data, objective="regression",
                   attributes=["honesty"])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="rewardkit"):
        tr = prepare(cfg)
    assert "1 of 4 examples have no rating under ['honesty']" in caplog.text
    assert data_counts(tr.train_dataset, "regression")["rated_targets"] == 12
    for r in rows:
        for c in r["completions"]:
            c["annotations"]["honesty"]["Rating"] = "N/A"
    cfg.data = _jsonl(tmp_path / "none.jsonl", rows)
    with pytest.raises(DataError, match=r"attribute\(s\) \['honesty'\].*rated in none"):
        prepare(cfg)


def test_listwise_says_the_rating_key_ties_not_the_chosen_set(bert_dir, tmp_path, caplog):
    rows = [{"prompt": f"q{i}", "responses": [GOOD[i], GOOD[i + 1], BAD[i]],
             "ratings": [4, 4 if i else 3, 1]} for i in range(3)]  # fmt: skip
    data = _jsonl(tmp_path / "r.jsonl", rows)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=data, objective="listwise", rating_key="rating")
    with caplog.at_level(logging.WARNING, logger="rewardkit"):
        prepare(cfg)
    assert "top-rated responses tie under rating_key 'rating'" in caplog.text
    assert "give meta ranking" not in caplog.text


def test_counts_printed_and_written_match_the_file(bert_dir, tmp_path):
    """RewardBench 2 rows (1 chosen + 3 rejected; a Ties row with 2 chosen + 2 rejected) and
    UltraFeedback-binarized ties, exported by pandas to CSV: a run said nothing of what it
    trained on or of the n behind eval_accuracy."""
    rb2 = [
        {
            "id": f"r{i}",
            "prompt": f"q{i}",
            "chosen": [GOOD[i]],
            "rejected": [BAD[i], BAD[i + 1], BAD[i + 2]],
            "num_correct": 1,
        }
        for i in range(3)
    ]
    rb2.append({"id": "t0", "prompt": "tq", "chosen": [GOOD[4], GOOD[5]],
                "rejected": [BAD[0], BAD[1]], "num_correct": 2})  # fmt: skip
    pd.DataFrame(rb2).to_csv(tmp_path / "rb2.csv", index=False)
    msgs = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": t}]
            for i, t in enumerate(GOOD[:4] + BAD[:4])]  # fmt: skip
    ufb = [
        {
            "prompt": f"q{i}",
            "chosen": msgs[i],
            "rejected": [msgs[i][0], msgs[4 + i][1]],
            "score_chosen": 7.0,
            "score_rejected": 7.0 if i % 2 else 2.0,
        }
        for i in range(4)
    ]
    pd.DataFrame(ufb).to_csv(tmp_path / "ufb.csv", index=False)
    cfg = tiny_cfg(bert_dir, tmp_path / "o", data=str(tmp_path / "rb2.csv"),
                   eval_data=str(tmp_path / "ufb.csv"), max_steps=1)  # fmt: skip
    res = train_model(cfg)
    want_train = {"examples": 4, "prompts": 4, "pairs": 13, "tie_pairs": 0, "no_preference": 0}
    # the eval file's prompts q0..q3: q0, q1 and q2 are RB2 training prompts too
    want_eval = {"examples": 4, "prompts": 4, "prompts_in_train": 3, "pairs": 2, "tie_pairs": 2,
                 "no_preference": 2}  # fmt: skip
    assert res.data == {"train": want_train, "eval": want_eval}
    meta = json.loads((tmp_path / "o" / "rewardkit_train.json").read_text())
    assert meta["data"] == res.data
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert (metrics["eval_examples"], metrics["eval_pairs"], metrics["eval_prompts"]) == (4, 2, 4)
    assert metrics["eval_accuracy"] in (0.0, 0.5, 1.0)  # over the 2 strict pairs only


def test_cli_prints_what_it_trained_and_held_out(bert_dir, tmp_path):
    """HelpSteer2-Preference with two 0-strength ties and an eval_fraction hold-out: the run
    printed metrics only; it now says what each part held (the hold-out by its name)."""
    from typer.testing import CliRunner

    from rewardkit.cli import app

    rows = [
        {"prompt": f"q{i}", "response_1": GOOD[i % 6] if s <= 0 else BAD[i % 6],
         "response_2": BAD[i % 6] if s <= 0 else GOOD[i % 6], "preference_strength": s}
        for i, s in enumerate(STRENGTHS)
    ]  # fmt: skip
    data = _jsonl(tmp_path / "hs2p.jsonl", rows)
    args = ["train", "--model", str(bert_dir), "--max_length", "64", "--threads", "1",
            "--no-progress", "--no-plot", "--max_steps", "1", "--data", data,
            "--eval_fraction", "0.5", "--output_dir", str(tmp_path / "o")]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "o" / "rewardkit_train.json").read_text())["data"]
    assert meta["train"]["examples"] + meta["eval"]["examples"] == 8
    assert meta["train"]["pairs"] + meta["eval"]["pairs"] == 6
    assert meta["train"]["tie_pairs"] + meta["eval"]["tie_pairs"] == 2
    held = meta["eval"]  # 8 distinct prompts: the hold-out shares none with training
    assert (meta["train"]["prompts"], held["prompts"], held["prompts_in_train"]) == (4, 4, 0)
    said = (
        f"  eval_fraction 0.5 hold-out: 4 examples from 4 prompts, {held['pairs']} preference pair"
    )
    assert said in r.output
    assert f"  eval_pairs: {held['pairs']}\n" in r.output

"""The ``eval_fraction`` hold-out is drawn by prompt (docs/training.md, "The eval_fraction
hold-out"): every row of one prompt lands on one side. It was drawn by row, so HelpSteer2's two
rated responses of a prompt, UltraFeedback pairs of one instruction or RewardBench 2 Ties rows
were split between training and hold-out, and the hold-out accuracy was partly measured on
prompts the model had trained on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg  # noqa: E402

from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.train.collate import Item, split_holdout  # noqa: E402
from rewardkit.train.run import prepare  # noqa: E402


def _items(sizes: list[int]) -> list[Item]:
    """Rows of prompts ``k0``, ``k1``, … (``sizes[p]`` rows of prompt ``p``), interleaved."""
    keys = [f"k{p}" for p, n in enumerate(sizes) for _ in range(n)]
    random.Random(7).shuffle(keys)
    return [
        Item(ids=[[1, i], [2, i]], types=[None, None], pairs=[(0, 1, False, 0.0, 1.0)],
             example_id=f"r{i}", prompt_key=k)
        for i, k in enumerate(keys)
    ]  # fmt: skip


def _keys(items: list[Item]) -> set[str]:
    return {it.prompt_key for it in items}


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_no_prompt_on_both_sides_and_the_size_of_whole_prompts(fraction):
    """10 prompts of 2 rows: the row split put a prompt on both sides for most seeds."""
    items = _items([2] * 10)
    want = max(1, round(fraction * 20))
    splits = set()
    for seed in range(20):
        train, held = split_holdout(items, fraction, seed)
        assert not _keys(train) & _keys(held), seed
        assert len(train) + len(held) == 20 and abs(len(held) - want) <= 1, (seed, len(held))
        assert split_holdout(items, fraction, seed) == (train, held)  # seeded: the same again
        splits.add(tuple(it.example_id for it in held))
    assert len(splits) > 5  # the seed draws the prompts
    leaky = [s for s in range(20) if _keys(split_holdout(items, fraction, s, by="row")[0])
             & _keys(split_holdout(items, fraction, s, by="row")[1])]  # fmt: skip
    assert len(leaky) >= 10  # what the row split does (holdout_by row keeps it)


def test_whole_prompts_come_as_close_to_the_fraction_as_they_can():
    # 10 rows, fraction 0.2 (2 rows): never the 5-row prompt, always 2 one-row prompts
    items = _items([5, 1, 1, 1, 1, 1])
    for seed in range(10):
        _, held = split_holdout(items, 0.2, seed)
        assert len(held) == 2 and "k0" not in _keys(held), seed
    # every prompt larger than the hold-out asked for: the smallest one, never all of them
    _, held = split_holdout(_items([6, 4, 8]), 0.05, 0)
    assert _keys(held) == {"k1"} and len(held) == 4
    train, held = split_holdout(_items([1, 1]), 0.9, 0)
    assert len(train) == len(held) == 1


def test_distinct_prompts_split_as_the_row_split_did():
    """With one row per prompt the hold-out is the one the row split drew for the seed (the
    shuffled indices' first round(fraction·n)), so runs on such data keep their hold-out."""
    items = _items([1] * 40)
    for seed, fraction in [(0, 0.1), (3, 0.25), (42, 0.5)]:
        idx = list(range(40))
        random.Random(seed).shuffle(idx)
        before = sorted(idx[: max(1, round(fraction * 40))])
        _, held = split_holdout(items, fraction, seed)
        assert [int(it.example_id[1:]) for it in held] == before
        assert split_holdout(items, fraction, seed, by="row") == split_holdout(
            items, fraction, seed
        )


def test_one_prompt_cannot_be_split_by_prompt():
    items = _items([6])
    with pytest.raises(DataError, match=r"train data 'x': eval_fraction 0\.5 holds out whole "
                       r"prompts and all 6 examples have one prompt.*holdout_by row"):  # fmt: skip
        split_holdout(items, 0.5, 0, where="train data 'x'")
    train, held = split_holdout(items, 0.5, 0, by="row")
    assert len(train) == len(held) == 3
    with pytest.raises(DataError, match="of 1 example: no training example is left"):
        split_holdout(_items([1]), 0.5, 0, by="row")


def test_holdout_by_is_checked_with_the_config(tmp_path):
    with pytest.raises(SpecError, match="holdout_by must be prompt or row, got 'example'"):
        tiny_cfg("m", tmp_path / "o", holdout_by="example").validate()


def _two_rows_per_prompt(path: Path, n_prompts: int = 8) -> str:
    """Preference rows, two per prompt (its second row spelt with other case, spacing and
    punctuation, as near-duplicate transcripts are)."""
    rows = []
    for p in range(n_prompts):
        for r, text in enumerate([f"What is fact number {p}?", f"  what IS fact number {p} "]):
            good, bad = GOOD[(p + r) % 6], BAD[(p + 2 * r) % 6]
            rows.append({"id": f"p{p}r{r}", "prompt": text, "chosen": good, "rejected": bad})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_run_holds_out_whole_prompts_and_says_how_many(bert_dir, tmp_path):
    """16 rows of 8 prompts, eval_fraction 0.25: 4 rows of 2 prompts held out; the printed
    lines, rewardkit_train.json and metrics.json count the prompts of each side."""
    from typer.testing import CliRunner

    from rewardkit.cli import app

    data = _two_rows_per_prompt(tmp_path / "d.jsonl")
    base = ["train", "--model", str(bert_dir), "--max_length", "64", "--threads", "1",
            "--no-progress", "--no-plot", "--max_steps", "1", "--batch_size", "4", "--data", data,
            "--eval_fraction", "0.25", "--seed", "3"]  # fmt: skip
    r = CliRunner().invoke(app, [*base, "--output_dir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "  train data: 12 examples from 6 prompts, 12 preference pairs\n" in r.output
    assert "  eval_fraction 0.25 hold-out: 4 examples from 2 prompts, 4 preference pairs\n" in (
        r.output
    )
    assert "  eval_prompts: 2\n" in r.output
    data_meta = json.loads((tmp_path / "o" / "rewardkit_train.json").read_text())["data"]
    assert data_meta["train"]["prompts"] == 6
    assert (data_meta["eval"]["prompts"], data_meta["eval"]["prompts_in_train"]) == (2, 0)
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert (metrics["eval_examples"], metrics["eval_pairs"], metrics["eval_prompts"]) == (4, 4, 2)
    # the same split, item by item: both rows of each held-out prompt, none of them trained on
    cfg = tiny_cfg(bert_dir, tmp_path / "p", data=data, eval_fraction=0.25, seed=3)
    tr = prepare(cfg)
    held = sorted(it.example_id for it in tr.eval_dataset)
    assert len(held) == 4 and {h[:-1] for h in held} == {h[:-2] + "r" for h in held}
    assert not {it.example_id[:-2] for it in tr.train_dataset} & {h[:-2] for h in held}

    # holdout_by row: the split this run made before, a prompt on both sides, said in the line
    r = CliRunner().invoke(app, [*base, "--holdout_by", "row", "--output_dir", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "r" / "rewardkit_train.json").read_text())["data"]["eval"]
    assert row["examples"] == 4 and row["prompts_in_train"] > 0
    shared = row["prompts_in_train"]
    assert f"  eval_fraction 0.25 hold-out of single rows: 4 examples from {row['prompts']} " \
        f"prompts ({shared} also in the training data)" in r.output  # fmt: skip


def test_helpsteer2_rated_rows_of_a_prompt_stay_together(bert_dir, tmp_path):
    """HelpSteer2: each of a prompt's two responses is its own rated row (regression)."""
    rows = [
        {"prompt": f"Question {p}", "response": (GOOD if r == 0 else BAD)[p % 6],
         "helpfulness": 4 - 3 * r, "correctness": 4 - 2 * r, "coherence": 4,
         "complexity": 1, "verbosity": 1}
        for p in range(6) for r in range(2)
    ]  # fmt: skip
    data = tmp_path / "hs2.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in rows))
    for seed in range(3):
        cfg = tiny_cfg(bert_dir, tmp_path / f"o{seed}", data=str(data), objective="regression",
                       attributes=["helpfulness"], eval_fraction=0.3, seed=seed)  # fmt: skip
        tr = prepare(cfg)
        train, held = _keys(tr.train_dataset), _keys(tr.eval_dataset)
        assert len(tr.eval_dataset) == 4 and len(held) == 2 and not train & held, seed


def test_prm_solutions_of_one_problem_stay_together(tmp_path):
    """PRM800K-style step-labelled solutions, several per problem (one item each): the prm
    items are keyed by their problem too."""
    from prm_helpers import tiny_llama_dir, word_tokenizer
    from rewardkit.rewards.prm.conventions import QWEN_SYSTEM

    records = [{"id": f"t{i}", "problem": f"problem {i % 5}", "steps": ["a b", "c d"],
                "labels": [1, 1 if i % 3 else -1]} for i in range(20)]  # fmt: skip
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    tok = word_tokenizer([QWEN_SYSTEM] + [r["problem"] + " a b c d" for r in records])
    model = tiny_llama_dir(tmp_path / "base", tok, "token-cls", seed=0)
    cfg = tiny_cfg(model, tmp_path / "o", objective="prm", data=str(path), max_length=128,
                   eval_fraction=0.2, seed=2)  # fmt: skip
    tr = prepare(cfg)
    train, held = _keys(tr.train_dataset), _keys(tr.eval_dataset)
    assert len(tr.eval_dataset) == 4 and len(held) == 1 and len(train) == 4

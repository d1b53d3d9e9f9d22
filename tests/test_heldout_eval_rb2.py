"""RewardBench 2 files in the published schema (``allenai/reward-bench-2``: ``id, prompt,
chosen`` (list), ``rejected`` (list), ``num_correct, num_incorrect, total_completions, models,
subset, additional_metadata``) as JSONL and as a pandas-written Parquet file
(docs/methods/D2-rewardbench-2.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward

DOMAINS = ("Factuality", "Precise IF", "Math", "Safety", "Focus")


def _rows(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for d in DOMAINS:
        for k in range(4):
            lens = rng.integers(5, 12, 4)  # lengths are the rule:length scores; ties happen
            rows.append(
                {
                    "id": f"{d}-{k}",
                    "prompt": f"{d} prompt {k}",
                    "chosen": ["c" * int(lens[0])],
                    "rejected": ["r" * int(n) for n in lens[1:]],
                    "num_correct": 1,
                    "num_incorrect": 3,
                    "total_completions": 4,
                    "models": ["m1", "m2", "m3", "m4"],
                    "subset": d,
                    "additional_metadata": {"source": "test"},
                }
            )
    for p in range(3):
        ref = rng.integers(5, 12, 3)
        tied = rng.integers(5, 12, 5)
        for kind, lens, n_correct in (("ref", ref, 1), ("tied", tied, 2)):
            rows.append(
                {
                    "id": f"{kind}:{p}",
                    "prompt": f"ties prompt {p}",
                    "chosen": ["c" * int(n) for n in lens[:n_correct]],
                    "rejected": ["r" * int(n) for n in lens[n_correct:]],
                    "num_correct": n_correct,
                    "num_incorrect": len(lens) - n_correct,
                    "total_completions": len(lens),
                    "models": [],
                    "subset": "Ties",
                    "additional_metadata": {"source": "test"},
                }
            )
    return rows


def _official(rows: list[dict]) -> dict[str, float]:
    """reward-bench ``reroll_and_score_dataset`` (1/m when the chosen ties m ways for the top)
    and ``process_single_model`` (Ties: 0.3·tied acc + 0.3·ref acc + 0.2·correctness
    preferred + 0.2·hard + 0.01·tanh margin); the score is the mean of the six subsets."""
    out: dict[str, list[float]] = {}
    ties: dict[tuple[str, str], tuple[bool, float | None, float]] = {}
    for r in rows:
        scores = np.array([len(x) for x in r["chosen"] + r["rejected"]], dtype=float)
        if r["subset"] == "Ties":
            kind, pid = r["id"].split(":")
            nc = r["num_correct"]
            cor, inc = scores[:nc], scores[nc:]
            dcm = float(cor.max() - cor.min()) if nc > 1 else None
            cim = float(cor.min() - inc.max())
            ties[(kind, pid)] = (cim > 0, dcm, cim)
            continue
        top = scores.max()
        out.setdefault(r["subset"], []).append(
            1 / np.sum(scores == top) if scores[0] == top else 0.0
        )
    res = {d: float(np.mean(v)) for d, v in out.items()}
    ref = {p: v for (k, p), v in ties.items() if k == "ref"}
    tied = {p: v for (k, p), v in ties.items() if k == "tied"}
    both = sorted(set(ref) & set(tied))
    dcm = np.array([tied[p][1] for p in both])
    cim_t = np.array([tied[p][2] for p in both])
    cim_r = np.array([ref[p][2] for p in both])
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.nan_to_num(np.tanh(np.minimum(cim_r, cim_t) / dcm - 1), nan=0.0)
    res["Ties"] = float(
        0.3 * np.mean([v[0] for v in tied.values()])
        + 0.3 * np.mean([v[0] for v in ref.values()])
        + 0.2 * np.mean(cim_t > dcm)
        + 0.2 * np.mean(np.minimum(cim_r, cim_t) > dcm)
        + 0.01 * np.mean(margin)
    )
    res["score"] = float(np.mean([res[d] for d in (*DOMAINS, "Ties")]))
    return res


def _evaluate(path: Path):
    return evaluate(
        load(str(path)),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rb2_jsonl_and_parquet_match_official_scoring(tmp_path: Path, seed: int) -> None:
    rows = _rows(seed)
    want = _official(rows)
    jsonl = tmp_path / "rb2.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    parquet = tmp_path / "test-00000-of-00001.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path in (jsonl, parquet):
        examples = load(str(path))
        assert len(examples) == len(rows)
        res = _evaluate(path)
        col = res["rule:length"]
        assert res.settings["benchmark"] == "rewardbench2"
        assert col.subsets["Ties"].rule == "ties"
        for d in (*DOMAINS, "Ties"):
            assert col.sections[d].score == pytest.approx(want[d]), d
        assert col.score == pytest.approx(want["score"])


def test_widened_num_correct_column_is_read(tmp_path: Path) -> None:
    """pandas widens an int column with one missing value to float64 (1.0, NaN)."""
    rows = _rows(0)
    df = pd.DataFrame(rows)
    df["num_correct"] = df["num_correct"].astype("float64")
    df.loc[0, "num_correct"] = np.nan
    path = tmp_path / "widened.parquet"
    df.to_parquet(path)
    examples = load(str(path))
    assert len(examples) == len(rows)
    assert [len(ex.chosen) for ex in examples] == [len(r["chosen"]) for r in rows]
    bad = pd.DataFrame(rows)
    bad["num_correct"] = bad["num_correct"].astype("float64")
    bad.loc[2, "num_correct"] = 1.5
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(Exception, match=r"bad.parquet, row 2, field .num_correct."):
        load(str(tmp_path / "bad.parquet"))


def test_ties_without_published_ids_is_reported(tmp_path: Path) -> None:
    rows = _rows(0)
    for i, r in enumerate(rows):
        if r["subset"] == "Ties":
            r["id"] = str(1000 + i)
    path = tmp_path / "rb2_renumbered.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = _evaluate(path)
    assert res["rule:length"].subsets["Ties"].rule == "mean"
    assert "not by the RewardBench 2 Ties formula" in " ".join(res.settings.get("notes", []))


def test_misspelled_domain_is_reported(tmp_path: Path) -> None:
    rows = _rows(0)
    for r in rows:
        if r["subset"] == "Precise IF":
            r["subset"] = "precise_if"
    path = tmp_path / "rb2_renamed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = _evaluate(path)
    assert res.settings["benchmark"] == "generic"
    notes = " ".join(res.settings.get("notes", []))
    assert "['precise_if'] are not RewardBench 2 subsets" in notes
    assert res["rule:length"].subsets["Ties"].rule == "ties"


def test_a_repeated_ties_row_is_named_before_scoring(tmp_path: Path) -> None:
    rows = _rows(0)
    rows += [r for r in rows if r["id"] == "tied:1"]  # two exports merged
    path = tmp_path / "rb2_twice.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"subset 'Ties': Ties row id\(s\) 'tied:1' appear more"):
        _evaluate(path)

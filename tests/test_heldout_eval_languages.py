"""M-RewardBench per-language files (``C4AI-Community/multilingual-reward-bench``: ``id,
language, prompt, chosen, rejected, chosen_model, rejected_model, subset``) beside the English
RewardBench (v1) file, which has no ``language`` column (docs/methods/D3-m-rewardbench.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate, rewardbench1_scores
from rewardkit.registry import load_reward

SUBSETS = ("alpacaeval-easy", "mt-bench-hard", "refusals-dangerous", "math-prm", "hep-go")


def _frame(wins: dict[str, tuple[int, int]], language: str | None) -> pd.DataFrame:
    rows, i = [], 0
    for subset, (k, n) in wins.items():
        for j in range(n):
            win = j < k
            row = {"id": i, "prompt": f"q{i}", "chosen": "c" * (20 if win else 5)}
            row |= {"rejected": "r" * (5 if win else 20), "chosen_model": "a"}
            row |= {"rejected_model": "b", "subset": subset}
            if language:
                row["language"] = language
            rows.append(row)
            i += 1
    return pd.DataFrame(rows)


def test_english_rewardbench_file_is_the_reference(tmp_path: Path) -> None:
    wins = {
        "en": dict(zip(SUBSETS, [(2, 2), (1, 2), (2, 2), (2, 2), (0, 2)], strict=True)),
        "deu_Latn": dict(zip(SUBSETS, [(1, 2), (1, 2), (0, 2), (2, 2), (1, 2)], strict=True)),
        "arb_Arab": dict(zip(SUBSETS, [(0, 2), (2, 2), (1, 2), (1, 2), (2, 2)], strict=True)),
    }
    root = tmp_path / "m-rewardbench"
    root.mkdir()
    # the English file first: the first record decides the format of a directory
    _frame(wins["en"], None).to_parquet(root / "0-reward-bench-filtered.parquet")
    for lang in ("deu_Latn", "arb_Arab"):
        (root / lang).mkdir()
        _frame(wins[lang], lang).to_parquet(root / lang / "test-00000-of-00001.parquet")
    examples = load(str(root))
    assert len(examples) == 30
    res = evaluate(examples, [load_reward("rule:length")], include_length_baseline=False, n_boot=20)
    langs = res["rule:length"].analyses["languages"]
    want = {
        lang: rewardbench1_scores({s: k / n for s, (k, n) in w.items()})["score"]
        for lang, w in wins.items()
    }
    assert langs["english"] == "en"
    for lang, score in want.items():
        assert langs["languages"][lang]["score"] == pytest.approx(score)
    for lang in ("deu_Latn", "arb_Arab"):
        assert langs["gap_to_english"][lang] == pytest.approx(want[lang] - want["en"])


def test_english_file_after_language_files_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "m-rewardbench"
    (root / "deu_Latn").mkdir(parents=True)
    _frame({"alpacaeval-easy": (1, 1)}, "deu_Latn").to_parquet(root / "deu_Latn" / "t.parquet")
    _frame({"alpacaeval-easy": (1, 1)}, None).to_parquet(root / "filtered.parquet")
    with pytest.raises(DataError, match=r"filtered.parquet, row 0, field 'language'.*'en'"):
        load(str(root))


def test_translation_subsets_keep_published_weights_elsewhere(tmp_path: Path) -> None:
    """M-RewardBench's Translation subsets have no published count; the RewardBench sections
    beside them keep theirs (math-prm 984 against each hep-* 164)."""
    wins = {
        "alpacaeval-easy": (1, 2),
        "math-prm": (2, 2),
        "hep-go": (0, 4),
        "translation-en-de-easy": (1, 4),
        "translation-en-de-hard": (2, 2),
    }
    _frame(wins, "deu_Latn").to_parquet(tmp_path / "deu.parquet")
    res = evaluate(
        load(str(tmp_path / "deu.parquet")),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
    )
    col = res["rule:length"]
    acc = {s: k / n for s, (k, n) in wins.items()}
    rb = rewardbench1_scores({s: a for s, a in acc.items() if "translation" not in s})
    translation = (1 + 2) / (4 + 2)  # example-weighted: 3 right of 6
    assert res.settings["benchmark"] == "m-rewardbench"
    assert col.sections["Reasoning"].score == pytest.approx(rb["sections"]["Reasoning"])
    assert col.sections["Translation"].score == pytest.approx(translation)
    want = (sum(rb["sections"].values()) + translation) / (len(rb["sections"]) + 1)
    assert col.score == pytest.approx(want)
    lang = col.analyses["languages"]["languages"]["deu_Latn"]
    assert lang["score"] == pytest.approx(want)
    assert "no published RewardBench count" in " ".join(res.settings["notes"])

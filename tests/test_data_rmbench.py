"""RM-Bench rows: sniffing, domains, style order; real rows from ../shared/data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

ROW = {
    "id": 7,
    "prompt": "Why is the sky blue?",
    "subset": "alpacaeval",
    "chosen": ["Rayleigh.", "Rayleigh scattering of sunlight.", "**Rayleigh** scattering."],
    "rejected": ["Mie.", "Mie scattering of sunlight.", "**Mie** scattering."],
}


def test_row_sniffs_and_orders_styles(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW, name="chat_filtered.jsonl")
    assert ex.meta["format"] == "rm-bench" and ex.id == "7" and ex.subset == "alpacaeval"
    assert ex.responses == ROW["chosen"] + ROW["rejected"] and ex.chosen == [0, 1, 2]
    assert ex.meta["section"] == "chat" and ex.meta["style_matrix"] is True


def test_domain_from_subset_and_code_language_kept_apart(tmp_path: Path) -> None:
    ex = one(tmp_path, {**ROW, "subset": "xstest-should-respond", "language": "python"})
    assert ex.meta["section"] == "safety" and ex.language is None
    assert ex.meta["code_language"] == "python"
    assert one(tmp_path, {**ROW, "domain": "math"}).meta["section"] == "math"


def test_wrong_number_of_styles_is_located(tmp_path: Path) -> None:
    e = err(tmp_path, {**ROW, "chosen": ["a", "b"]}, format="rm-bench")
    assert e.field == "chosen" and "expected 3 responses" in str(e)


@pytest.mark.shared_data
def test_real_rm_bench_directory(shared_data: Path) -> None:
    exs = load(shared_data / "rm_bench")
    assert len(exs) == 798
    assert Counter(e.meta["section"] for e in exs) == {"safety": 441, "code": 228, "chat": 129}
    code = next(e for e in exs if e.meta["section"] == "code")
    assert code.meta["code_language"] and code.language is None
    assert all(len(e.responses) == 6 and e.meta["format"] == "rm-bench" for e in exs)

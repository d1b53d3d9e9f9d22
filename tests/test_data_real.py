"""Loaders on real public rows from ``<checkout>/../shared/data`` (skipped when absent)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from rewardkit.data import load

pytestmark = pytest.mark.shared_data

HH = {
    # subset: (records, empty final assistant turns, identical pairs)
    "helpful-base": (2354, 4, 2),
    "helpful-online": (1137, 3, 2),
    "helpful-rejection-sampled": (2749, 0, 32),
}


@pytest.mark.parametrize("subset", list(HH))
def test_hh_rlhf_real(shared_data: Path, subset: str) -> None:
    path = shared_data / "hh_rlhf" / subset / "test.jsonl.gz"
    total, empty, identical = HH[subset]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exs = load(path)  # strict: every record loads, empty final turns included
    assert len(exs) == total
    assert not caught
    assert all(e.meta["format"] == "hh-rlhf" and e.chosen == [0] for e in exs)
    assert all(e.prompt[0]["role"] == "user" and e.prompt[-1]["role"] == "user" for e in exs)
    assert sum(any(not r.strip() for r in e.responses) for e in exs) == empty
    assert sum(bool(e.meta.get("identical_responses")) for e in exs) == identical
    assert exs[0].id == "test.jsonl.gz:1"


def test_hh_rlhf_real_empty_response_is_a_response(shared_data: Path) -> None:
    # line 121 of helpful-base ends its rejected transcript with an empty assistant turn
    path = shared_data / "hh_rlhf" / "helpful-base" / "test.jsonl.gz"
    ex = load(path, limit=121)[-1]
    assert ex.id == "test.jsonl.gz:121"
    assert ex.responses[0].strip() and ex.responses[1] == ""
    assert ex.prompt[-1]["role"] == "user"


def test_hh_rlhf_real_directory(shared_data: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exs = load(shared_data / "hh_rlhf", split="test")
    assert len(exs) == sum(t for t, _, _ in HH.values())
    assert exs[0].id == "helpful-base/test.jsonl.gz:1"
    assert len({e.id for e in exs}) == len(exs)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("chat_filtered.json", 129),
        ("code_filtered.json", 228),
        ("safety-refuse_filtered.json", 284),
        ("safety-response_filtered.json", 157),
    ],
)
def test_rm_bench_sniffs_as_rm_bench(shared_data: Path, name: str, count: int) -> None:
    exs = load(shared_data / "rm_bench" / name)
    assert len(exs) == count
    for e in exs:
        assert len(e.responses) == 6 and e.chosen == [0, 1, 2] and e.rejected == [3, 4, 5]
        assert e.meta["format"] == "rm-bench" and e.subset and e.meta["style_matrix"]
    assert len(load(shared_data / "rm_bench" / name, format="rewardbench2")) == count
    assert all(e.id.isdigit() for e in exs)  # from the "id" column


def test_judgebench_with_column_map(shared_data: Path) -> None:
    path = shared_data / "judgebench" / "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl"
    columns = {"prompt": "question", "chosen": "response_A", "rejected": "response_B"}
    exs = load(path, columns=columns)
    assert len(exs) == 350
    first = exs[0]
    assert first.id == "e302b0a0-28d5-5a3c-b1af-fedcf5543e72"
    assert first.source == "mmlu-pro-law" and first.meta["format"] == "generic"
    assert first.meta["label"] in ("A>B", "B>A") and first.meta["original_id"] == 1420
    assert first.prompt[0]["content"].startswith("A college student initiated a criminal case")
    assert sum(e.meta["label"] == "A>B" for e in exs) == 193

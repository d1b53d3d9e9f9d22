"""Saved Hugging Face datasets (``save_to_disk``) and the ``hf:`` name path without a hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from rewardkit.data import hub, iter_records, load
from rewardkit.errors import DataError

ROWS = [
    {
        "prompt": "Q1",
        "chosen": ["a"],
        "rejected": ["b", "c"],
        "subset": "Math",
        "num_correct": 1,
        "id": "r0",
    },
    {
        "prompt": "Q2",
        "chosen": ["d", "e"],
        "rejected": ["f"],
        "subset": "Ties",
        "num_correct": 2,
        "id": "r1",
    },
]


@pytest.fixture
def datasets() -> ModuleType:
    return pytest.importorskip("datasets")


def test_saved_dataset_directory(tmp_path: Path, datasets: ModuleType) -> None:
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "rb2"))
    exs = load(tmp_path / "rb2")
    assert [e.id for e in exs] == ["r0", "r1"]
    assert exs[1].responses == ["d", "e", "f"] and exs[1].chosen == [0, 1]
    assert exs[0].meta == {"num_correct": 1, "format": "rewardbench2"}
    assert [loc.row for loc, _ in iter_records(tmp_path / "rb2")] == [0, 1]


def test_saved_dataset_errors_name_the_row(tmp_path: Path, datasets: ModuleType) -> None:
    bad = [ROWS[0], {**ROWS[0], "num_correct": 3}]
    datasets.Dataset.from_list(bad).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError) as ei:
        load(tmp_path / "bad")
    assert (ei.value.row, ei.value.line, ei.value.field) == (1, None, "num_correct")
    assert ei.value.path == str(tmp_path / "bad")


def test_saved_dataset_dict_splits(tmp_path: Path, datasets: ModuleType) -> None:
    pair = [{"prompt": "Q", "chosen": "a", "rejected": "b"}]
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(pair * 3), "test": datasets.Dataset.from_list(pair)}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(load(tmp_path / "dd", split="train")) == 3
    assert load(tmp_path / "dd", split="test")[0].id == "dd/test:0"
    with pytest.raises(DataError, match=r"has splits train, test; read one as .*dd:SPLIT"):
        load(tmp_path / "dd")
    with pytest.raises(DataError, match="no split 'dev'; splits: train, test"):
        load(tmp_path / "dd", split="dev")


def test_hf_name_parsing() -> None:
    assert hub.parse_hf_name("hf:allenai/reward-bench", None) == ("allenai/reward-bench", None)
    assert hub.parse_hf_name("hf:allenai/reward-bench-2:test", None) == (
        "allenai/reward-bench-2",
        "test",
    )
    assert hub.parse_hf_name("hf:org/x", "train") == ("org/x", "train")
    with pytest.raises(DataError, match="names split 'test' but split='train'"):
        hub.parse_hf_name("hf:org/x:test", "train")
    with pytest.raises(DataError, match="expected hf:ORG/NAME"):
        hub.parse_hf_name("hf:", None)


def test_hf_name_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=5.0: False)
    with pytest.raises(DataError, match="hub is not reachable; set HF_HUB_OFFLINE=1") as ei:
        load("hf:rewardkit-tests/no-such-dataset")
    assert ei.value.path == "hf:rewardkit-tests/no-such-dataset"


def test_hf_name_offline_gives_clear_error(datasets: ModuleType) -> None:
    """A fresh interpreter with HF_HUB_OFFLINE=1: a clear DataError, quickly, no network."""
    code = (
        "from rewardkit.data import load\n"
        "from rewardkit.errors import DataError\n"
        "try:\n"
        "    load('hf:rewardkit-tests/no-such-dataset:test')\n"
        "except DataError as e:\n"
        "    print('DATAERROR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert time.monotonic() - t < 60
    assert "DATAERROR hf:rewardkit-tests/no-such-dataset:test: cannot load dataset" in out.stdout, (
        out.stderr
    )
    assert "HF_HUB_OFFLINE=1" in out.stdout

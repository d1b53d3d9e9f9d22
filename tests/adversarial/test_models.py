"""A mistyped or missing model: one line saying where it was looked for; inputs first."""

from __future__ import annotations

import pytest

from rewardkit.errors import ModelNotFoundError
from rewardkit.models.loading import resolve_model


@pytest.mark.parametrize("name", ["/nonexistent", "./no/such/dir", "~/missing-model", "a/b/c"])
def test_missing_local_path(name):
    with pytest.raises(ModelNotFoundError, match="no such local directory"):
        resolve_model(name)


def test_hub_id_not_cached_and_hub_offline(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("nobody-xyz/no-such-model")
    msg = str(info.value)
    assert "not a local directory" in msg and "local Hub cache" in msg and "unreachable" in msg
    assert "\n" not in msg


def test_invalid_hub_id():
    with pytest.raises(ModelNotFoundError, match="not a valid Hub id"):
        resolve_model("bad id with spaces")


def test_eval_with_a_missing_model_is_one_line(cli, tmp_path):
    code, text = cli("eval", "-r", "classifier:/nonexistent", "--out", tmp_path / "o")
    assert code == 2
    assert text.strip() == "error: model '/nonexistent': no such local directory (/nonexistent)"


def test_missing_data_is_reported_before_the_model_is_looked_for(cli, tmp_path):
    missing = tmp_path / "missing.jsonl"
    code, text = cli("score", "-r", "judge:nonexistent", "--data", missing, "--out", tmp_path / "o")
    assert code == 2 and "missing.jsonl" in text and "model" not in text

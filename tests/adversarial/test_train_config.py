"""The whole trainer config is validated up front; the message names the field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.errors import SpecError
from rewardkit.train.config import TrainConfig, apply_overrides, load_config

BAD = [
    ("epochs", -1),
    ("epochs", 0),
    ("epochs", "abc"),
    ("epochs", math.nan),
    ("lr", 0),
    ("lr", -1e-4),
    ("lr", "fast"),
    ("batch_size", 0),
    ("batch_size", 1.5),
    ("batch_size", "eight"),
    ("batch_size", True),
    ("grad_accum", -2),
    ("max_steps", 0),
    ("warmup_ratio", 1.5),
    ("eval_fraction", 1.0),
    ("label_smoothing", 0.7),
    ("save_steps", -5),
    ("logging_steps", 0),
    ("threads", 0),
    ("threads", 10**9),  # libgomp tried to allocate 216 GB and aborted
    ("seed", -1),
    ("max_length", 2),
    ("lora_dropout", 1.0),
    ("packing", 3),
    ("on_error", "ignore"),
    ("dtype", "float64"),
]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_bad_value_names_the_field(tmp_path, field, value):
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({field: value}))
    with pytest.raises(SpecError, match=rf"\b{field}\b"):
        load_config(path)


@pytest.mark.parametrize(
    ("field", "text"), [("epochs", "-1"), ("batch_size", "1.5"), ("lr", "nan"), ("seed", "x")]
)
def test_bad_command_line_value_names_the_field(field, text):
    with pytest.raises(SpecError, match=rf"\b{field}\b"):
        apply_overrides(TrainConfig(), {field: text})


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["epochs", "lr", "batch_size", "grad_accum", "warmup_ratio", "seed"]),
    value=st.one_of(
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=6),
        st.booleans(),
        st.none(),
    ),
)
def test_any_value_is_accepted_sanely_or_refused_by_name(field, value):
    """Either the field holds a usable value afterwards, or SpecError names it."""
    try:
        cfg = apply_overrides(TrainConfig(), {field: value})
    except SpecError as err:
        assert field in str(err)
        return
    got = getattr(cfg, field)
    assert not isinstance(got, bool) and isinstance(got, int | float) and math.isfinite(got)
    assert {
        "epochs": got > 0,
        "lr": got > 0,
        "batch_size": got >= 1,
        "grad_accum": got >= 1,
        "warmup_ratio": 0 <= got <= 1,
        "seed": got >= 0,
    }[field]


def test_train_with_negative_epochs_exits_2_before_loading_anything(cli, tmp_path):
    code, text = cli("train", "--epochs", "-1", "--output_dir", str(tmp_path / "o"))
    assert code == 2 and "epochs" in text
    assert not (tmp_path / "o").exists()


def test_frozen_backbone_says_it_keeps_no_checkpoints(tmp_path):
    from rewardkit.train.frozen import train_frozen_head

    cfg = apply_overrides(
        TrainConfig(), {"freeze_backbone": True, "save_steps": 10, "output_dir": str(tmp_path)}
    )
    with pytest.raises(SpecError, match="save_steps"):
        train_frozen_head(cfg)
    cfg = apply_overrides(
        TrainConfig(), {"freeze_backbone": True, "resume": True, "output_dir": str(tmp_path)}
    )
    with pytest.raises(SpecError, match="resume"):
        train_frozen_head(cfg)

"""Hostile input to reward back-propagation (docs/methods/F4-alignprop.md, F6-r0.md) and to
training-prompt records (docs/evaluation.md, "Training prompts in the evaluation data"): every
bad input is a one-line error or a warning naming the file, never a traceback or a wrong count."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format
from typer.testing import CliRunner

from rewardkit.data.trained_on import (
    TRAINED_PROMPTS_FILE,
    key_hashes,
    read_trained_prompts,
    trained_count,
    union_of,
    write_trained_prompts,
)
from rewardkit.errors import DataError, SpecError
from rewardkit.multimodal import reward_backprop as RB

torch = pytest.importorskip("torch")


# --- reward back-propagation -------------------------------------------------------------------


def _quadratic(x):
    return (x - 2.0) ** 2


def _setup(lr=0.1):
    """The F4 card's chain: x0 = 0.8, x_{t+1} = a_t·x_t, a = (0.9, 1.1, 1.2)."""
    a = [torch.tensor(v, requires_grad=True) for v in (0.9, 1.1, 1.2)]
    return a, [lambda x, p=p: p * x for p in a], torch.optim.SGD(a, lr=lr)


def _nan_lr(a):
    opt = torch.optim.SGD(a, lr=0.1)
    opt.param_groups[0]["lr"] = float("nan")  # as a scheduler could set it
    return opt


def _neg_lr(a):
    opt = torch.optim.SGD(a, lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    return opt


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"loss_coeff": -0.01}, "loss_coeff must be > 0"),
        ({"loss_coeff": 0.0}, "loss_coeff must be > 0"),
        ({"x0": torch.zeros(0)}, r"x0 is empty \(shape \(0,\)\)"),
        ({"x0": torch.tensor(float("nan"))}, "x0 holds NaN or inf"),
        ({"params": torch.nn.Linear(2, 2)}, "params must be a list of tensors"),
        ({"params": None}, "params must be a list of tensors"),
        ({"params": [torch.tensor(1.0, requires_grad=True) * 2]}, "not a leaf parameter"),
        ({"params": [torch.tensor(1.0)]}, r"requires grad \(frozen\?\)"),
        ({"optimizer": None}, r"optimizer has no zero_grad\(\)"),
        ({"optimizer": _nan_lr}, r"param_groups\[0\] lr must be a finite number >= 0, got nan"),
        ({"optimizer": _neg_lr}, r"lr must be a finite number >= 0, got -1.0"),
        ({"rewards": [(0.0, _quadratic)]}, "every reward weight is 0"),
        ({"cutoff": 42}, r"steps 0..2 \(3 steps\); draw it with truncated_backprop_k\(total=3\)"),
        (  # the rewards see no parameter: the regulariser alone would have been trained
            {"rewards": [(1.0, lambda x: x.detach() ** 2)], "regularizer": RB.l2_regularizer(0.1)},
            "reward loss does not depend on params",
        ),
        (  # an anchor of another shape was broadcast: a wrong Reg(θ), silently
            {"regularizer": RB.l2_regularizer(0.1, anchor=[torch.zeros(3)] * 3)},
            r"anchor 0 has shape \(3,\), params\[0\] \(\)",
        ),
    ],
)
def test_step_refuses_hostile_input_before_any_update(change, match):
    a, chain, opt = _setup()
    kw = {"chain": chain, "params": a, "rewards": [(1.0, _quadratic)], "optimizer": opt}
    kw.update({k: v for k, v in change.items() if k in kw})
    if callable(kw["optimizer"]) and not hasattr(kw["optimizer"], "step"):
        kw["optimizer"] = kw["optimizer"](a)
    rest = {"x0": torch.tensor(0.8), "cutoff": 0}
    rest.update({k: v for k, v in change.items() if k not in kw})
    with pytest.raises(SpecError, match=match):
        RB.reward_backprop_step(kw["chain"], kw["params"], kw["rewards"], kw["optimizer"], **rest)
    assert [float(p.detach()) for p in a] == pytest.approx([0.9, 1.1, 1.2])
    assert all(p.grad is None for p in a)


def test_l2_regularizer_refuses_a_negative_weight_and_non_tensor_anchors():
    with pytest.raises(SpecError, match="weight must be >= 0"):
        RB.l2_regularizer(-0.1)
    with pytest.raises(SpecError, match="anchor must be a list of tensors"):
        RB.l2_regularizer(0.1, anchor=[0.5])
    with pytest.raises(SpecError, match="anchor must be a list of tensors"):
        RB.l2_regularizer(0.1, anchor=0.5)


def test_f6_worked_example_with_one_tensor_as_params_and_numpy_numbers():
    # F6 card: θ = 0.5, z = 1.5, loss −0.2875, gradient −1.4 clipped to 1, SGD lr 0.1 → θ = 0.6
    theta = torch.tensor(0.5, requires_grad=True)
    res = RB.reward_backprop_step(
        [lambda z: theta * z], theta,
        [(np.float32(1.0), lambda x: (x - 1.0) ** 2), (np.float64(0.5), lambda x: x, "score")],
        torch.optim.SGD([theta], lr=0.1), x0=torch.tensor(1.5), cutoff=np.int64(0),
        loss_coeff=np.float32(1.0), regularizer=RB.l2_regularizer(0.1, anchor=torch.tensor(0.0)),
    )  # fmt: skip
    assert res.loss == pytest.approx(-0.2875) and res.grad_norm == pytest.approx(1.4, abs=1e-6)
    assert float(theta.detach()) == pytest.approx(0.6, abs=1e-6)


def test_a_huge_finite_gradient_is_clipped_not_refused_or_zeroed():
    # F4 worked example with the reward weighted 1e30: the gradient (−0.018137, −0.016626)·1e30
    # is finite, but its float32 square is not: the norm was inf (TrainingDiverged); clipped to
    # norm 1 the step is the worked example's direction, lr 0.1.
    a, chain, opt = _setup(lr=0.1)
    res = RB.reward_backprop_step(
        chain, a, [(1e30, _quadratic)], opt, x0=torch.tensor(0.8), cutoff=1
    )
    assert res.grad_norm == pytest.approx(0.024604e30, rel=1e-4)
    assert float(a[0].detach()) == pytest.approx(0.9)
    assert float(a[1].detach()) == pytest.approx(1.1 + 0.1 * 0.018137 / 0.024604, abs=1e-5)
    assert float(a[2].detach()) == pytest.approx(1.2 + 0.1 * 0.016626 / 0.024604, abs=1e-5)


def test_a_duck_typed_optimizer_does_not_let_gradients_accumulate():
    a, chain, sgd = _setup(lr=0.0)

    class Lazy:  # zero_grad does nothing; no param_groups to check against
        def zero_grad(self):
            pass

        def step(self):
            sgd.step()

    for _ in range(2):
        a[1].grad = torch.tensor(100.0)  # stale, from elsewhere
        res = RB.reward_backprop_step(
            chain, a, [(1.0, _quadratic)], Lazy(), x0=torch.tensor(0.8), cutoff=1, grad_clip=None
        )
        assert res.grad_norm == pytest.approx(0.024604, abs=1e-6)  # the F4 card's norm
        assert round(float(a[1].grad), 6) == -0.018137


def test_cutoff_draws_that_overflow_are_out_of_range_not_a_traceback():
    assert 0 <= RB.truncated_backprop_k(mean=1e308, std=1e308, rng=1) <= 49
    with pytest.raises(SpecError, match="no gaussian draw fell"):  # was OverflowError
        RB.truncated_backprop_k(mean=-1e308, std=1e308, rng=1, redraw=True)
    with pytest.raises(SpecError, match="mean must be a finite number"):
        RB.truncated_backprop_k(mean=10**400)
    assert RB.truncated_backprop_k("gaussian", mean=np.float32(3.7), std=0, total=4) == 3


def test_alignprop_configs_uniform_range_is_low_30():
    # AlignProp's config: backprop_kwargs uniform {'min': 30, 'max': 50} → torch.randint(30, 50)
    rng = np.random.default_rng(3)
    draws = np.array([RB.truncated_backprop_k("uniform", low=30, rng=rng) for _ in range(4000)])
    assert draws.min() == 30 and draws.max() == 49
    assert abs(draws.mean() - 39.5) < 0.3  # sd 5.77/√4000 ≈ 0.09


# --- training-prompt records: damaged files --------------------------------------------------------


def _header(shape, descr="<u8", body=b""):
    def make(path: Path) -> None:
        with open(path, "wb") as fh:
            npy_format.write_array_header_1_0(
                fh, {"descr": descr, "fortran_order": False, "shape": shape}
            )
            fh.write(body)

    return make


def _truncated(path: Path) -> None:
    np.save(path, np.arange(10, dtype=np.uint64))
    path.write_bytes(path.read_bytes()[:-20])


DAMAGED = {
    "object": lambda p: np.save(p, np.array([1, "a"], dtype=object), allow_pickle=True),
    "int64": lambda p: np.save(p, np.arange(3, dtype=np.int64)),
    "2-D": lambda p: np.save(p, np.zeros((2, 2), np.uint64)),
    "0-D": lambda p: np.save(p, np.uint64(5)),
    "structured": lambda p: np.save(p, np.zeros(3, dtype=[("a", "<u8")])),
    "truncated": _truncated,
    "huge header": _header((1 << 40,)),
    "overflowing header": _header((1 << 62,)),
    "npz": lambda p: np.savez(open(p, "wb"), a=np.arange(3, dtype=np.uint64)),  # noqa: SIM115
    "pickle": lambda p: p.write_bytes(b"\x80\x04K\x01."),
    "directory": lambda p: p.mkdir(),
    "symlink to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
    "broken symlink": lambda p: p.symlink_to(p.parent / "gone"),
    "fifo": lambda p: os.mkfifo(p),
}


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_record_is_one_warning_naming_the_file(tmp_path, kind):
    path = tmp_path / TRAINED_PROMPTS_FILE
    DAMAGED[kind](path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_trained_prompts(tmp_path) is None
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1, msgs  # not also numpy's overflow note
    assert msgs[0].startswith(f"{path}: not a training-prompt record") and "\n" not in msgs[0]


def test_a_big_endian_record_is_read_with_its_values(tmp_path):
    np.save(tmp_path / TRAINED_PROMPTS_FILE, np.array([3, 1 << 63, 7], dtype=">u8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read_trained_prompts(tmp_path)
    assert got is not None and got.dtype == np.uint64 and got.dtype.isnative
    assert got.tolist() == [3, 1 << 63, 7]


@pytest.mark.parametrize(
    "key", ["zz" * 8, "0x" + "1" * 16, "1_2" * 6, " " + "ab" * 8, "+" + "a" * 16, "ab", 5, None]
)
def test_a_key_that_is_not_a_hex_digest_is_a_data_error(key):
    good = "ab" * 8
    with pytest.raises(DataError, match=r"row 1, field 'prompt key': prompt key .* not a hex"):
        key_hashes([good, key])
    with pytest.raises(DataError, match="not a hex digest"):
        trained_count([good, key], np.array([1], np.uint64))


def test_counts_stay_exact_when_a_part_records_another_integer_type():
    # 2^62 and 2^62 + 1 are one float64: a union of uint64 and int64 records became float64 and
    # counted a prompt that was never trained on
    key = "4" + "0" * 31  # hash 2^62
    union = union_of([np.array([5], np.uint64), np.array([(1 << 62) + 1], np.int64)])
    assert union.dtype == np.uint64 and union.tolist() == [5, (1 << 62) + 1]
    assert trained_count([key], union) == 0
    assert trained_count([key, key, ""], np.array([1 << 62], np.int64)) == 2
    with pytest.raises(ValueError, match="must hold uint64 hashes"):
        trained_count([key], np.array([0.5]))


# --- `rewardkit eval` counts the overlap exactly -----------------------------------------------


def _eval(model: Path, data: Path, out: Path):
    from rewardkit.cli import app

    result = CliRunner().invoke(
        app, ["eval", "-r", f"default:{model}", "--data", str(data), "--out", str(out), "--no-html"]
    )
    return result, json.loads((out / "report.json").read_text())["settings"]


def test_eval_reports_the_exact_overlap_and_a_damaged_record_as_a_warning(tmp_path):
    from rewardkit.rewards.default_rm import default_head_dir
    from rewardkit.train.pairs import group_key
    from rewardkit.types import Example, user

    model = tmp_path / "model"
    shutil.copytree(default_head_dir(), model)
    (model / TRAINED_PROMPTS_FILE).unlink()
    rows = [
        {
            "id": f"r{i}",
            "prompt": f"Question number {i}?",
            "chosen": "A fine answer.",
            "rejected": "no",
        }
        for i in range(7)
    ]
    rows.append(
        {"id": "copy", "prompt": "  question NUMBER 2 ?", "chosen": "Fine.", "rejected": "no"}
    )
    rows.append(
        {"id": "again", "prompt": "Question number 3?", "chosen": "Yes, so.", "rejected": "nah"}
    )
    data = tmp_path / "ev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    trained = [
        Example("t", [user(f"Question number {i}?")], ["a", "b"], [0]) for i in (1, 2, 3, 40)
    ]
    assert write_trained_prompts(model, [group_key(ex) for ex in trained]) is not None
    # in the record: r1, r2, r3, the normalized copy of 2 and the second row of 3; not 40
    result, settings = _eval(model, data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert settings["trained_prompts"] == {f"default:{model}": 5}
    assert any("prompts of 5 of these 9 examples" in n for n in settings["notes"])

    (model / TRAINED_PROMPTS_FILE).unlink()
    (model / TRAINED_PROMPTS_FILE).symlink_to("/dev/zero")
    record = re.escape(f"{model / TRAINED_PROMPTS_FILE}: not a training-prompt record")
    with pytest.warns(UserWarning, match=record):  # the CLI prints it as one "warning:" line
        result, settings = _eval(model, data, tmp_path / "out2")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert not settings.get("trained_prompts")  # no record: no count, never a wrong one

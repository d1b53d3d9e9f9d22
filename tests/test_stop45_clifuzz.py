"""CLI fuzz (stop 45, area clifuzz): inputs that ended a verb on an internal error or a hang,
each now one ``error:`` line and exit 2 with nothing written. Found by
/work/probes/clifuzz/fuzz.py (every verb and option, hostile values one at a time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data.readers import read_config_file
from rewardkit.errors import DataError

runner = CliRunner()


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    rows = [
        {"prompt": f"q{i}", "chosen": "a long answer " * (i + 1), "rejected": "no"}
        for i in range(4)
    ]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _error_lines(result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def test_config_file_that_is_a_named_pipe_is_refused_not_read(fifo):
    # reading it blocked forever (nothing writes the pipe)
    with pytest.raises(DataError, match=r"temperature file is not a regular file \(a named pipe"):
        read_config_file(fifo, "temperature file")


def test_eval_temperature_fifo_is_one_line_exit_2_and_writes_nothing(tmp_path, prefs, fifo):
    out = tmp_path / "ev"
    args = ["eval", "-r", "rule:length", "--data", prefs, "--out", out, "--no-cache"]
    result = runner.invoke(app, [str(a) for a in [*args, "--temperature", fifo]])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result)
    assert len(lines) == 1 and str(fifo) in lines[0] and "named pipe" in lines[0]
    assert not out.exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_eval_temperature_dev_zero_is_refused_before_reading(tmp_path, prefs):
    # read whole: a MemoryError (an internal error) after filling memory
    out = tmp_path / "ev"
    args = ["eval", "-r", "rule:length", "--data", prefs, "--out", out, "--no-cache"]
    result = runner.invoke(app, [str(a) for a in [*args, "--temperature", "/dev/zero"]])
    assert result.exit_code == 2, result.output
    assert "/dev/zero: the temperature file is not a regular file (a character device)" in (
        result.output
    )
    assert not out.exists()


def test_config_file_directory_is_still_a_read_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the temperature file"):
        read_config_file(tmp_path, "temperature file")


@pytest.mark.parametrize("backlog", [str(2**70), "65536", "0"])
def test_serve_backlog_out_of_range_is_refused_before_binding(backlog):
    # 2**70 passed min=1 and failed at bind: OverflowError from listen() (an internal error)
    result = runner.invoke(app, ["serve", "-r", "rule:length", "--backlog", backlog])
    assert result.exit_code == 2, result.output
    assert "--backlog" in result.output and "Uvicorn running" not in result.output


def test_polar_pretrain_data_fifo_is_refused_not_read(tmp_path, fifo):
    # read_samples handed a named pipe to the reader: it blocked for ever
    out = tmp_path / "polar"
    result = runner.invoke(app, ["polar", "pretrain", "--data", str(fifo), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [f"error: {fifo}: not a regular file (a named pipe)"]
    assert not out.exists()


def test_dmoerm_experts_fifo_is_refused_not_read(tmp_path, prefs, fifo):
    # --experts was read with read_text: it blocked for ever (a /dev/zero filled memory)
    out = tmp_path / "dm"
    args = ["dmoerm", "fit", "--data", prefs, "--out", out, "--experts", fifo]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [
        f"error: {fifo}: the --experts file is not a regular file (a named pipe)"
    ]
    assert not out.exists()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc")
@pytest.mark.parametrize("option", ["--out", "--pairs-out"])
def test_bon_output_in_a_folder_that_refuses_files_fails_before_the_policy_loads(tmp_path, option):
    # was found only after generation (the policy loaded, N samples drawn): exit 2, --out kept
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "q"}\n')
    out = tmp_path / "bon.jsonl"
    outs = {"--out": str(out), option: "/proc/rk_clifuzz.jsonl"}
    args = ["bon", "--data", str(prompts), "-r", "rule:length", "--n", "2", "--no-cache"]
    result = runner.invoke(app, [*args, *(x for kv in outs.items() for x in kv)])
    assert result.exit_code == 2, result.output
    assert _error_lines(result) == [
        f"error: cannot write {option} /proc/rk_clifuzz.jsonl: the folder /proc refuses new "
        "files (No such file or directory)"
    ]
    assert not out.exists()

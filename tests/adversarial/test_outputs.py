"""Silent data loss and wrong success: numeric options, atomic and exclusive outputs, output
paths that cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.adversarial.conftest import strict_json

ROOT = str(Path(__file__).resolve().parents[2])
SRC = str(Path(ROOT) / "src")


@pytest.mark.parametrize(
    "option",
    [
        ["--chunk-size", "-5"],
        ["--chunk-size", "0"],
        ["--chunk-size", "abc"],
        ["--token-budget", "0"],
        ["--max-length", "-1"],
        ["--threads", "0"],
        ["--threads", "1000000000"],  # libgomp tried to allocate 216 GB and aborted
    ],
)
def test_score_refuses_bad_numbers_and_writes_nothing(cli, rows_file, tmp_path, option):
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", out, *option)
    assert code == 2, text
    assert option[0] in text
    assert not out.exists()


def test_a_spec_asking_for_a_billion_threads_is_refused_before_any_model(cli, rows_file, tmp_path):
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "default?threads=1000000000", "--data", rows_file, "--out", out)
    assert code != 0 and "threads must be an integer from 1 to 1024" in text
    assert not out.exists()


@pytest.mark.parametrize(
    "option", [["--n-boot", "0"], ["--limit", "-3"], ["--limit", "0"], ["--seed", "-1"]]
)
def test_eval_refuses_bad_numbers(cli, tmp_path, option):
    code, text = cli("eval", "-r", "rule:length", "--out", tmp_path / "ev", *option)
    assert code == 2, text
    assert option[0] in text
    assert not (tmp_path / "ev" / "report.json").exists()


@pytest.mark.parametrize(
    "option",
    [
        ["--port", "70000"],
        ["--max-wait-ms", "nan"],
        ["--max-wait-ms", "-1"],
        ["--graceful-timeout", "inf"],
        ["--cache-mb", "-1"],
        ["--max-items", "0"],
        ["--nan-reward", "nan"],
        ["--rule-workers", "0"],
        ["--rule-workers", "100000"],
        ["--model-workers", "0"],
        ["--model-workers", "100000"],
    ],
)
def test_serve_refuses_bad_numbers_before_starting(option):
    """A real process (code that lets a bad value through would start serving: the timeout)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "-r", "rule:length", *option]
    # a bad value let through would start serving and never exit: the generous timeout catches
    # that without failing a slow but correct refusal on a loaded machine
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 2, proc.stderr
    assert option[0] in proc.stderr and "Traceback" not in proc.stderr


def test_score_out_that_is_a_directory_is_a_clear_error(cli, rows_file, tmp_path):
    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", tmp_path)
    assert code == 2
    assert "is a directory" in text and str(tmp_path) in text


def test_score_out_under_a_file_is_a_clear_error(cli, rows_file, tmp_path):
    code, text = cli(
        "score", "-r", "rule:length", "--data", rows_file, "--out", rows_file / "x.jsonl"
    )
    assert code == 2
    assert f"{rows_file} is a file" in text


def test_eval_out_that_is_a_file_is_a_clear_error(cli, rows_file, tmp_path):
    code, text = cli("eval", "-r", "rule:length", "--out", rows_file)
    assert code == 2
    assert "is a file" in text
    code, text = cli("eval", "-r", "rule:length", "--out", rows_file / "sub")
    assert code == 2
    assert f"{rows_file} is a file" in text


def test_nan_and_infinity_in_rows_are_written_as_standard_json(cli, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"prompt": "q", "response": "a", "x": NaN, "y": [Infinity, -Infinity, 1.5]}\n'
        '{"prompt": "q", "response": "bb", "x": 1e999}\n'
    )
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "rule:length", "--data", src, "--out", out)
    assert code == 0, text
    rows = [strict_json(line) for line in out.read_text().splitlines()]
    assert rows[0]["x"] is None and rows[0]["y"] == [None, None, 1.5]
    assert rows[1]["x"] is None and rows[1]["reward"] == 2.0


def test_a_failing_run_keeps_the_old_output_and_leaves_no_temporary(tmp_path, fake_reward):
    from rewardkit.scoring import score_file

    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "q", "response": "a"}\n{"prompt": "q", "response": "zzz"}\n')
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    with pytest.raises(KeyError):  # the table has no "zzz": the reward fails on chunk 2
        score_file(fake_reward({"a": 1.0}), src, out, chunk_size=1)
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    """A real second process holding ``path`` open for writing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, ROOT])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.adversarial.helpers.hold_output", str(path), str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_writers_of_one_output_the_second_is_refused(tmp_path):
    """A real second process holds the output; this run is refused and writes nothing."""
    from rewardkit.outputs import OutputError, atomic_file

    out = tmp_path / "out.jsonl"
    proc = _hold(out, 3)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        with pytest.raises(OutputError, match="another run is writing"), atomic_file(out) as fh:
            fh.write("second\n")
    finally:
        proc.wait(timeout=30)
    assert out.read_text() == "first\n"  # the holder's content, reported by the holder only
    # once the first writer is done, the output is free again
    with atomic_file(out) as fh:
        fh.write("third\n")
    assert out.read_text() == "third\n"


def test_a_killed_writer_leaves_no_lock_behind(tmp_path):
    from rewardkit.outputs import atomic_file

    out = tmp_path / "out.jsonl"
    proc = _hold(out, 60)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    proc.kill()
    proc.wait(timeout=10)
    with atomic_file(out) as fh:
        fh.write("after the kill\n")
    assert out.read_text() == "after the kill\n"


def test_score_out_that_is_a_pipe_is_written_in_place_never_replaced(cli, rows_file, tmp_path):
    """A device or pipe given as --out is written into, not replaced by a regular file (which,
    as root, once turned /dev/full into a file)."""
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", fifo)
    reader.join(timeout=60)
    assert code == 0, text
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert len(got[0].splitlines()) == 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_score_out_to_a_full_device_is_a_clear_error(cli, rows_file):
    """/dev/full: every write fails with "no space left", a real full disk."""
    import stat

    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", "/dev/full")
    assert code == 2 and "cannot write --out /dev/full: No space left on device" in text
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_score_out_through_a_symlink_writes_the_linked_file(cli, rows_file, tmp_path):
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", link)
    assert code == 0, text
    assert link.is_symlink() and len(real.read_text().splitlines()) == 3


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_where_nothing_can_be_created_is_a_clear_error(cli, rows_file):
    """/proc refuses new files even to root: a clear error naming --out, no traceback."""
    code, text = cli("score", "-r", "rule:length", "--data", rows_file, "--out", "/proc/rk/o.jsonl")
    assert code == 2 and "cannot write --out /proc/rk/o.jsonl" in text


def test_a_full_disk_mid_write_is_a_clear_error_and_leaves_nothing(tmp_path):
    """A real write failure (the file-size limit, RLIMIT_FSIZE, as a full disk would): one
    clear line, exit 2, no output, no temporary file and no folder made for it left."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"prompt": "q", "response": "{"a" * 500}"}}\n' for _ in range(400)))
    out = tmp_path / "out" / "scored.jsonl"
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))\n"
        "from rewardkit.cli import main\n"
        "sys.argv = ['rewardkit'] + sys.argv[1:]\n"
        "main()\n"
    )
    cmd = [sys.executable, "-c", script, "score", "-r", "rule:length", "--data", str(data)]
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(
        [*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and f"cannot write --out {out}" in proc.stderr
    assert "File too large" in proc.stderr
    assert not out.parent.exists()  # the folder the run made for --out is gone with it


def test_curate_checks_every_output_before_reading_data(cli, tmp_path):
    """A bad --report is refused before --out is written (no half-finished run), and
    a .gz output appears whole."""
    import gzip
    import json

    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "a a", "rejected": "b"}) + "\n")
    out = tmp_path / "kept.jsonl"
    code, text = cli("curate", "dedup", "--data", data, "--out", out, "--report", tmp_path)
    assert code == 2 and f"--report {tmp_path} is a directory" in text
    assert not out.exists()
    code, text = cli("curate", "dedup", "--data", data, "--out", tmp_path / "kept.jsonl.gz")
    assert code == 0, text
    with gzip.open(tmp_path / "kept.jsonl.gz", "rt") as fh:
        lines = fh.read().splitlines()
    assert json.loads(lines[0])["responses"] == ["a a", "b"]


def test_ctrl_c_mid_score_says_so_and_leaves_nothing(tmp_path):
    """SIGINT once scoring has begun (its temporary output exists): exit 130 with one line
    saying the run did not finish, no output, no temporary or lock file, no traceback."""
    import signal

    from tests.proc_helpers import start_slow_score

    proc, out_dir, _ = start_slow_score(tmp_path, {**os.environ, "PYTHONPATH": SRC})
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted before the run finished" in stderr and "Traceback" not in stderr
    assert "scored" not in stdout
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("phase", ["exit handlers", "interpreter teardown"])
def test_ctrl_c_after_the_command_finished_keeps_its_status(tmp_path, phase):
    """A Ctrl-C that lands once the command has written its output (while exit handlers run,
    or while the interpreter unloads its modules) neither prints a traceback nor turns the
    finished run's exit status into an interrupt."""
    data, out = tmp_path / "rows.jsonl", tmp_path / "scored.jsonl"
    data.write_text('{"prompt": "p", "response": "four"}\n')
    script = f"""
import atexit, os, signal, sys, time
from rewardkit import cli

def late_ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)

if {phase == "interpreter teardown"!r}:
    atexit.register(late_ctrl_c)  # registered before main's handlers: runs after them
build = cli.build_app

def build_then_register():
    app = build()
    if {phase == "exit handlers"!r}:
        atexit.register(late_ctrl_c)  # as a command's own exit handler
    return app

cli.build_app = build_then_register
sys.argv = ["rewardkit", "score", "--reward", "rule:length", "--data", {str(data)!r},
            "--out", {str(out)!r}]
cli.main()
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    assert "scored 1 rows" in proc.stdout and out.read_text().count("\n") == 1

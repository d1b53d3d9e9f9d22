"""Hostile CLI input found by a tester: devices, `bon` options and resume files, interrupts.

- A1: `--device` (and a spec's `device=`) is checked by name and availability and refused with
  one line naming the option, before data or models load.
- A2/B1: `bon`'s resume reader checks every row of an existing `--out`; duplicate prompt ids
  (and a prompt that changed under a done id) are refused instead of silently skipped.
- A3/C7: every `bon` option is checked before any model loads.
- A9/B4: Ctrl-C or SIGTERM during `rewardkit`'s own imports or mid-run end with one line;
  temporary files of killed writers are swept when their target is next written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.proc_helpers import start_slow_score
from typer.testing import CliRunner

from rewardkit.cli import app

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}


def run_cli(*args: object) -> tuple[int, str]:
    """``rewardkit ARGS`` in-process; (exit code, stdout + stderr). A Python exception that
    escapes the CLI fails the test (it would be a traceback for the user)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"id": "a", "prompt": "Say hi"}\n{"id": "b", "prompt": "Say no"}\n')
    return path


def bon(prompts: Path, out: Path, *extra: object) -> tuple[int, str]:
    base = ["bon", "--data", prompts, "--out", out, "-r", "rule:length", "--n", "2"]
    return run_cli(*base, "--max-new-tokens", "3", "--no-progress", *extra)


def _unavailable_cuda() -> str:
    """A CUDA device this machine cannot use (no CUDA torch, or an index past the last GPU)."""
    import torch

    return f"cuda:{torch.cuda.device_count() + 7}" if torch.cuda.is_available() else "cuda"


# -- A1: devices -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quantum", "", " cpu", "meta", "cuda:-1", "xpu", "CUDA"])
def test_resolve_device_refuses_what_is_not_a_usable_device(name):
    from rewardkit.errors import RewardkitError
    from rewardkit.models.loading import DeviceError, resolve_device

    with pytest.raises(DeviceError, match=r"^--device") as err:
        resolve_device(name)
    assert isinstance(err.value, RewardkitError) and isinstance(err.value, ValueError)


def test_resolve_device_checks_availability():
    import torch

    from rewardkit.models.loading import DeviceError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(DeviceError, match="cuda"):
        resolve_device(_unavailable_cuda(), "--device")
    if not torch.backends.mps.is_available():
        with pytest.raises(DeviceError, match="MPS is not available"):
            resolve_device("mps")


@pytest.mark.parametrize(
    ("spec", "option", "named"),
    [
        ("default", ["--device", "quantum"], "unknown device 'quantum'"),
        ("default?device=meta", [], "device type 'meta'"),
        ("default", ["--device", "UNAVAILABLE_CUDA"], "device 'cuda"),
    ],
)
def test_score_refuses_a_bad_device_in_one_line(tmp_path, spec, option, named):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "q", "response": "a"}\n')
    out = tmp_path / "out.jsonl"
    option = [_unavailable_cuda() if o == "UNAVAILABLE_CUDA" else o for o in option]
    code, text = run_cli("score", "-r", spec, "--data", data, "--out", out, *option)
    assert code == 2, text
    assert "error: --device" in text and named in text and "Traceback" not in text
    assert not out.exists()


def test_check_model_and_eval_refuse_a_bad_device(tmp_path):
    code, text = run_cli("check-model", "smollm2", "--device", "quantum")
    assert code == 2 and "--device" in text and "'quantum'" in text, text
    data = tmp_path / "prefs.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "bb"}\n')
    code, text = run_cli(
        "eval", "-r", "default", "--data", data, "--out", tmp_path / "r", "--device", ""
    )
    assert code == 2 and "expected a device" in text and "--device" in text, text


def test_bon_checks_the_device_before_reading_prompts(tmp_path):
    missing = tmp_path / "no-such-prompts.jsonl"
    code, text = bon(missing, tmp_path / "o.jsonl", "--device", "quantum")
    assert code == 2 and "error: --device: unknown device 'quantum'" in text, text
    code, text = bon(missing, tmp_path / "o.jsonl", "--device", _unavailable_cuda())
    assert code == 2 and "error: --device" in text, text
    assert not (tmp_path / "o.jsonl").exists()


# -- A2: the resume reader ---------------------------------------------------------------

GOOD_ROW = {
    "id": "a",
    "prompt": [{"role": "user", "content": "Say hi"}],
    "reference": None,
    "candidates": [{"text": "Hi", "score": 2.0}, {"text": "Hello", "score": None}],
    "best": 0,
    "best_response": "Hi",
    "best_score": 2.0,
    "run": "k",
}


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('"s"', "expected an object, got text 's'"),
        ("[1]", "expected an object, got a list"),
        ("7", "expected an object, got 7"),
        ('{"x": 1}', "field 'run': missing field"),
        ('{"run": "k"}', "field 'id': missing field"),
        (json.dumps({**GOOD_ROW, "candidates": "x"}), "field 'candidates'"),
        (json.dumps({**GOOD_ROW, "candidates": [1]}), "field 'candidates[0]'"),
        (json.dumps({**GOOD_ROW, "candidates": [{"text": "a", "score": "1"}]}), "score'"),
        (json.dumps({**GOOD_ROW, "id": None}), "field 'id'"),
        (json.dumps({**GOOD_ROW, "id": {"a": 1}}), "field 'id'"),
        (json.dumps({**GOOD_ROW, "prompt": "hi"}), "field 'prompt'"),
        (json.dumps({**GOOD_ROW, "run": 5}), "field 'run'"),
        ("[" * 100_000, "nested more than"),
    ],
)
def test_load_done_refuses_rows_of_the_wrong_shape_with_file_and_line(tmp_path, line, named):
    from rewardkit.errors import DataError
    from rewardkit.inference.run import load_done

    out = tmp_path / "o.jsonl"
    out.write_text(json.dumps(GOOD_ROW) + "\n" + line + "\n")
    with pytest.raises(DataError, match=r"o\.jsonl, line 2") as err:
        load_done(out, "k")
    assert named in str(err.value)
    before = out.read_bytes()
    with pytest.raises(DataError):
        load_done(out, None)  # the CLI's early check: same refusal, file untouched
    assert out.read_bytes() == before


def test_bon_refuses_a_damaged_out_before_loading_the_policy(tmp_path, prompts):
    out = tmp_path / "o.jsonl"
    for line, named in [('"s"', "expected an object"), ('{"run": "k"}', "'id': missing")]:
        out.write_text(line + "\n")
        # a policy that does not exist: the --out check must come first
        code, text = bon(prompts, out, "--policy", tmp_path / "no-such-model")
        assert code == 2, text
        assert f"{out}, line 1" in text and named in text and "Traceback" not in text
        assert out.read_text() == line + "\n"


# -- B1: duplicate ids and resume --------------------------------------------------------


def test_read_prompts_refuses_duplicate_ids_naming_both_lines(tmp_path):
    from rewardkit.errors import DataError
    from rewardkit.inference.run import read_prompts

    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"prompt": "a", "id": 1}\n{"prompt": "b", "id": 2}\n{"prompt": "c", "id": 1}\n'
    )
    with pytest.raises(DataError, match=r"p\.jsonl, line 3, field 'id': duplicate id '1'") as e:
        read_prompts(path)
    assert "first at line 1" in str(e.value)
    assert [it.id for it in read_prompts(path, limit=2)] == ["1", "2"]  # past the limit: unread
    path.write_text('{"prompt": "a", "id": "p.jsonl:2"}\n{"prompt": "b"}\n')  # explicit vs default
    with pytest.raises(DataError, match=r"duplicate id 'p\.jsonl:2'"):
        read_prompts(path)
    path.write_text('{"prompt": "a", "id": [1]}\n')
    with pytest.raises(DataError, match="field 'id': expected text or an integer id"):
        read_prompts(path)


def test_a_resumed_run_refuses_a_done_id_whose_prompt_changed(tmp_path):
    import numpy as np

    from rewardkit.errors import DataError
    from rewardkit.inference.run import BonConfig, PromptItem, run_bon
    from rewardkit.types import Reward, user

    class CountingLength(Reward):
        name = "length"

        def _score(self, queries):
            return np.array([len(q.response) for q in queries], dtype=float)

    def sample(prompt, n):
        return [prompt[0]["content"] * (i + 1) for i in range(n)]

    out = tmp_path / "o.jsonl"
    cfg = BonConfig(n=2, reward="len")
    first = [PromptItem("1", [user("a")])]
    assert run_bon(first, sample, CountingLength(), out, cfg, progress=False)["generated"] == 1
    changed = [PromptItem("1", [user("b")]), PromptItem("2", [user("c")])]
    with pytest.raises(DataError, match="prompt id '1' is done in this file with another prompt"):
        run_bon(changed, sample, CountingLength(), out, cfg, progress=False)
    assert len(out.read_text().splitlines()) == 1  # nothing skipped as done, nothing added
    # a file with the same id twice (an older rewardkit allowed it) is refused, not trusted
    out.write_text(out.read_text() * 2)
    with pytest.raises(DataError, match=r"line 2, field 'id': id '1' appears twice"):
        run_bon(first, sample, CountingLength(), out, cfg, progress=False)


@pytest.mark.heavy  # three real CLI runs, each loading models (~20-30 s)
def test_bon_resume_with_duplicate_ids_is_refused_not_skipped(tmp_path):
    """The tester's scenario with the real policy: a run, then a prompt file whose second
    prompt reuses the first's id. Before: "skipped_done": 2, exit 0, the prompt never
    generated. Now: exit 2 naming the file, line and id; --out untouched."""
    data = tmp_path / "p.jsonl"
    data.write_text('{"id": "1", "prompt": "a"}\n')
    out = tmp_path / "o.jsonl"
    code, text = bon(data, out, "--device", "cpu", "--no-cache")
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[-1])["generated"] == 1
    before = out.read_bytes()
    data.write_text('{"id": "1", "prompt": "a"}\n{"id": "1", "prompt": "b"}\n')
    code, text = bon(data, out, "--device", "cpu", "--no-cache")
    assert code == 2, text
    assert f"{data}, line 2, field 'id': duplicate id '1' (first at line 1)" in text
    data.write_text('{"id": "1", "prompt": "b"}\n')  # same id, other prompt: not "done"
    code, text = bon(data, out, "--device", "cpu", "--no-cache")
    assert code == 2 and "prompt id '1' is done in this file with another prompt" in text, text
    assert out.read_bytes() == before


# -- A3 / C7: options checked before any model ------------------------------------------


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--threads", "-1"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--threads", "1000000000"], "--threads"),
        (["--top-p", "5"], "--top-p"),
        (["--top-p", "0"], "--top-p"),
        (["--top-p", "nan"], "--top-p"),
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "inf"], "--temperature"),
        (["--limit", "0"], "--limit"),
        (["--limit", "-3"], "--limit"),
        (["--n", "0"], "--n"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--min-gap", "nan"], "--min-gap"),
        (["--pairs-format", "bogus"], "--pairs-format"),
        (["--mine", "bogus"], "--mine"),
        (["--dtype", "float64"], "--dtype"),
        (["--n", "100000000"], "--n"),  # one batch of N: an allocator traceback (25 GB)
        (["--max-new-tokens", "100000000"], "--max-new-tokens"),
        (["--temperature", "0", "--n", "2"], "--temperature"),  # transformers' error, late
    ],
)
def test_bon_refuses_bad_options_before_anything_runs(tmp_path, prompts, option, named):
    out = tmp_path / "o.jsonl"
    code, text = bon(prompts, out, *option)
    assert code == 2, text
    assert named in text and "Traceback" not in text
    assert not out.exists()


def test_bon_checks_its_outputs_before_any_model(tmp_path, prompts):
    adir = tmp_path / "adir"
    adir.mkdir()
    out = tmp_path / "o.jsonl"
    code, text = bon(prompts, out, "--pairs-out", adir)
    assert code == 2 and f"--pairs-out {adir} is a directory" in text, text
    code, text = bon(prompts, adir)
    assert code == 2 and f"--out {adir} is a directory" in text, text
    code, text = bon(prompts, out, "--pairs-out", out)
    assert code == 2 and "same file as --out" in text, text
    assert not out.exists()
    before = Path(prompts).read_bytes()
    code, text = bon(prompts, out, "--pairs-out", prompts)  # replaced the prompts with pairs
    assert code == 2 and "is the --data file itself" in text, text
    code, text = bon(prompts, prompts)
    assert code == 2 and "is the --data file itself" in text, text
    assert Path(prompts).read_bytes() == before and not out.exists()


def test_generation_config_checks_every_setting():
    from rewardkit.inference.generate import GenerationConfig

    GenerationConfig(temperature=0, top_p=1, threads=1024)
    for bad in [
        {"threads": 0},
        {"threads": -1},
        {"threads": 10**9},
        {"threads": True},
        {"top_p": 5.0},
        {"top_p": 0.0},
        {"temperature": float("nan")},
        {"temperature": -0.1},
        {"max_new_tokens": 0},
        {"dtype": "float64"},
        {"device": ""},
        {"seed": 1.5},
    ]:
        field = next(iter(bad))
        with pytest.raises(ValueError, match=field):
            GenerationConfig(**bad)


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ([{"role": "bogus", "content": "hi"}], "field 'prompt[0].role': expected a role in"),
        ([{"role": 5, "content": "hi"}], "field 'prompt[0].role': expected a role in"),
        ([{"role": "user"}], "field 'prompt[0]': expected a message with 'role' and 'content'"),
        ([{"role": "user", "content": 3}], "field 'prompt[0].content'"),
        ([], "field 'prompt': expected at least one message"),
        (5, "field 'prompt': expected text or a list"),
    ],
)
def test_read_prompts_checks_messages_like_the_data_layer(tmp_path, prompt, named):
    from rewardkit.errors import DataError
    from rewardkit.inference.run import read_prompts

    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": prompt}) + "\n")
    with pytest.raises(DataError, match=r"p\.jsonl, line 1") as err:
        read_prompts(path)
    assert named in str(err.value)


def test_bon_refuses_a_bogus_role_in_one_line(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"prompt": [{"role": "bogus", "content": "hi"}]}) + "\n")
    code, text = bon(data, tmp_path / "o.jsonl", "--policy", tmp_path / "no-such-model")
    assert code == 2 and "line 1, field 'prompt[0].role'" in text, text


def test_read_prompts_limit_zero_reads_nothing(tmp_path):
    from rewardkit.inference.run import read_prompts

    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    assert read_prompts(path, limit=0) == []
    assert len(read_prompts(path, limit=1)) == 1
    with pytest.raises(ValueError, match="limit"):
        read_prompts(path, limit=-1)


# -- A9 / B4: interrupts -----------------------------------------------------------------

#: Sends itself SIGNAL while cli.py imports its verbs (after the package is imported).
IMPORT_INTERRUPT = """
import os, signal, sys, time
import rewardkit
SIG = getattr(signal, sys.argv[1])

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "rewardkit.commands.evaluate":
            os.kill(os.getpid(), SIG)
            time.sleep(2)
        return None

sys.meta_path.insert(0, Interrupt())
from rewardkit.cli import main
sys.argv = ["rewardkit", "rewards", "list"]
main()
"""


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", -signal.SIGTERM)])
def test_an_interrupt_during_the_cli_imports_is_one_line(name, code):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_INTERRUPT, name],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        # a job started in the background of a shell inherits SIGINT ignored: undo it, as a
        # terminal's foreground process has it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "before the run finished" in lines[0], proc.stderr


def test_sigterm_mid_score_takes_the_ctrl_c_path(tmp_path):
    """Before: SIGTERM killed the run where it stood, leaving .scored.jsonl.<pid>-<hex>.tmp
    and the lock file behind. Now: one line, no traceback, nothing left, death by SIGTERM."""
    proc, out_dir, _ = start_slow_score(tmp_path, ENV)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM, stdout + stderr
    assert "terminated (SIGTERM) before the run finished" in stderr
    assert "Traceback" not in stderr and "scored" not in stdout
    assert list(out_dir.iterdir()) == []


def test_a_killed_writers_temporary_file_is_swept_on_the_next_write(tmp_path):
    """SIGKILL cannot be caught: its hidden temporary file stays until the same output is
    written again, which removes it (its pid is dead) and leaves a live writer's alone."""
    proc, out_dir, out = start_slow_score(tmp_path, ENV)
    proc.kill()
    proc.communicate(timeout=60)
    stale = [p for p in out_dir.iterdir() if p.suffix == ".tmp"]
    assert len(stale) == 1 and stale[0].name.startswith(f".{out.name}.{proc.pid}-")
    alive = out_dir / f".{out.name}.{os.getpid()}-0123456789ab.tmp"  # this process: alive
    alive.write_text("x")
    other = out_dir / f".other.jsonl.{proc.pid}-0123456789ab.tmp"  # another target's
    other.write_text("x")
    small = tmp_path / "small.jsonl"
    small.write_text('{"prompt": "q", "response": "a"}\n')
    code, text = run_cli("score", "-r", "rule:length", "--data", small, "--out", out)
    assert code == 0, text
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([out.name, alive.name, other.name])


def test_sweep_stale_temps_matches_only_its_own_target(tmp_path):
    from rewardkit.outputs import atomic_text, sweep_stale_temps

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(done.stdout)
    target = tmp_path / "o.jsonl"
    names = [
        f".o.jsonl.{dead}-abcdefabcdef.tmp",  # removed
        f".o.jsonl.{os.getpid()}-abcdefabcdef.tmp",  # alive: kept
        f".o.jsonl.{dead}-abc.tmp",  # not our pattern: kept
        f".o.jsonl.gz.{dead}-abcdefabcdef.tmp",  # another target: kept
        f"o.jsonl.{dead}-abcdefabcdef.tmp",  # not hidden: kept
        f".o.jsonl.{10**40}-abcdefabcdef.tmp",  # no such pid range: kept
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    with atomic_text(target) as fh:
        fh.write("done\n")
    assert target.read_text() == "done\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, *names[1:]])
    assert sweep_stale_temps(target) == []

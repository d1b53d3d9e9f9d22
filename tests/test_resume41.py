"""Interrupted and concurrent runs never leave or report outputs they did not write: a process
evaluation killed between its report files, two ``curate`` runs on one ``--out``, and a ``bon``
resume from a renamed or other prompt file (real processes and real SIGKILLs where it matters)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rewardkit.errors import DataError
from rewardkit.inference.run import BonConfig, read_prompts, run_bon
from rewardkit.types import Query, Reward

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}

#: Runs ``write_process_reports`` of report A, then of report B, SIGKILLing itself right after
#: B's report.json is in place (a kill between two of a run's report files).
_KILLED_BETWEEN_REPORTS = """
import json, os, signal, sys
from pathlib import Path
from rewardkit.evaluate.process_report import write_process_reports
out = Path(sys.argv[1])
write_process_reports(json.loads(Path(sys.argv[2]).read_text()), out)
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.basename(dst) == "report.json":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
write_process_reports(json.loads(Path(sys.argv[3]).read_text()), out)
"""


def _steps(n: int, offset: int = 0) -> list[dict]:
    out = []
    for i in range(offset, offset + n):
        first = -1 if i % 2 == 0 else i % 3
        steps = [f"step {j} adds {i + j} to {j}" for j in range(3)]
        labels = [1 if first < 0 or j < first else -1 for j in range(3)]
        out.append({"id": f"s{i}", "problem": f"problem {i}", "steps": steps, "labels": labels})
    return out


def test_a_process_eval_killed_between_its_reports_leaves_no_older_report_beside_the_new(
    tmp_path,
):
    pytest.importorskip("torch")
    from prm_helpers import tiny_llama_dir, word_tokenizer
    from rewardkit.data import load
    from rewardkit.evaluate.process_report import process_eval
    from rewardkit.registry import load_reward
    from rewardkit.rewards.prm.conventions import QWEN_SYSTEM

    a, b = _steps(16), _steps(8, 16)
    texts = [QWEN_SYSTEM] + [r["problem"] + " " + " ".join(r["steps"]) for r in a + b]
    prm = tiny_llama_dir(tmp_path / "prm", word_tokenizer(texts), "token-cls", seed=5)
    reward = load_reward(f"prm:{prm}")
    reports = []
    for name, recs in (("a", a), ("b", b)):
        data = tmp_path / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in recs))
        result = process_eval(load(data), [reward])  # real step scores of a real PRM
        reports.append(tmp_path / f"{name}.json")
        reports[-1].write_text(json.dumps(result, default=float))
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN_REPORTS, str(out), *map(str, reports)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert json.loads((out / "report.json").read_text())["dataset"]["n"] == 8  # B's
    # before: A's report.md ("16 solutions") and report.html stood beside B's report.json
    assert not (out / "report.md").exists() and not (out / "report.html").exists()


#: The CLI, with the curate verbs' data loading held until $GO exists (after $READY is made):
#: a run that is under way, its outputs checked, its work not done.
_PAUSED_CURATE = """
import os, sys, time
import rewardkit.curate.cli as cli
real = cli.load_examples
def paused(*a, **k):
    open(os.environ["READY"], "w").close()
    while not os.path.exists(os.environ["GO"]):
        time.sleep(0.02)
    return real(*a, **k)
cli.load_examples = paused
from rewardkit.cli import main
sys.argv = ["rewardkit", *sys.argv[1:]]
main()
"""


def _pairs(path: Path, n: int, tag: str) -> Path:
    rows = [
        {"id": f"{tag}{i}", "prompt": f"q{i}", "chosen": f"yes {i}", "rejected": f"no {i}"}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_second_curate_run_on_an_out_under_way_is_refused_before_it_writes(tmp_path):
    first_data, second_data = (
        _pairs(tmp_path / "a.jsonl", 5, "a"),
        _pairs(tmp_path / "b.jsonl", 3, "b"),
    )
    out = tmp_path / "out" / "c.jsonl"
    env = {**ENV, "READY": str(tmp_path / "ready"), "GO": str(tmp_path / "go")}
    verb = ["curate", "export", "--to", "jsonl", "--out", str(out)]
    first = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_CURATE, *verb, "--data", str(first_data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        second = subprocess.run(
            [sys.executable, "-m", "rewardkit.cli", *verb, "--data", str(second_data)],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # before: exit 0, "written": 3, then the first run replaced its file with 5 rows
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"another run is writing {out}" in second.stderr
        assert not out.exists()
    finally:
        (tmp_path / "go").touch()
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[-1])["written"] == 5
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        f"a{i}" for i in range(5)
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.jsonl"]  # lock let go


#: The CLI, SIGKILLed right after os.replace puts a file named $KILL_AFTER in place.
_KILLED_AFTER_REPLACE = """
import os, signal, sys
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.basename(dst) == os.environ["KILL_AFTER"]:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from rewardkit.cli import main
sys.argv = ["rewardkit", *sys.argv[1:]]
main()
"""


def _killed_after(name: str, *argv: str) -> subprocess.CompletedProcess:
    """``rewardkit ARGV`` in a child killed (SIGKILL) right after it replaces a file ``name``."""
    return subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_REPLACE, *argv],
        env={**ENV, "KILL_AFTER": name},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_curate_killed_between_out_and_votes_leaves_no_older_votes_beside_the_new_out(tmp_path):
    out, votes = tmp_path / "s.jsonl", tmp_path / "votes.json"
    verb = ["curate", "strength", "-r", "rule:length", "--out", str(out), "--votes", str(votes)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardkit.cli",
            *verb,
            "--data",
            str(_pairs(tmp_path / "a.jsonl", 5, "a")),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(votes.read_text())) == [f"a{i}" for i in range(5)]
    killed = _killed_after(out.name, *verb, "--data", str(_pairs(tmp_path / "b.jsonl", 3, "b")))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["b0", "b1", "b2"]
    assert not votes.exists()  # before: the first run's votes for a0-a4 beside b0-b2


def test_eval_killed_between_its_reports_leaves_no_older_saved_temperature(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    run, temp = tmp_path / "run", tmp_path / "t.json"
    verb = ["eval", "-r", "rule:length", "--out", str(run), "--no-html", "--no-progress"]
    verb += ["--n-boot", "10", "--save-temperature", str(temp)]
    done = CliRunner().invoke(app, [*verb, "--data", str(_pairs(tmp_path / "a.jsonl", 6, "a"))])
    assert done.exit_code == 0, done.output
    assert json.loads(temp.read_text())["reward"] == "rule:length"
    killed = _killed_after("report.md", *verb, "--data", str(_pairs(tmp_path / "b.jsonl", 3, "b")))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((run / "report.json").read_text())["dataset"]["n_examples"] == 3
    assert not temp.exists()  # before: the first run's temperature (on a0-a5) beside it


class Length(Reward):
    name = "length"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([len(q.response) for q in queries], dtype=float)


def _sample(prompt, n):
    return [prompt[0]["content"] * (i + 1) for i in range(n)]


def _prompts(path: Path, texts: Sequence[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return path


CFG = BonConfig(n=2, policy={"m": "x"}, generation={"seed": 0}, reward="length")


def test_bon_resumed_from_a_renamed_prompt_file_is_refused_not_answered_twice(tmp_path):
    out = tmp_path / "bon.jsonl"
    data = _prompts(tmp_path / "prompts.jsonl", ["a", "b", "c"])
    run_bon(read_prompts(data, limit=2), _sample, Length(), out, CFG, progress=False)
    moved = data.rename(tmp_path / "prompts_v2.jsonl")  # ids are file:line: all of them change
    with pytest.raises(
        DataError, match=r"'prompts_v2.jsonl:1' is done in this file as id 'prompts.jsonl:1'"
    ):
        run_bon(read_prompts(moved), _sample, Length(), out, CFG, progress=False)
    # before: 3 more rows appended, prompts a and b answered twice
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        "prompts.jsonl:1",
        "prompts.jsonl:2",
    ]


def test_bon_resume_refuses_another_prompt_file_and_accepts_a_smaller_limit(tmp_path):
    out = tmp_path / "bon.jsonl"
    data = _prompts(tmp_path / "p.jsonl", ["a", "b", "c", "a"])  # the last repeats the first
    run_bon(read_prompts(data, limit=3), _sample, Length(), out, CFG, progress=False)
    other = _prompts(tmp_path / "q.jsonl", ["x", "y"])
    with pytest.raises(DataError, match="none of the 3 rows in this file is a prompt of this run"):
        run_bon(read_prompts(other), _sample, Length(), out, CFG, progress=False)
    # the same file resumed: with a smaller --limit (rows past it stay), then all of it (its
    # repeated prompt is answered under its own id, as an uninterrupted run answers it)
    stats = run_bon(read_prompts(data, limit=1), _sample, Length(), out, CFG, progress=False)
    assert stats["skipped_done"] == 1 and stats["generated"] == 0
    stats = run_bon(read_prompts(data), _sample, Length(), out, CFG, progress=False)
    assert stats["skipped_done"] == 3 and stats["generated"] == 1
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        f"p.jsonl:{i}" for i in range(1, 5)
    ]

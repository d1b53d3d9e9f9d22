"""Kill-anywhere: a ``rewardkit score`` or ``rewardkit eval`` stopped by SIGKILL, SIGTERM or
SIGINT before its first row, mid-way or at its final write/rename never leaves an output that
passes for complete, and the plain rerun (the score cache is its resume) writes exactly what a
clean run writes. Damaged or foreign outputs already at ``--out`` are replaced, never merged.

Each run is a real CLI process; it is stopped at a deterministic point (its N-th chunk, its N-th
written row, its N-th score-cache commit, its N-th rename) by a signal it sends itself, or, in
``wait`` mode, by the test from outside once the point is reached."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from proc_helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
N_ROWS = 40

#: Runs the CLI with one stop point: MODE (chunk: the start of the reward's N-th score_full
#: call; line: the start of the N-th output row, N - 1 written; put: after the N-th score-cache commit;
#: replace: before the N-th os.replace), where it sends itself SIG (KILL, TERM, INT) or, for
#: ``wait``, writes MARKER and waits for the test's signal.
_STOPPED = r"""
import os, signal, sys, time
from pathlib import Path
mode, sig, n, marker, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
count = [0]

def reached():
    count[0] += 1
    if count[0] != n:
        return
    if sig == "wait":
        Path(marker).write_text("ready")
        time.sleep(300)
    os.kill(os.getpid(), getattr(signal, "SIG" + sig))

if mode == "chunk":
    import rewardkit.registry as registry
    real_load = registry.load_reward
    def load_reward(*a, **k):
        reward = real_load(*a, **k)
        real = reward.score_full
        def score_full(*a2, **k2):
            reached()
            return real(*a2, **k2)
        reward.score_full = score_full
        return reward
    registry.load_reward = load_reward
elif mode == "line":
    import rewardkit.scoring as scoring
    real_line = scoring.scored_line
    def scored_line(*a, **k):
        reached()
        return real_line(*a, **k)
    scoring.scored_line = scored_line
elif mode == "put":
    from rewardkit.engine.cache import ScoreCache
    real_put = ScoreCache.put_many
    def put_many(self, *a, **k):
        real_put(self, *a, **k)
        reached()
    ScoreCache.put_many = put_many
elif mode == "replace":
    real_replace = os.replace
    def replace(src, dst, **k):
        reached()
        return real_replace(src, dst, **k)
    os.replace = replace
sys.argv = ["rewardkit", *argv]
from rewardkit.cli import main
main()
"""


def _write_rows(path: Path, tag: str = "") -> Path:
    rows = [
        {"id": i, "prompt": f"{tag}What is {i} plus {i + 1}?", "response": f"It is {2 * i + 1}."}
        for i in range(N_ROWS)
    ]
    for i, row in enumerate(rows):
        row["response"] += " Indeed." * (i % 5)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _write_pairs(path: Path) -> Path:
    rows = [
        {
            "prompt": f"What is {i} plus {i + 1}?",
            "chosen": f"The answer is {2 * i + 1}." + " Indeed." * (i % 5),
            "rejected": f"It is {2 * i}." + " Hmm." * (i % 3),
            "subset": "math" if i % 2 else "chat",
        }
        for i in range(N_ROWS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(argv: list[str], stop: tuple[str, str, int] | None = None, marker: Path | None = None):
    """The CLI as a process (stopped at ``stop`` = (mode, signal, n)); a Popen for ``wait``."""
    mode, sig, n = stop or ("none", "KILL", 0)
    cmd = [sys.executable, "-c", _STOPPED, mode, sig, str(n), str(marker or "-"), *argv]
    kw = dict(env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reset = dict(preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if sig == "wait":
        return subprocess.Popen(cmd, **kw, **reset)
    return subprocess.run(cmd, **kw, **reset, timeout=240)


def _score_args(data: Path, out: Path, reward: str = "rule:length", *more: str) -> list[str]:
    return [
        "score",
        "-r",
        reward,
        "--data",
        str(data),
        "--out",
        str(out),
        "--chunk-size",
        "8",
        *more,
    ]


def _rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same_rows(got: Path, want: Path) -> None:
    """Every row once, in input order, fields equal, rewards within 1e-5."""
    a, b = _rows_of(got), _rows_of(want)
    assert [r["id"] for r in a] == [r["id"] for r in b] == list(range(N_ROWS))
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k != "reward"} == {
            k: v for k, v in y.items() if k != "reward"
        }
        assert x["reward"] == pytest.approx(y["reward"], abs=1e-5)


def _check_stopped(proc, sig: str) -> None:
    """A stopped run fails and never says it scored: SIGKILL ends it by the signal, SIGTERM by
    the signal after its note, Ctrl-C with 130 and its note."""
    expect = {"KILL": -signal.SIGKILL, "TERM": -signal.SIGTERM, "INT": 130}[sig]
    assert proc.returncode == expect, (proc.returncode, proc.stderr[-2000:])
    assert "scored " not in proc.stdout and "wrote " not in proc.stdout
    if sig != "KILL":
        said = "terminated (SIGTERM)" if sig == "TERM" else "interrupted"
        assert said in proc.stderr and "absent or incomplete" in proc.stderr
        assert "a file already at an output path is an earlier run's" in proc.stderr


def _no_leftovers(folder: Path) -> None:
    """No temporary file or lock of any run is left in ``folder``."""
    left = [p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock"))]
    assert left == []


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, Path]:
    """(input, clean uninterrupted output) for ``rule:length``."""
    base = tmp_path_factory.mktemp("clean")
    data = _write_rows(base / "rows.jsonl")
    proc = _cli(_score_args(data, base / "clean.jsonl"))
    assert proc.returncode == 0, proc.stderr
    return data, base / "clean.jsonl"


def _damaged(kind: str, out: Path, clean_out: Path) -> bytes | None:
    """Put a damaged or foreign output at ``out``; its bytes (None: nothing put)."""
    good = clean_out.read_bytes()
    body = {
        "none": None,
        "new_folder": None,
        "cut": good[: len(good) // 2 + 7],  # the last line cut mid-JSON
        "garbage": good[:300].rsplit(b"\n", 1)[0] + b"\n}}not json{{\n",
        "empty": b"",
        "other_input": good.replace(b"What is", b"Who is"),  # another file's rows
        "other_reward": b"".join(
            json.dumps({**r, "reward": 0.5}).encode() + b"\n" for r in _rows_of(clean_out)[:25]
        ),
    }[kind]
    if body is not None:
        out.write_bytes(body)
        # and a temporary file of a killed writer (pid 0x7fffffff does not exist)
        (out.parent / f".{out.name}.2147483647-0123456789ab.tmp").write_bytes(body[:50])
    return body


#: (signal, stop point, damaged output at --out before the run).
SCORE_CASES = [
    ("KILL", ("chunk", 1), "none"),  # before the first row is scored
    ("KILL", ("chunk", 3), "cut"),  # mid-way
    ("KILL", ("line", 21), "garbage"),  # 20 rows written to the temporary file
    ("KILL", ("replace", 1), "empty"),  # the complete temporary file, before its rename
    ("TERM", ("chunk", 3), "other_input"),
    ("TERM", ("line", 21), "other_reward"),
    ("INT", ("chunk", 1), "new_folder"),  # --out in folders that do not exist yet
    ("INT", ("replace", 1), "other_input"),
]


@pytest.mark.parametrize(("sig", "point", "before"), SCORE_CASES)
def test_score_stopped_anywhere_leaves_no_output_and_the_rerun_equals_a_clean_run(
    tmp_path, clean, sig, point, before
):
    data, clean_out = clean
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / ("new/deeper/scored.jsonl" if before == "new_folder" else "scored.jsonl")
    old = _damaged(before, out, clean_out)
    stopped = _cli(_score_args(data, out), (point[0], sig, point[1]))
    _check_stopped(stopped, sig)
    if before == "new_folder":  # no empty folder of the stopped run passes for its output
        assert list(folder.iterdir()) == []
    # the killed run wrote nothing at --out: what was there is there, byte for byte
    assert (out.read_bytes() if out.exists() else None) == old
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == ([] if old is None else [out.name])
    again = _cli(_score_args(data, out))
    assert again.returncode == 0, again.stderr
    assert f"scored {N_ROWS} rows" in again.stdout
    _same_rows(out, clean_out)
    _no_leftovers(out.parent)


def test_score_model_killed_mid_way_resumes_from_the_cache_and_never_mixes_rewards(tmp_path):
    """classifier:minilm killed from outside after two chunks' scores were committed: the rerun
    takes those from the cache and equals a clean run; the same cache never serves the killed
    run's scores to another reward (another head seed)."""
    pytest.importorskip("torch")
    from rewardkit.registry import load_reward
    from rewardkit.scoring import score_file

    data = _write_rows(tmp_path / "rows.jsonl")
    cache, out, marker = tmp_path / "cache", tmp_path / "scored.jsonl", tmp_path / "reached"
    proc = _cli(
        _score_args(data, out, "classifier:minilm", "--cache-dir", str(cache)),
        ("put", "wait", 2),
        marker,
    )
    try:  # while the run loads its model: a clean run here, and the other reward loaded
        clean_out, other_out = tmp_path / "clean.jsonl", tmp_path / "other.jsonl"
        score_file(load_reward("classifier:minilm"), data, clean_out, chunk_size=8)
        other = load_reward(
            "classifier:minilm?head_seed=1", engine_defaults={"cache_dir": str(cache)}
        )
        wait_for(lambda: marker.exists() or proc.poll() is not None, timeout=180)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    assert score_file(other, data, other_out, chunk_size=8).get("cache_hits", 0) == 0
    again = _cli(_score_args(data, out, "classifier:minilm", "--cache-dir", str(cache)))
    assert again.returncode == 0, again.stderr
    hits = int(again.stdout.split(" from the score cache")[0].rsplit(" ", 1)[-1])
    assert 16 <= hits < N_ROWS  # the two committed chunks, not recomputed
    _same_rows(out, clean_out)
    theirs = [r["reward"] for r in _rows_of(other_out)]
    assert theirs != pytest.approx([r["reward"] for r in _rows_of(out)], abs=1e-5)
    _no_leftovers(tmp_path)


def _eval_args(data: Path, out: Path) -> list[str]:
    return [
        "eval", "-r", "rule:length", "--data", str(data), "--out", str(out), "--no-html",
        "--n-boot", "20", "--no-baseline", "--no-cache",
    ]  # fmt: skip


def _scores(report: Path) -> list[list[float]]:
    d = json.loads(report.read_text())
    return [e["scores"] for r in d["rewards"] for e in r["examples"]]


#: (signal, stop point, what --out holds before the run).
EVAL_CASES = [
    ("KILL", ("chunk", 1), "foreign"),  # before any score
    ("KILL", ("replace", 2), "none"),  # report.json in place, report.md not yet
    ("TERM", ("replace", 1), "garbage"),  # both rendered, before the first rename
    ("INT", ("chunk", 1), "foreign"),
]


@pytest.fixture(scope="module")
def clean_eval(tmp_path_factory) -> tuple[Path, Path]:
    """(preference pairs, the folder of a clean uninterrupted eval of them)."""
    base = tmp_path_factory.mktemp("clean_eval")
    data = _write_pairs(base / "pairs.jsonl")
    proc = _cli(_eval_args(data, base / "clean"))
    assert proc.returncode == 0, proc.stderr
    return data, base / "clean"


@pytest.mark.parametrize(("sig", "point", "before"), EVAL_CASES)
def test_eval_stopped_anywhere_then_rerun_writes_the_clean_reports(
    tmp_path, clean_eval, sig, point, before
):
    data, clean_dir = clean_eval
    out = tmp_path / "run"
    if before != "none":  # a report of another input, or damaged files
        out.mkdir()
        foreign = json.loads((clean_dir / "report.json").read_text())
        foreign["settings"]["data"] = {"hash": "0" * 32, "n_examples": 3, "path": "other.jsonl"}
        text = json.dumps(foreign) if before == "foreign" else '{"rewards": [1, 2'
        (out / "report.json").write_text(text)
        (out / "report.md").write_text("# an older run\n")
    stopped = _cli(_eval_args(data, out), (point[0], sig, point[1]))
    _check_stopped(stopped, sig)
    if point == ("replace", 2):  # report.json is this run's and whole; no older report.md
        assert _scores(out / "report.json") == _scores(clean_dir / "report.json")
        assert not (out / "report.md").exists()
    again = _cli(_eval_args(data, out))
    assert again.returncode == 0, again.stderr
    assert _scores(out / "report.json") == _scores(clean_dir / "report.json")
    want = json.loads((clean_dir / "report.json").read_text())["settings"]["data"]["hash"]
    assert json.loads((out / "report.json").read_text())["settings"]["data"]["hash"] == want
    assert "older run" not in (out / "report.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]


def test_eval_interrupted_into_a_new_folder_leaves_no_folder(tmp_path):
    data = _write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "run"
    stopped = _cli(_eval_args(data, out), ("chunk", "INT", 1))
    _check_stopped(stopped, "INT")
    assert not out.exists()


def test_eval_interrupted_into_new_nested_folders_leaves_none_of_them(tmp_path):
    data = _write_pairs(tmp_path / "pairs.jsonl")
    stopped = _cli(_eval_args(data, tmp_path / "new" / "run"), ("chunk", "INT", 1))
    _check_stopped(stopped, "INT")
    assert not (tmp_path / "new").exists()


def test_score_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path):
    data = _write_rows(tmp_path / "rows.jsonl")
    before = data.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    for out in (data, link):
        proc = _cli(_score_args(data, out))
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "is the --data file itself" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert data.read_bytes() == before


def _without_dac(argv: list[str]) -> list[str]:
    """The command run without the power to write where permissions forbid it (root's
    CAP_DAC_OVERRIDE dropped); skip where that cannot be done."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder is writable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]


@pytest.mark.parametrize("verb", ["score", "eval"])
def test_output_in_a_read_only_folder_is_refused_before_any_work(tmp_path, verb):
    data = _write_rows(tmp_path / "rows.jsonl") if verb == "score" else None
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if verb == "score":
            args = _score_args(data, locked / "scored.jsonl", "rule:length", "--no-cache")
        else:
            args = _eval_args(_write_pairs(tmp_path / "pairs.jsonl"), locked / "run")
        cmd = _without_dac([sys.executable, "-c", _STOPPED, "none", "KILL", "0", "-", *args])
        proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
        if proc.returncode == 1 and "setpriv" in proc.stderr:
            pytest.skip(f"setpriv cannot drop capabilities here: {proc.stderr.strip()}")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and f"the folder {locked} is not writable" in (
            proc.stderr
        )
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)

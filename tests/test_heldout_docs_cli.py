"""Documented examples and typical user mistakes, run as a user runs them (docs/cli/serve.md,
docs/serving.md "Client", docs/families.md, docs/remote.md)."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rewardkit import Query
from rewardkit.client import RewardClient, to_item
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig

ROOT = Path(__file__).resolve().parents[1]


def _cli(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rewardkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


def test_serve_on_a_port_in_use_is_one_line_exit_2() -> None:
    """Before: uvicorn's ERROR and shutdown lines, exit 3, after the rewards had loaded."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _cli("serve", "-r", "rule:length", "--port", str(port))
    _one_line_error(proc, f"cannot listen on --host 127.0.0.1 --port {port}")
    assert "in use" in proc.stderr


def test_serve_on_an_address_this_machine_lacks_is_one_line_exit_2() -> None:
    proc = _cli("serve", "-r", "rule:length", "--host", "nosuch.invalid", "--api-key", "k" * 12)
    _one_line_error(proc, "cannot listen on --host nosuch.invalid")


def test_client_sends_a_querys_data_source_so_the_server_routes_it() -> None:
    """Before: a ``Query`` lost ``meta["data_source"]`` on the way, so its item was scored by
    the default route (here ``rule:length``) instead of the route it named."""
    query = Query("What is 6*7?", "#### 42", reference="42", meta={"data_source": "gsm8k"})
    assert to_item(query)["data_source"] == "gsm8k"
    config = ServeConfig(rewards={"default": "rule:length", "gsm8k": "rule:gsm8k"})
    server = BackgroundServer(create_app(config))
    with server as srv, RewardClient(f"http://127.0.0.1:{srv.port}") as rc:
        routed, plain = rc.score([query, Query("Hi", "Hello!")])
    assert routed["route"] == "gsm8k" and routed["reward"] == 1.0
    assert plain["route"] == "default" and plain["reward"] == float(len("Hello!"))


def test_client_sends_a_nan_reference_as_no_reference() -> None:
    """A missing cell of a DataFrame is NaN. Before: "Out of range float values are not JSON
    compliant" (a ValueError from httpx, naming no item) and nothing was scored."""
    config = ServeConfig(rewards={"default": "rule:length", "gsm8k": "rule:gsm8k"})
    item = {"prompt": "6*7?", "response": "#### 42", "reference": float("nan")}
    server = BackgroundServer(create_app(config))
    with server as srv, RewardClient(f"http://127.0.0.1:{srv.port}") as rc:
        (result,) = rc.score([{**item, "data_source": "gsm8k"}])
        answer = rc.get_reward(["6*7? #### 42"], ["6*7?"], [float("nan")])
    assert result["error"] is None and result["reward"] is None  # no reference: does not apply
    assert answer["extra_logs"]["rewardkit_nan"] == [0.0]  # the default route: a length
    assert answer["rewards"] == [float(len(" #### 42"))]


def _fenced_commands(doc: str) -> list[str]:
    """Every ``rewardkit …`` line of the fenced shell (or untyped) blocks of ``doc``."""
    out, fence = [], None
    text = (ROOT / doc).read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip("` ")
            continue
        found = re.search(r"(?:^|\s)(rewardkit \S.*)", line)
        if fence in ("", "bash", "sh") and found:
            out.append(found.group(1).strip())
    return out


@pytest.mark.parametrize("doc", ["docs/families.md", "docs/remote.md"])
def test_documented_eval_and_serve_commands_use_existing_options(doc: str) -> None:
    """Before: docs/families.md passed the data file as a positional argument ("Got unexpected
    extra argument") and docs/remote.md gave serve an ``--api-key-env`` it does not have."""
    import click
    from typer.main import get_command

    from rewardkit.cli import build_app

    app = get_command(build_app())
    commands = [c for c in _fenced_commands(doc) if c.split()[1] in ("eval", "serve", "score")]
    assert commands, f"{doc}: no rewardkit command found"
    for line in commands:
        words = line.split("#")[0].split()
        verb = app.commands[words[1]]  # type: ignore[attr-defined]
        known = {o for p in verb.params for o in p.opts}
        flags = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
        assert set(flags) <= known, f"{doc}: {line!r} uses {set(flags) - known}"
        takes_arguments = any(isinstance(p, click.Argument) for p in verb.params)
        positionals = [
            w
            for i, w in enumerate(words[2:], start=2)
            if not w.startswith("-") and not words[i - 1].startswith("-") and w not in ("...", "…")
        ]
        assert takes_arguments or not positionals, f"{doc}: {line!r}: positional {positionals}"


def test_score_and_data_on_an_empty_file_warn(tmp_path: Path) -> None:
    """Before: ``scored 0 rows … -> out`` and ``0 examples`` as bare successes."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    scored = _cli("score", "-r", "rule:length", "--data", str(empty), "--out", str(out))
    assert scored.returncode == 0, scored.stderr
    assert "scored 0 rows" in scored.stdout and out.read_text(encoding="utf-8") == ""
    assert f"warning: the input holds no rows, so {out} holds none" in scored.stderr
    checked = _cli("data", str(empty))
    assert checked.returncode == 0 and "0 examples" in checked.stdout
    assert f"warning: {empty} holds no examples" in checked.stderr


def test_an_option_a_kind_does_not_take_is_named_as_an_option() -> None:
    """Before: "LengthReward.__init__() got an unexpected keyword argument 'bogus'"."""
    from rewardkit import load_reward
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError) as info:
        load_reward("rule:length?bogus=1")
    assert "unknown option 'bogus' for 'rule' rewards" in str(info.value)
    assert "__init__" not in str(info.value)


def test_a_model_directory_without_a_kind_gets_a_hint(tmp_path: Path) -> None:
    """Before: only "unknown reward kind '/path'", with no word on how to name a model."""
    model_dir = tmp_path / "my-rm"
    model_dir.mkdir()
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "Hi", "response": "Hello"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    proc = _cli("score", "-r", str(model_dir), "--data", str(rows), "--out", str(out), "--no-cache")
    _one_line_error(proc, f"give its kind first, e.g. classifier:{model_dir}")
    from rewardkit import load_reward
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError, match="unknown reward kind"):  # too long to be a path
        load_reward("x" * 5000)


def test_score_takes_the_developer_role_that_data_and_bon_take(tmp_path: Path) -> None:
    """Before: ``rewardkit score`` refused a prompt with a ``developer`` message (OpenAI's
    system turn), which ``rewardkit data``/``eval`` and ``bon`` accept; a wrong role is named."""
    rows = tmp_path / "rows.jsonl"
    prompt = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rows.write_text(json.dumps({"prompt": prompt, "response": "Hello"}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    proc = _cli("score", "-r", "rule:length", "--data", str(rows), "--out", str(out), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["reward"] == float(len("Hello"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": [{"role": "human", "content": "Hi"}], "response": "x"}\n')
    proc = _cli("score", "-r", "rule:length", "--data", str(bad), "--out", str(out), "--no-cache")
    _one_line_error(proc, "line 1, field 'prompt[0].role'")  # the data loader's own check
    assert "got text 'human'" in proc.stderr


def test_a_yaml_error_is_one_line(tmp_path: Path) -> None:
    """Before: ``--temperature`` (and a train ``--config``) naming a JSON Lines file printed
    PyYAML's four-line message: the source line and a caret on lines of their own."""
    rows = tmp_path / "pairs.jsonl"
    rows.write_text(
        '{"prompt": "a", "chosen": "b", "rejected": "c"}\n'
        '{"prompt": "d", "chosen": "e", "rejected": "f"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "run"
    proc = _cli(
        "eval", "-r", "rule:length", "--data", str(rows), "--out", str(out),
        "--temperature", str(rows), "--no-progress",
    )  # fmt: skip
    _one_line_error(proc, "the temperature file: invalid YAML")
    assert "line 2, column 1" in proc.stderr


class _ShortAnswers(http.server.BaseHTTPRequestHandler):
    """A server (or a proxy in front of one) that answers one result fewer than it was sent."""

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/get_reward":
            body = {"rewards": [1.0] * (len(sent["query"]) - 1)}
        else:
            body = {"results": [{"reward": 1.0}] * (len(sent["items"]) - 1)}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_client_refuses_an_answer_with_fewer_results_than_items() -> None:
    """Before: ``rewards()`` returned the shorter list, so zipping it with the items sent gave
    every item after the gap the next item's reward, silently."""
    from rewardkit.client import AsyncRewardClient, RewardServerError

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ShortAnswers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    items = [{"prompt": "p", "response": r} for r in ("a", "bb", "ccc")]
    try:
        with RewardClient(url, retries=0) as rc:
            with pytest.raises(RewardServerError, match="got 2 entries for 3 items"):
                rc.rewards(items)
            with pytest.raises(RewardServerError, match="invalid_response"):
                rc.get_reward(["pa", "pb"], ["p", "p"])

        async def call() -> None:
            async with AsyncRewardClient(url, retries=0) as arc:
                await arc.score(items)

        with pytest.raises(RewardServerError, match="/v1/rewards: got 2 entries"):
            asyncio.run(call())
    finally:
        server.shutdown()
        server.server_close()


def test_score_to_dev_stdout_keeps_stdout_pure_json_lines(tmp_path: Path) -> None:
    """docs/cli/score.md: ``--out /dev/stdout`` is written in place. Before: the summary line
    followed the rows on stdout, so ``… | jq`` met a last line that is not JSON."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "a", "response": "bb"}\n{"prompt": "c", "response": "d"}\n')
    proc = _cli("score", "-r", "rule:length", "--data", str(rows), "--out", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [json.loads(ln)["reward"] for ln in lines] == [2.0, 1.0]
    assert "scored 2 rows (0 truncated) -> /dev/stdout" in proc.stderr


def test_score_refuses_an_empty_message_list_where_it_is(tmp_path: Path) -> None:
    """Before: ``"prompt": []`` was read, then a chat-template model stopped the whole run with
    transformers' "Cannot apply chat template to an empty conversation" (no file, no line);
    ``rewardkit data`` already refused it, located."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "Hi", "response": "a"}\n{"prompt": [], "response": "b"}\n')
    out = tmp_path / "out.jsonl"
    proc = _cli("score", "-r", "rule:length", "--data", str(rows), "--out", str(out), "--no-cache")
    _one_line_error(proc, "line 2, field 'prompt': expected at least one message")
    assert not out.exists()


def test_a_tilde_the_shell_left_alone_means_home(tmp_path: Path) -> None:
    """``--data=~/x`` reaches the program with its ``~`` (bash expands a tilde only at the start
    of a word). Before: "no such file or directory: ~/rows.jsonl", and a spec file
    ``--reward=~/spec.yaml`` was "not found"."""
    (tmp_path / "rows.jsonl").write_text('{"prompt": "a", "response": "bbb"}\n')
    (tmp_path / "spec.yaml").write_text("type: rule\narg: length\n")
    home = {"HOME": str(tmp_path)}
    args = ["--reward=~/spec.yaml", "--data=~/rows.jsonl", "--out=~/out.jsonl", "--no-cache"]
    proc = _cli("score", *args, env=home)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out.jsonl").read_text())["reward"] == 3.0
    assert not (Path.cwd() / "~").exists()


def test_chunk_plan_keeps_the_rows_of_a_prompt_together() -> None:
    from rewardkit.scoring import chunk_plan

    queries = [Query(p, r) for p, r in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("b", "5")]]
    assert chunk_plan(queries, 2) == [[0, 2], [1, 4], [3]]
    assert chunk_plan(queries, 1) == [[0, 2], [1, 4], [3]]  # a group is never cut
    assert chunk_plan(queries, 100) == [[0, 2, 1, 4, 3]]
    distinct = [Query(str(i), "r") for i in range(5)]
    assert chunk_plan(distinct, 2) == [[0, 1], [2, 3], [4]]  # as contiguous chunks were


@pytest.mark.heavy  # three real CLI runs, each loading models (~20-30 s)
def test_score_ranks_a_listwise_group_whole_whatever_the_chunk_size(tmp_path: Path) -> None:
    """Before: ``--chunk-size`` (default 2048) cut the rows of one prompt into separate
    listwise calls: with interleaved prompts and ``--chunk-size 2`` every row was alone in its
    group and scored null, and a boundary inside a group changed the others' scores."""
    rows = tmp_path / "rows.jsonl"
    group = [("What is 2+2?", "4"), ("Name a colour.", "Blue."), ("What is 2+2?", "5")]
    group += [("Name a colour.", "Seven."), ("What is 2+2?", "It is four.")]
    rows.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in group))
    scores = {}
    for size in ("2", "2048"):
        out = tmp_path / f"out{size}.jsonl"
        args = ["-r", "judge-listwise:default", "--data", str(rows), "--out", str(out)]
        proc = _cli(
            "score", *args, "--chunk-size", size, "--no-cache", "--no-progress", timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        scores[size] = [json.loads(ln)["reward"] for ln in out.read_text().splitlines()]
    assert None not in scores["2"]
    assert scores["2"] == pytest.approx(scores["2048"], abs=1e-4)
    assert sum(scores["2"][i] for i in (0, 2, 4)) == pytest.approx(1.0, abs=1e-4)  # P(best)


def test_a_stopped_no_cache_run_does_not_promise_a_resume(tmp_path: Path) -> None:
    """Before: a run with ``--no-cache`` stopped by SIGTERM said "model scores computed so far
    stay in the score cache, so the same command resumes from them"; nothing was cached."""
    rows = tmp_path / "rows.jsonl"
    text = "".join(
        json.dumps({"prompt": f"Question {i}? " + "word " * 60, "response": "answer " * 60}) + "\n"
        for i in range(2000)
    )
    rows.write_text(text)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "rewardkit.cli", "score", "-r", "judge:default"]
    cmd += ["--data", str(rows), "--out", str(out), "--no-cache", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)  # the verbs imported, the handler installed: loading or scoring
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "terminated (SIGTERM) before the run finished" in err, err
    assert "with --no-cache no model score was kept, so the same command starts over" in err
    assert "resumes from them" not in err and not out.exists()


def test_small_option_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    """A YAML error names its line and column; ``train --config`` on a directory says so;
    ``check-model --max-length 0`` is refused (it used to run with 512 and report PASS)."""
    from rewardkit.data.readers import parse_yaml

    with pytest.raises(ValueError, match=r"^invalid YAML: line 2, column 9: expected ','"):
        parse_yaml("a: 1\nb: [1, 2")
    _one_line_error(_cli("train", "--config", str(tmp_path)), "is a directory")
    proc = _cli("check-model", "minilm", "--max-length", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "greater than or equal to 1" in proc.stderr

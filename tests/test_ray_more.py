"""``--ray`` paths hardened (probe rayfail): checks on the driver before Ray starts (spec, input,
images, listen address, cluster address), one-line errors for what fails on the actors, the
same input reader as without --ray, --cache-reset, absolute paths, the actors really used."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mm_helpers import solid_png
from rewardkit.cli import app
from rewardkit.errors import CapabilityError, DataError, RewardkitError, SpecError
from rewardkit.scoring_ray import (
    check_ray_input,
    cluster_address,
    driver_spec,
    probe_address,
    score_file_ray,
)


def _rows(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"prompt": f"p{i}", "response": "x" * (i + 1)}) + "\n" for i in range(n))
    )
    return path


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connect is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- driver-side checks: no Ray needed -------------------------------------------------------


def test_driver_spec_refuses_a_typo_and_makes_a_spec_file_absolute(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match="unknown reward kind 'no-such-kind'"):
        driver_spec("no-such-kind:x")
    with pytest.raises(SpecError, match="not found"):
        driver_spec("missing.yaml")
    (tmp_path / "ens.yaml").write_text('ensemble: ["rule:length", "rule:f1"]\n')
    monkeypatch.chdir(tmp_path)
    assert driver_spec("ens.yaml") == str(tmp_path / "ens.yaml")
    assert driver_spec("rule:length") == "rule:length"
    (tmp_path / "bad.yaml").write_text("type: no-such-kind\n")
    with pytest.raises(SpecError, match="no-such-kind"):
        driver_spec("bad.yaml")


def test_a_cluster_address_where_nothing_listens_fails_fast_naming_it(monkeypatch):
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(RewardkitError, match=f"Ray address 127.0.0.1:{port}: no Ray cluster"):
        probe_address(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    with pytest.raises(RewardkitError, match="expected host:port"):
        probe_address("nonsense")
    probe_address("local")  # not probed
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) == "local"  # a new local cluster, never a running one
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address(None) == "10.0.0.1:6379" and cluster_address("h:1") == "h:1"


def test_a_pipe_is_refused_as_ray_input(tmp_path):
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        check_ray_input(fifo)
    assert check_ray_input(_rows(tmp_path / "ok.jsonl", 1)) == (tmp_path / "ok.jsonl").resolve()


def _score_ray(*args: str) -> object:
    return CliRunner().invoke(app, ["score", *args, "--ray", "--no-progress"])


def test_score_ray_refuses_a_typo_and_a_cut_image_before_ray(tmp_path):
    src, out = _rows(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    res = _score_ray("-r", "no-such-kind:x", "--data", str(src), "--out", str(out), "--no-cache")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.startswith("error: unknown reward kind 'no-such-kind'")
    raw = Path(solid_png(tmp_path / "good.png", (1, 2, 3))).read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    data = tmp_path / "img.jsonl"
    rows = [{"prompt": "p", "response": [{"type": "image", "path": p}]} for p in ("good.png",) * 2]
    rows.append({"prompt": "p", "response": [{"type": "image", "path": "cut.png"}]})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = _score_ray("-r", "rule:length", "--data", str(data), "--out", str(out), "--no-cache")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "img.jsonl:3: field 'response': image file is cut short" in res.output
    assert not out.exists()


def test_serve_ray_checks_the_port_and_the_spec_before_ray(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        args = ["serve", "-r", "rule:length", "--port", str(port), "--ray"]
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"cannot listen on --host 127.0.0.1 --port {port}" in res.output
    res = CliRunner().invoke(app, ["serve", "-r", "no-such-kind:x", "--port", "0", "--ray"])
    assert res.exit_code == 2 and "unknown reward kind 'no-such-kind'" in res.output


# --- on the session's local Ray ----------------------------------------------------------------


def test_batch_relative_and_unbuildable_rewards_are_one_error(local_ray, tmp_path):
    src, out = _rows(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    zscore = {"type": "ensemble", "members": ["rule:length", "rule:f1"], "normalize": "zscore"}
    with pytest.raises(CapabilityError, match="scores each row against the rest of its call"):
        score_file_ray(zscore, src, out, range_bytes=256)
    zs = tmp_path / "z.yaml"
    zs.write_text('ensemble: ["rule:length", "rule:f1"]\nnormalize: zscore\n')
    res = _score_ray("-r", str(zs), "--data", str(src), "--out", str(out), "--no-cache")
    assert res.exit_code == 2 and "Traceback" not in res.output and not out.exists()
    from rewardkit.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no-such-model"):  # a value, not a traceback
        score_file_ray(f"classifier:{tmp_path / 'no-such-model'}", src, out)


def test_bom_and_cr_inputs_score_as_without_ray_on_the_actors_used(local_ray, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(
        b'\xef\xbb\xbf{"prompt": "p", "response": "hello world"}\n'
        b'{"prompt": "q",\r "response": "bye"}\r\n{"prompt": "r", "response": "abc"}\n'
    )
    stats = score_file_ray("rule:length", src, out, actors=4)
    assert stats["rows"] == 3 and stats["failed_rows"] == 0
    assert [json.loads(x)["reward"] for x in out.read_text().splitlines()] == [11.0, 3.0, 3.0]
    assert stats["actors"] == 1  # one range: one actor, not the 4 asked for
    res = _score_ray("-r", "rule:length", "--data", str(src), "--out", str(out), "--no-cache")
    assert res.exit_code == 0, res.output
    assert "on 1 of the 2 Ray actors asked for" in res.output


def test_cache_reset_and_a_relative_cache_dir_on_ray(local_ray, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = _rows(tmp_path / "in.jsonl", 5)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "scores.sqlite").write_bytes(b"not a database" * 500)
    args = ["-r", "rule:length", "--data", "in.jsonl", "--out", "out.jsonl", "--cache-dir", "cache"]
    res = _score_ray(*args, "--cache-reset")
    assert res.exit_code == 0, res.output
    assert "score cache moved aside to" in res.output
    assert len(list((tmp_path / "cache").glob("scores.sqlite.bad-*"))) == 1
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5 and src.exists()


def test_serve_ray_refuses_a_second_app_on_the_cluster(local_ray):
    """Before: the second `serve --ray` replaced the first one's rewards behind its port."""
    from ray import serve

    from rewardkit.serve.config import ServeConfig
    from rewardkit.serve.ray_app import run

    port = _closed_port()
    try:
        run(ServeConfig(rewards={"default": "rule:length"}), port=port, replicas=1, blocking=False)
        with pytest.raises(RewardkitError, match="already runs on this Ray cluster"):
            run(ServeConfig(rewards={"default": "rule:gsm8k"}), port=port + 1, blocking=False)
        deployed = serve.status().applications["rewardkit"].deployments["rewardkit"]
        assert deployed.replica_states.get("RUNNING") == 1  # the first app, untouched
    finally:
        serve.shutdown()

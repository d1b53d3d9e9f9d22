"""``score --ray``: Ray Data with 2 local CPU actors gives the single-process output, rows in
input order, resumes from the score cache, and reports bad lines by number."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'rewardkit[ray]')")
pytest.importorskip("ray.data", reason="ray[data] is not installed")

from rewardkit.errors import DataError
from rewardkit.registry import load_reward
from rewardkit.scoring import score_file
from rewardkit.scoring_ray import line_ranges, score_file_ray


def _write(path, n: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            prompt = f"question {i} ✓" if i % 3 else [{"role": "user", "content": f"q{i}"}]
            fh.write(json.dumps({"id": i, "prompt": prompt, "response": "word " * (i % 11)}) + "\n")
            if i == 7:
                fh.write("\n")  # a blank line is skipped, as in the single-process reader


def test_line_ranges_cover_the_file(tmp_path):
    path = tmp_path / "in.jsonl"
    _write(path, 50)
    ranges = line_ranges(path, 300)
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    lines = path.read_bytes().splitlines(keepends=True)
    for start, _end, first in ranges:  # each range starts at the line it says
        assert sum(len(x) for x in lines[: first - 1]) == start


def test_ray_output_equals_single_process_in_order(local_ray, tmp_path):
    src, one, many = tmp_path / "in.jsonl", tmp_path / "one.jsonl", tmp_path / "ray.jsonl"
    _write(src, 300)
    score_file(load_reward("rule:length"), src, one)
    stats = score_file_ray("rule:length", src, many, actors=2, range_bytes=2048)
    assert many.read_bytes() == one.read_bytes()
    assert stats["rows"] == 300 and stats["actors"] == 2 and stats["gpus_per_actor"] == 0.0
    assert stats["cache_hits"] is None  # a rule reports no cache counter: unknown, not 0
    assert [json.loads(x)["id"] for x in many.read_text().splitlines()] == list(range(300))


@pytest.mark.slow
@pytest.mark.heavy  # make test-heavy (CI): a long integration run
def test_model_scores_match_single_process(local_ray, tmp_path):
    from rewardkit.engine.cache import ScoreCache

    src, one, many = tmp_path / "in.jsonl", tmp_path / "one.jsonl", tmp_path / "ray.jsonl"
    _write(src, 40)
    engine = {"progress": False, "threads": 1}
    local = load_reward("default", engine_defaults=engine)
    score_file(local, src, one)
    cached = {**engine, "cache_dir": str(tmp_path / "cache")}
    score_file_ray("default", src, many, engine_defaults=cached, range_bytes=1024)
    want = [json.loads(x)["reward"] for x in one.read_text().splitlines()]
    got = [json.loads(x)["reward"] for x in many.read_text().splitlines()]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert ScoreCache(tmp_path / "cache").count() >= 40  # both actors wrote to one cache


@pytest.mark.slow
def test_rerun_resumes_from_the_cache(local_ray, tmp_path):
    from fault_proxy import FaultProxy
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    src, one, many = tmp_path / "in.jsonl", tmp_path / "one.jsonl", tmp_path / "ray.jsonl"
    _write(src, 60)
    score_file(load_reward("rule:length"), src, one)
    engine = {"cache_dir": str(tmp_path / "cache")}
    app = create_app(ServeConfig(rewards={"default": "rule:length"}))
    with BackgroundServer(app) as server, FaultProxy(upstream=server.url) as proxy:
        spec = f"remote:{proxy.url}?batch_size=8"
        first = score_file_ray(spec, src, many, engine_defaults=engine, range_bytes=1024)
        scored = proxy.paths["/v1/rewards"]
        assert many.read_bytes() == one.read_bytes()
        proxy.reset()
        again = score_file_ray(spec, src, many, engine_defaults=engine, range_bytes=1024)
        assert many.read_bytes() == one.read_bytes()
        assert proxy.paths["/v1/rewards"] == 0  # only GET /v1/info: no scoring call
    assert scored >= 60 / 8 and first["cache_hits"] == 0
    assert again["cache_hits"] == again["rows"] == 60


def test_bad_line_is_reported_by_number_and_nothing_written(local_ray, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(src, 30)
    with src.open("a") as fh:
        fh.write('{"prompt": "x"}\n')  # line 32 (30 rows + one blank line + this)
    with pytest.raises(DataError, match=r"in.jsonl, line 32, field 'response'"):
        score_file_ray("rule:length", src, out, range_bytes=512)
    assert not out.exists()
    csv = tmp_path / "x.csv"
    csv.write_text("prompt,response\n")
    with pytest.raises(DataError, match="JSON Lines"):
        score_file_ray("rule:length", csv, out)


def test_cli_score_ray(local_ray, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(src, 20)
    res = CliRunner().invoke(
        app,
        [
            "score",
            "-r",
            "rule:length",
            "--data",
            str(src),
            "--out",
            str(out),
            "--ray",
            "--no-cache",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "scored 20 rows" in res.output and "2 Ray actors" in res.output
    assert len(out.read_text().splitlines()) == 20


def test_rows_that_failed_alone_are_counted_on_ray_too(local_ray, tmp_path):
    """As without --ray: the summary counts rows that failed alone (null) and names the first
    by its line in the input; rows without a reference do not apply and are not failures."""
    from typer.testing import CliRunner

    from rewardkit.cli import app

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    code = "```python\ndef f(x):\n    return x + 1\n```"
    refs = [None, {"foo": 1}, None, {"foo": 1}]  # {"foo": 1} is not a test specification
    src.write_text(
        "".join(json.dumps({"prompt": "f", "response": code, "reference": r}) + "\n" for r in refs)
    )
    stats = score_file_ray("rule:code", src, out, range_bytes=64)
    assert stats["failed_rows"] == 2 and stats["failed_values"] == [None]
    assert stats["first_error"].startswith("line 2: ValueError")
    args = ["score", "-r", "rule:code", "--data", str(src), "--out", str(out), "--ray"]
    res = CliRunner().invoke(app, [*args, "--no-cache", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 of 4 rows failed alone and have reward null (first: line 2: ValueError" in res.output
    assert stats["null_rows"] == 2  # the rows without a reference: the rule does not apply


def test_rows_a_rule_does_not_apply_to_are_counted_and_listwise_is_refused(local_ray, tmp_path):
    """``score --ray`` says how many rows got null because the reward does not apply (as
    without --ray), and refuses a listwise reward, whose prompt groups ranges would split."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"prompt": "2+2?", "response": "4", "reference": r} for r in ("4", None, "5")]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = score_file_ray("rule:exact_match", src, out, range_bytes=32)
    assert stats["rows"] == 3 and stats["null_rows"] == 1 and stats["failed_rows"] == 0
    from rewardkit.errors import CapabilityError

    spec = "judge-listwise:openai://127.0.0.1:9/v1?model=m"  # refused before any request
    with pytest.raises(CapabilityError, match="without --ray"):
        score_file_ray(spec, src, out)

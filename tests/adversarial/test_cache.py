"""A damaged score cache is detected, named, and moved aside on request (never deleted)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from rewardkit.engine.cache import CacheCorruptError, CacheLocationError, ScoreCache, move_aside


def _filled(tmp_path, n=2000):
    cache = ScoreCache(tmp_path)
    cache.put_many("fp", [(f"k{i}", np.float32(i), False) for i in range(n)])
    cache.close()
    # fold the WAL into the main file so the damage below hits real pages
    db = sqlite3.connect(tmp_path / ScoreCache.FILENAME)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return tmp_path / ScoreCache.FILENAME


def _read_all(tmp_path, n=2000):
    cache = ScoreCache(tmp_path)
    try:
        return cache.get_many("fp", [f"k{i}" for i in range(n)], width=1)
    finally:
        cache.close()


def test_truncated_cache_is_named(tmp_path):
    path = _filled(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheCorruptError) as info:
        _read_all(tmp_path)
    assert str(path) in str(info.value) and "--cache-reset" in str(info.value)


@pytest.mark.parametrize("where", ["header", "pages"])
def test_garbage_pages_are_named(tmp_path, where):
    path = _filled(tmp_path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    start = 0 if where == "header" else 4096
    data[start : start + 8192] = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptError, match=r"score cache .* is damaged"):
        _read_all(tmp_path)


@pytest.mark.parametrize("blob", [b"", b"\x00\x01\x02", b"\x00" * 8])
def test_wrong_size_blobs_are_named(tmp_path, blob):
    _filled(tmp_path, 3)
    db = sqlite3.connect(tmp_path / ScoreCache.FILENAME)
    db.execute("UPDATE scores SET value = ? WHERE query_key = 'k1'", (blob,))
    db.commit()
    db.close()
    with pytest.raises(CacheCorruptError, match="bytes; expected"):
        _read_all(tmp_path, 3)


def test_move_aside_renames_and_keeps_every_byte(tmp_path):
    path = _filled(tmp_path, 10)
    before = path.read_bytes()
    moved = move_aside(tmp_path)
    assert moved is not None and moved.read_bytes() == before and not path.exists()
    assert move_aside(tmp_path) is None  # nothing left to move
    assert _read_all(tmp_path, 10) == {}  # a new, empty cache


def test_cli_names_the_corrupt_cache_and_cache_reset_recovers(cli, rows_file, tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / ScoreCache.FILENAME).write_bytes(b"this is not a database" * 400)
    out = tmp_path / "out.jsonl"
    args = ["score", "-r", "default", "--data", rows_file, "--out", out]
    args += ["--cache-dir", cache_dir, "--no-progress"]
    code, text = cli(*args)
    assert code == 2 and "is damaged" in text and "--cache-reset" in text
    assert not out.exists()
    code, text = cli(*args, "--cache-reset")
    assert code == 0, text
    assert "moved aside" in text
    kept = [p for p in cache_dir.iterdir() if ".bad-" in p.name]
    assert kept and kept[0].read_bytes().startswith(b"this is not a database")
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize("where", ["file", "under_file", "db_is_dir"])
def test_a_cache_that_cannot_live_there_is_a_clear_error(tmp_path, where):
    blocker = tmp_path / "data.jsonl"
    blocker.write_text("x")
    folder = {"file": blocker, "under_file": blocker / "sub", "db_is_dir": tmp_path / "c"}[where]
    if where == "db_is_dir":
        (folder / ScoreCache.FILENAME).mkdir(parents=True)
    with pytest.raises(CacheLocationError, match="--no-cache") as ei:
        ScoreCache(folder)
    assert str(folder) in str(ei.value)
    assert blocker.read_text() == "x"  # nothing was touched


@pytest.mark.parametrize("verb", ["score", "eval"])
def test_cli_refuses_a_cache_dir_that_is_a_file_before_any_model(cli, rows_file, tmp_path, verb):
    out = tmp_path / ("o.jsonl" if verb == "score" else "ev")
    data = rows_file if verb == "score" else "sample"
    code, text = cli(verb, "-r", "default", "--data", data, "--out", out, "--cache-dir", rows_file)
    assert code != 0 and f"--cache-dir {rows_file} is a file" in text
    assert not out.exists()


#: The cache forked children inherit (opened, and written to, by the parent), and the id of the
#: parent's connection.
_INHERITED: list = []


def _write_in_child(k: int) -> tuple[int, bool]:
    cache, parents = _INHERITED
    cache.put_many("fp", [(f"child{k}-{i}", np.array([k + i / 100]), False) for i in range(200)])
    got = cache.get_many("fp", [f"child{k}-{i}" for i in range(200)] + ["parent"])
    return len(got), id(cache._db) != parents


def test_forked_children_open_their_own_connection_and_lose_nothing(tmp_path):
    """SQLite's locks and WAL index do not survive fork: a connection carried into children can
    corrupt the file. Each process now opens its own; every row written lands, intact."""
    import multiprocessing

    cache = ScoreCache(tmp_path)
    cache.put_many("fp", [("parent", np.array([1.0]), False)])
    _INHERITED[:] = [cache, id(cache._db)]
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            seen = pool.map(_write_in_child, range(8))
    finally:
        _INHERITED.clear()
    assert seen == [(201, True)] * 8  # all found, each through the child's own connection
    assert cache.count("fp") == 1 + 8 * 200  # the parent's own connection still works
    got = cache.get_many("fp", ["child7-99"])
    assert np.allclose(got["child7-99"][0], [7.99])
    db = sqlite3.connect(cache.path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    cache.close()


def test_the_cli_score_cache_follows_rewardkit_cache(tmp_path):
    """$REWARDKIT_CACHE moved the embedded models but not the score cache, which kept filling
    ~/.cache (a home quota on a cluster) for score, eval, curate and bon."""
    import os
    import subprocess
    import sys

    code = (
        "from rewardkit.commands.options import DEFAULT_CACHE; "
        "from rewardkit.engine.cache import default_directory; "
        "print(DEFAULT_CACHE); print(default_directory())"
    )
    env = {**os.environ, "REWARDKIT_CACHE": str(tmp_path / "rk")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(tmp_path / "rk" / "scores")] * 2
    env.pop("REWARDKIT_CACHE")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [os.path.expanduser("~/.cache/rewardkit/scores")] * 2

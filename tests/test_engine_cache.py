"""The score cache tells a full disk (or another machine error) from a damaged file: the first is
an ``OSError`` naming the file, the second :class:`CacheCorruptError` with ``--cache-reset``."""

from __future__ import annotations

import pytest


def test_a_full_disk_is_an_os_error_not_a_damaged_cache(tmp_path):
    import errno

    import numpy as np

    from rewardkit.engine.cache import ScoreCache

    cache = ScoreCache(tmp_path)
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite's own "disk is full"
    rows = [(f"k{i}", np.zeros(512, dtype=np.float32), False) for i in range(200)]
    with pytest.raises(OSError) as err:
        cache.put_many("fp", rows)
    assert err.value.errno == errno.ENOSPC and str(cache.path) in str(err.value)
    assert type(err.value).__name__ != "CacheCorruptError"  # it said "damaged: --cache-reset"


def test_a_local_models_identity_follows_its_tokenizer_and_config(tmp_path):
    from rewardkit.models.loading import resolve_model

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "tokenizer.json").write_text('{"normalizer": {"lowercase": true}}')
    (tmp_path / "metrics.json").write_text('{"loss": 1}')
    first = resolve_model(str(tmp_path)).identity
    (tmp_path / "metrics.json").write_text('{"loss": 2}')  # not something scores depend on
    assert resolve_model(str(tmp_path)).identity == first
    (tmp_path / "tokenizer.json").write_text('{"normalizer": {"lowercase": false}}')
    second = resolve_model(str(tmp_path)).identity
    # the cache served the old tokenizer's scores: the identity held the weights alone
    assert second["weights_sha256"] == first["weights_sha256"]
    assert second["files_sha256"] != first["files_sha256"]

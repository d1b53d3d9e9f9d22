"""The server's batching and memory measures: one reward call per dynamic batch, batches padded
to a multiple of 16 tokens (same scores), malloc_trim after model batches, and the disk cache's
width check (docs/serving.md)."""

from __future__ import annotations

import ctypes.util
import logging

import httpx
import numpy as np
import pytest

from rewardkit.engine.cache import ScoreCache
from rewardkit.engine.execute import pad_rows
from rewardkit.registry import load_reward
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import SERVE_ENGINE_DEFAULTS
from rewardkit.serve.memory import release_memory
from rewardkit.serve.state import Route
from rewardkit.types import Capability, Query, Reward, as_messages


def test_pad_rows_rounds_the_width_up_to_the_multiple():
    ids, mask, types = pad_rows([[5, 6, 7], [8]], [[0, 0, 1], [0]], 0, multiple=4, limit=512)
    assert ids.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert types is not None and types.tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]
    assert pad_rows([[1] * 16], None, 0, 16, 512)[0].shape == (1, 16)  # already a multiple
    assert pad_rows([[1] * 17], None, 0, 16, 512)[0].shape == (1, 32)
    assert pad_rows([[1] * 17], None, 0)[0].shape == (1, 17)  # default: the longest row
    # never past the model's longest sequence; unknown limit: no rounding
    assert pad_rows([[1] * 75], None, 0, 16, 77)[0].shape == (1, 77)
    assert pad_rows([[1] * 17], None, 0, 16, None)[0].shape == (1, 17)


def test_server_padding_keeps_scores():
    queries = [
        Query(as_messages("Say something kind."), "You are doing great, keep going!"),
        Query(as_messages("What is 2 + 2?"), "4"),
        Query(as_messages("Describe the sea."), "Blue, wide and deep; " * 5),
    ]
    plain = load_reward("classifier:minilm", engine_defaults={"progress": False, "threads": 1})
    served = load_reward(
        "classifier:minilm", engine_defaults={**SERVE_ENGINE_DEFAULTS, "threads": 1}
    )
    assert served.config.pad_multiple == 16 and plain.config.pad_multiple == 1
    np.testing.assert_allclose(served.score(queries), plain.score(queries), atol=1e-5)
    assert served.fingerprint() == plain.fingerprint()  # padding does not change scores


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to trim")
def test_release_memory_runs_at_most_once_per_interval():
    release_memory(interval=0.0)  # whatever ran before, this one runs
    assert release_memory(interval=3600.0) is False  # within the hour: skipped
    assert release_memory(interval=0.0) is True


class _LengthModel(Reward):
    """A reward declared model-backed that records the batch sizes it is called with."""

    capabilities = frozenset({Capability.MODEL_BACKED})

    def __init__(self, calls: list[int]) -> None:
        self.name = "length-model"
        self.calls = calls

    def _score(self, queries):
        self.calls.append(len(queries))
        return np.array([float(len(q.response)) for q in queries])


def test_a_dynamic_batch_reaches_a_model_reward_in_one_call():
    calls: list[int] = []
    route = Route("default", "length-model", _LengthModel(calls))
    # lengths far apart: the old server split such a batch into length chunks, one call each
    queries = [Query(as_messages("q"), "x" * n) for n in (3, 4000, 5, 3900, 7, 12)]
    rows = route.score_batch(queries)
    assert calls == [6]
    assert [float(r[0]) for r in rows] == [3.0, 4000.0, 5.0, 3900.0, 7.0, 12.0]


def test_wrong_width_disk_blob_is_reported_and_the_item_scored(tmp_path, caplog):
    config = ServeConfig(rewards={"default": "rule:length"}, cache_dir=str(tmp_path))
    app = create_app(config)
    state = app.state.rewardkit
    route = state.routes["default"]
    item = {"prompt": "hello", "response": "a fine answer"}
    key = Query(as_messages("hello"), "a fine answer").key()
    disk = ScoreCache(tmp_path)  # a blob of 3 floats where the route stores 2
    disk.put_many(route.fingerprint, [(key, np.zeros(3, dtype=np.float32), False)])
    disk.close()
    expected = float(route.reward.score([Query(as_messages("hello"), "a fine answer")])[0])
    with caplog.at_level(logging.ERROR, "rewardkit.serve"), BackgroundServer(app) as srv:
        r = httpx.post(srv.url + "/v1/rewards", json={"items": [item]}, timeout=30)
        assert r.status_code == 200
        result = r.json()["results"][0]
        assert result["cached"] is False and result["reward"] == pytest.approx(expected)
        again = httpx.post(srv.url + "/v1/rewards", json={"items": [item]}, timeout=30)
        assert again.json()["results"][0]["cached"] is True  # from memory now
    assert "is damaged" in caplog.text and "--cache-reset" in caplog.text


def test_stats_count_the_tokens_and_forward_passes_a_model_route_ran():
    queries = [
        Query(as_messages("Say something kind."), "You are doing great, keep going!"),
        Query(as_messages("What is 2 + 2?"), "4"),
        Query(as_messages("Describe the sea."), "Blue, wide and deep; " * 5),
    ]
    config = ServeConfig(
        rewards={"default": "classifier:minilm", "calc": "rule:length"}, engine={"threads": 1}
    )
    app = create_app(config)
    reward = app.state.rewardkit.routes["default"].reward
    offline = reward.score_full(queries).stats  # the same reward offline: same real tokens
    items = [{"prompt": q.prompt[0]["content"], "response": q.response} for q in queries]
    with BackgroundServer(app) as srv:
        r = httpx.post(srv.url + "/v1/rewards", json={"items": items}, timeout=60)
        assert r.status_code == 200
        rule = httpx.post(
            srv.url + "/v1/rewards",
            json={"items": [{"response": "x", "data_source": "calc"}]},
            timeout=60,
        )
        assert rule.status_code == 200
        stats = httpx.get(srv.url + "/v1/stats", timeout=10).json()["routes"]
    model = stats["default"]
    assert model["model_tokens"]["real"] == offline["tokens"] > 0
    assert model["model_tokens"]["run"] >= model["model_tokens"]["real"]
    assert model["model_forwards"] >= 1
    assert stats["calc"]["model_tokens"] == {"real": 0.0, "run": 0.0}  # a rule runs no model
    assert stats["calc"]["model_forwards"] == 0.0


def test_padded_width_rounds_up_but_never_past_the_limit():
    from rewardkit.engine.execute import padded_width

    assert [padded_width(n, 16, 512) for n in (1, 16, 17, 33)] == [16, 16, 32, 48]
    assert padded_width(75, 16, 77) == 77 and padded_width(80, 16, 77) == 80
    assert padded_width(17, 1, 512) == 17 and padded_width(17, 16, None) == 17


def test_batches_are_planned_on_the_widths_they_run_at(monkeypatch):
    """With ``pad_multiple`` the planner cuts on rounded widths: rows that round to one width
    are never split into two forward passes, and the tokens reported are the tokens run."""
    served = load_reward(
        "classifier:minilm", engine_defaults={**SERVE_ENGINE_DEFAULTS, "threads": 1}
    )
    queries = [Query(as_messages("Q"), "word " * n) for n in range(3, 60, 2)]
    widths: list[tuple[int, int]] = []
    engine = served.engine
    make = engine.make_batch

    def recording(rows, hidden=None):
        batch = make(rows, hidden)
        widths.append(tuple(batch.input_ids.shape))
        return batch

    monkeypatch.setattr(engine, "make_batch", recording)
    stats = served.score_full(queries).stats
    assert all(w % 16 == 0 for _, w in widths)
    assert len({w for _, w in widths}) == len(widths)  # one pass per rounded width at most
    assert stats["model_tokens"] == sum(b * w for b, w in widths)
    assert stats["batches"] == len(widths)

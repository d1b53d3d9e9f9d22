"""Model workers: a model-backed route runs up to ``model_workers`` batches at once, each with its
share of the torch threads (docs/serving.md, "CPU servers")."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch

from rewardkit.registry import load_reward
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig, DynamicBatcher
from rewardkit.serve.config import default_model_workers
from rewardkit.serve.threads import ThreadShare
from rewardkit.types import Query, as_messages, user


def _in_thread(fn):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def test_a_batch_alone_gets_every_thread_and_concurrent_batches_share_them():
    share = ThreadShare(2)
    main_threads = torch.get_num_threads()
    assert [share.share(n) for n in (1, 2, 3)] == [2, 1, 1]

    def alone() -> int:
        with share.batch("r") as given:
            assert given == torch.get_num_threads()
            return given

    t, out = _in_thread(alone)
    t.join()
    assert out == [2]

    inside, release = threading.Event(), threading.Event()

    def first() -> int:
        with share.batch("r"):
            inside.set()
            assert release.wait(10)
            return torch.get_num_threads()  # still its own share after the second one set its

    def second() -> int:
        with share.batch("r"):
            return torch.get_num_threads()

    t1, out1 = _in_thread(first)
    assert inside.wait(10) and share.running == 1
    t2, out2 = _in_thread(second)  # starts while the first runs: half the threads
    t2.join(10)
    release.set()
    t1.join(10)
    assert out1 == [2] and out2 == [1] and share.running == 0
    # the setting is per worker thread (OpenMP): the caller's own threads did not change
    assert torch.get_num_threads() == main_threads


def test_a_routes_first_batch_runs_alone():
    share = ThreadShare(2)
    order: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with share.batch("r"):
            order.append("first in")
            inside.set()
            assert release.wait(10)
            order.append("first out")

    def second() -> None:
        with share.batch("r"):
            order.append("second in")

    t1, _ = _in_thread(first)
    assert inside.wait(10)
    t2, _ = _in_thread(second)
    time.sleep(0.2)  # the second waits for the first batch of the route to end
    assert order == ["first in"]
    release.set()
    t1.join(10)
    t2.join(10)
    assert order == ["first in", "first out", "second in"]


def test_a_burst_is_split_among_free_workers_and_runs_at_once():
    """64 items at once with two workers: two batches of 32 in flight together (the barrier
    only opens when both run), not one of 64 beside an idle worker."""
    both = threading.Barrier(2, timeout=10)
    sizes: list[int] = []

    def score(queries: list[Query]) -> list[np.ndarray]:
        sizes.append(len(queries))
        both.wait()
        return [np.array([float(len(q.response))]) for q in queries]

    async def main() -> list[float]:
        with ThreadPoolExecutor(2) as pool:
            b = DynamicBatcher("m", score, pool, BatcherConfig(max_wait_ms=20, concurrency=2))
            entries = b.submit([(f"k{i}", Query([user("p")], "x" * (i + 1))) for i in range(64)])
            await asyncio.wait([e.future for e in entries])
            await b.close()
            return [float(e.future.result()[0]) for e in entries]

    results = asyncio.run(main())
    assert sorted(sizes) == [32, 32]
    assert results == [float(i + 1) for i in range(64)]


def test_default_model_workers():
    assert default_model_workers(2, on_gpu=False) == 2
    assert default_model_workers(16, on_gpu=False) == 2
    assert default_model_workers(1, on_gpu=False) == 1  # one thread: nothing to share
    assert default_model_workers(16, on_gpu=True) == 1
    with pytest.raises(ValueError, match="model_workers must be from 1"):
        ServeConfig(model_workers=0)


def test_server_routes_get_their_workers():
    config = ServeConfig(
        rewards={"default": "classifier:minilm", "calc": "rule:length"},
        engine={"threads": 2, "device": "cpu"},
    )
    state = create_app(config).state.rewardkit
    model, rule = state.routes["default"], state.routes["calc"]
    assert model.batcher.config.concurrency == 2 and model.threads is not None
    assert rule.batcher.config.concurrency == config.rule_workers and rule.threads is None
    one = ServeConfig(rewards={"default": "classifier:minilm"}, engine={"threads": 1})
    assert create_app(one).state.rewardkit.routes["default"].batcher.config.concurrency == 1
    three = ServeConfig(
        rewards={"default": "classifier:minilm"}, engine={"threads": 2}, model_workers=3
    )
    assert create_app(three).state.rewardkit.routes["default"].batcher.config.concurrency == 3


def test_two_workers_answer_what_offline_scoring_does():
    """A real model behind two workers, 24 concurrent single-item requests: every score equals
    the offline engine's, and the batches ran on both workers."""
    queries = [
        Query(as_messages(f"Question {i}: what is {i} + {i}?"), f"It is {2 * i}. " * (1 + i % 7))
        for i in range(24)
    ]
    config = ServeConfig(rewards={"default": "classifier:minilm"}, engine={"threads": 2})
    app = create_app(config)
    offline = load_reward(
        "classifier:minilm", engine_defaults={"progress": False, "cache_dir": None, "threads": 2}
    ).score(queries)
    items = [
        {"id": i, "prompt": q.prompt[0]["content"], "response": q.response}
        for i, q in enumerate(queries)
    ]

    async def send(url: str) -> list[float]:
        async with httpx.AsyncClient(timeout=120) as client:
            answers = await asyncio.gather(
                *(client.post(url + "/v1/rewards", json={"items": [it]}) for it in items)
            )
        return [a.json()["results"][0]["reward"] for a in answers]

    with BackgroundServer(app) as srv:
        served = asyncio.run(send(srv.url))
        stats = httpx.get(srv.url + "/v1/stats", timeout=10).json()["routes"]["default"]
    np.testing.assert_allclose(served, offline, atol=1e-5)
    assert stats["workers"] == 2
    assert sum(stats["batch_sizes"].values()) >= 2


def test_concurrent_batches_on_one_model_keep_their_own_layouts():
    """Two worker threads on one loaded decoder, one scoring shared prompts and one packed rows
    at the same time: each forward pass reads its own layout (a context variable, not a global),
    so both equal the padded scores."""
    padded = load_reward(
        "classifier:smollm2",
        engine_defaults={"progress": False, "layout": "padded", "cache_dir": None},
    )
    prompt = [user("Explain in detail why the sky looks blue on a clear day, and at sunset.")]
    answers = ["Rayleigh scattering.", "Short light scatters more.", "The path is longer.", "Dust."]
    queries = [Query(prompt=prompt, response=a) for a in answers]
    queries.append(Query(prompt=[user("What is 17 times 23?")], response="391."))
    want = padded.score(queries)
    twins = [
        padded.engine_variant(layout=name, min_shared_prefix=4) for name in ("shared", "packed")
    ]
    start = threading.Barrier(2, timeout=60)
    runs: dict[str, list] = {}

    def work(twin) -> None:
        torch.set_num_threads(1)
        start.wait()
        runs[twin.config.layout] = [twin.score_full(queries) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(t,)) for t in twins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(runs) == ["packed", "shared"]
    for layout, results in runs.items():
        for run in results:
            assert run.stats["layout"] == layout
            np.testing.assert_allclose(run.scores, want, atol=1e-4, rtol=0)

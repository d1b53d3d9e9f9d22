"""Forward passes on worker threads (rewardkit.engine.workers): how many run at once, each on its
share of the torch threads; outputs in plan order; a failing pass stops the run; and a real
model's scores equal one pass at a time (fp32 within 1e-5) in every layout."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from rewardkit.engine import workers
from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.serve.app import create_app
from rewardkit.serve.config import ServeConfig
from rewardkit.types import Query, user
from train_helpers import tiny_llama

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_worker_count_is_two_on_a_cpu_with_two_threads_and_one_elsewhere():
    assert workers.worker_count(None, CPU, 2, 10) == 2
    assert workers.worker_count(None, CPU, 16, 10) == 2
    assert workers.worker_count(4, CPU, 16, 10) == 4
    assert workers.worker_count(4, CPU, 2, 10) == 2  # at most one per thread
    assert workers.worker_count(None, CPU, 2, 1) == 1  # at most one per pass
    assert workers.worker_count(None, CPU, 1, 10) == 1
    assert workers.worker_count(1, CPU, 8, 10) == 1
    assert workers.worker_count(None, CUDA, 8, 10) == 1  # one device, one pass at a time


def test_threads_are_split_evenly_with_the_remainder_first():
    assert [workers.thread_share(5, 2, i) for i in range(2)] == [3, 2]
    assert [workers.thread_share(2, 2, i) for i in range(2)] == [1, 1]
    assert sum(workers.thread_share(7, 3, i) for i in range(3)) == 7


def test_outputs_come_in_plan_order_each_pass_on_its_share_of_threads(two_threads):
    seen: list[tuple[int, int, bool, str]] = []

    def step(n: int):
        def run():
            time.sleep(0.02 * (6 - n))  # later passes finish first
            seen.append(
                (
                    n,
                    torch.get_num_threads(),
                    torch.is_inference_mode_enabled(),
                    threading.current_thread().name,
                )
            )
            return [np.array([float(n)])]

        return [n], run

    out = list(workers.run_steps([step(n) for n in range(6)], 2, 2))
    assert [rows for rows, _ in out] == [[n] for n in range(6)]
    assert [float(o[0][0]) for _, o in out] == [float(n) for n in range(6)]
    assert {threads for _, threads, _, _ in seen} == {1}
    assert all(inference for _, _, inference, _ in seen)
    assert len({name for *_, name in seen}) == 2 and threading.current_thread().name not in {
        name for *_, name in seen
    }
    assert torch.get_num_threads() == 2  # the caller's threads are set back


def test_a_failing_pass_stops_the_run_after_the_outputs_before_it():
    ran: list[int] = []

    def step(n: int):
        def run():
            if n == 2:
                raise RuntimeError("pass 2 failed")
            time.sleep(0.0 if n < 2 else 0.2)
            ran.append(n)
            return [np.array([float(n)])]

        return [n], run

    got = []
    with pytest.raises(RuntimeError, match="pass 2 failed"):
        for rows, _ in workers.run_steps([step(n) for n in range(10)], 2, 2):
            got.append(rows)
    assert got == [[0], [1]]
    assert len(ran) <= 5  # the passes not started were cancelled (7 × 0.2 s were left)


def test_closing_the_outputs_early_cancels_the_passes_not_started():
    ran: list[int] = []

    def step(n: int):
        def run():
            time.sleep(0.1)
            ran.append(n)
            return [np.array([float(n)])]

        return [n], run

    outputs = workers.run_steps([step(n) for n in range(12)], 2, 2)
    assert next(outputs)[0] == [0]
    outputs.close()  # what the engine does when its caller stops (an error, Ctrl-C)
    settled = len(ran)
    time.sleep(0.3)
    assert len(ran) == settled <= 4


def test_workers_option_is_checked_and_read_from_specs():
    assert EngineConfig().workers is None
    assert EngineConfig(workers=3).workers == 3
    for bad in (0, -1, 1.5, True, "two"):
        with pytest.raises(SpecError, match="workers"):
            EngineConfig(workers=bad)


def _queries() -> list[Query]:
    prompts = [
        "Explain in detail why the sky looks blue on a clear day, and what changes at sunset.",
        "What is 17 times 23? Show the steps, one line each, and check the result twice.",
        "Hi",
    ]
    answers = ["Rayleigh scattering.", "391, since 340 + 51.", "ok", "Short light scatters more."]
    return [Query(prompt=[user(p)], response=a) for p in prompts for a in answers]


@pytest.mark.parametrize("layout", ["padded", "shared", "packed"])
def test_scores_equal_one_pass_at_a_time_in_every_layout(tmp_path, layout, two_threads):
    model = tiny_llama(tmp_path / "cls")
    options = {"progress": False, "layout": layout, "dtype": "float32", "token_budget": 96}
    options["pack_length"] = 48  # several packs
    reward = load_reward(f"classifier:{model}", engine_defaults=options)
    queries = _queries()
    alone = load_reward(f"classifier:{model}?workers=1", engine_defaults=options)
    assert alone.config.workers == 1  # a spec option
    alone = alone.score_full(queries)
    together = reward.engine_variant().score_full(queries)
    assert together.stats["layout"] == alone.stats["layout"] == layout
    assert together.stats["batches"] > 2  # several passes, so some ran at once
    assert together.stats["workers"] == 2 and alone.stats["workers"] == 1
    assert together.stats["compile"] == "eager"  # auto stays eager with passes at once
    np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5, rtol=0)
    assert torch.get_num_threads() == 2


def test_a_server_runs_one_pass_at_a_time_inside_each_batch(tmp_path, two_threads):
    """The server runs batches at once itself (--model-workers); inner passes stay in turn,
    unless it runs one batch at a time."""
    model = tiny_llama(tmp_path / "cls")
    app = create_app(ServeConfig(rewards={"default": f"classifier:{model}"}))
    reward = app.state.rewardkit.routes["default"].reward
    assert reward.config.workers == 1
    assert reward.score_full(_queries()).stats["workers"] == 1
    alone = ServeConfig(rewards={"default": f"classifier:{model}"}, model_workers=1)
    reward = create_app(alone).state.rewardkit.routes["default"].reward
    assert reward.config.workers is None
    told = ServeConfig({"default": f"classifier:{model}"}, model_workers=1, engine={"workers": 1})
    assert create_app(told).state.rewardkit.routes["default"].reward.config.workers == 1

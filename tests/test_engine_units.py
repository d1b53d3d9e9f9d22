"""Pure parts of the engine: truncation, batch planning, the score cache, spec parsing."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.engine.batching import padded_tokens, plan_batches
from rewardkit.engine.cache import ScoreCache
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.truncation import TruncationError, fit_pair
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward, parse_spec
from rewardkit.types import Query, Reward


def test_fit_pair_keeps_short_queries_whole():
    f = fit_pair([1, 2, 3], [4, 5], 5, "left")
    assert (f.prompt, f.response, f.truncated) == ([1, 2, 3], [4, 5], False)


def test_fit_pair_left_drops_oldest_prompt_tokens_and_keeps_response():
    f = fit_pair([1, 2, 3, 4, 5], [6, 7], 4, "left")
    assert f.prompt == [4, 5] and f.response == [6, 7]
    assert (f.prompt_dropped, f.response_dropped) == (3, 0)


def test_fit_pair_left_cuts_response_end_only_when_it_alone_is_too_long():
    f = fit_pair([1, 2], [3, 4, 5, 6], 3, "left")
    assert f.prompt == [] and f.response == [3, 4, 5]
    assert (f.prompt_dropped, f.response_dropped) == (2, 1)


def test_fit_pair_right_and_error():
    f = fit_pair([1, 2, 3], [4, 5, 6], 4, "right")
    assert f.prompt == [1, 2, 3] and f.response == [4]
    assert (f.prompt_dropped, f.response_dropped) == (0, 2)
    with pytest.raises(TruncationError, match="over the limit of 4"):
        fit_pair([1, 2, 3], [4, 5], 4, "error")


def test_plan_batches_respects_budget_and_covers_every_row_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=200).tolist()
    batches = plan_batches(lengths, token_budget=1024, max_batch_size=64)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(200))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) <= 64
        assert len(b) == 1 or longest * len(b) <= 1024
    # Longest rows first, so a memory problem shows in the first batch.
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    # Sorting keeps padding small: well under the padding of file-order batches of 8.
    naive = [list(range(i, min(i + 8, 200))) for i in range(0, 200, 8)]
    assert padded_tokens(lengths, batches) < 0.8 * padded_tokens(lengths, naive)


def test_plan_batches_gives_an_overlong_row_its_own_batch():
    assert plan_batches([5000, 10, 10], token_budget=100, max_batch_size=8) == [[0], [1, 2]]


def test_score_cache_round_trip_and_persistence(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put_many("fp", [("a", np.float32(1.5), False), ("b", np.array([1.0, 2.0]), True)])
    cache.close()
    again = ScoreCache(tmp_path)
    got = again.get_many("fp", ["a", "b", "c"])
    assert set(got) == {"a", "b"}
    assert got["a"][0].tolist() == [1.5] and got["b"][0].tolist() == [1.0, 2.0]
    assert (got["a"][1], got["b"][1]) == (False, True)
    assert again.get_many("other", ["a"]) == {}
    assert again.count("fp") == 2


def test_engine_config_takes_its_options_and_rejects_bad_values():
    options = {"token_budget": 512, "dtype": "bf16", "head_seed": 3}
    config = EngineConfig.from_options(options)
    assert config.token_budget == 512 and config.dtype == "bf16"
    assert options == {"head_seed": 3}
    with pytest.raises(ValueError, match="truncation"):
        EngineConfig(truncation="middle")  # type: ignore[arg-type]


def test_parse_spec_grammar():
    assert parse_spec("rule:length") == ("rule", "length", {})
    assert parse_spec("classifier:/m/x?dtype=bf16&token_budget=4096&progress=false") == (
        "classifier",
        "/m/x",
        {"dtype": "bf16", "token_budget": 4096, "progress": False},
    )
    with pytest.raises(SpecError, match="NAME=VALUE"):
        parse_spec("rule:length?unit")


def test_load_reward_errors_name_the_problem():
    with pytest.raises(SpecError, match="unknown reward kind 'nope'"):
        load_reward("nope:x")
    with pytest.raises(SpecError, match="unknown rule"):
        load_reward("rule:nope")
    with pytest.raises(SpecError, match="unit must be one of"):
        load_reward("rule:length?unit=furlongs")


def test_length_reward_and_dict_spec():
    r = load_reward({"type": "rule", "name": "length", "unit": "words"})
    q = [Query([{"role": "user", "content": "hi"}], "one two three"), Query([], "")]
    assert r.score(q).tolist() == [3.0, 0.0]
    assert r.score(q).dtype == np.float32


def test_reward_score_checks_shape_and_compare_is_bradley_terry():
    class Fixed(Reward):
        def _score(self, queries):
            return np.array([len(q.response) for q in queries], dtype=float)

    class Broken(Reward):
        def _score(self, queries):
            return np.zeros((len(queries), 2))

    prompt = [{"role": "user", "content": "x"}]
    assert Fixed().compare(prompt, "aaa", "a") == pytest.approx(1 / (1 + np.exp(-2)))
    with pytest.raises(ValueError, match="returned shape"):
        Broken().score([Query(prompt, "a")])
    assert Fixed().score([]).shape == (0,)


def _open_cache_at_once(folder: str, barrier, n: int) -> None:
    from rewardkit.engine.cache import ScoreCache

    barrier.wait()
    cache = ScoreCache(folder)
    cache.register("fp", {"test": n})
    cache.put_many("fp", [(f"k{n}", np.array([float(n)], dtype=np.float32), False)])
    cache.close()


def test_processes_opening_a_new_cache_at_once_all_succeed(tmp_path):
    """Ray actors or server replicas open one new score cache together: switching the file to
    WAL needs a moment alone with it and SQLite does not wait, so one of them failed with
    "database is locked" (seen once in a full run of the ``score --ray`` resume test); now each
    waits its turn. A stress check: the race did not reproduce on demand here."""
    import multiprocessing as mp

    from rewardkit.engine.cache import ScoreCache

    ctx = mp.get_context("spawn")
    for round_ in range(3):
        folder = str(tmp_path / f"cache{round_}")
        barrier = ctx.Barrier(6)
        procs = [
            ctx.Process(target=_open_cache_at_once, args=(folder, barrier, n)) for n in range(6)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 6
        cache = ScoreCache(folder)
        got = cache.get_many("fp", [f"k{n}" for n in range(6)])
        cache.close()
        assert sorted(float(v[0][0]) for v in got.values()) == [0, 1, 2, 3, 4, 5]

"""A model reward used in a process and then in children forked from it (a ``multiprocessing``
pool) scores there as in the parent, instead of hanging in torch's OpenMP team."""

from __future__ import annotations

import multiprocessing

import pytest

from rewardkit import Query, load_reward

pytestmark = pytest.mark.slow

#: The reward the forked children inherit, already run by the parent.
_INHERITED: list = []


def _score(reward, k: int) -> list[float]:
    return reward.score([Query(prompt="hi", response=f"hello {k} " * (k + 1))]).tolist()


def _score_in_child(k: int) -> list[float]:
    return _score(_INHERITED[0], k)


def test_children_forked_after_the_model_ran_score_like_the_parent():
    reward = load_reward("classifier:minilm?progress=false")
    expected = [_score(reward, k) for k in range(4)]
    _INHERITED[:] = [reward]
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        got = pool.map_async(_score_in_child, range(4)).get(timeout=120)  # hung forever before
    finally:
        _INHERITED.clear()
        pool.terminate()
        pool.join()
    assert got == expected

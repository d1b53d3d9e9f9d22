"""``remote:URL`` against a real rewardkit server on loopback: same scores as local, routes,
ensembles and RL adapters, the score cache (zero HTTP on a rerun), failures as NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fault_proxy import FaultProxy, Faults
from rewardkit.errors import SpecError
from rewardkit.integrations.trl import TRLReward
from rewardkit.integrations.verl import compute_score_batch
from rewardkit.registry import load_reward
from rewardkit.remote import RemoteConfigError
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.types import Query, user

KEY = "remote-test-key"
ROUTES = {"default": "rule:length", "gsm8k": "rule:gsm8k"}


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(create_app(ServeConfig(rewards=ROUTES, api_key=KEY))) as srv:
        yield srv


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("RK_REMOTE_KEY", KEY)
    return "RK_REMOTE_KEY"


def _queries() -> list[Query]:
    qs = [Query([user(f"question {i}")], "word " * (i % 7 + 1)) for i in range(12)]
    qs += [
        Query([user("2+2?")], "The answer is 4", reference="4", meta={"data_source": "gsm8k"}),
        Query([user("3+3?")], "#### 5", reference="6", meta={"data_source": "gsm8k"}),
    ]
    return qs


def test_remote_scores_equal_local_and_route(server, key_env):
    remote = load_reward(f"remote:{server.url}?api_key_env={key_env}&batch_size=5")
    local = load_reward({"route": {"gsm8k": "rule:gsm8k"}, "default": "rule:length"})
    qs = _queries()
    got, want = remote.score(qs), local.score(qs)
    np.testing.assert_array_equal(got, want)
    assert got[-2] == 1.0 and got[-1] == 0.0  # gsm8k rows went to the gsm8k route
    forced = load_reward(f"remote:{server.url}?api_key_env={key_env}&route=gsm8k")
    assert np.isnan(forced.score(qs[:1])[0])  # gsm8k without a reference: does not apply
    assert remote.fingerprint() != forced.fingerprint()
    assert KEY not in str(remote.identity()) and KEY not in repr(remote)


def test_remote_in_ensemble_and_adapters(server, key_env):
    spec = {"weighted": {f"remote:{server.url}?api_key_env={key_env}": 1.0, "rule:length": 1.0}}
    qs = _queries()[:6]
    both = load_reward(spec).score(qs)
    np.testing.assert_allclose(both, 2 * load_reward("rule:length").score(qs), rtol=1e-6)
    trl = TRLReward(f"remote:{server.url}?api_key_env={key_env}")
    prompts = [[{"role": "user", "content": "hi"}]] * 2
    completions = [
        [{"role": "assistant", "content": "a b c"}],
        [{"role": "assistant", "content": "a"}],
    ]
    assert trl(prompts=prompts, completions=completions) == list(
        load_reward("rule:length").score([Query([user("hi")], "a b c"), Query([user("hi")], "a")])
    )
    out = compute_score_batch(
        ["gsm8k", "other"],
        ["#### 4", "x y"],
        ["4", None],
        spec=f"remote:{server.url}?api_key_env={key_env}",
    )
    assert out[0]["score"] == 1.0 and out[1]["score"] == pytest.approx(
        float(load_reward("rule:length").score([Query([user("")], "x y")])[0])
    )


def test_rerun_answers_from_the_cache_with_zero_http(server, key_env, tmp_path):
    qs = _queries()
    with FaultProxy(upstream=server.url) as proxy:
        spec = f"remote:{proxy.url}?api_key_env={key_env}&batch_size=4"
        first = load_reward(spec, cache_dir=str(tmp_path)).score_full(qs)
        seen = proxy.counts["seen"]
        again = load_reward(spec, cache_dir=str(tmp_path)).score_full(qs)
        assert proxy.counts["seen"] == seen + 1  # only GET /v1/info; no /v1/rewards call
    np.testing.assert_array_equal(first.scores, again.scores)
    assert first.stats["computed"] == len(qs) and first.stats["cache_hits"] == 0
    assert again.stats["cache_hits"] == len(qs) and again.stats["requests"] == 0


def test_faults_and_failures(server, key_env, tmp_path):
    qs = _queries()
    want = load_reward({"route": {"gsm8k": "rule:gsm8k"}, "default": "rule:length"}).score(qs)
    with FaultProxy(
        upstream=server.url, faults=Faults(rate_429=0.3, rate_drop=0.2, seed=4)
    ) as proxy:
        reward = load_reward(
            f"remote:{proxy.url}?api_key_env={key_env}&batch_size=3&backoff=0.0&retries=8"
        )
        got = reward.score_full(qs)
    np.testing.assert_array_equal(got.scores, want)
    assert got.stats["retries"] > 0 and got.stats["failed"] == 0
    always = lambda body: body is not None and "The answer is 4" in str(body)  # noqa: E731
    with FaultProxy(upstream=server.url, always_fail=always) as proxy:
        spec = f"remote:{proxy.url}?api_key_env={key_env}&batch_size=1&retries=1&backoff=0.0"
        res = load_reward(spec, cache_dir=str(tmp_path)).score_full(qs)
        assert math.isnan(res.scores[-2]) and res.stats["failed"] == 1
        np.testing.assert_array_equal(np.delete(res.scores, -2), np.delete(want, -2))
        proxy.always_fail = None  # the server recovers: the failed item was not cached
        res2 = load_reward(spec, cache_dir=str(tmp_path)).score_full(qs)
    assert res2.stats["computed"] == 1 and res2.scores[-2] == want[-2]


def test_bad_remote_specs(server, monkeypatch):
    with pytest.raises(RemoteConfigError, match="needs the server's URL"):
        load_reward("remote:")
    with pytest.raises(RemoteConfigError, match="cannot read GET /v1/info"):
        load_reward(f"remote:{server.url}?retries=0")  # no key: 401
    monkeypatch.setenv("RK_REMOTE_KEY", KEY)
    with pytest.raises(RemoteConfigError, match="route 'nope' is not served"):
        bare = BackgroundServer(create_app(ServeConfig(rewards={"gsm8k": "rule:gsm8k"})))
        with bare:
            load_reward(f"remote:{bare.url}?route=nope")
    with pytest.raises(SpecError, match="unknown option"):
        load_reward(f"remote:{server.url}?api_key_env=RK_REMOTE_KEY&colour=red")

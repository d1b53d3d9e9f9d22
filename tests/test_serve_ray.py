"""Scale-out on Ray Serve: a local Ray instance, 2 replicas of the reward server, and requests
spread across both (each response names its replica)."""

from __future__ import annotations

import concurrent.futures as cf
import socket
import time

import httpx
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'rewardkit[ray]')")
serve = pytest.importorskip("ray.serve", reason="ray[serve] is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_server(local_ray):
    from rewardkit.serve.app import ServeConfig
    from rewardkit.serve.ray_app import build_application

    port = _free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        config = ServeConfig(rewards={"default": "rule:length", "gsm8k": "rule:gsm8k"})
        serve.run(
            build_application(config, replicas=2, num_cpus=0.5),
            name="rewardkit",
            route_prefix="/",
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Ray Serve app did not come up")
            time.sleep(0.2)
        yield url
    finally:
        serve.shutdown()


def test_requests_spread_across_two_replicas(ray_server):
    def call(i: int) -> tuple[str, float, str]:
        r = httpx.post(
            ray_server + "/v1/rewards",
            json={"items": [{"prompt": "p", "response": "x" * (i + 1)}]},
            timeout=30,
        )
        r.raise_for_status()
        return r.headers["x-rewardkit-replica"], r.json()["results"][0]["reward"], r.text

    # Rounds of 48 concurrent requests until both replicas have answered: Ray Serve's router
    # picks replicas by load, so on a busy machine one round may land on one replica only.
    replicas: set[str] = set()
    with cf.ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            out = list(pool.map(call, range(48)))
            assert [o[1] for o in out] == [float(i + 1) for i in range(48)]
            replicas |= {o[0] for o in out}
            if len(replicas) == 2:
                break
    assert len(replicas) == 2, replicas
    # /v1/info names the replica that answered, the same id as the header
    infos = {httpx.get(ray_server + "/v1/info").json()["replica"] for _ in range(20)}
    assert infos <= replicas
    # the OpenRLHF endpoint works through Ray too
    r = httpx.post(
        ray_server + "/get_reward",
        json={"query": ["Q #### 7"], "prompts": ["Q "], "labels": ["7"], "data_sources": ["gsm8k"]},
    )
    assert r.json()["rewards"] == [1.0]

"""A judge through a REAL OpenAI-compatible server: `transformers serve` on the embedded
SmolLM2-135M-Instruct, started here on loopback and stopped after (docs/judges.md).

The server runs in its own venv (``make tserve``; ``$REWARDKIT_TSERVE`` names its ``transformers``
executable); without it these tests skip and say why. transformers 5.25's server ignores
``logprobs`` on chat and text completions, so the judge reads its greedy text: the verdicts must
agree with the same judge run locally (same template and chat template, greedy = the argmax of
the answer tokens) on a fixed set of pairs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rewardkit import load_reward

PAIRS = [
    ("What is 2+2?", "4.", "5."),
    ("Capital of France?", "Paris.", "London."),
    ("Say hi.", "Hi!", "Go away."),
]


def _executable() -> Path | None:
    for candidate in (
        os.environ.get("REWARDKIT_TSERVE"),
        ".venv-tserve/bin/transformers",
        "/work/venvs/tserve/bin/transformers",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def tserve():
    exe = _executable()
    if exe is None:
        pytest.skip(
            "no `transformers serve` venv (make tserve, or set REWARDKIT_TSERVE to its "
            "transformers executable)"
        )
    from rewardkit.models.embedded import embedded_model_dir

    model_dir = embedded_model_dir("smollm2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.Popen(
        [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not answer /health within 300 s")
            time.sleep(1)
        yield url, str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_pairwise_verdicts_agree_with_the_local_judge(tserve, tmp_path):
    url, model_dir = tserve
    prompts, a, b = (list(x) for x in zip(*PAIRS, strict=True))
    local = load_reward("judge-pairwise:default?progress=false&threads=1").compare_many(
        prompts, a, b
    )
    spec = {
        "type": "judge-pairwise",
        "base_url": url + "/v1",
        "model": model_dir,
        "max_tokens": 4,
        "concurrency": 2,
        "timeout": 600,
        "cache_dir": str(tmp_path),
    }
    remote = load_reward(spec).compare_many(prompts, a, b)
    # the server ignores logprobs: every verdict came from the text, and every one was read
    assert remote.stats["logprob_verdicts"] == 0 and remote.stats["unparsed"] == 0
    for name in ("logit_forward", "logit_reverse"):  # per order: which slot the judge picked
        np.testing.assert_array_equal(
            np.sign(getattr(remote, name)), np.sign(getattr(local, name)), err_msg=name
        )
    assert remote.stats["usage"]["prompt_tokens"] > 0
    # the same evaluation again: every answer from the cache, no request
    again = load_reward(spec).compare_many(prompts, a, b)
    assert again.stats["requests"] == 0 and again.stats["cache_hits"] == 6
    np.testing.assert_array_equal(again.p, remote.p)

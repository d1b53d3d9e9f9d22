"""Peer side of the OpenRLHF check, run by ``benchmarks/peer_contracts.py`` in a venv with OpenRLHF.

OpenRLHF's own ``SingleTurnAgentExecutor`` (``openrlhf.utils.agent``, its ``--remote_rm_url``
client) runs each rollout and posts it to a running ``rewardkit serve``. OpenRLHF generates with
vLLM, which needs a GPU; here the engine object it awaits is ``transformers`` ``generate`` on the
same prompt token ids (greedy), answering in vLLM's output shape, so everything after generation
(decoding the query with special tokens, the HTTP call, reading ``rewards``/``scores``/
``extra_logs``) is OpenRLHF's code. A second pass calls its batched, sharded HTTP fetch directly
with two endpoint URLs, and a third
pass gives ``--remote_rm_url`` rewardkit's ``integrations/openrlhf.py`` file instead of a URL.
Usage: ``python openrlhf_side.py CASE.json OUT.json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from openrlhf.utils.agent import SingleTurnAgentExecutor
from transformers import AutoModelForCausalLM, AutoTokenizer


class GenerateEngine:
    """The awaitable ``llm_engine.generate(prompt_token_ids, params, multi_modal_data=)`` that
    OpenRLHF calls, answered by ``transformers`` greedy generation in vLLM's output shape."""

    def __init__(self, model: Any, eos_token_id: int) -> None:
        self.model = model
        self.eos = eos_token_id

    async def generate(
        self, prompt_token_ids: list[int], params: Any, multi_modal_data: Any = None
    ):
        ids = torch.tensor([prompt_token_ids])
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=params.max_tokens,
                do_sample=False,
                pad_token_id=self.eos,
            )
        new = out[0, len(prompt_token_ids) :].tolist()
        finish = "stop" if new and new[-1] == self.eos else "length"
        return SimpleNamespace(
            outputs=[SimpleNamespace(token_ids=new, text="", finish_reason=finish, logprobs=None)]
        )


async def run(case: dict[str, Any]) -> dict[str, Any]:
    tok = AutoTokenizer.from_pretrained(case["model"])
    model = AutoModelForCausalLM.from_pretrained(case["model"], dtype=torch.float32).eval()
    engine = GenerateEngine(model, tok.eos_token_id)
    executor = SingleTurnAgentExecutor(remote_rm_url=case["urls"][0])
    params = SimpleNamespace(max_tokens=case["max_tokens"], logprobs=None)
    rollouts = []
    for item in case["items"]:
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": item["question"]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        out = await executor.execute(
            prompt, item["label"], params, max_length=512, hf_tokenizer=tok, llm_engine=engine
        )
        start, end = out["action_ranges"][0]
        rollouts.append(
            {
                "prompt": prompt,
                "label": item["label"],
                "response": tok.decode(
                    out["observation_tokens"][start:end], skip_special_tokens=True
                ),
                "query": tok.decode(out["observation_tokens"], skip_special_tokens=False),
                "reward": out["reward"],
                "scores": out["scores"],
                "extra_logs": out["extra_logs"],
            }
        )
    # the batched path: one request per endpoint, the batch sharded across them
    sharded = SingleTurnAgentExecutor(remote_rm_url=case["urls"])
    answers = await sharded._fetch_rewards_via_http(
        [r["query"] for r in rollouts],
        [r["prompt"] for r in rollouts],
        [r["label"] for r in rollouts],
    )
    # the file path form of --remote_rm_url: rewardkit's integrations/openrlhf.py, spec in
    # $REWARDKIT_SPEC, called by OpenRLHF's own loader in its worker thread
    by_file = SingleTurnAgentExecutor(remote_rm_url=case["adapter"])
    file_answers = await by_file._fetch_rewards_via_func(
        [r["query"] for r in rollouts],
        [r["prompt"] for r in rollouts],
        [r["label"] for r in rollouts],
    )
    return {
        "peer": "openrlhf",
        "reward_func_file": [
            {
                "rewards": a["rewards"].tolist(),
                "scores": a["scores"].tolist(),
                "extra_logs": {k: v.tolist() for k, v in a["extra_logs"].items()},
            }
            for a in file_answers
        ],
        "version": version("openrlhf"),
        "rollouts": rollouts,
        "sharded": answers,
    }


def main() -> None:
    case = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(1)
    Path(sys.argv[2]).write_text(json.dumps(asyncio.run(run(case))))


if __name__ == "__main__":
    main()

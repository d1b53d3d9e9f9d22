"""Peer side of the verl check, run by ``benchmarks/peer_contracts.py`` in a venv with verl.

Builds a rollout batch as verl's own code does (chat template, ``tokenize_and_postprocess_data``
left-padded prompts, right-padded responses ending in EOS, ``get_response_mask``,
``compute_position_id_with_mask``) into a real ``DataProto``, points verl's
``custom_reward_function`` config at rewardkit's ``integrations/verl.py`` and lets verl score it:

- ``reward_loop``: verl's current path, ``RewardLoopManager`` (Ray workers running
  ``load_reward_manager`` → the registered ``naive`` manager) → ``compute_rm_score`` → ``rm_scores``;
- ``naive`` / ``batch``: the ``verl.workers.reward_manager`` classes (``compute_score`` /
  ``compute_score_batch`` loaded by ``get_custom_reward_fn``);
- verl's ``compute_grpo_outcome_advantage`` on the reward loop's token-level rewards, with and
  without the std.

Writes the tensors and ``reward_extra_info`` as JSON. Usage: ``python verl_side.py CASE.json OUT.json``
where CASE holds ``tokenizer``, ``adapter`` (the path of rewardkit's verl.py), ``specs``
(name → spec), ``reward_loop_specs`` (the first one's rewards go to the advantages), ``items`` and ``prompt_length``/``response_length``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
import verl
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopManager
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils import hf_tokenizer
from verl.utils.model import compute_position_id_with_mask
from verl.utils.torch_functional import (
    get_response_mask,
    pad_2d_list_to_length,
    tokenize_and_postprocess_data,
)
from verl.workers.reward_manager import BatchRewardManager, NaiveRewardManager


def build_batch(tok: Any, case: dict[str, Any]) -> DataProto:
    items = case["items"]
    p_ids, p_mask = [], []
    for it in items:
        text = tok.apply_chat_template(
            [{"role": "user", "content": it["question"]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        ids, mask = tokenize_and_postprocess_data(
            text, tok, case["prompt_length"], tok.pad_token_id, left_pad=True
        )
        p_ids.append(ids[0])
        p_mask.append(mask[0])
    prompts = torch.stack(p_ids)
    resp = [
        tok(it["response"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        for it in items
    ]
    responses = pad_2d_list_to_length(resp, tok.pad_token_id, max_length=case["response_length"])
    response_mask = get_response_mask(responses, eos_token=tok.eos_token_id)
    attention_mask = torch.cat([torch.stack(p_mask), response_mask], dim=1)
    tensors = {
        "prompts": prompts,
        "responses": responses,
        "input_ids": torch.cat([prompts, responses], dim=1),
        "attention_mask": attention_mask,
        "position_ids": compute_position_id_with_mask(attention_mask),
    }
    non_tensors = {
        "data_source": np.array([it["data_source"] for it in items], dtype=object),
        "reward_model": np.array(
            [{"ground_truth": it["ground_truth"], "style": "rule"} for it in items], dtype=object
        ),
        "extra_info": np.array(
            [{"index": i, "question": it["question"]} for i, it in enumerate(items)], dtype=object
        ),
        "uid": np.array([it["uid"] for it in items], dtype=object),
    }
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)


def config(case: dict[str, Any], spec: Any, name: str) -> Any:
    root = Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml"
    cfg = OmegaConf.load(root)
    cfg.actor_rollout_ref.model.path = case["tokenizer"]
    cfg.reward.num_workers = 1
    cfg.reward.custom_reward_function = OmegaConf.create(
        {"path": case["adapter"], "name": name, "reward_kwargs": {"spec": spec}}
    )
    return cfg


def plain(extra: Any) -> dict[str, list[Any]]:
    return {k: [float(x) for x in v] for k, v in dict(extra).items()}


def main() -> None:
    case = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(1)
    tok = hf_tokenizer(case["tokenizer"])
    data = build_batch(tok, case)
    out: dict[str, Any] = {"peer": "verl", "version": verl.__version__, "managers": {}}
    for spec_name, spec in case["specs"].items():
        naive = NaiveRewardManager(
            tok, 0, get_custom_reward_fn(config(case, spec, "compute_score"))
        )
        res = naive(data, return_dict=True)
        out["managers"][f"naive/{spec_name}"] = {
            "tensor": res["reward_tensor"].tolist(),
            "extra": plain(res["reward_extra_info"]),
        }
        batch_fn = get_custom_reward_fn(config(case, spec, "compute_score_batch"))
        res = BatchRewardManager(tok, 0, batch_fn)(data, return_dict=True)
        out["managers"][f"batch/{spec_name}"] = {
            "tensor": res["reward_tensor"].tolist(),
            "extra": plain(res["reward_extra_info"]),
        }
    # the Ray workers import rewardkit from the same place as this process
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}},
    )
    try:
        for spec_name in case["reward_loop_specs"]:
            manager = RewardLoopManager(config(case, case["specs"][spec_name], "compute_score"))
            scored = manager.compute_rm_score(data)
            for worker in manager.reward_loop_workers:  # named actors: free the names
                ray.kill(worker)
            out["managers"][f"reward_loop/{spec_name}"] = {
                "tensor": scored.batch["rm_scores"].tolist(),
                "extra": {
                    k: [float(x) for x in scored.non_tensor_batch[k]]
                    for k in scored.meta_info["reward_extra_keys"]
                },
            }
            if spec_name == case["reward_loop_specs"][0]:
                rm_scores = scored.batch["rm_scores"]
    finally:
        ray.shutdown()
    response_mask = data.batch["attention_mask"][:, data.batch["prompts"].shape[1] :]
    out["advantages"] = {}
    for norm in (True, False):
        adv, _ = compute_grpo_outcome_advantage(
            rm_scores, response_mask, data.non_tensor_batch["uid"], norm_adv_by_std_in_grpo=norm
        )
        out["advantages"]["std" if norm else "none"] = adv.tolist()
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()

"""reward-bench's own classifier loop, run inside reward-bench's venv (never imports rewardkit).

Started by ``benchmarks/scoring.py --peers``: reads a JSON job (model directory, chosen and
rejected chat-templated texts with rewardkit's token ids for each, batch size, threads), loads the
model as ``rewardbench`` 0.1.4 does for a sequence classifier (``AutoModelForSequenceClassification``,
float32, left padding, no truncation) and times its ``RewardBenchPipeline`` over batches of
chosen then rejected texts in file order, as its ``rewardbench`` command does. The pipeline's
tokenizer returns rewardkit's ids for each text (so both sides run identical token ids), and its
batch stays on the CPU (the one change: reward-bench moves every batch to CUDA). Prints one JSON
line: seconds, scores, how many texts reward-bench's own tokenizer would have encoded to the same
ids, versions and the load average.

    python rewardbench_worker.py JOB.json
    python rewardbench_worker.py --check     # exits 0 when rewardbench imports
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib.metadata import version


class StayOnCpu(dict):
    """A tokenizer output whose ``.to(device)`` keeps it where it is (on the CPU)."""

    def to(self, device):  # the pipeline asks for "cuda"
        return self


class GivenIds:
    """The model's tokenizer, except that calling it returns the given ids of each text, padded
    by the tokenizer itself (its padding side, its pad id)."""

    def __init__(self, tokenizer, table):
        self._tokenizer = tokenizer
        self._table = table

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, samples, padding=True, return_tensors="pt", **_):
        ids = [self._table[text] for text in samples]
        batch = self._tokenizer.pad(
            {"input_ids": ids}, padding=padding, return_tensors=return_tensors
        )
        return StayOnCpu(batch)


def run(job):
    import torch
    import transformers
    from rewardbench.models.pipeline import RewardBenchPipeline

    torch.set_num_threads(int(job["threads"]))
    tokenizer = transformers.AutoTokenizer.from_pretrained(job["model"])
    tokenizer.padding_side = "left"  # as rewardbench's classifier path sets it
    if tokenizer.pad_token_id is None:  # as rewardbench does
        tokenizer.pad_token_id = tokenizer.eos_token_id
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        job["model"], torch_dtype=torch.float32
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    chosen = [text for text, _ in job["chosen"]]
    rejected = [text for text, _ in job["rejected"]]
    table = {text: ids for text, ids in job["chosen"] + job["rejected"]}
    own_equal = sum(
        1
        for text, ids in table.items()
        if tokenizer(text, add_special_tokens=True)["input_ids"] == ids
    )
    pipe = RewardBenchPipeline(
        "text-classification", model=model, tokenizer=GivenIds(tokenizer, table)
    )
    kwargs = {
        "batch_size": job["batch"],
        "truncation": False,
        "padding": True,
        "max_length": 2048,
        "function_to_apply": "none",
        "return_token_type_ids": False,
    }
    batch = int(job["batch"])
    pipe(chosen[:batch], **kwargs)  # warm-up, not timed
    scores_c, scores_r = [], []
    t0 = time.perf_counter()
    for s in range(0, len(chosen), batch):
        scores_c += pipe(chosen[s : s + batch], **kwargs).float()[:, 0].tolist()
        scores_r += pipe(rejected[s : s + batch], **kwargs).float()[:, 0].tolist()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "chosen": scores_c,
        "rejected": scores_r,
        "own_tokenizer_equal": own_equal,
        "texts": len(table),
        "versions": {p: version(p) for p in ("rewardbench", "transformers", "torch")},
        "load": os.getloadavg()[0],
    }


def main(argv):
    if argv[:1] == ["--check"]:
        import rewardbench.models.pipeline  # noqa: F401

        return 0
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    print(json.dumps(run(job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

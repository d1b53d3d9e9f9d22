"""End-to-end best-of-N on GSM8K (docs/methods/F1-best-of-n.md, docs/methods/D8-best-of-n-eval.md, docs/methods/E5-density-ratio-annotation.md).

The embedded default policy (SmolLM2-135M-Instruct) samples N candidates per GSM8K test prompt
(one batch per prompt); a math-correctness rule scores them in one pass per prompt; we report

- accuracy at N=1 (the first sample) and of the best-of-N pick by the rule (= pass@N, since the
  selector is the verifier itself), and the unbiased curve N = 1, 2, 4, …, N from the same
  samples (``expected_bon``, card D8);
- two non-oracle selectors on the same samples for contrast: majority vote over the extracted
  answers (self-consistency) and best-of-N by ``rule:length`` (longest answer);
- the mined (correct, incorrect) pairs, written in TRL's conversational DPO format and checked
  with TRL's own data utilities (``is_conversational``, ``maybe_apply_chat_template``) after
  loading them with ``datasets``;
- wall time of generation and scoring.

The run is resumable (candidates of each prompt are written as soon as they are done), so an
interrupted run continues where it stopped. Usage::

    .venv/bin/python benchmarks/bon_gsm8k.py --limit 30 --n 8 --max-new-tokens 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Solve it step by step. End with the final answer as '#### <number>'."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "gsm8k" / "test.jsonl"))
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bon_gsm8k"))
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--reward", default="rule:gsm8k")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from rewardkit.curate.writers import write_trl_dpo
    from rewardkit.evaluate.bestofn import expected_bon
    from rewardkit.inference.best_of_n import score_candidates, select_best
    from rewardkit.inference.generate import GenerationConfig, Policy
    from rewardkit.inference.run import BonConfig, mine_from_rows, read_prompts, read_rows, run_bon
    from rewardkit.registry import load_reward
    from rewardkit.rewards.rules.gsm8k import extract_answer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = read_prompts(args.data, limit=args.limit, instruction=INSTRUCTION)
    reward = load_reward(args.reward)
    t0 = time.perf_counter()
    gen = GenerationConfig(
        args.max_new_tokens,
        args.temperature,
        args.top_p,
        args.seed,
        device=args.device,
        threads=args.threads,
    )
    policy = Policy(args.policy, gen)
    load_s = time.perf_counter() - t0
    cfg = BonConfig(args.n, policy.identity, gen.identity(), reward.fingerprint())
    cand_path = out / "candidates.jsonl"
    stats = run_bon(items, policy.sample, reward, cand_path, cfg)
    wanted = {it.id for it in items}
    rows = [r for r in read_rows(cand_path) if r["id"] in wanted]

    gold = [
        np.array([np.nan if c["score"] is None else c["score"] for c in r["candidates"]])
        for r in rows
    ]
    n = args.n
    ns = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n] + (
        [n] if n not in (1, 2, 4, 8, 16, 32, 64) else []
    )
    first = float(np.mean([g[0] for g in gold]))
    bon_pick = float(np.mean([g[select_best(g)] for g in gold]))
    curve = {k: float(np.mean([expected_bon(g, g, k) for g in gold])) for k in ns}

    def majority(r: dict) -> float:
        answers = [extract_answer(c["text"]) for c in r["candidates"]]
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return 0.0
        top = counts.most_common(1)[0][0]
        i = answers.index(top)  # the first candidate with the majority answer
        return float(r["candidates"][i]["score"] or 0.0)

    vote = float(np.mean([majority(r) for r in rows]))
    length = load_reward("rule:length")
    lens = score_candidates(
        length, [r["prompt"] for r in rows], [[c["text"] for c in r["candidates"]] for r in rows]
    )
    by_length = float(np.mean([g[select_best(s)] for g, s in zip(gold, lens, strict=True)]))

    pairs = mine_from_rows(rows, min_gap=0.5)
    pairs_path = out / "pairs_trl.jsonl"
    n_pairs = write_trl_dpo(pairs, pairs_path)
    trl_check = check_trl(pairs_path, policy.tokenizer) if n_pairs else {"rows": 0}

    figures = {
        "policy": args.policy,
        "reward": args.reward,
        "prompts": len(rows),
        "n": n,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "accuracy_first_sample_N1": first,
        f"accuracy_best_of_{n}_by_rule": bon_pick,
        "expected_bon_curve": curve,
        f"majority_vote_{n}": vote,
        f"best_of_{n}_by_length": by_length,
        "mined_pairs": n_pairs,
        "trl_check": trl_check,
        "timing_s": {"policy_load": load_s, **{k: v for k, v in stats.items() if k.endswith("_s")}},
        "run": {k: v for k, v in stats.items() if not k.endswith("_s")},
        "out": str(out),
    }
    (out / "figures.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


def check_trl(path: Path, tokenizer) -> dict:
    """Load the pairs with ``datasets`` and run TRL's own format checks on every row."""
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected"}, ds.column_names
    conv = 0
    for row in ds:
        if not is_conversational(row):
            raise SystemExit(f"TRL says a row is not conversational: {row}")
        conv += 1
        text = maybe_apply_chat_template(row, tokenizer)
        if not all(isinstance(text[k], str) and text[k] for k in ("prompt", "chosen", "rejected")):
            raise SystemExit(f"maybe_apply_chat_template gave {text}")
    return {
        "rows": len(ds),
        "conversational": conv,
        "columns": ds.column_names,
        "chat_template_applied": conv,
    }


if __name__ == "__main__":
    sys.exit(main())

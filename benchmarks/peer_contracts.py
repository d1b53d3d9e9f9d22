"""rewardkit's trainer contracts proved with the trainers' own code, each in its own venv.

Three checks, each running the peer's code in a subprocess of the peer's venv (the scripts in
``benchmarks/peers/``) and comparing what it produced with what rewardkit computes directly here:

- ``trl``: TRL's ``GRPOTrainer`` (the venv running this script: TRL is rewardkit's ``rl`` extra)
  trains a tiny random model two steps in every advantage mode (``scale_rewards`` group / batch /
  none, ``multi_objective_aggregation`` normalize_then_sum, two more loss types) with rewardkit
  reward functions; its advantages must equal ``rewardkit.combine`` (``sum_then_normalize(**TRL)``
  with ``scale`` std / batch / none, ``gdpo_advantages(eps=1e-4)``) to 1e-6.
- ``verl``: verl's reward managers (the ``RewardLoopManager`` on Ray, the ``naive`` and ``batch``
  managers) call ``rewardkit/integrations/verl.py`` through ``custom_reward_function`` on a real
  ``DataProto``; their token-level reward tensors must equal rewardkit's scores placed on each
  response's last token, and verl's ``compute_grpo_outcome_advantage`` must equal
  ``group_normalize(**VERL)`` (and ``scale="none"``).
- ``openrlhf``: OpenRLHF's remote-RM client (``SingleTurnAgentExecutor``) posts rollouts to a real
  ``rewardkit serve`` on loopback; the rewards and ``extra_logs`` it reads must equal rewardkit's
  offline scores of the same responses.

Venvs live in ``--peers-dir`` (default ``$REWARDKIT_PEERS_DIR`` or ``.venv-peers/`` in the repo);
``--build`` creates missing ones (torch pinned to the CPU build; OpenRLHF with ``--no-deps`` and
only what its client needs, since its full set wants CUDA). A check whose venv is missing is
skipped with the reason (``--require`` makes that a failure). Prints one line per check with
max |Δ|; exit status 1 if any check fails. ``--json OUT`` writes the results.

Usage::

    .venv/bin/python benchmarks/peer_contracts.py --build          # make peers
    .venv/bin/python benchmarks/peer_contracts.py --only trl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIDES = Path(__file__).resolve().parent / "peers"
TOL = 1e-6  # advantages and reward tensors
SERVE_TOL = 1e-5  # served model rewards vs offline (batch composition changes float32 sums)

#: pip install steps of each peer venv (run in order). torch first, pinned to the local CPU build.
VENVS: dict[str, list[list[str]]] = {
    "verl": [["torch==2.13.0"], ["verl==0.9.1"]],
    "openrlhf": [
        ["torch==2.13.0"],
        ["--no-deps", "openrlhf==0.11.2"],
        ["aiohttp", "transformers==5.15.0", "sympy", "pylatexenc"],
    ],
}

VERL_SPECS = {
    "route": {
        "route": {
            "openai/gsm8k": {"weighted": {"rule:gsm8k": 1.0, "rule:length?unit=words": 0.1}},
            "chat": "rule:length?unit=words",
        }
    },
    "weighted": {"weighted": {"rule:gsm8k": 1.0, "rule:length?unit=words": 0.1}},
}
# three GRPO groups: gsm8k (right, wrong, right, and one without a reference: NaN → 0.0,
# "applies" 0 for the gsm8k part); two chat lengths and a data source no route
# covers (NaN → verl's 0.0, "applies" 0); a singleton (verl keeps its raw reward)
VERL_ITEMS = [
    ("What is 2+2?", "2 plus 2 is 4. #### 4", "openai/gsm8k", "4", "g1"),
    ("What is 2+2?", "#### 5", "openai/gsm8k", "4", "g1"),
    ("What is 2+2?", "I think the answer is #### 4", "openai/gsm8k", "4", "g1"),
    ("What is 3+3?", "#### 6", "openai/gsm8k", "", "g1"),  # no reference: does not apply
    ("Say hi.", "hi there", "chat", "", "g2"),
    ("Say hi.", "hello, how are you today?", "chat", "", "g2"),
    ("Say hi.", "nothing applies here", "other", "", "g2"),
    ("Say bye.", "bye bye now", "chat", "", "g3"),
]
OPENRLHF_SPEC = {"weighted": {"classifier:minilm?progress=false": 1.0, "rule:f1": 0.5}}
#: the reward_func file form runs inside the OpenRLHF venv, which has no embedded models: rules
OPENRLHF_FILE_SPEC = {"weighted": {"rule:f1": 1.0, "rule:length?unit=words": 0.1}}
OPENRLHF_ITEMS = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Name a primary color.", "red"),
    ("Say hello.", ""),  # OpenRLHF's label for a dataset without labels: no reference
]


class Result(dict):
    """One line of the report: peer, check, status (PASS/FAIL/SKIP), max_delta, detail."""

    def line(self) -> str:
        delta = "" if self.get("max_delta") is None else f"  max|Δ| {self['max_delta']:.2e}"
        return f"{self['status']:4}  {self['peer']} {self.get('version', '')}  {self['check']}{delta}  {self.get('detail', '')}"


def verdict(
    peer: str, version: str, check: str, delta: float, tol: float, detail: str = ""
) -> Result:
    ok = bool(np.isfinite(delta) and delta <= tol)
    return Result(
        peer=peer,
        version=version,
        check=check,
        status="PASS" if ok else "FAIL",
        max_delta=float(delta),
        tolerance=tol,
        detail=detail,
    )


def venv_python(peers_dir: Path, name: str) -> Path:
    return peers_dir / name / "bin" / "python"


def build_venv(peers_dir: Path, name: str) -> None:
    """Create ``peers_dir/name`` and run its pip steps; a stamp file marks a finished build."""
    root = peers_dir / name
    if (root / ".installed").is_file():
        return
    print(f"building the {name} venv in {root} (pip, a few minutes)", flush=True)
    subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", str(root)], check=True)
    for step in VENVS[name]:
        subprocess.run([str(root / "bin" / "pip"), "install", "-q", *step], check=True)
    (root / ".installed").write_text(" ".join(" ".join(s) for s in VENVS[name]) + "\n")


def run_side(python: Path | str, script: str, args: list[str], env_extra: dict[str, str]) -> None:
    env = {**os.environ, **env_extra, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [str(python), str(SIDES / script), *args], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def tokenizer_dir() -> str:
    from rewardkit.models.embedded import embedded_model_dir

    return str(embedded_model_dir("smollm2"))


# ---- TRL -------------------------------------------------------------------------------------
def trl_expected(R: np.ndarray, mode: dict[str, Any]) -> np.ndarray:
    """rewardkit's advantages for one TRL mode (TRL zeroes NaN advantages: unscorable rows)."""
    from rewardkit.combine import TRL, gdpo_advantages, sum_then_normalize

    w, G = mode["weights"], mode["group_size"]
    if mode["aggregation"] == "normalize_then_sum":
        adv = gdpo_advantages(R, None, w, group_size=G, eps=TRL["eps"])
    else:
        scale = {"group": "std", "batch": "batch", "none": "none"}[mode["scale_rewards"]]
        adv = sum_then_normalize(R, None, w, group_size=G, **{**TRL, "scale": scale})
    return np.nan_to_num(adv, nan=0.0)


def check_trl(work: Path) -> list[Result]:
    out = work / "trl.json"
    run_side(sys.executable, "trl_side.py", [tokenizer_dir(), str(out)], {})
    got = json.loads(out.read_text())
    results = []
    for mode in got["modes"]:
        deltas, rows = [], 0
        for call in mode["calls"]:
            # TRL holds rewards in float32: recompute from exactly those numbers
            R = np.array(
                [[np.nan if v is None else v for v in col] for col in call["rewards"]],
                dtype=np.float32,
            ).T.astype(np.float64)
            deltas.append(np.max(np.abs(trl_expected(R, mode) - np.array(call["advantages"]))))
            rows += len(call["advantages"])
        check = f"GRPO advantages {mode['aggregation']}/scale_rewards={mode['scale_rewards']}/loss_type={mode['loss_type']}"
        detail = f"{len(mode['calls'])} generation batches, {rows} completions"
        results.append(verdict("trl", got["version"], check, max(deltas), TOL, detail))
    return results


# ---- verl ------------------------------------------------------------------------------------
def check_verl(work: Path, python: Path) -> list[Result]:
    from transformers import AutoTokenizer

    from rewardkit.combine import VERL, group_normalize
    from rewardkit.integrations._common import log_key
    from rewardkit.models.embedded import embedded_model_dir
    from rewardkit.registry import load_reward
    from rewardkit.types import Query, user

    tok_dir = tokenizer_dir()
    # a model reward too, by path (the verl venv has no embedded-model packages); verl's reward
    # loop calls compute_score for every response of a worker's chunk at once, in threads
    model = f"classifier:{embedded_model_dir('minilm')}?progress=false"
    specs = {**VERL_SPECS, "model": {"weighted": {model: 1.0, "rule:gsm8k": 1.0}}}
    case = {
        "tokenizer": tok_dir,
        "adapter": str(REPO / "src" / "rewardkit" / "integrations" / "verl.py"),
        "specs": specs,
        "reward_loop_specs": ["route", "model"],
        "prompt_length": 48,
        "response_length": 32,
        "items": [
            {"question": q, "response": r, "data_source": d, "ground_truth": g, "uid": u}
            for q, r, d, g, u in VERL_ITEMS
        ],
    }
    (work / "verl_case.json").write_text(json.dumps(case))
    run_side(
        python,
        "verl_side.py",
        [str(work / "verl_case.json"), str(work / "verl.json")],
        {"PYTHONPATH": str(REPO / "src"), "RAY_DEDUP_LOGS": "0"},
    )
    got = json.loads((work / "verl.json").read_text())
    tok = AutoTokenizer.from_pretrained(tok_dir)
    # verl puts the reward on the last response token: the response's tokens plus its EOS
    ends = [len(tok(r, add_special_tokens=False)["input_ids"]) for _, r, *_ in VERL_ITEMS]
    queries = [
        Query([user(q)], r, reference=g, meta={"data_source": d}) for q, r, d, g, _ in VERL_ITEMS
    ]
    direct = {}
    for name, spec in specs.items():
        full = load_reward(spec).score_full(queries)
        s = np.asarray(full.scores, dtype=np.float64)
        direct[name] = (np.where(np.isfinite(s), s, 0.0).astype(np.float32), np.isfinite(s), full)
    results = []
    for key, res in got["managers"].items():
        manager, name = key.split("/")
        scores, applies, full = direct[name]
        want = np.zeros((len(VERL_ITEMS), case["response_length"]), dtype=np.float32)
        want[np.arange(len(ends)), ends] = scores
        delta = float(np.max(np.abs(np.array(res["tensor"], dtype=np.float32) - want)))
        extra = res["extra"]
        same = extra.get("applies") == applies.astype(float).tolist()
        for member, vals in full.members.items():  # components of a weighted spec, by key
            same &= np.allclose(extra.get(log_key(member), [np.nan]), np.nan_to_num(vals), atol=TOL)
        if not same:
            delta = float("inf")
        detail = f"{len(VERL_ITEMS)} responses, reward_extra_info keys {sorted(extra)}"
        results.append(
            verdict("verl", got["version"], f"{manager} manager, {name} spec", delta, TOL, detail)
        )
    uids = [u for *_, u in VERL_ITEMS]
    scores = direct["route"][0].astype(np.float64)
    for mode, kwargs in (("std", VERL), ("none", {**VERL, "scale": "none"})):
        adv = np.array(got["advantages"][mode])
        want = group_normalize(scores, uids, **kwargs)
        mask = np.arange(adv.shape[1])[None, :] <= np.array(ends)[:, None]
        delta = float(np.max(np.abs(adv - np.where(mask, want[:, None], 0.0))))
        check = f"compute_grpo_outcome_advantage norm_adv_by_std_in_grpo={mode == 'std'}"
        results.append(
            verdict("verl", got["version"], check, delta, TOL, "3 groups, one singleton")
        )
    return results


# ---- OpenRLHF --------------------------------------------------------------------------------
def openrlhf_query(rollout: dict[str, Any]) -> Any:
    """The query rewardkit should score for one OpenRLHF rollout: the prompt its chat template
    rendered, read back as messages (``split_chat_query``, as the server and the reward_func file
    read it; else one user turn), the response as OpenRLHF decoded it, the label as reference."""
    from rewardkit.data.openrlhf import label
    from rewardkit.integrations._messages import chat_prompt
    from rewardkit.types import Query, user

    prompt = chat_prompt(rollout["prompt"]) or [user(rollout["prompt"])]
    return Query(prompt, rollout["response"], reference=label(rollout["label"]))


def check_openrlhf(work: Path, python: Path) -> list[Result]:
    from rewardkit.integrations._common import log_key
    from rewardkit.registry import load_reward
    from serve_load import start_server

    spec_file = work / "openrlhf_spec.json"
    spec_file.write_text(json.dumps(OPENRLHF_SPEC))
    server_args = argparse.Namespace(reward=str(spec_file), max_wait_ms=5.0, threads=1)
    proc, url = start_server(server_args, [])
    try:
        case = {
            "model": tokenizer_dir(),
            "urls": [url + "/get_reward", url + "/get_reward"],
            "max_tokens": 24,
            "adapter": str(REPO / "src" / "rewardkit" / "integrations" / "openrlhf.py"),
            "items": [{"question": q, "label": lab} for q, lab in OPENRLHF_ITEMS],
        }
        (work / "openrlhf_case.json").write_text(json.dumps(case))
        run_side(
            python,
            "openrlhf_side.py",
            [str(work / "openrlhf_case.json"), str(work / "openrlhf.json")],
            {"PYTHONPATH": str(REPO / "src"), "REWARDKIT_SPEC": json.dumps(OPENRLHF_FILE_SPEC)},
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    got = json.loads((work / "openrlhf.json").read_text())
    rollouts = got["rollouts"]
    questions = [q for q, _ in OPENRLHF_ITEMS]
    queries = [openrlhf_query(r) for r in rollouts]
    reward = load_reward(OPENRLHF_SPEC)
    full = reward.score_full(queries)
    want = np.where(np.isnan(full.scores), 0.0, full.scores)
    results = []
    if any(r["reward"] is None for r in rollouts):  # OpenRLHF logs a failed fetch and goes on
        return [
            Result(
                peer="openrlhf",
                version=got["version"],
                check="rollout rewards",
                status="FAIL",
                max_delta=None,
                detail="a rollout came back without a reward",
            )
        ]
    served = np.array([r["reward"][0] for r in rollouts])
    scores = np.array([r["scores"][0] for r in rollouts])
    delta = float(max(np.max(np.abs(served - want)), np.max(np.abs(scores - want))))
    for member, vals in full.members.items():
        logged = np.array([r["extra_logs"][member][0] for r in rollouts])
        delta = max(delta, float(np.max(np.abs(logged - np.nan_to_num(vals)))))
    read_back = sum(
        isinstance(q.prompt, list) and q.prompt[-1]["content"] == question
        for q, question in zip(queries, questions, strict=True)
    )
    if read_back != len(queries):  # the rendered prompt must come back as the asked question
        delta = float("inf")
    detail = (
        f"{len(rollouts)} rollouts generated and posted one by one; {read_back} chat-templated "
        f"prompts read back as messages ending in the question; extra_logs "
        f"{sorted(rollouts[0]['extra_logs'])}"
    )
    results.append(
        verdict(
            "openrlhf",
            got["version"],
            "SingleTurnAgentExecutor.execute → /get_reward",
            delta,
            SERVE_TOL,
            detail,
        )
    )
    sharded = np.concatenate([a["rewards"] for a in got["sharded"]])
    delta = float(np.max(np.abs(sharded - want))) if len(sharded) == len(want) else float("inf")
    detail = f"{len(got['sharded'])} endpoints, {len(sharded)} queries"
    results.append(
        verdict(
            "openrlhf",
            got["version"],
            "_fetch_rewards_via_http batch sharded over 2 URLs",
            delta,
            SERVE_TOL,
            detail,
        )
    )
    full = load_reward(OPENRLHF_FILE_SPEC).score_full(queries)
    want = np.where(np.isnan(full.scores), 0.0, full.scores)
    answers = got["reward_func_file"]
    got_file = np.concatenate([a["rewards"] for a in answers])
    delta = float(np.max(np.abs(got_file - want))) if len(got_file) == len(want) else float("inf")
    for member, vals in full.members.items():
        logged = np.concatenate([a["extra_logs"][log_key(member)] for a in answers])
        delta = max(delta, float(np.max(np.abs(logged - np.nan_to_num(vals)))))
    detail = f"{len(answers)} calls of reward_func, one query each (as OpenRLHF batches them)"
    results.append(
        verdict(
            "openrlhf", got["version"], "--remote_rm_url FILE.py reward_func", delta, TOL, detail
        )
    )
    return results


CHECKS: dict[str, Callable[..., list[Result]]] = {
    "trl": check_trl,
    "verl": check_verl,
    "openrlhf": check_openrlhf,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--peers-dir",
        type=Path,
        default=Path(os.environ.get("REWARDKIT_PEERS_DIR", REPO / ".venv-peers")),
    )
    ap.add_argument(
        "--only", default="trl,verl,openrlhf", help="comma-separated: trl, verl, openrlhf"
    )
    ap.add_argument("--build", action="store_true", help="create missing peer venvs first")
    ap.add_argument(
        "--require", action="store_true", help="a missing venv is a failure, not a skip"
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        ap.error(f"unknown peer(s) {unknown}; choose from {sorted(CHECKS)}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rk-peers-") as tmp:
        for name in names:
            t0 = time.monotonic()
            print(f"running the {name} check ...", flush=True)
            if name in VENVS:
                python = venv_python(args.peers_dir, name)
                if args.build:
                    build_venv(args.peers_dir, name)
                if not python.is_file():
                    status = "FAIL" if args.require else "SKIP"
                    reason = f"no {name} venv at {python.parent.parent} (run `make peers` or pass --build)"
                    results.append(
                        Result(peer=name, check="all", status=status, max_delta=None, detail=reason)
                    )
                    print(results[-1].line(), flush=True)
                    continue
                found = CHECKS[name](Path(tmp), python)
            else:
                found = CHECKS[name](Path(tmp))
            for r in found:
                print(r.line(), flush=True)
            print(f"  ({name}: {time.monotonic() - t0:.1f} s)", flush=True)
            results.extend(found)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = [r for r in results if r["status"] == "FAIL"]
    print(
        f"{len(results) - len(failed)} of {len(results)} checks passed or skipped; {len(failed)} failed"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

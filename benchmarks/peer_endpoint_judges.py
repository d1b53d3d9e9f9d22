"""Cross-check of the endpoint judges against a REAL OpenAI-compatible server: `transformers
serve` on the embedded SmolLM2-135M-Instruct, the model the local ``verifier:default`` /
``judge:default`` read (docs/judges.md, "Checked against transformers serve").

The script starts the server offline on loopback (its own venv: `make tserve`, or --tserve /
``$REWARDKIT_TSERVE``; without it it prints why and exits 0), then scores the same 20 questions
with reference answers and responses (right and wrong) four ways, side by side:

- **local**: ``verifier:default`` / ``judge:default`` — P from the answer tokens' logits;
- **served p**: the server's own probability of the same answer tokens on the same prompt. Its
  ``/v1/chat/completions`` ignores ``logprobs``/``top_logprobs`` (transformers 5.25), so this is
  read from its ``/v1/systemone`` endpoint (transformers' ``DecisionPipeline``: the softmax of the
  label tokens' logits after the generation prompt), given a decision config whose template is
  the model's own chat template applied to the exact messages the HTTP judge sends — the server
  renders and tokenizes them itself;
- **served text**: ``verifier:openai://…`` / ``judge:openai://…`` through rewardkit's HTTP client
  (the real endpoint path): the greedy answer, its verdict and score, and whether logprobs came;
- prompt tokens counted locally, by ``/v1/chat/completions`` and by ``/v1/systemone``: equal
  counts mean the same chat template, system turn and generation prompt on both sides.

    python benchmarks/peer_endpoint_judges.py [--n 20] [--rating] [--tserve PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import tserve  # benchmarks/tserve.py
from rewardkit import Query, load_reward

#: (question, reference answer, response, whether the response agrees with the reference).
ROWS: list[tuple[str, str, str, bool]] = [
    ("What is 7 + 5?", "12", "7 + 5 = 12. The answer is 12.", True),
    ("What is 9 * 8?", "72", "9 times 8 is 63.", False),
    ("What is the capital of France?", "Paris", "The capital of France is Paris.", True),
    ("What is the capital of Australia?", "Canberra", "The capital of Australia is Sydney.", False),
    ("How many legs does a spider have?", "8", "A spider has eight legs.", True),
    ("How many days are in a leap year?", "366", "A leap year has 365 days.", False),
    (
        "Who wrote 'Romeo and Juliet'?",
        "William Shakespeare",
        "It was written by Shakespeare.",
        True,
    ),
    (
        "Who painted the Mona Lisa?",
        "Leonardo da Vinci",
        "The Mona Lisa was painted by Picasso.",
        False,
    ),
    ("What is the chemical symbol for gold?", "Au", "Gold's symbol is Au.", True),
    (
        "What is the boiling point of water at sea level in Celsius?",
        "100",
        "It boils at 90 °C.",
        False,
    ),
    ("What is 15% of 200?", "30", "15% of 200 = 0.15 * 200 = 30.", True),
    ("Solve for x: 2x + 3 = 11.", "4", "2x = 8, so x = 4.", True),
    ("Solve for x: 3x - 6 = 9.", "5", "3x = 15, so x = 3.", False),
    ("What is the square root of 144?", "12", "The square root of 144 is 14.", False),
    (
        "Which planet is closest to the Sun?",
        "Mercury",
        "Mercury is the closest planet to the Sun.",
        True,
    ),
    (
        "What is the largest ocean on Earth?",
        "Pacific Ocean",
        "The Atlantic Ocean is the largest.",
        False,
    ),
    ("How many minutes are in 2 hours?", "120", "2 hours is 120 minutes.", True),
    ("What is 100 divided by 4?", "25", "100 / 4 = 20.", False),
    ("In which year did World War II end?", "1945", "World War II ended in 1945.", True),
    ("What gas do plants absorb from the air?", "Carbon dioxide", "Plants absorb oxygen.", False),
]

#: The comparisons: (title, local spec, endpoint spec, /v1/systemone question type). The
#: question type picks the label tokens the server reads (:func:`decision_config`): every
#: single-token spelling the local judge log-sum-exps, first class first.
KINDS = (
    ("verifier", "verifier:default", {"type": "verifier"}, "choice"),
    ("judge", "judge:default", {"type": "judge"}, "score"),
    (
        "judge, endpoint=completions",
        "judge:default?use_chat_template=false",
        {"type": "judge", "endpoint": "completions"},
        "score",
    ),
)


def tserve_executable(given: str | None) -> Path | None:
    for candidate in (given, os.environ.get("REWARDKIT_TSERVE"), ".venv-tserve/bin/transformers"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def spellings(local: Any) -> tuple[list[str], int]:
    """(the answer-token spellings a local judge reads, first class first; how many are the
    first class's), each checked to tokenize back to its one token (as the server reads it)."""
    tok, answers = local.tokenizer, local.answers
    ids = [*answers.first, *answers.second]
    labels = [tok.decode([i]) for i in ids]
    for i, label in zip(ids, labels, strict=True):
        if tok(label, add_special_tokens=False)["input_ids"] != [i]:
            sys.exit(f"the answer token {i} ({label!r}) does not tokenize back to itself")
    return labels, len(answers.first)


def decision_config(model_dir: str, folder: str, labels: dict[str, list[str]]) -> str:
    """A decision config file for `/v1/systemone`: a ``state`` that is a message list is rendered
    with the model's own chat template and the generation prompt (as the chat endpoint renders
    the same messages), a string as it is (as the completions endpoint reads its prompt);
    ``labels`` per question type (``noul``: the first spelling of each class)."""
    chat = (Path(model_dir) / "chat_template.jinja").read_text(encoding="utf-8")
    template = (
        "{%- if state is string -%}{{ state }}{%- else -%}{%- set messages = state -%}"
        + chat
        + "{%- endif -%}"
    )
    path = Path(folder) / "decision.json"
    path.write_text(json.dumps({"chat_template": template, "labels": labels}), encoding="utf-8")
    return str(path)


def start_tserve(exe: Path, model_dir: str, config: str, log_path: str) -> tuple[Any, str]:
    """`transformers serve MODEL_DIR` on a free loopback port, offline, fp32 (the local judges'
    dtype); (process, base URL) once /health answers."""
    args = ["--dtype", "float32", "--decision-config", config]
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return tserve.start_tserve(exe, model_dir, args, env, log_path)


def queries(n: int) -> list[Query]:
    return [Query(q, resp, reference=ref) for q, ref, resp, _ in ROWS[:n]]


def served_answers(judge: Any, rows: list[Query], url: str) -> list[dict[str, Any]]:
    """Per row, what the server answered to the exact body rewardkit's HTTP judge sends: the
    text, whether logprobs came back, its prompt tokens, and what was sent (messages or prompt)."""
    out = []
    with httpx.Client(base_url=url + "/v1", timeout=600) as client:
        for row in rows:
            request = judge.request([row])
            body = client.post(request.path, json=request.json).raise_for_status().json()
            choice = body["choices"][0]
            out.append(
                {
                    "text": choice.get("message", {}).get("content", choice.get("text")),
                    "logprobs": choice.get("logprobs") is not None,
                    "prompt_tokens": body.get("usage", {}).get("prompt_tokens"),
                    "state": request.json.get("messages", request.json.get("prompt")),
                }
            )
    return out


def systemone(url: str, model: str, state: Any, kind: str, n: int, first: int) -> tuple:
    """(P(first class) over the ``n`` label spellings of question type ``kind``, P(first class)
    over the first spelling of each class only, input tokens) — the server's own forward pass
    and softmax of the label tokens' logits on the same prompt."""
    options = [f"o{i}" for i in range(n)]
    question = (
        {"type": "choice", "criteria": dict.fromkeys(options)}
        if kind == "choice"
        else {"type": "score", "criteria": options}
    )
    body = {"model": model, "state": state, "questions": {"q": question}}
    answer = httpx.post(url + "/v1/systemone", json=body, timeout=600).raise_for_status().json()
    probs = list(answer["answers"]["q"]["probabilities"].values())
    one = probs[0] / (probs[0] + probs[first])
    return sum(probs[:first]), one, answer["usage"]["input_tokens"]


def compare(local: Any, remote: Any, qs: list[Query], url: str, model: str, kind: str) -> dict:
    """One kind's side-by-side values: local p, the server's p on the same prompt (all
    spellings and first spellings only), the endpoint judge's scores and stats, the served
    answers, and prompt tokens counted three ways."""
    rows = remote.verifier_rows(qs)[1] if hasattr(remote, "verifier_rows") else qs
    labels, first = spellings(local)
    loc = np.asarray(local.score_full(qs).scores, dtype=np.float64)
    full = remote.score_full(qs)
    served = served_answers(remote, rows, url)
    peer = [systemone(url, model, s["state"], kind, len(labels), first) for s in served]
    return {
        "local": loc,
        "peer": np.asarray([p[0] for p in peer], dtype=np.float64),
        "peer_one": np.asarray([p[1] for p in peer], dtype=np.float64),
        "served": served,
        "score": np.asarray(full.scores, dtype=np.float64),
        "stats": full.stats,
        "tokens": (
            [len(r.input_ids) for r in local.encode(rows)],
            [s["prompt_tokens"] for s in served],
            [p[2] for p in peer],
        ),
    }


def table(title: str, result: dict, truth: list[bool]) -> None:
    loc, peer, score = result["local"], result["peer"], result["score"]
    tl, tc, ts = result["tokens"]
    print(f"\n## {title}: local rewardkit vs `transformers serve` (same model, fp32)\n")
    print(
        "| # | truth | local p | served p | Δp | served text | endpoint score "
        "| prompt tokens local/endpoint/systemone |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i, s in enumerate(result["served"]):
        text = s["text"].replace("\n", "⏎").replace("|", "\\|")[:32]
        print(
            f"| {i} | {int(truth[i])} | {loc[i]:.6f} | {peer[i]:.6f} | {abs(loc[i] - peer[i]):.1e} "
            f"| {text!r} | {score[i]:.6g} | {tl[i]}/{tc[i]}/{ts[i]} |"
        )
    st, read, t = result["stats"], ~np.isnan(score), np.asarray(truth)
    print(
        f"\nmax |Δp| local vs served = {np.max(np.abs(loc - peer)):.2e} (first spellings only: "
        f"{np.max(np.abs(loc - result['peer_one'])):.2e}); same verdict: "
        f"{int(((loc > 0.5) == (peer > 0.5)).sum())}/{len(loc)}; equal prompt tokens: "
        f"{sum(a == b == c for a, b, c in zip(tl, tc, ts, strict=True))}/{len(tl)}; "
        f"answers with logprobs: {sum(s['logprobs'] for s in result['served'])}/{len(loc)}; "
        f"endpoint text verdict = local verdict: "
        f"{int(((loc > 0.5) == (score > 0.5))[read].sum())}/{int(read.sum())} read "
        f"(unparsed {st.get('unparsed')}, failed {st.get('failed')}, logprob_verdicts "
        f"{st.get('logprob_verdicts')}, logprobs_missing {st.get('logprobs_missing')}); "
        f"verdict = truth: local {int(((loc > 0.5) == t).sum())}/{len(t)}, endpoint "
        f"{int(((score > 0.5) == t)[read].sum())}/{int(read.sum())} read"
    )
    if st.get("logprobs_note"):
        print(f"\nlogprobs_note: {st['logprobs_note']}")


def rating(url: str, model: str, qs: list[Query], cache: str) -> None:
    """judge-rating: the local expected rating and argmax against the served text rating."""
    local = load_reward("judge-rating:default?output=probs&progress=false&threads=1")
    probs = np.asarray(local.score_full(qs).scores, dtype=np.float64)
    spec = {"type": "judge-rating", "base_url": url + "/v1", "model": model, "cache_dir": cache}
    full = load_reward(spec).score_full(qs)
    served = np.asarray(full.scores, dtype=np.float64)
    print("\n## judge-rating: local expected rating (argmax) vs endpoint text rating\n")
    print("| # | local E[r] | local argmax | endpoint |")
    print("|---|---|---|---|")
    for i in range(len(qs)):
        print(
            f"| {i} | {probs[i] @ np.arange(1, 11):.3f} | {probs[i].argmax() + 1} | {served[i]:.4g} |"
        )
    read = ~np.isnan(served)
    same = int((np.round(served[read]) == probs.argmax(axis=1)[read] + 1).sum())
    st = full.stats
    print(
        f"\nendpoint rating = local argmax: {same}/{int(read.sum())} read (unparsed "
        f"{st.get('unparsed')}, failed {st.get('failed')}, logprobs_missing "
        f"{st.get('logprobs_missing')})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=len(ROWS), help="rows (at most 20)")
    ap.add_argument("--tserve", default=None, help="the `transformers` executable of its venv")
    ap.add_argument("--rating", action="store_true", help="also judge-rating (20 more requests)")
    ap.add_argument("--log", default="out/peer_endpoint_judges_server.log")
    args = ap.parse_args()
    exe = tserve_executable(args.tserve)
    if exe is None:
        print(
            "skipped: no `transformers serve` venv (make tserve, or --tserve / REWARDKIT_TSERVE "
            "naming its transformers executable)"
        )
        return
    from rewardkit.models.embedded import embedded_model_dir

    model = str(embedded_model_dir("smollm2"))
    qs = queries(args.n)
    truth = [ok for *_, ok in ROWS[: args.n]]
    locals_ = {
        title: load_reward(f"{spec}{'&' if '?' in spec else '?'}progress=false&threads=1")
        for title, spec, _, _ in KINDS
    }
    labels = {kind: spellings(locals_[title])[0] for title, _, _, kind in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        config = decision_config(model, tmp, labels)
        proc, url = start_tserve(exe, model, config, args.log)
        try:
            print(f"server: transformers serve {model} ({url}), fp32; {len(qs)} rows")
            http = {"base_url": url + "/v1", "model": model, "timeout": 600}
            for title, _, remote_spec, kind in KINDS:
                remote = load_reward({**remote_spec, **http, "cache_dir": f"{tmp}/{title}"})
                table(title, compare(locals_[title], remote, qs, url, model, kind), truth)
            if args.rating:
                rating(url, model, qs, f"{tmp}/rating")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

"""JudgeBench files in the published schema (``pair_id, original_id, source, question,
response_model, response_A, response_B, label``): the score is JudgeBench's Overall, the
accuracy over all pairs (``run_judge.py`` scores the source prefix ``""`` with
``utils/metrics.py``), not the mean of the four categories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward

#: source → (pairs where the longer response is right, pairs)
SOURCES = {
    "mmlu-pro-law": (5, 6),
    "mmlu-pro-health": (1, 4),
    "livebench-reasoning": (1, 3),
    "livebench-math": (2, 2),
    "livecodebench": (0, 5),
}
PREFIXES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")


def _rows() -> list[dict]:
    rows = []
    for source, (k, n) in SOURCES.items():
        for j in range(n):
            right = j < k
            a_wins = j % 2 == 0  # the label alternates sides
            long_, short = "x" * 40, "y" * 8
            good, bad = (long_, short) if right else (short, long_)
            rows.append(
                {
                    "pair_id": f"{source}-{j}",
                    "original_id": j,
                    "source": source,
                    "question": f"{source} question {j}",
                    "response_model": "gpt-4o-2024-05-13",
                    "response_A": good if a_wins else bad,
                    "response_B": bad if a_wins else good,
                    "label": "A>B" if a_wins else "B>A",
                }
            )
    return rows


def _decision(a: str, b: str) -> str:
    """A reward model's JudgeBench decision (utils/judges.py): ``A>B`` iff score_A > score_B."""
    return "A>B" if len(a) > len(b) else "B>A"


def _flip(d: str) -> str:
    return {"A>B": "B>A", "B>A": "A>B"}[d]


def _official(rows: list[dict]) -> dict[str, float]:
    """``compute_final_metrics`` with both orders (run_judge.py's default): a pair is correct
    when its two decisions (the second flipped back) net more right than wrong, so an exact
    tie (``B>A`` then ``A>B``) is not correct; accuracy over the pairs whose source starts with
    each prefix."""
    ok = []
    for r in rows:
        d1 = _decision(r["response_A"], r["response_B"])
        d2 = _flip(_decision(r["response_B"], r["response_A"]))
        net = sum(1 if d == r["label"] else -1 for d in (d1, d2))
        ok.append(net > 0)
    out = {}
    for prefix in (*PREFIXES, ""):
        sel = [o for o, r in zip(ok, rows, strict=True) if r["source"].startswith(prefix)]
        out[prefix or "Overall"] = sum(sel) / len(sel)
    return out


def _check(path: Path, rows: list[dict]) -> None:
    res = evaluate(
        load(str(path)),
        [load_reward("rule:length")],
        include_length_baseline=False,
        ties="strict",
        n_boot=20,
        analyses=False,
    )
    col = res["rule:length"]
    want = _official(rows)
    assert res.settings["benchmark"] == "judgebench"
    for prefix, cat in zip(PREFIXES, ("knowledge", "reasoning", "math", "coding"), strict=True):
        assert col.sections[cat].score == pytest.approx(want[prefix])
    assert col.score == pytest.approx(want["Overall"])
    assert "accuracy over all pairs" in " ".join(res.settings["notes"])


def test_overall_is_accuracy_over_all_pairs(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _check(path, rows)
    means = sum(_official(rows)[p] for p in PREFIXES) / len(
        PREFIXES
    )  # the mean of categories differs here
    assert means != pytest.approx(_official(rows)["Overall"])


def test_overall_on_the_published_files(shared_data: Path) -> None:
    folder = shared_data / "judgebench"
    for path in sorted(folder.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        _check(path, rows)

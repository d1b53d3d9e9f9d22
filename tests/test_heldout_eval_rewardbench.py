"""Held-out benchmark files in their published schemas: RewardBench v1 with the prior
preference sets (docs/methods/D1-rewardbench.md) and RM-Bench's ``total_dataset.json``.

Scores come from ``rule:length`` on responses whose lengths the test sets, so every
per-subset accuracy is known; the section/score rules are checked against allenai's
``rewardbench`` package where it is installed and against the published formulas otherwise.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.evaluate import evaluate, rewardbench1_scores
from rewardkit.registry import load_reward

RB_PYTHON = Path("/work/venvs/rewardbench/bin/python")
PRIOR = ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")
#: subset → (chosen longer in k of n rows, n)
WINS = {
    "alpacaeval-easy": (3, 4),
    "mt-bench-med": (1, 2),
    "mt-bench-hard": (1, 4),
    "llmbar-natural": (2, 2),
    "refusals-dangerous": (2, 4),
    "xstest-should-respond": (3, 3),
    "math-prm": (4, 4),
    "hep-go": (1, 4),
    "hep-rust": (0, 2),
    "anthropic_helpful": (1, 4),
    "shp": (3, 4),
    "summarize": (2, 2),
    "anthropic_harmless": (0, 3),  # published, shown, not in the leaderboard average
}


def _rows(wins: dict[str, tuple[int, int]]) -> list[dict]:
    rows, i = [], 0
    for subset, (k, n) in wins.items():
        for j in range(n):
            win = j < k
            prior = subset in PRIOR or subset == "anthropic_harmless"
            prompt = (
                [
                    {"role": "user", "content": f"question {i}"},
                    {"role": "assistant", "content": "earlier turn"},
                    {"role": "user", "content": "follow-up"},
                ]
                if prior
                else f"question {i}"
            )
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": "c" * (30 if win else 10),
                    "rejected": "r" * (10 if win else 30),
                    "chosen_model": "m1",
                    "rejected_model": "m2",
                    "subset": subset,
                    "id": i,
                }
            )
            i += 1
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _accuracies(wins: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {s: k / n for s, (k, n) in wins.items()}


def _official_sections(acc: dict[str, float]) -> dict[str, float]:
    """Sections from allenai's ``calculate_scores_per_section`` and its constants."""
    code = (
        "import json, sys\n"
        "from rewardbench.constants import EXAMPLE_COUNTS, SUBSET_MAPPING\n"
        "from rewardbench.utils import calculate_scores_per_section\n"
        "m = json.loads(sys.argv[1])\n"
        "print(json.dumps(calculate_scores_per_section(EXAMPLE_COUNTS, SUBSET_MAPPING, m)))\n"
    )
    out = subprocess.run(
        [str(RB_PYTHON), "-c", code, json.dumps(acc)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _leaderboard_average(sections: dict[str, float], acc: dict[str, float]) -> float:
    """reward-bench ``analysis/get_benchmark_results.py`` ``get_average_over_rewardbench``:
    Prior Sets = nanmean of the four prior subsets; average weights 2, 2, 2, 2, 1."""
    prior = np.nanmean([acc.get(s, np.nan) for s in PRIOR])
    values = [sections[s] for s in ("Chat", "Chat Hard", "Safety", "Reasoning")] + [prior]
    return float(np.average(values, weights=[2, 2, 2, 2, 1]))


def test_prior_sets_rows_read_with_their_multi_turn_prompts(tmp_path: Path) -> None:
    rows = _rows(WINS)
    path = _write_jsonl(tmp_path / "rb1_prior.jsonl", rows)
    examples = load(str(path))
    assert len(examples) == len(rows)
    by_id = {ex.id: ex for ex in examples}
    for row in rows:
        ex = by_id[str(row["id"])]
        assert ex.subset == row["subset"]
        assert ex.responses == [row["chosen"], row["rejected"]] and ex.chosen == [0]
        want = (
            row["prompt"]
            if isinstance(row["prompt"], list)
            else [{"role": "user", "content": row["prompt"]}]
        )
        assert ex.prompt == want


def test_prior_sets_half_weight_matches_leaderboard(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "rb1_prior.jsonl", _rows(WINS))
    res = evaluate(
        load(str(path)),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )
    col = res["rule:length"]
    acc = _accuracies(WINS)
    core = {s: a for s, a in acc.items() if s not in PRIOR and s != "anthropic_harmless"}
    prior_mean = float(np.mean([acc[s] for s in PRIOR if s in acc]))
    assert res.settings["benchmark"] == "rewardbench1"
    assert col.sections["Prior Sets (0.5 weight)"].score == pytest.approx(prior_mean)
    assert col.subsets["anthropic_harmless"].score == 0.0  # shown, weight 0
    pub = rewardbench1_scores(core)["sections"]
    assert col.score == pytest.approx(_leaderboard_average(pub, acc))
    for sec, value in pub.items():
        assert col.sections[sec].score == pytest.approx(value)
    # the API's table function agrees with the evaluation
    assert rewardbench1_scores(acc)["score"] == pytest.approx(col.score)
    # and the score differs from the plain mean of five sections (the old generic rule)
    five = np.mean([*pub.values(), prior_mean])
    assert not math.isclose(col.score, five)


@pytest.mark.skipif(not RB_PYTHON.exists(), reason="allenai reward-bench venv not installed")
def test_sections_and_score_match_rewardbench_package(tmp_path: Path) -> None:
    acc = _accuracies(WINS)
    core = {s: a for s, a in acc.items() if s not in PRIOR and s != "anthropic_harmless"}
    official = _official_sections(core)
    path = _write_jsonl(tmp_path / "rb1_prior.jsonl", _rows(WINS))
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "eval",
            "--no-progress",
            "--no-cache",
            "--n-boot",
            "20",
            "--no-baseline",
            "-r",
            "rule:length",
            "--data",
            str(path),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    col = report["rewards"][0]
    for sec in ("Chat", "Chat Hard", "Safety", "Reasoning"):
        assert col["sections"][sec]["score"] == pytest.approx(official[sec])
    assert col["score"] == pytest.approx(_leaderboard_average(official, acc))
    assert "counts half" in (out / "report.md").read_text(encoding="utf-8")
    # without the prior sets: the plain mean of the four official sections
    path2 = _write_jsonl(tmp_path / "rb1_core.jsonl", _rows({s: WINS[s] for s in core}))
    res = evaluate(
        load(str(path2)),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )
    assert res["rule:length"].score == pytest.approx(np.mean(list(official.values())))


def test_prior_sets_alone_are_not_rewardbench(tmp_path: Path) -> None:
    rows = _rows({"shp": (1, 2), "summarize": (2, 2)})
    res = evaluate(
        load(str(_write_jsonl(tmp_path / "p.jsonl", rows))),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )
    assert res.settings["benchmark"] == "generic"


def test_unknown_subset_among_rewardbench_subsets_is_reported(tmp_path: Path) -> None:
    rows = _rows({"alpacaeval-easy": (1, 2), "brand-new-subset": (1, 1)})
    res = evaluate(
        load(str(_write_jsonl(tmp_path / "u.jsonl", rows))),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )
    assert res.settings["benchmark"] == "generic"
    notes = " ".join(res.settings.get("notes", []))
    assert "brand-new-subset" in notes and "rule was not applied" in notes


# RM-Bench total_dataset.json (THU-KEG/RM-Bench): rows carry ``domain`` ("chat", "math",
# "code", "safety-refuse", "safety-response"), no ``subset``.


def _rm_rows(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    domains = ("chat", "math", "code", "safety-refuse", "safety-response")
    rows = []
    for i in range(20):
        lens_c, lens_r = rng.integers(1, 10, 3), rng.integers(1, 10, 3)
        rows.append(
            {
                "id": i,
                "prompt": f"prompt {i}",
                "chosen": ["a" * int(n) for n in lens_c],
                "rejected": ["b" * int(n) for n in lens_r],
                "domain": domains[i % len(domains)],
            }
        )
    return rows


def _rm_official(rows: list[dict]) -> dict[str, float]:
    """RM-Bench ``scripts/utils.py`` ``compute_accuracy`` on lengths: per domain the 3×3
    matrix of chosen[i] > rejected[j] rates; hard = upper-right mean, normal = diagonal,
    easy = lower-left; domain = mean of the three; totals = means over domains."""
    by: dict[str, list[np.ndarray]] = {}
    for r in rows:
        c = np.array([len(x) for x in r["chosen"]])
        j = np.array([len(x) for x in r["rejected"]])
        by.setdefault(r["domain"].split("-")[0], []).append(c[:, None] > j[None, :])
    res = {}
    for dom, mats in by.items():
        m = np.mean(mats, axis=0)
        hne = (np.triu(m, 1).sum() / 3, np.mean(np.diag(m)), np.tril(m, -1).sum() / 3)
        res[dom] = dict(zip(("hard", "normal", "easy"), hne, strict=True))
    out = {d: float(np.mean(list(v.values()))) for d, v in res.items()}
    for k in ("hard", "normal", "easy"):
        out[k] = float(np.mean([v[k] for v in res.values()]))
    out["total"] = float(np.mean([out[d] for d in res]))
    return out


def test_rm_bench_total_dataset_domains(tmp_path: Path) -> None:
    rows = _rm_rows(3)
    path = tmp_path / "total_dataset.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    examples = load(str(path))
    assert len(examples) == len(rows)
    assert {ex.subset for ex in examples} == {"chat", "math", "code", "safety"}
    res = evaluate(
        examples,
        [load_reward("rule:length")],
        include_length_baseline=False,
        ties="strict",
        n_boot=20,
    )
    col = res["rule:length"]
    want = _rm_official(rows)
    assert res.settings["benchmark"] == "rm-bench"
    for dom in ("chat", "math", "code", "safety"):
        assert col.sections[dom].score == pytest.approx(want[dom])
    assert col.score == pytest.approx(want["total"])
    total = col.analyses["rm_bench"]["total"]
    for k in ("hard", "normal", "easy"):
        assert total[k] == pytest.approx(want[k])

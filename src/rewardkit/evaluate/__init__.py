"""Benchmark-grade evaluation of rewards: scoring rules, confidence intervals, reports.

- :mod:`.outcomes` — per-example rules (pairwise, best-of-k, all-correct-above-incorrect);
- :mod:`.ties` — the RewardBench 2 Ties score;
- :mod:`.benchmarks` — RewardBench v1 section weighting, RewardBench 2 mean;
- :mod:`.bootstrap` — percentile and stratified bootstrap CIs;
- :mod:`.run` — :func:`evaluate`; :mod:`.result` — :class:`EvalResult`; :mod:`.report` — reports.
"""

from __future__ import annotations

from rewardkit.evaluate.benchmarks import (
    REWARDBENCH2_DOMAINS,
    detect_benchmark,
    mean_of_sections,
    rewardbench1_counts,
    rewardbench1_scores,
    rewardbench1_section_of,
    rewardbench1_sections,
    rewardbench2_score,
    section_scores,
)
from rewardkit.evaluate.bootstrap import (
    bootstrap_ci,
    bootstrap_means,
    percentile_ci,
    stratified_bootstrap,
)
from rewardkit.evaluate.outcomes import (
    all_correct_above_incorrect,
    best_of_k_score,
    best_of_k_scores,
    pairwise_outcome,
)
from rewardkit.evaluate.report import plain_table, print_table, to_markdown, write_reports
from rewardkit.evaluate.result import EvalResult, ExampleRecord, GroupScore, RewardResult
from rewardkit.evaluate.run import evaluate
from rewardkit.evaluate.ties import ties_components, ties_score

__all__ = [
    "REWARDBENCH2_DOMAINS",
    "EvalResult",
    "ExampleRecord",
    "GroupScore",
    "RewardResult",
    "all_correct_above_incorrect",
    "best_of_k_score",
    "best_of_k_scores",
    "bootstrap_ci",
    "bootstrap_means",
    "detect_benchmark",
    "evaluate",
    "mean_of_sections",
    "pairwise_outcome",
    "percentile_ci",
    "plain_table",
    "print_table",
    "rewardbench1_counts",
    "rewardbench1_scores",
    "rewardbench1_section_of",
    "rewardbench1_sections",
    "rewardbench2_score",
    "section_scores",
    "stratified_bootstrap",
    "ties_components",
    "ties_score",
    "to_markdown",
    "write_reports",
]

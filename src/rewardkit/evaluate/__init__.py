"""Benchmark-grade evaluation of rewards: scoring rules, confidence intervals, reports.

- :mod:`.outcomes` — per-example rules (pairwise, best-of-k, all-correct-above-incorrect);
- :mod:`.ties` — the RewardBench 2 Ties score;
- :mod:`.benchmarks` — RewardBench v1 section weighting, RewardBench 2 mean;
- :mod:`.bootstrap` — percentile and stratified bootstrap CIs;
- :mod:`.run` — :func:`evaluate`; :mod:`.result` — :class:`EvalResult`; :mod:`.report` — reports;
- :mod:`.rmbench` — RM-Bench 3×3 style matrix; :mod:`.calibration` — ECE, Brier, temperature;
  :mod:`.lengthbias`; :mod:`.tieacc` — accuracy with ties; :mod:`.languages` — per-language scores;
  :mod:`.bestofn` — best-of-N and overoptimization; :mod:`.stats` — paired bootstrap, McNemar,
  correlations; :mod:`.probing` — linear probes; :mod:`.robustness`; :mod:`.analyses` — all of
  them on an :class:`EvalResult`;
- reports: :mod:`.rows` — the row model (tables, summary rows, notes); :mod:`.tables` — one table
  per analysis; renderers :mod:`.report` (Markdown, terminal) and :mod:`.htmlreport`;
  :mod:`.plots`, :mod:`.leaderboard`.
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
from rewardkit.evaluate.bestofn import bon_curve, bon_kl, expected_bon
from rewardkit.evaluate.bootstrap import (
    bootstrap_ci,
    bootstrap_means,
    percentile_ci,
    stratified_bootstrap,
)
from rewardkit.evaluate.calibration import TemperatureScaling, calibration_error
from rewardkit.evaluate.outcomes import (
    all_correct_above_incorrect,
    best_of_k_score,
    best_of_k_scores,
    pairwise_outcome,
)
from rewardkit.evaluate.report import plain_table, print_table, to_markdown, write_reports
from rewardkit.evaluate.result import (
    EvalResult,
    ExampleRecord,
    GroupScore,
    RewardResult,
    load_report,
)
from rewardkit.evaluate.rmbench import matrix_summary, style_matrix
from rewardkit.evaluate.run import evaluate
from rewardkit.evaluate.stats import mcnemar, paired_bootstrap
from rewardkit.evaluate.ties import ties_components, ties_score

__all__ = [
    "REWARDBENCH2_DOMAINS",
    "EvalResult",
    "ExampleRecord",
    "GroupScore",
    "RewardResult",
    "TemperatureScaling",
    "all_correct_above_incorrect",
    "best_of_k_score",
    "best_of_k_scores",
    "bon_curve",
    "bon_kl",
    "bootstrap_ci",
    "bootstrap_means",
    "calibration_error",
    "detect_benchmark",
    "evaluate",
    "expected_bon",
    "load_report",
    "matrix_summary",
    "mcnemar",
    "mean_of_sections",
    "paired_bootstrap",
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
    "style_matrix",
    "ties_components",
    "ties_score",
    "to_markdown",
    "write_reports",
]

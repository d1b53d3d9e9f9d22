"""Inference with rewards: best-of-N generation (card F1) and on-policy pair mining (cards E5,
F1). ``generate`` imports torch and transformers; the selection and mining functions do not."""

from __future__ import annotations

from rewardkit.inference.best_of_n import best_of_n, score_candidates, select_best
from rewardkit.inference.mining import annotate_pairs, mine_pairs

__all__ = ["annotate_pairs", "best_of_n", "mine_pairs", "score_candidates", "select_best"]

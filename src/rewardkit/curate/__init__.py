"""Preference-data curation: each step a pure function over :class:`~rewardkit.types.Example`.

- :mod:`.strength` — card E1 preference strength (ensemble mean / population std of Δ);
- :mod:`.noise` — card E1 noisy-label detection: flag, flip, drop or down-weight, with a review;
- :mod:`.consistency` — card E4 (CREAM) ranking consistency between two rewards; soft labels;
- :mod:`.relabel` — card A12 reward-augmented goal-conditioned pairs;
- :mod:`.filtering` — card E6 keep the top fraction per source / above a threshold;
- :mod:`.synergy` — card E2 (Skywork-Reward-V2) seed errors, kNN retrieval, judges' agreement;
- :mod:`.dedup` — exact and normalized-text duplicates; length-balance check;
- :mod:`.writers` — TRL DPO (conversational), OpenRLHF and rewardkit JSONL files.

Torch-free: rewards are passed in (or their scores are); see ``docs/curation.md``.
"""

from __future__ import annotations

from rewardkit.curate.consistency import consistency_filter, ranking_consistency
from rewardkit.curate.dedup import dedup, length_balance
from rewardkit.curate.filtering import filter_by_reward
from rewardkit.curate.noise import detect_noise, flip_lowest
from rewardkit.curate.relabel import reward_augment, system_prompt
from rewardkit.curate.scores import pair_deltas, response_scores
from rewardkit.curate.strength import annotate_strength, preference_strength
from rewardkit.curate.synergy import agreement_decisions, curate_round, knn_retrieve, seed_errors
from rewardkit.curate.writers import write_openrlhf, write_trl_dpo

__all__ = [
    "agreement_decisions",
    "annotate_strength",
    "consistency_filter",
    "curate_round",
    "dedup",
    "detect_noise",
    "filter_by_reward",
    "flip_lowest",
    "knn_retrieve",
    "length_balance",
    "pair_deltas",
    "preference_strength",
    "ranking_consistency",
    "response_scores",
    "reward_augment",
    "seed_errors",
    "system_prompt",
    "write_openrlhf",
    "write_trl_dpo",
]

"""Combining rewards: pure, NaN-aware functions over score arrays (numpy only, fast to import).

- ``aggregate``: ensemble aggregates of docs/methods/C5-reward-ensembles.md (mean, median, min, max, mean − λ·std, weighted).
- ``normalize``: C1 GRPO group / batch normalization, Dr. GRPO, RLOO (TRL and verl presets).
- ``bnpo``: C2 Beta normalization (BNPO) and its multi-reward advantage decomposition.
- ``dataset_norm``: C3 MedGRPO cross-dataset median → 0.5 logistic normalizer.
- ``transform``: C4 log σ(r − r_ref) transform and the soft-AND sum.
- ``multi`` / ``mrn``: weighted sum, sum-then-normalize, normalize-then-sum (GDPO), C9 MRN.
- ``route``: which rows go to which data-source route (the reward: ``rewards.composite.route``).
- ``scaling``: C6 dynamic β (MM-RLHF), C7 difficulty scaling (GRPO-S).
- ``hybrid``: C10 rule + model with confidence, aspects and a length term (the reward:
  ``rewards.composite.hybrid``).
- ``running``: per-source running whitening and clipping; ``length``: C8 length penalties.
"""

from __future__ import annotations

from rewardkit.combine.aggregate import (
    AGGREGATES,
    DEFAULT_LAM,
    NORMALIZERS,
    Aggregated,
    Disagreement,
    MemberStats,
    aggregate,
    disagreement,
    ensemble_aggregate,
    member_stats,
    zscore,
)
from rewardkit.combine.bnpo import (
    BNPONormalizer,
    beta_params,
    bnpo_advantages,
    bnpo_advantages_multi,
)
from rewardkit.combine.dataset_norm import MedianLogisticNormalizer, logistic_normalize
from rewardkit.combine.hybrid import hybrid_combine
from rewardkit.combine.length import kimi_length_reward, linear_length_penalty, overlong_penalty
from rewardkit.combine.mrn import multi_reward_normalize
from rewardkit.combine.multi import (
    gdpo_advantages,
    normalize_then_sum,
    sum_then_normalize,
    weighted_sum,
)
from rewardkit.combine.normalize import (
    TRL,
    VERL,
    batch_normalize,
    dr_grpo_advantage,
    group_normalize,
    rloo_advantage,
)
from rewardkit.combine.running import RunningWhitener, clip_rewards
from rewardkit.combine.scaling import (
    data_hardness,
    difficulty_scale,
    dynamic_beta,
    grpo_s_advantages,
    ls_factor_beta,
    model_responsiveness,
)
from rewardkit.combine.transform import (
    combine_lsc,
    group_reference,
    lsc_transform,
    reference_from_samples,
)

__all__ = [
    "AGGREGATES",
    "DEFAULT_LAM",
    "NORMALIZERS",
    "TRL",
    "VERL",
    "Aggregated",
    "BNPONormalizer",
    "Disagreement",
    "MedianLogisticNormalizer",
    "MemberStats",
    "RunningWhitener",
    "aggregate",
    "batch_normalize",
    "beta_params",
    "bnpo_advantages",
    "bnpo_advantages_multi",
    "clip_rewards",
    "combine_lsc",
    "data_hardness",
    "difficulty_scale",
    "disagreement",
    "dr_grpo_advantage",
    "dynamic_beta",
    "ensemble_aggregate",
    "gdpo_advantages",
    "group_normalize",
    "group_reference",
    "grpo_s_advantages",
    "hybrid_combine",
    "kimi_length_reward",
    "linear_length_penalty",
    "logistic_normalize",
    "ls_factor_beta",
    "lsc_transform",
    "member_stats",
    "model_responsiveness",
    "multi_reward_normalize",
    "normalize_then_sum",
    "overlong_penalty",
    "reference_from_samples",
    "rloo_advantage",
    "sum_then_normalize",
    "weighted_sum",
    "zscore",
]

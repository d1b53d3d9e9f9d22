"""Token-level rewards for RL trainers, on the policy's own tokens (``docs/prm-and-token-rewards.md``).

A token-level reward (:attr:`~rewardkit.types.Capability.TOKENS`: ``dpo-tokens:``, ``treg:``,
``aligndistil:``) scores the scorer's tokens; the trainer needs one value per token the policy
generated. Both adapters decode the policy's ids, score the text, and move the rewards onto the
policy's tokens by character offsets (:func:`~rewardkit.rewards.token_align.align_offsets`: each
scorer token's reward lands on the policy token holding its last character; totals are kept).

- verl: :func:`verl_token_level_scores` returns the ``(batch, response_length)`` float tensor a
  verl reward manager hands back as ``reward_tensor`` (``token_level_scores``): per-token rewards
  on the valid response positions, 0 on padding.
- TRL style: :class:`TokenRewardFunc` is called like a TRL reward function
  (``prompts=, completions=, completion_ids=``) and returns one list of per-token rewards per
  completion, aligned with ``completion_ids``.

A reward without :attr:`~rewardkit.types.Capability.TOKENS` is refused with a clear error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.errors import CapabilityError
from rewardkit.integrations._messages import as_prompt, as_response
from rewardkit.integrations._reward import RewardSpec, as_reward
from rewardkit.rewards.token_align import align_offsets, offsets_of_ids
from rewardkit.types import Capability, Query, Reward


def _token_reward(spec: RewardSpec | Reward) -> Reward:
    reward = spec if isinstance(spec, Reward) else as_reward(spec)
    if not reward.can(Capability.TOKENS):
        raise CapabilityError(
            f"reward {reward.name!r} gives no per-token rewards (no Capability.TOKENS); use a "
            "token-level reward such as dpo-tokens:, treg: or aligndistil:, or the sequence-level "
            "adapters (rewardkit.integrations.verl / .trl) for one score per response"
        )
    return reward


def rewards_on_ids(
    reward: Reward, prompts: Sequence[Any], ids: Sequence[Sequence[int]], tokenizer: Any
) -> list[np.ndarray]:
    """Per-token rewards of each response, given as the policy's token ids, on those ids.

    Special tokens (the end-of-turn / EOS id TRL's ``completion_ids`` and verl's responses
    carry) are not text: the response is scored as the trainers decode it
    (``skip_special_tokens``), and those ids get 0, so a response's token rewards still sum to
    its sequence reward (scored with the id, ``<|im_end|>`` took −81 of a −86 total, where the
    sequence reward was −12). A response with no text left gets a row of zeros."""
    if len(prompts) != len(ids):
        raise ValueError(
            f"{len(prompts)} prompts for {len(ids)} responses: give one prompt per response"
        )
    if not len(ids):
        return []
    special = {int(t) for t in getattr(tokenizer, "all_special_ids", None) or ()}
    rows = [[int(t) for t in row] for row in ids]
    kept = [[k for k, t in enumerate(row) if t not in special] for row in rows]
    decoded = [
        offsets_of_ids(tokenizer, [row[k] for k in keep])
        for row, keep in zip(rows, kept, strict=True)
    ]
    queries = [
        Query(as_prompt(p, f"prompts[{i}]"), text)
        for i, (p, (text, _)) in enumerate(zip(prompts, decoded, strict=True))
    ]
    res = reward.score_full(queries)
    tokens = res.tokens
    if tokens is None:  # a reward that declares TOKENS must fill them
        raise CapabilityError(f"reward {reward.name!r} returned no per-token rewards")
    truncated = np.zeros(len(rows), bool) if res.truncated is None else res.truncated
    out = []
    unscored, cut_rows, cut_tokens = 0, 0, 0
    for i, (row, keep, (text, spans)) in enumerate(zip(rows, kept, decoded, strict=True)):
        full = np.zeros(len(row), dtype=np.float64)
        values = tokens.values[i]
        check_finite_tokens(reward.name, i, values, tokens.offsets[i])
        if keep and text and np.isnan(values).all():
            unscored += 1  # the reward does not apply to this response: 0 on its tokens
        elif keep and text:
            full[keep] = align_offsets(values, tokens.offsets[i], spans)
            lost = unscored_tail(values, tokens.offsets[i], spans) if truncated[i] else 0
            cut_rows, cut_tokens = cut_rows + (lost > 0), cut_tokens + lost
        out.append(full)
    warn_unscored(reward.name, len(rows), unscored, cut_rows, cut_tokens)
    return out


def check_finite_tokens(name: str, item: int, values: np.ndarray, offsets: np.ndarray) -> None:
    """ValueError naming the reward, the response (``item``), the first scorer token holding
    ±inf (its position and characters) and the count: a per-token reward must be finite, or
    NaN where it does not apply, as the sequence-level adapters require of a score
    (:func:`~rewardkit.integrations._scores.check_finite_scores`); an inf would reach the
    trainer's token rewards as ±inf, or as NaN where two meet on one policy token."""
    v = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.isinf(v))
    if not len(bad):
        return
    j = int(bad[0])
    start, end = (int(x) for x in np.asarray(offsets).reshape(-1, 2)[j])
    raise ValueError(
        f"reward {name!r}, response {item}: token reward at position {j} (characters "
        f"{start}-{end}) is {v[j]}: a per-token reward must be finite, or NaN where it does not "
        f"apply ({len(bad)} infinite value(s) in this response)"
    )


def unscored_tail(values: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """How many target tokens (spans ``dst``) lie wholly past the last character the source
    tokens with a value cover: the tokens truncation cut from a response get 0 from
    :func:`~rewardkit.rewards.token_align.align_offsets` without any reward of theirs."""
    src = np.asarray(src, dtype=np.int64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.int64).reshape(-1, 2)
    scored = ~np.isnan(np.asarray(values, dtype=np.float64)) & (src[:, 0] >= 0)
    covered = int(src[scored, 1].max()) if scored.any() else 0
    return int(np.sum((dst[:, 1] > dst[:, 0]) & (dst[:, 0] >= covered)))


def warn_unscored(name: str, n: int, unscored: int, cut_rows: int, cut_tokens: int) -> None:
    """One warning with the count of responses (of ``n``) whose tokens got 0 for want of a
    token reward: no reward at all (NaN, "does not apply"), or none past a truncation cut."""
    if unscored:
        warnings.warn(
            f"{name}: {unscored} of {n} responses got no token rewards (NaN, 'does not "
            "apply', e.g. a T-REG contrast cut by truncation); their tokens get 0",
            RuntimeWarning,
            stacklevel=4,
        )
    if cut_rows:
        warnings.warn(
            f"{name}: {cut_rows} of {n} responses were cut by truncation (max_length): their "
            f"{cut_tokens} tokens past the cut were not scored and get 0; raise max_length",
            RuntimeWarning,
            stacklevel=4,
        )


def verl_token_level_scores(
    spec: RewardSpec | Reward,
    prompts: Sequence[Any],
    responses: Any,
    response_mask: Any,
    tokenizer: Any,
) -> Any:
    """verl's ``reward_tensor``: (batch, response_length) float32 on the responses' device.

    ``responses`` (batch, L) policy ids and ``response_mask`` (batch, L) 1 on generated tokens,
    as in ``data.batch["responses"]`` / ``data.batch["response_mask"]``; ``prompts`` the prompt
    of each row (text or messages)."""
    import torch

    reward = _token_reward(spec)
    mask = response_mask.bool().cpu()
    rows = [responses[i].cpu()[mask[i]].tolist() for i in range(responses.shape[0])]
    values = rewards_on_ids(reward, prompts, rows, tokenizer)
    out = torch.zeros(responses.shape, dtype=torch.float32)
    for i, v in enumerate(values):
        out[i, mask[i].nonzero(as_tuple=True)[0]] = torch.as_tensor(v, dtype=torch.float32)
    return out.to(responses.device)


class TokenRewardFunc:
    """A TRL-style reward callable returning per-token rewards (one list per completion,
    aligned with ``completion_ids``)."""

    def __init__(self, reward: RewardSpec | Reward, tokenizer: Any) -> None:
        self.reward = _token_reward(reward)
        self.tokenizer = tokenizer
        self.__name__ = f"rewardkit_tokens_{self.reward.name}"[:60]

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **_: Any,
    ) -> list[list[float]]:
        if completion_ids is None:
            completion_ids = [
                self.tokenizer(as_response(c, f"completions[{i}]"), add_special_tokens=False)[
                    "input_ids"
                ]
                for i, c in enumerate(completions)
            ]
        values = rewards_on_ids(self.reward, prompts, completion_ids, self.tokenizer)
        return [[float(x) for x in v] for v in values]

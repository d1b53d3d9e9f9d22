"""Shared-prefix (cascade) attention on the CPU, with SDPA's flash kernel and no masks.

One suffix forward pass of the shared layout (:mod:`rewardkit.engine.attention`): row r continues
prefix ``owner[r]``, whose keys and values ran once. Per layer:

- **own part**: every row's suffix against its own suffix keys, causally: one batched call
  ``(rows, heads, S, d)`` with ``is_causal`` (right padding sits after a row's real tokens, so
  causality hides it from them);
- **prefix part**: per prefix, the suffix queries of all its rows against that prefix's real keys,
  without a mask: the rows are folded into the query axis, and so are the query heads that share
  a key/value head (grouped-query attention), so the prefix's keys are read once, never copied
  per row or per head;
- **merge**: the two partial attentions are combined exactly by their log-sum-exps,
  ``o = o_own + σ(l_prefix − l_own)·(o_prefix − o_own)`` (``torch.lerp``), in place in the own
  part's output.

SDPA's CPU flash kernel skips the masked-out half of a causal call and runs unmasked calls at
full speed; a key-padding mask costs more (about 2× when this was written; 0–15% on torch 2.13,
measured 2026-12-04 at prefix shapes of 150–200 query and 700–750 key tokens) and a padded batch
also runs its padding keys. Hence one exact-length call per prefix, not a padded, biased batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def flash(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """SDPA's flash kernel for CPU with its log-sum-exp: (n, h, q, d) and (n, h, q) float32."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, causal, scale=scale
    )
    return out, lse.float()


def repeat_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Grouped-query keys/values (n, kv heads, L, d) expanded to ``heads`` heads."""
    rep = heads // x.shape[1]
    return x if rep == 1 else x.repeat_interleave(rep, dim=1)


def shared_prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    prefix_keys: torch.Tensor,
    prefix_values: torch.Tensor,
    groups: Sequence[tuple[int, int, Sequence[int]]],
    scale: float,
) -> torch.Tensor:
    """Cascade attention of a suffix pass (module docstring).

    ``query`` (rows, heads, S, d) and ``key``/``value`` (rows, kv heads, S, d) are the suffix
    tokens; ``prefix_keys``/``prefix_values`` (p, kv heads, P, d) the prefixes, right-padded;
    ``groups[i]`` = (prefix length, longest suffix of its rows, its rows). Returns
    (rows, S, heads, d), contiguous.
    """
    heads, d = query.shape[1], query.shape[3]
    kv_heads = prefix_keys.shape[1]
    rep = heads // kv_heads
    out, lse = flash(query, repeat_heads(key, heads), repeat_heads(value, heads), scale, True)
    merged = out.transpose(1, 2)  # (rows, S, heads, d): the kernel's own memory order
    if not merged.is_contiguous():
        merged = merged.contiguous()
    q_rows = query.transpose(1, 2)  # (rows, S, heads, d)
    for i, (plen, slen, members) in enumerate(groups):
        k = len(members)
        first = members[0]
        contiguous = list(members) == list(range(first, first + k))
        picked = (
            slice(first, first + k)
            if contiguous
            else torch.tensor(list(members), dtype=torch.long, device=query.device)
        )
        # Queries of the prefix's rows as (1, kv heads, rep·k·s, d): rows and the query heads
        # of one key/value head folded into the query axis.
        qg = q_rows[picked, :slen].reshape(k, slen, kv_heads, rep, d).permute(2, 3, 0, 1, 4)
        qg = qg.reshape(1, kv_heads, rep * k * slen, d)
        oa, la = flash(
            qg, prefix_keys[i : i + 1, :, :plen], prefix_values[i : i + 1, :, :plen], scale, False
        )
        oa = oa.reshape(kv_heads, rep, k, slen, d).permute(2, 3, 0, 1, 4)  # (k, s, kv, rep, d)
        la = la.reshape(kv_heads, rep, k, slen).permute(2, 3, 0, 1)  # (k, s, kv, rep)
        lb = lse[picked, :, :slen].view(k, kv_heads, rep, slen).permute(0, 3, 1, 2)
        weight = torch.sigmoid(la - lb).to(merged.dtype)[..., None]
        target = merged[picked, :slen].view(k, slen, kv_heads, rep, d)
        if contiguous:
            target.lerp_(oa, weight)
        else:
            merged[picked, :slen] = torch.lerp(target, oa, weight).view(k, slen, heads, d)
    return merged

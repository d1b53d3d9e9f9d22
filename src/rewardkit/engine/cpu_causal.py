"""Causal self-attention on the CPU in bfloat16, from blocked GEMMs instead of the flash kernel.

PyTorch's flash kernel for the CPU runs a bfloat16 call at about its float32 speed: on a
2-core AVX-512 host (no AMX) 55–85 GFLOP/s at the shapes a padded reward batch gives (6 × 246,
4 × 367 tokens, 9 query and 3 key/value heads of 64), where a bfloat16 ``bmm`` of the same
sizes runs at 360–420 GFLOP/s. There attention took 22% of a SmolLM2-135M scoring run for
about 4% of its FLOPs (docs/performance.md, "Causal attention on the CPU").

:func:`causal_attention` computes the same softmax attention with two GEMMs per block of
:func:`query_block` query positions: the block's queries against the keys up to its last
position (everything later is masked for all of them), the positions above the diagonal set to
−∞ in place, a softmax (float32 inside, bfloat16 out), then the probabilities against the values.
The query heads that share a key/value head (grouped-query attention) are folded into one GEMM's
rows, so keys and values are never repeated per head. Scores are kept in bfloat16, as
transformers' ``eager`` attention keeps them; measured end to end on 120 HH texts, the scores'
distance from float32 scoring was the flash kernel's (mean |Δ| 0.016 for both; max 0.059 vs
0.072). Measured per call against the flash kernel: 2.5× at 6 × 246, 1.9× at 4 × 367, 2.3× at
12 × 120, 1.6× at 2 × 700, 1.5× at 1 × 1400 tokens.

It serves calls the flash kernel would get with ``is_causal``: no mask, as many keys as queries,
no dropout, soft-capping or sinks (:func:`applies`). The function is registered as the custom
operator ``rewardkit::cpu_causal_attention`` so compiled transformer blocks call it as one
opaque operator (its loop over blocks depends on the sequence length, which compiled graphs
keep symbolic).
"""

from __future__ import annotations

from typing import Any

import torch

#: Query positions per block: short rows in blocks of 32, long ones of 128 (per-call sweep of
#: 32/64/128/256 on the shapes above; 64 was best or within 5% of best from 120 to 1,400 tokens).
BLOCKS = ((128, 32), (1024, 64))
LONG_BLOCK = 128

#: Longest rows the blocked path serves: past them the flash kernel is as fast or faster
#: (measured 0.99× at 700 tokens, 0.69× at 1,400; 1.3–1.5× from 60 to 367).
MAX_LENGTH = 512

#: Data types the blocked path serves (float32 keeps the flash kernel: its GEMMs are no faster).
DTYPES = (torch.bfloat16,)


def query_block(length: int) -> int:
    """Query positions per block for rows of ``length`` tokens (:data:`BLOCKS`)."""
    for longest, block in BLOCKS:
        if length <= longest:
            return block
    return LONG_BLOCK


def applies(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float,
    kwargs: dict[str, Any],
) -> bool:
    """Whether a transformers attention call is plain causal self-attention this path computes:
    CPU, bfloat16, no gradient wanted, no mask, as many keys as queries (2 to
    :data:`MAX_LENGTH`), a causal module, no dropout, soft-capping, sinks or position bias, and
    whole groups of query heads per key head."""
    if query.device.type != "cpu" or query.dtype not in DTYPES or attention_mask is not None:
        return False
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad):
        return False  # no backward here: a switched model trained or differentiated keeps SDPA
    if dropout or any(kwargs.get(k) is not None for k in ("softcap", "s_aux", "position_bias")):
        return False
    causal = kwargs.get("is_causal")
    if not (causal if causal is not None else getattr(module, "is_causal", True)):
        return False
    heads, kv_heads, length = query.shape[1], key.shape[1], query.shape[2]
    return heads % kv_heads == 0 and 1 < length <= MAX_LENGTH and key.shape[2] == length


def causal_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float
) -> torch.Tensor:
    """Softmax(q·kᵀ·scale, causal)·v for (n, heads, L, d) queries and (n, kv heads, L, d) keys
    and values, computed in query blocks (module docstring). Returns (n, L, heads, d),
    contiguous: the layout transformers' attention functions return."""
    n, heads, length, d = query.shape
    kv_heads = key.shape[1]
    rep = heads // kv_heads
    q5 = query.view(n, kv_heads, rep, length, d)
    k3 = key.reshape(n * kv_heads, length, d)
    v3 = value.reshape(n * kv_heads, length, d)
    out = query.new_empty((n, length, heads, d))
    out5 = out.view(n, length, kv_heads, rep, d).permute(0, 2, 3, 1, 4)  # (n, kv, rep, L, d)
    block = query_block(length)
    above = torch.ones(block, block, dtype=torch.bool, device=query.device).triu_(1)
    for start in range(0, length, block):
        end = min(length, start + block)
        size = end - start
        rows = q5[:, :, :, start:end].reshape(n * kv_heads, rep * size, d)
        keys = k3[:, :end].transpose(1, 2)
        scores = torch.bmm(rows, keys)
        _mask_above(scores, above, rep, start)
        # Again, scaled, less each row's maximum inside the GEMM (accumulated in float32,
        # rounded once): the scores that dominate the softmax keep float32 precision.
        offset = scores.amax(dim=-1, keepdim=True).mul_(-scale).expand_as(scores)
        scores = torch.baddbmm(offset, rows, keys, alpha=scale)
        _mask_above(scores, above, rep, start)
        probs = torch.softmax(scores, dim=-1)
        out5[:, :, :, start:end] = torch.bmm(probs, v3[:, :end]).view(n, kv_heads, rep, size, d)
    return out


def _mask_above(scores: torch.Tensor, above: torch.Tensor, rep: int, start: int) -> None:
    """Set to −∞, in place, the scores of keys after their query: the block's diagonal square
    of (rows, rep·size, end) scores whose queries start at position ``start``."""
    rows, folded, end = scores.shape
    size = folded // rep
    square = scores.view(rows, rep, size, end)[:, :, :, start:end]
    square.masked_fill_(above[:size, :size], float("-inf"))


@torch.library.custom_op("rewardkit::cpu_causal_attention", mutates_args=())
def causal_attention_op(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float
) -> torch.Tensor:
    """:func:`causal_attention` as one operator for compiled graphs."""
    return causal_attention(query, key, value, scale)


@causal_attention_op.register_fake
def _causal_attention_shape(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float
) -> torch.Tensor:
    n, heads, length, d = query.shape
    return query.new_empty((n, length, heads, d))

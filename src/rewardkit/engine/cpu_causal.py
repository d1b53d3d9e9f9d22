"""Causal self-attention on the CPU in bfloat16, from blocked GEMMs instead of the flash kernel.

PyTorch's flash kernel for the CPU runs a bfloat16 call at about its float32 speed: on a
2-core AVX-512 host (no AMX) 55–85 GFLOP/s at the shapes a padded reward batch gives (6 × 246,
4 × 367 tokens, 9 query and 3 key/value heads of 64), where a bfloat16 ``bmm`` of the same
sizes runs at 360–420 GFLOP/s. There attention took 22% of a SmolLM2-135M scoring run for
about 4% of its FLOPs (docs/performance.md, "Causal attention on the CPU").

:func:`causal_attention` computes the same softmax attention per block of :func:`query_block`
query positions: the block's queries against the keys up to its last position (everything
later is masked for all of them), with the query heads that share a key/value head (grouped-
query attention) folded into one GEMM's rows, so keys and values are never repeated per head;
the positions above the diagonal set to −∞ in place; then, because a bfloat16 GEMM rounds its
output to bfloat16 (an error of |score|·2⁻⁹, up to 0.06 at the scaled scores of ~29 SmolLM2
reaches), the scores again from a second GEMM, scaled and less each row's maximum inside the
GEMM (``baddbmm``, accumulated in float32, rounded once), so the scores that dominate the
softmax keep float32 precision; a softmax (float32 inside); the probabilities against the
values. Against float32 attention its error is the flash kernel's (tests; random inputs at real
score scales: max |Δ| 0.100–0.135 for both); end to end on 120 HH texts scored by SmolLM2-135M
in bfloat16, the scores' distance from float32 scoring was mean 0.019 / max 0.066 against the
flash kernel's 0.018 / 0.072. Without the second GEMM it ran 1.6–2.5× the flash kernel but with
up to 10× its error. Measured per call (``benchmarks/cpu_attention.py``, 2 threads): 1.37× at
6 × 246, 1.46× at 4 × 367, 1.21× at 12 × 120, 1.05× at 24 × 60, 1.32× at 2 × 512 tokens, and
0.83× at 1 × 700 (longer rows keep the flash kernel: :data:`MAX_LENGTH`); end to end on 60 HH
pairs (padded, eager, four interleaved rounds) 20.6 s against 22.0 s.

It is opt-in (``REWARDKIT_CPU_ATTENTION=blocked``; default ``flash``): a call is some forty small
operators where the flash kernel is one, and each opens an OpenMP parallel region whose sleeping
threads (rewardkit's wait policy, docs/performance.md "OpenMP waits") pay a wake-up when other
processes want the cores. Measured on 4 × 256 tokens while three test runs shared the 2 cores:
median 58 ms against the flash kernel's 16 (mean 109 against 18), where the quiet machine gave
1.3× the other way. Like a spinning wait policy, it is for a machine of your own. On an earlier
host of this project (2048³ bf16 GEMMs at 900+ GFLOP/s) a written-out attention (two matmuls
and a softmax) ran 3× slower than SDPA even on a quiet machine.

It serves calls the flash kernel would get with ``is_causal``: no mask, as many keys as queries,
no dropout, soft-capping or sinks (:func:`applies`). The function is registered as the custom
operator ``rewardkit::cpu_causal_attention`` so compiled transformer blocks call it as one
opaque operator (its loop over blocks depends on the sequence length, which compiled graphs
keep symbolic).
"""

from __future__ import annotations

import os
from typing import Any

import torch

#: Query positions per block: 32 for rows up to 128 tokens, 64 up to 1,024, else 128 (per-call
#: sweep of 32/64/128/256 on the shapes above).
BLOCKS = ((128, 32), (1024, 64))
LONG_BLOCK = 128

#: Longest rows the blocked path serves: past them the flash kernel is as fast or faster
#: (measured 0.83× at 700 tokens; 1.05–1.46× from 60 to 512).
MAX_LENGTH = 512

#: Data types the blocked path serves (float32 keeps the flash kernel: its GEMMs are no faster).
DTYPES = (torch.bfloat16,)

MODE_ENV = "REWARDKIT_CPU_ATTENTION"
MODES = ("flash", "blocked")

#: (query heads, key/value heads, head dim) → whether this process uses the blocked path.
_USE: dict[tuple[int, int, int], bool] = {}


def mode(env: dict[str, str] | None = None) -> str:
    """The ``REWARDKIT_CPU_ATTENTION`` setting (``flash`` when unset or not one of :data:`MODES`,
    as ``REWARDKIT_FP32_LINEAR`` reads its own)."""
    value = (os.environ if env is None else env).get(MODE_ENV, "flash").strip().lower()
    return value if value in MODES else "flash"


def prepare(heads: int, kv_heads: int, head_dim: int) -> bool:
    """Decide, once per process, whether bfloat16 causal calls of this attention shape take the
    blocked path (:func:`mode` is ``blocked`` and query heads come in whole groups per key/value
    head); compiled graphs read the decision without tracing the environment. Returns it."""
    shape = (int(heads), int(kv_heads), int(head_dim))
    if shape not in _USE:
        _USE[shape] = mode() == "blocked" and shape[1] > 0 and shape[0] % shape[1] == 0
    return _USE[shape]


def prepare_body(body: torch.nn.Module) -> bool:
    """:func:`prepare` for a bfloat16 body's attention shape (read from its text config);
    False for other dtypes or a config without the usual fields."""
    try:
        if next(body.parameters()).dtype not in DTYPES:
            return False
    except StopIteration:
        return False
    from rewardkit.engine.adapter import text_config

    cfg = text_config(body.config)
    heads = getattr(cfg, "num_attention_heads", None)
    hidden = getattr(cfg, "hidden_size", None)
    if not isinstance(heads, int) or not isinstance(hidden, int) or heads < 1:
        return False
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    return prepare(heads, int(kv_heads), int(head_dim))


def query_block(length: int) -> int:
    """Query positions per block for rows of ``length`` tokens (:data:`BLOCKS`)."""
    for longest, block in BLOCKS:
        if length <= longest:
            return block
    return LONG_BLOCK


def serves(query: torch.Tensor, key: torch.Tensor) -> bool:
    """Whether the blocked path computes causal self-attention of ``query`` over ``key``: CPU,
    bfloat16, no gradient wanted, as many keys as queries (2 to :data:`MAX_LENGTH`), whole
    groups of query heads per key head, and a shape :func:`prepare` chose it for."""
    if query.device.type != "cpu" or query.dtype not in DTYPES:
        return False
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad):
        return False  # no backward here: a switched model trained or differentiated keeps SDPA
    heads, kv_heads, length = query.shape[1], key.shape[1], query.shape[2]
    if not (heads % kv_heads == 0 and 1 < length <= MAX_LENGTH and key.shape[2] == length):
        return False
    return _USE.get((heads, kv_heads, query.shape[3]), False)


def applies(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float,
    kwargs: dict[str, Any],
) -> bool:
    """Whether a transformers attention call is plain causal self-attention the blocked path
    computes: no mask, a causal module, no dropout, soft-capping, sinks or position bias, and
    :func:`serves`."""
    if attention_mask is not None or dropout:
        return False
    if any(kwargs.get(k) is not None for k in ("softcap", "s_aux", "position_bias")):
        return False
    causal = kwargs.get("is_causal")
    if not (causal if causal is not None else getattr(module, "is_causal", True)):
        return False
    return serves(query, key)


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

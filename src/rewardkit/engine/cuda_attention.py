"""The mask-free layouts' kernels on CUDA: ``varlen_attn`` (FlashAttention over cumulative
lengths, no padding) with its log-sum-exp, and the shared layout's two parts merged by them
(cascade attention). :mod:`rewardkit.engine.attention` chooses them on CUDA; the CPU has
:mod:`rewardkit.engine.cpu_attention`. See docs/performance.md ("Attention without dense masks").
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from rewardkit.engine.attention import SharedPrefix


@functools.cache
def varlen_parameters() -> frozenset[str]:
    """The keyword parameters of this torch's ``varlen_attn`` (empty: none usable here).

    CUDA needs ``varlen_attn`` with log-sum-exp output (``return_aux``, torch ≥ 2.10)."""
    try:
        from torch.nn.attention import varlen
    except ImportError:
        return frozenset()
    params = frozenset(inspect.signature(varlen.varlen_attn).parameters)
    if "return_aux" not in params or not ({"window_size", "is_causal"} & params):
        return frozenset()
    return params


def half_precision(body: torch.nn.Module) -> bool:
    """FlashAttention has no float32 kernel: float32 bodies keep the dense path on CUDA."""
    return next(body.parameters()).dtype in (torch.bfloat16, torch.float16)


def varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
    scale: float,
    causal: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``varlen_attn`` over flat (T, heads, d) tokens with its log-sum-exp (T, heads), whichever
    of its signatures (``window_size`` from torch 2.11, ``is_causal`` before) this torch has."""
    from torch.nn.attention.varlen import AuxRequest, varlen_attn

    params = varlen_parameters()
    kwargs: dict[str, Any] = {"return_aux": AuxRequest(lse=True)}
    if "scale" in params:
        kwargs["scale"] = scale
    else:  # the kernel scales by d^-1/2
        q = q * (scale * q.shape[-1] ** 0.5)
    if "window_size" in params:
        kwargs["window_size"] = (-1, 0) if causal else (-1, -1)
    else:
        kwargs["is_causal"] = causal
    if k.shape[1] != q.shape[1]:
        if "enable_gqa" in params:
            kwargs["enable_gqa"] = True
        else:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    out, lse = varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, **kwargs)
    if lse.shape[0] != q.shape[0]:  # (heads, T) in some versions
        lse = lse.transpose(0, 1)
    return out, lse.float()


def cumulative(lengths: torch.Tensor) -> torch.Tensor:
    """Cumulative sequence starts (n + 1,) int32, as varlen kernels take them."""
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=lengths.device)
    out[1:] = lengths.cumsum(0)
    return out


def merge_attention(
    out_a: torch.Tensor, lse_a: torch.Tensor, out_b: torch.Tensor, lse_b: torch.Tensor
) -> torch.Tensor:
    """Attention over keys A ∪ B from attention over A and over B and their log-sum-exps:
    ``(e^{l_a}·o_a + e^{l_b}·o_b) / (e^{l_a} + e^{l_b})``; ``lse`` has ``out``'s shape minus d."""
    top = torch.maximum(lse_a, lse_b)
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)  # no keys at all: output 0
    wa = torch.exp(lse_a - top)[..., None]
    wb = torch.exp(lse_b - top)[..., None]
    merged = (out_a.float() * wa + out_b.float() * wb) / (wa + wb).clamp_min(1e-30)
    return merged.to(out_a.dtype)


def shared_cuda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pk: torch.Tensor,
    pv: torch.Tensor,
    sp: SharedPrefix,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both parts of a shared-prefix suffix pass with ``varlen_attn`` over flat suffix tokens
    (rows·S, h, d): each prefix's rows against its real keys, and each row causally against
    itself, with their log-sum-exps (merged by :func:`merge_attention`)."""
    # A: queries grouped by prefix, keys the prefix's real positions.
    qa_index = sp.group_index[sp.group_valid]
    per_prefix = sp.group_valid.sum(dim=1)
    positions = torch.arange(pk.shape[2], device=q.device)
    real = positions[None, :] < sp.prefix_len[:, None]  # (p, P)
    oa, la = varlen(
        q[qa_index],
        pk.transpose(1, 2)[real],  # (Σ prefix, kv heads, d)
        pv.transpose(1, 2)[real],
        cumulative(per_prefix),
        cumulative(sp.prefix_len),
        int(per_prefix.max()),
        int(sp.prefix_len.max()),
        scale,
        False,
    )
    out_a = q.new_zeros(q.shape)
    lse_a = torch.full(q.shape[:2], -torch.inf, device=q.device)
    out_a[qa_index] = oa
    lse_a[qa_index] = la
    # B: each row's own suffix tokens, causally.
    t = torch.arange(sp.width, device=q.device)
    own = t[None, :] < sp.suffix_len[:, None]
    idx = (torch.arange(len(sp.suffix_len), device=q.device)[:, None] * sp.width + t)[own]
    longest = int(sp.suffix_len.max())
    cu = cumulative(sp.suffix_len)
    ob, lb = varlen(q[idx], k[idx], v[idx], cu, cu, longest, longest, scale, True)
    out_b = q.new_zeros(q.shape)
    lse_b = torch.full(q.shape[:2], -torch.inf, device=q.device)
    out_b[idx] = ob
    lse_b[idx] = lb
    return out_a, lse_a, out_b, lse_b

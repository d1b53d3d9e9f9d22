"""Mask-free attention for the packed and shared-prefix layouts: memory O(tokens), not O(tokens²).

The dense path (:mod:`rewardkit.engine.execute`) gives the model a (b, 1, q, k) mask: block
diagonal for packs, "own prefix + own causal suffix" for shared prompts. That mask alone is
quadratic in the tokens of a batch, and it pushes SDPA onto its masked kernels. Here the model's
attention calls one registered function instead (transformers' ``AttentionInterface``, under
:data:`NAME`) that reads the layout from a context variable set for one forward pass and never
builds a (q × k) mask:

- **packed** (:class:`Segments`): each packed row is one segment. On CUDA the segments go to
  ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention over cumulative lengths, no padding).
  Elsewhere they are gathered into length buckets ``(n, heads, L, d)`` and run by SDPA with
  ``is_causal`` (decoders) or a (n, 1, 1, L) key-padding mask (encoders), then scattered back.
- **shared** (:class:`SharedPrefix`): suffix tokens attend to their prefix's keys and values
  (computed once per distinct prefix, never copied per row) and, causally, to their own tokens.
  The two parts are computed separately with their log-sum-exp and merged exactly:
  ``o = (e^{l₁}·o₁ + e^{l₂}·o₂) / (e^{l₁} + e^{l₂})`` (cascade attention). On CUDA both parts are
  ``varlen_attn`` calls; on CPU (:mod:`rewardkit.engine.cpu_attention`) they are SDPA's flash
  kernel for CPU, which returns the log-sum-exp: one causal call over every row's suffix and
  one unmasked call per prefix with its rows (and grouped-query heads) folded into the queries.

When no layout is active the function is transformers' ``sdpa`` path, and the mask function is
``sdpa_mask``, so padded batches through a switched model compute the same attention (with
``REWARDKIT_CPU_ATTENTION=blocked``, plain causal calls in bfloat16 on the CPU go to
:mod:`rewardkit.engine.cpu_causal` instead: blocked GEMMs, opt-in). Only models
on ``sdpa`` are switched (:func:`enable`); ``eager`` models and other devices keep the dense path.
See docs/performance.md ("Attention without dense masks").
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.engine import cpu_attention, cpu_causal, cuda_attention, layout_op
from rewardkit.engine.batching import plan_batches
from rewardkit.engine.cpu_attention import repeat_heads
from rewardkit.engine.layout_op import Capture

#: The name the mask-free attention is registered under in transformers' interfaces.
NAME = "rewardkit_varlen"
#: Devices with a mask-free kernel (CUDA: varlen FlashAttention; CPU: SDPA's flash kernel).
DEVICES = ("cpu", "cuda")
#: Extra key positions a length bucket may pad, as a cost per bucket (tokens) in the planner.
BUCKET_OVERHEAD = 64


@dataclass(frozen=True)
class Segments:
    """A packed forward pass: ``lengths[b]`` are the rows packed, in order, into sequence b."""

    lengths: tuple[tuple[int, ...], ...]
    width: int
    causal: bool
    #: Per length bucket: (flat token index (n, L), valid (n, L)); tokens are ``b * width + t``.
    buckets: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    #: Flat index of every real token in segment order, and cumulative segment lengths (int32).
    tokens: torch.Tensor
    cu_seqlens: torch.Tensor
    max_len: int


@dataclass(frozen=True)
class SharedPrefix:
    """A suffix forward pass over rows whose prefixes already ran.

    ``keys[layer]``/``values[layer]`` are (p, kv heads, P, d), right-padded; prefix i has
    ``prefix_len[i]`` real positions; row r continues prefix ``owner[r]`` with ``suffix_len[r]``
    tokens (suffixes right-padded to ``width``).
    """

    keys: Sequence[torch.Tensor]
    values: Sequence[torch.Tensor]
    prefix_len: torch.Tensor
    owner: torch.Tensor
    suffix_len: torch.Tensor
    width: int
    #: Rows grouped by owner: (p, M) flat suffix-token index (``row * width + t``) and validity.
    group_index: torch.Tensor
    group_valid: torch.Tensor
    #: Per prefix: (its length, its rows' longest suffix, its rows), as Python ints (CPU path).
    groups: tuple[tuple[int, int, tuple[int, ...]], ...] = ()


#: What one forward pass computes: packed segments, a shared-prefix suffix pass, or a causal
#: pass that keeps its keys and values (a shared layout's prefix pass).
Layout = Segments | SharedPrefix | Capture

_ACTIVE: contextvars.ContextVar[Layout | None] = contextvars.ContextVar(
    "rewardkit_attention_layout", default=None
)
_REGISTER = threading.Lock()
_registered = False
#: How many forward passes, in any thread, have a layout active, and whether any has: compiled
#: blocks read the flag (a plain global dynamo traces and guards on) and only then the context
#: variable (which dynamo cannot trace: a graph break in every block), so a padded pass compiles
#: its blocks whole.
_IN_USE = threading.Lock()
_active_passes = 0
_any_active = False


# -- registration and switching ------------------------------------------------------------------


def _register() -> None:
    global _registered
    with _REGISTER:
        if _registered:
            return
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(NAME, attention_forward)
        AttentionMaskInterface.register(NAME, mask_forward)
        _registered = True


def enabled(body: torch.nn.Module) -> bool:
    """Whether ``body`` runs on the mask-free attention (:func:`enable` switched it)."""
    cfg = getattr(body, "config", None)
    return getattr(cfg, "_attn_implementation", None) == NAME


def switchable(body: torch.nn.Module, device: torch.device) -> bool:
    """Whether :func:`enable` puts ``body`` on ``device`` on the mask-free attention."""
    if device.type not in DEVICES:
        return False
    if device.type == "cuda" and not (
        cuda_attention.varlen_parameters() and cuda_attention.half_precision(body)
    ):
        return False
    impl = getattr(getattr(body, "config", None), "_attn_implementation", None)
    return enabled(body) or impl == "sdpa"


def enable(body: torch.nn.Module, device: torch.device) -> bool:
    """Switch an ``sdpa`` body on ``device`` to the mask-free attention; True when it runs on it.

    The switch is permanent and harmless: with no layout active the function is the ``sdpa``
    path itself. Bodies on ``eager``, flash-attention or other implementations, and devices
    without a kernel here, are left alone (the engine then builds dense masks). Its attention
    modules get their layer index as a buffer (:func:`layout_op.tag_layers`).
    """
    if not switchable(body, device):
        return False
    if device.type == "cpu":
        cpu_causal.prepare_body(body)  # bfloat16: the opt-in blocked causal attention
    if not enabled(body):
        _register()
        body.set_attn_implementation(NAME)
    layout_op.tag_layers(body)
    return enabled(body)


def uses_varlen(device: torch.device) -> bool:
    """Whether attention on ``device`` runs on ``varlen_attn`` (CUDA) rather than SDPA buckets."""
    return device.type == "cuda"


@contextlib.contextmanager
def active(layout: Layout) -> Iterator[None]:
    """Within the block, the mask-free attention computes ``layout`` (one forward pass)."""
    global _active_passes, _any_active
    with _IN_USE:
        _active_passes += 1
        _any_active = True
    token = _ACTIVE.set(layout)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        with _IN_USE:
            _active_passes -= 1
            _any_active = _active_passes > 0


def current() -> Layout | None:
    """The layout active in this thread's forward pass, if any."""
    return _ACTIVE.get() if _any_active else None


# -- planning one forward pass -------------------------------------------------------------------


def segments(
    lengths: Sequence[Sequence[int]], width: int, causal: bool, device: torch.device
) -> Segments:
    """The :class:`Segments` of packs whose rows have ``lengths`` (packs padded to ``width``)."""
    flat_len: list[int] = []
    starts: list[int] = []
    for b, pack in enumerate(lengths):
        offset = 0
        for n in pack:
            flat_len.append(int(n))
            starts.append(b * width + offset)
            offset += int(n)
    buckets = []
    # Length buckets for the SDPA path (varlen kernels take the segments as they are).
    plan = [] if uses_varlen(device) else plan_batches(flat_len, 1 << 62, 64, None, BUCKET_OVERHEAD)
    for group in plan:
        longest = max(flat_len[i] for i in group)
        t = torch.arange(longest)[None, :]
        n = torch.tensor([flat_len[i] for i in group])[:, None]
        base = torch.tensor([starts[i] for i in group])[:, None]
        valid = t < n
        index = torch.where(valid, base + t, base)  # padding repeats the segment's first token
        buckets.append((index.to(device), valid.to(device)))
    tokens = torch.cat([torch.arange(s, s + n) for s, n in zip(starts, flat_len, strict=True)])
    cu = cuda_attention.cumulative(torch.tensor(flat_len, dtype=torch.long))
    return Segments(
        tuple(tuple(int(n) for n in p) for p in lengths),
        width,
        causal,
        tuple(buckets),
        tokens.to(device),
        cu.to(device),
        max(flat_len),
    )


def shared_prefix(
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    prefix_len: Sequence[int],
    owner: Sequence[int],
    suffix_len: Sequence[int],
    width: int,
) -> SharedPrefix:
    """The :class:`SharedPrefix` of rows continuing prefixes whose per-layer keys and values ran."""
    device = layers[0][0].device
    owner_t = torch.tensor(list(owner), dtype=torch.long, device=device)
    slen = torch.tensor(list(suffix_len), dtype=torch.long, device=device)
    # Suffix tokens (row·width + t) in row order within each prefix's rows, then laid out
    # (prefix, position in its group), padded to the largest group.
    order = torch.argsort(owner_t, stable=True)
    t = torch.arange(width, device=device)
    own = t[None, :] < slen[order][:, None]
    flat = (order[:, None] * width + t[None, :])[own]
    group = owner_t[order][:, None].expand(-1, width)[own]
    counts = torch.bincount(group, minlength=len(prefix_len))
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(flat), device=device) - starts[group]
    index = torch.zeros((len(prefix_len), int(counts.max())), dtype=torch.long, device=device)
    valid = torch.zeros(index.shape, dtype=torch.bool, device=device)
    index[group, position] = flat
    valid[group, position] = True
    rows_of: list[list[int]] = [[] for _ in prefix_len]
    for r, o in enumerate(owner):
        rows_of[o].append(r)
    groups = tuple(
        (int(n), max(int(suffix_len[r]) for r in rows), tuple(rows))
        for n, rows in zip(prefix_len, rows_of, strict=True)
    )
    return SharedPrefix(
        [k for k, _ in layers],
        [v for _, v in layers],
        torch.tensor(list(prefix_len), dtype=torch.long, device=device),
        owner_t,
        slen,
        width,
        index,
        valid,
        groups,
    )


# -- the functions transformers calls --------------------------------------------------------------


def mask_forward(**kwargs: Any) -> torch.Tensor | None:
    """transformers' mask hook: no mask while a layout is active, else ``sdpa_mask``."""
    if current() is not None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(**kwargs)


def attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention hook: (b, heads, q, d) inputs → (b, q, heads, d) output.

    While some pass has a layout, maskless inference calls go through one custom operator
    (:mod:`rewardkit.engine.layout_op`), which compiled blocks call without a graph break."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    plain = kwargs.get("softcap") is None and kwargs.get("s_aux") is None
    if _any_active and attention_mask is None and not torch.is_grad_enabled():
        index = layout_op.layer_index(module)
        if index is not None and plain:
            is_causal = bool(getattr(module, "is_causal", True)) and query.shape[2] > 1
            return layout_op.layout_attention(query, key, value, index, scale, is_causal), None
    layout = current()
    if isinstance(layout, Capture):
        layout.keep(int(module.layer_idx), key, value)
    if layout is None or isinstance(layout, Capture):
        if cpu_causal.applies(module, query, key, attention_mask, dropout, kwargs):
            return cpu_causal.causal_attention_op(query, key, value, scale), None
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if not plain:
        raise ValueError("the mask-free layouts do not support attention soft-capping or sinks")
    return layout_attention_eager(query, key, value, int(module.layer_idx), scale, True), None


def layout_attention_eager(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layer: int,
    scale: float,
    is_causal: bool,
) -> torch.Tensor:
    """One layer's attention in this thread's layout (none: plain attention, causal or not);
    a :class:`Capture` pass also keeps the layer's keys and values."""
    layout = current()
    if isinstance(layout, Segments):
        return _packed(query, key, value, layout, scale)
    if isinstance(layout, SharedPrefix):
        return _shared(query, key, value, layout, layer, scale)
    if isinstance(layout, Capture):
        layout.keep(layer, key, value)
    if is_causal:
        return causal(query, key, value, scale)
    heads = query.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        query, repeat_heads(key, heads), repeat_heads(value, heads), scale=scale
    ).transpose(1, 2)


# -- packed ----------------------------------------------------------------------------------------


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(b, heads, T, d) → (b·T, heads, d)."""
    return x.transpose(1, 2).reshape(-1, x.shape[1], x.shape[3])


def _packed(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, seg: Segments, scale: float
) -> torch.Tensor:
    b, heads, width, d = query.shape
    q, k, v = _flat(query), _flat(key), _flat(value)
    out = q.new_zeros(q.shape)
    if uses_varlen(query.device):
        idx, cu = seg.tokens, seg.cu_seqlens
        o, _ = cuda_attention.varlen(
            q[idx], k[idx], v[idx], cu, cu, seg.max_len, seg.max_len, scale, seg.causal
        )
        out[idx] = o
        return out.view(b, width, heads, d)
    for index, valid in seg.buckets:
        qb = q[index].transpose(1, 2)  # (n, heads, L, d)
        kb, vb = k[index].transpose(1, 2), v[index].transpose(1, 2)
        if seg.causal:  # padding sits after each segment's tokens: causality hides it
            ob = causal(qb, kb, vb, scale)
        else:
            ob = torch.nn.functional.scaled_dot_product_attention(
                qb,
                repeat_heads(kb, heads),
                repeat_heads(vb, heads),
                attn_mask=valid[:, None, None, :],
                scale=scale,
            ).transpose(1, 2)
        out[index[valid]] = ob[valid]
    return out.view(b, width, heads, d)


def causal(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float
) -> torch.Tensor:
    """Causal self-attention of (n, heads, L, d) queries over (n, kv heads, L, d) keys/values,
    as (n, L, heads, d): blocked GEMMs for bfloat16 on the CPU where they were asked for
    (:func:`rewardkit.engine.cpu_causal.serves`), else SDPA with ``is_causal``."""
    if cpu_causal.serves(query, key):
        return cpu_causal.causal_attention_op(query, key, value, scale)
    heads = query.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        query, repeat_heads(key, heads), repeat_heads(value, heads), is_causal=True, scale=scale
    ).transpose(1, 2)


# -- shared prefix -------------------------------------------------------------------------------


def _shared(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    sp: SharedPrefix,
    layer: int,
    scale: float,
) -> torch.Tensor:
    rows, heads, width, d = query.shape
    pk, pv = sp.keys[layer], sp.values[layer]  # (p, kv heads, P, d)
    if not uses_varlen(query.device):
        return cpu_attention.shared_prefix_attention(query, key, value, pk, pv, sp.groups, scale)
    q = _flat(query)  # (rows·S, heads, d)
    parts = cuda_attention.shared_cuda(q, _flat(key), _flat(value), pk, pv, sp, scale)
    return cuda_attention.merge_attention(*parts).view(rows, width, heads, d)

"""Running a transformer body in the engine's layouts and returning padded-layout hidden states.

Every function returns hidden states shaped as the plain right-padded batch of the same rows
would give them, (rows, longest row, H), so a reward's readout code is the same for all layouts.

- :func:`shared_prefix_hidden`: each distinct prefix of a batch runs once (in length-sorted
  sub-batches so prefixes of different lengths do not pad each other), keeping its per-layer
  keys and values (on the mask-free attention, :class:`layout_op.Capture`; else a transformers
  cache); the rows' remaining tokens then run on top of them, a row seeing its own prefix and,
  causally, its own tokens — never another row's (cascade attention, or a 4-D mask over
  per-row cache copies).
- :func:`packed_hidden`: rows concatenated into packed sequences with per-row position ids and a
  block-diagonal (causal for decoders) 4-D mask: no padding tokens inside a pack.
- :func:`padded_hidden`: a right-padded batch through a causal body with no mask at all: a real
  token only attends to earlier positions, which are all real, so its hidden state is the masked
  run's; attention runs as plain causal SDPA (no (b, w, w) mask built or read, half the scores).

Custom 4-D masks pass through transformers' mask creation unchanged for the ``sdpa`` and ``eager``
attention implementations; models with per-layer masks other than sliding windows are not given
these layouts, and sliding-window models get them only for runs whose rows all fit in the window
(:func:`model_layouts`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardkit.engine import attention, layout_op
from rewardkit.engine.adapter import text_config
from rewardkit.engine.layout import attention_width


def padded_width(longest: int, multiple: int = 1, limit: int | None = None) -> int:
    """The width a padded batch whose longest row has ``longest`` tokens runs at: rounded up to
    a multiple of ``multiple``, but never past ``limit`` (the model's longest sequence; without
    it, no rounding)."""
    if multiple > 1 and limit is not None:
        return min(-(-longest // multiple) * multiple, max(longest, limit))
    return longest


def pad_rows(
    seqs: Sequence[Sequence[int]],
    types: Sequence[Sequence[int] | None] | None,
    pad_id: int,
    multiple: int = 1,
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Right-padded (ids, attention mask, token types or None) of token-id rows, as wide as
    :func:`padded_width` makes the longest row."""
    width = padded_width(max(len(s) for s in seqs), multiple, limit)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    tt = None if types is None else torch.zeros((len(seqs), width), dtype=torch.long)
    for j, s in enumerate(seqs):
        n = len(s)
        ids[j, :n] = torch.tensor(list(s), dtype=torch.long)
        mask[j, :n] = 1
        if tt is not None and types is not None and types[j] is not None:
            tt[j, :n] = torch.tensor(list(types[j] or []), dtype=torch.long)
    return ids, mask, tt


def padded_hidden(
    body: torch.nn.Module, input_ids: torch.Tensor, mask_free: bool = True
) -> torch.Tensor:
    """Last hidden states (b, w, H) of a right-padded batch through a causal ``body``, run
    without an attention mask and without a key/value cache (module docstring). Positions past a
    row's end hold values no readout may use, as in the masked run. With ``mask_free`` the body
    runs on :mod:`rewardkit.engine.attention` where it allows it (its ``sdpa`` path, or the
    opt-in blocked causal attention of :mod:`rewardkit.engine.cpu_causal`)."""
    if mask_free:
        attention.enable(body, input_ids.device)
    return body(input_ids=input_ids, use_cache=False).last_hidden_state


def _config(body: torch.nn.Module) -> Any:
    return getattr(body, "config", None)


def model_position_limit(body: torch.nn.Module | None) -> int | None:
    """The longest sequence the body's position embeddings allow (None: unknown)."""
    n = getattr(_config(body), "max_position_embeddings", None) if body is not None else None
    return int(n) if isinstance(n, int) and n > 0 else None


#: Model types whose attention adds ALiBi biases built from a 2-D padding mask: they take no
#: custom 4-D mask or per-row positions, and a key/value cache shifts their biases.
ALIBI_TYPES = ("bloom", "mpt")
#: Encoders whose body the engine may pack (the readout pools [CLS] through the model's pooler).
PACKABLE_ENCODERS = ("bert",)
#: Encoders (bidirectional attention): never shared prompts.
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "deberta", "deberta-v2")


def _sub_configs(cfg: Any) -> list[Any]:
    """The config and, for multimodal wrappers (Gemma 3), the text config its layers use."""
    text = text_config(cfg)
    return [cfg] if text is cfg else [cfg, text]


def _window(cfg: Any) -> int | None:
    """One (text) config's sliding window in tokens (None: its layers attend to the whole row)."""
    window = getattr(cfg, "sliding_window", None)
    if not window or not getattr(cfg, "use_sliding_window", True):
        return None
    if "sliding_attention" not in (getattr(cfg, "layer_types", None) or ["sliding_attention"]):
        return None  # a window in the config that no layer uses (Qwen2 with use_sliding_window)
    try:
        return max(int(window), 1)
    except (TypeError, ValueError, OverflowError):
        return 1  # a window that cannot be read: as narrow as can be, so every layout refuses


def _config_refusal(cfg: Any, longest: int | None) -> str | None:
    """Why one (text) config's attention cannot take the packed/shared layouts for rows of up
    to ``longest`` tokens (None: it can). A sliding window no row reaches changes nothing: a
    token attends to the ``window`` tokens ending at itself, all of its row when the row is no
    longer than the window; ``longest=None`` (rows unknown) refuses any window."""
    window = _window(cfg)
    if window and (longest is None or longest > window):
        rows = f" and rows of up to {longest} tokens" if longest is not None else ""
        return f"sliding-window attention (window {window}){rows}"
    kinds = set(getattr(cfg, "layer_types", None) or ["full_attention"])
    allowed = {"full_attention", "sliding_attention"} if window else {"full_attention"}
    if kinds - allowed:
        return f"per-layer attention kinds {sorted(kinds)}"
    local = getattr(cfg, "attention_layers", None) or getattr(cfg, "attention_types", None)
    if local and "local" in str(local):
        return "local (windowed) attention layers"
    alibi = getattr(cfg, "attn_config", None)
    alibi = alibi.get("alibi") if isinstance(alibi, dict) else getattr(alibi, "alibi", None)
    if getattr(cfg, "alibi", False) or alibi or getattr(cfg, "model_type", "") in ALIBI_TYPES:
        return "ALiBi position biases (built from a 2-D padding mask)"
    if getattr(cfg, "attn_logit_softcapping", None):
        return "attention logit soft-capping"
    return None


def layout_refusal(body: torch.nn.Module, longest: int | None = None) -> str | None:
    """Why ``body`` cannot run the packed and shared layouts on rows of up to ``longest`` tokens
    (None: it may; the engine still probes it once, :mod:`rewardkit.engine.layout_check`).
    ``longest`` matters only to sliding windows; without it a window refuses. docs/performance.md,
    "Choosing a layout"."""
    cfg = _config(body)
    if cfg is None:
        return "the body has no transformers config"
    impl = getattr(cfg, "_attn_implementation", "eager")
    if impl not in ("sdpa", "eager", attention.NAME):
        return f"attention implementation {impl!r} takes no custom masks"
    if getattr(cfg, "is_encoder_decoder", False):
        return "an encoder-decoder"
    for sub in _sub_configs(cfg):
        reason = _config_refusal(sub, longest)
        if reason:
            return reason
    model_type = getattr(cfg, "model_type", "")
    if model_type in ENCODER_TYPES and model_type not in PACKABLE_ENCODERS:
        return f"{model_type} encoders run padded only"
    return None


def model_layouts(body: torch.nn.Module, longest: int | None = None) -> frozenset[str]:
    """Which of "packed"/"shared" the body can run on rows of up to ``longest`` tokens
    (:func:`layout_refusal` says why not): attention that takes a custom 4-D mask, no per-layer
    attention kinds or ALiBi, no sliding window shorter than a row; "shared" needs a causal body
    with a key/value cache."""
    if layout_refusal(body, longest) is not None:
        return frozenset()
    if getattr(_config(body), "model_type", "") in ENCODER_TYPES:
        return frozenset({"packed"})
    return frozenset({"packed", "shared"})


def model_attention_width(body: torch.nn.Module) -> float | None:
    """:func:`rewardkit.engine.layout.attention_width` of a loaded body."""
    cfg = _config(body)
    hidden = getattr(cfg, "hidden_size", 0) or 0
    layers = getattr(cfg, "num_hidden_layers", 0) or 0
    emb = body.get_input_embeddings() if hasattr(body, "get_input_embeddings") else None
    n_emb = emb.weight.numel() if emb is not None and hasattr(emb, "weight") else 0
    params = sum(p.numel() for p in body.parameters()) - n_emb
    return attention_width(int(hidden), int(layers), int(params))


@functools.cache
def _cache_argument(cls: type) -> str:
    """The keyword a body's forward takes its key/value cache by (``cache`` in transformers 5.24+,
    ``past_key_values`` before)."""
    params = inspect.signature(cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(out: Any) -> Any:
    found = getattr(out, "past_key_values", None)
    return found if found is not None else getattr(out, "cache", None)


def _as_mask(allowed: torch.Tensor, body: torch.nn.Module) -> torch.Tensor:
    """A boolean "may attend" mask (b, 1, q, k) in the form the attention implementation takes."""
    if getattr(_config(body), "_attn_implementation", "eager") in ("sdpa", attention.NAME):
        return allowed
    dtype = next(body.parameters()).dtype
    out = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return out.masked_fill(~allowed, torch.finfo(dtype).min)


def _kv_pairs(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer of a transformers cache (5.x ``layers``; 4.x ``key_cache``)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


def _fresh_cache(like: Any) -> Any:
    return type(like)()


def run_prefixes(
    body: torch.nn.Module,
    prefixes: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    plan: Callable[[list[int]], list[list[int]]],
    capture: bool = False,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], Any]:
    """Run prefixes in length-sorted sub-batches (``plan`` cuts them); return their hidden states
    (p, P, H), per-layer keys/values (p, heads, P, d) right-padded to the longest prefix P, and
    one of the caches the model returned (to make a new cache of the same class).

    With ``capture`` (a body on the mask-free attention) the passes run without a cache: the
    attention keeps each layer's keys and values (:class:`layout_op.Capture`), so compiled blocks
    serve them; no cache is returned."""
    width = max(len(x) for x in prefixes)
    hidden = None
    like: Any = None
    layers: list[tuple[torch.Tensor, torch.Tensor]] = []
    kept = layout_op.Capture(len(prefixes), width, torch.zeros(0, dtype=torch.long))
    for batch in plan([len(x) for x in prefixes]):
        ids, _, _ = pad_rows([prefixes[i] for i in batch], None, pad_id)
        # No mask: a causal body's real tokens never see the right padding after them, and the
        # padded keys are never read (the suffix pass knows each prefix's length).
        index = torch.tensor(batch, device=device)
        if capture:
            kept.index = index
            with attention.active(kept):
                h = body(input_ids=ids.to(device), use_cache=False).last_hidden_state
        else:
            out = body(input_ids=ids.to(device), use_cache=True)
            cache = _returned_cache(out)
            if cache is None:
                raise RuntimeError(f"{type(body).__name__} returned no key/value cache")
            h = out.last_hidden_state
        index = index.to(h.device)
        if hidden is None:
            hidden = h.new_zeros((len(prefixes), width, h.shape[-1]))
        hidden[index, : h.shape[1]] = h
        if capture:
            continue
        if not layers:
            for k, v in _kv_pairs(cache):
                shape_k = (len(prefixes), k.shape[1], width, k.shape[3])
                shape_v = (len(prefixes), v.shape[1], width, v.shape[3])
                layers.append((k.new_zeros(shape_k), v.new_zeros(shape_v)))
        for (k_all, v_all), (k, v) in zip(layers, _kv_pairs(cache), strict=True):
            k_all[index, :, : k.shape[2]] = k
            v_all[index, :, : v.shape[2]] = v
        like = cache
    assert hidden is not None
    if capture and not kept.layers:  # its attention never reached the mask-free function
        raise RuntimeError(f"{type(body).__name__} kept no keys and values for its prefixes")
    return hidden, kept.ordered() if capture else layers, like


def shared_prefix_hidden(
    body: torch.nn.Module,
    members: Sequence[tuple[int, Sequence[int]]],
    pad_id: int,
    device: torch.device,
    plan: Callable[[list[int]], list[list[int]]] | None = None,
    mask_free: bool = True,
) -> torch.Tensor:
    """Padded-layout hidden states of rows given as (shared prefix length, token ids).

    Rows with equal prefix length and equal first ``prefix`` tokens share one prefix run; each row
    keeps at least one token of its own (``prefix < len(row)``). ``plan`` cuts the distinct
    prefixes, and then the rows' suffixes, into sub-batches by length (default: one batch each),
    so neither pads to the longest of the whole batch. With ``mask_free`` the suffixes run on
    :mod:`rewardkit.engine.attention` where the body allows it, else on a dense mask.
    """
    prefix_index: dict[tuple[int, ...], int] = {}
    owner: list[int] = []
    for p, ids in members:
        if not 0 < p < len(ids):
            raise ValueError(f"shared prefix of {p} tokens for a row of {len(ids)}")
        owner.append(prefix_index.setdefault(tuple(ids[:p]), len(prefix_index)))
    prefixes = list(prefix_index)
    plan = plan or (lambda lengths: [list(range(len(lengths)))])
    free = mask_free and attention.enable(body, device)  # no per-row prefix copies, no mask
    prefix_hidden, layers, like = run_prefixes(body, prefixes, pad_id, device, plan, free)
    dev = prefix_hidden.device  # masks are built where they are used (they can be large)
    owner_index = torch.tensor(owner, dtype=torch.long, device=dev)
    plen = torch.tensor([p for p, _ in members], dtype=torch.long, device=dev)
    suffixes = [list(ids[p:]) for p, ids in members]
    slen = torch.tensor([len(x) for x in suffixes], dtype=torch.long, device=dev)
    suffix_hidden: torch.Tensor | None = None
    for part in plan([len(x) for x in suffixes]):
        # rows of one prefix side by side: the cascade then merges each prefix's rows in place
        # as one slice (no gather, no scatter back)
        part = sorted(part, key=owner.__getitem__)
        used = sorted({owner[r] for r in part})  # this sub-batch's prefixes, renumbered
        local = {o: j for j, o in enumerate(used)}
        pick = torch.tensor(used, dtype=torch.long, device=dev)
        sub_layers = layers
        if used != list(range(len(prefixes))):
            sub_layers = [(k.index_select(0, pick), v.index_select(0, pick)) for k, v in layers]
        run = _suffixes_mask_free if free else _suffixes_dense
        hidden = run(
            body,
            sub_layers,
            like,
            [len(prefixes[o]) for o in used],
            [local[owner[r]] for r in part],
            [suffixes[r] for r in part],
            pad_id,
            device,
        )
        if suffix_hidden is None:
            width = max(len(x) for x in suffixes)
            suffix_hidden = hidden.new_zeros((len(members), width, hidden.shape[-1]))
        index = torch.tensor(part, dtype=torch.long, device=dev)
        suffix_hidden[index, : hidden.shape[1]] = hidden
    assert suffix_hidden is not None
    return _gather_rows(prefix_hidden, suffix_hidden, owner_index, plen, slen)


def _suffixes_mask_free(
    body: torch.nn.Module,
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    like: Any,
    prefix_len: list[int],
    owner: list[int],
    suffixes: list[list[int]],
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """Suffix hidden states (rows, S, H) on the mask-free cascade attention."""
    ids, mask, _ = pad_rows(suffixes, None, pad_id)
    plen = torch.tensor([prefix_len[o] for o in owner], dtype=torch.long)
    position_ids = plen[:, None] + torch.arange(ids.shape[1])[None, :]
    layout = attention.shared_prefix(
        layers, prefix_len, owner, [len(s) for s in suffixes], ids.shape[1]
    )
    with attention.active(layout):
        out = body(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=position_ids.to(device),
            use_cache=False,
        )
    return out.last_hidden_state


def _suffixes_dense(
    body: torch.nn.Module,
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    like: Any,
    prefix_len: list[int],
    owner: list[int],
    suffixes: list[list[int]],
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """Suffix hidden states (rows, S, H) on each row's copy of its prefix's key/value cache and a
    4-D mask: a row sees its own prefix and, causally, its own tokens."""
    ids, s_mask, _ = pad_rows(suffixes, None, pad_id)
    dev = layers[0][0].device
    owner_index = torch.tensor(owner, dtype=torch.long, device=dev)
    plen = torch.tensor([prefix_len[o] for o in owner], dtype=torch.long, device=dev)
    slen = s_mask.to(dev).sum(dim=1)
    width_p, width_s = layers[0][0].shape[2], ids.shape[1]
    cache = _fresh_cache(like)
    for layer, (k, v) in enumerate(layers):
        cache.update(k.index_select(0, owner_index), v.index_select(0, owner_index), layer)
    key_pos = torch.arange(width_p + width_s, device=dev)
    q_pos = torch.arange(width_s, device=dev)
    sees_prefix = key_pos[None, None, :] < plen[:, None, None]  # (b, 1, K)
    own = key_pos[None, None, :] - width_p  # index in the suffix, for suffix keys
    sees_own = (own >= 0) & (own <= q_pos[None, :, None]) & (own < slen[:, None, None])
    allowed = (sees_prefix & (key_pos[None, None, :] < width_p)) | sees_own
    pad_query = q_pos[None, :] >= slen[:, None]  # let padding see itself (no empty softmax)
    allowed = allowed | (pad_query[:, :, None] & (own == q_pos[None, :, None]))
    out = body(
        input_ids=ids.to(device),
        attention_mask=_as_mask(allowed[:, None], body),
        position_ids=plen[:, None] + q_pos[None, :],
        use_cache=True,
        **{_cache_argument(type(body)): cache},
    )
    return out.last_hidden_state


def _gather_rows(
    prefix_hidden: torch.Tensor,
    suffix_hidden: torch.Tensor,
    owner_index: torch.Tensor,
    plen: torch.Tensor,
    slen: torch.Tensor,
) -> torch.Tensor:
    """Each row's positions from the prefix run (p, P, H) or the suffix run (b, S, H)."""
    n_pre, width_p = prefix_hidden.shape[:2]
    rows, width_s = suffix_hidden.shape[:2]
    dev = prefix_hidden.device
    width = int((plen + slen).max())
    t = torch.arange(width, device=dev)[None, :]
    in_prefix = t < plen[:, None]
    owner_t = owner_index[:, None]
    from_prefix = owner_t * width_p + t
    rows_t = torch.arange(rows, device=dev)[:, None]
    from_suffix = n_pre * width_p + rows_t * width_s + (t - plen[:, None])
    lengths = plen + slen
    index = torch.where(in_prefix, from_prefix, from_suffix)
    index = torch.where(t < lengths[:, None], index, torch.zeros_like(index))
    flat = torch.cat(
        [
            prefix_hidden.reshape(-1, prefix_hidden.shape[-1]),
            suffix_hidden.reshape(-1, suffix_hidden.shape[-1]),
        ]
    )
    return flat[index]


def packed_hidden(
    body: torch.nn.Module,
    packs: Sequence[Sequence[Sequence[int]]],
    types: Sequence[Sequence[Sequence[int] | None]] | None,
    pad_id: int,
    causal: bool,
    device: torch.device,
    mask_free: bool = True,
) -> torch.Tensor:
    """Padded-layout hidden states of rows packed several to a sequence (pack order, then row);
    with ``mask_free``, on :mod:`rewardkit.engine.attention` where the body allows it."""
    seqs = [[t for row in pack for t in row] for pack in packs]
    ids, _, _ = pad_rows(seqs, None, pad_id)
    n_packs, width = ids.shape
    segment = torch.full((n_packs, width), -1, dtype=torch.long)
    position = torch.zeros((n_packs, width), dtype=torch.long)
    tt = torch.zeros((n_packs, width), dtype=torch.long) if types is not None else None
    starts: list[tuple[int, int, int]] = []  # (pack, offset, length) per row
    for b, pack in enumerate(packs):
        offset = 0
        for k, row in enumerate(pack):
            n = len(row)
            segment[b, offset : offset + n] = k
            position[b, offset : offset + n] = torch.arange(n)
            if tt is not None and types is not None and types[b][k] is not None:
                tt[b, offset : offset + n] = torch.tensor(list(types[b][k] or []))
            starts.append((b, offset, n))
            offset += n
    kwargs: dict[str, Any] = {
        "input_ids": ids.to(device),
        "position_ids": position.to(device),
        "use_cache": False,
    }
    if tt is not None:
        kwargs["token_type_ids"] = tt.to(device)
    if mask_free and attention.enable(body, device):  # segments, not a (T × T) block-diagonal mask
        layout = attention.segments([[len(r) for r in p] for p in packs], width, causal, device)
        with attention.active(layout):
            hidden = body(**kwargs).last_hidden_state
        return _unpack(hidden, starts, width)
    segment = segment.to(device)  # masks are built where they are used (they can be large)
    same = segment[:, :, None] == segment[:, None, :]
    real = segment >= 0
    allowed = same & real[:, :, None] & real[:, None, :]
    if causal:
        allowed = allowed & torch.ones(width, width, dtype=torch.bool, device=device).tril()[None]
    allowed = allowed | torch.eye(width, dtype=torch.bool, device=device)[None]  # pads see self
    kwargs["attention_mask"] = _as_mask(allowed[:, None], body)
    hidden = body(**kwargs).last_hidden_state  # (packs, T, H)
    return _unpack(hidden, starts, width)


def _unpack(hidden: torch.Tensor, starts: list[tuple[int, int, int]], width: int) -> torch.Tensor:
    """Packed hidden states (packs, T, H) as the padded batch of the rows (pack, offset, length)."""
    longest = max(n for _, _, n in starts)
    t = torch.arange(longest)[None, :]
    base = torch.tensor([b * width + off for b, off, _ in starts])[:, None]
    lengths = torch.tensor([n for _, _, n in starts])[:, None]
    index = torch.where(t < lengths, base + t, torch.zeros_like(t))
    return hidden.reshape(-1, hidden.shape[-1])[index.to(hidden.device)]

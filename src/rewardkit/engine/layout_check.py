"""A one-time probe: does a loaded body give its own forward's hidden states in each layout?

The packed and shared layouts (and the mask-free padded path of causal bodies) rewrite attention
masks, position ids and key/value caches (:mod:`rewardkit.engine.execute`). A body whose
attention ignores a custom mask (differential or dynamic-mask attention, ALiBi built from a 2-D
mask, mixture-of-attention experts with their own masking) would silently give other scores.
:func:`layout_refusal` refuses the known kinds from the config; for the rest, before a body runs
a layout for the first time, :func:`verify_layouts` runs three short synthetic rows through
each layout and through the model's own forward, one row at a time, and keeps only the layouts
whose hidden states agree (relative error under :data:`TOLERANCE`). The result is remembered per
body, and on disk per architecture (``layout-probe.json`` in the rewardkit cache, keyed by
:func:`record_key`), so the probe's few tiny forward passes run once per architecture, dtype and
library versions on a machine.

docs/performance.md, "Choosing a layout".
"""

from __future__ import annotations

import hashlib
import json
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch

from rewardkit.engine import execute
from rewardkit.engine.compiling import eager_blocks
from rewardkit.engine.execute import layout_refusal

#: Largest ‖Δ‖ / ‖reference‖ of a row's hidden states a layout may show, by weight dtype
#: (half precision rounds differently per kernel; a wrong mask shows errors of order 1).
TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-6}
HALF_TOLERANCE = 0.1
INT8_TOLERANCE = 0.25

_VERIFIED: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[Any, ...], frozenset[str]]] = (
    weakref.WeakKeyDictionary()
)
#: Layouts refused by the probe, with the reason (for the engine's one-line warning).
REFUSED: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, str]] = weakref.WeakKeyDictionary()


def tolerance(body: torch.nn.Module) -> float:
    """The probe's tolerance for ``body``: by weight dtype, looser for dynamic int8 layers
    (their activations are quantized per batch, so any change of batch moves them)."""
    if any("quantized" in type(m).__module__ for m in body.modules()):
        return INT8_TOLERANCE
    return TOLERANCE.get(next(body.parameters()).dtype, HALF_TOLERANCE)


def probe_rows(vocab: int, pad_id: int) -> tuple[list[int], list[int], list[int]]:
    """Three rows of ordinary token ids (never the pad id): ``a`` (20 tokens), ``b`` sharing
    ``a``'s first 16 tokens, and an unrelated ``c`` (9 tokens)."""
    pool = [t for t in range(min(vocab, 4096) // 4, min(vocab, 4096)) if t != pad_id] or [0]

    def pick(seed: int, n: int) -> list[int]:
        return [pool[(seed + 7919 * i) % len(pool)] for i in range(n)]

    a = pick(11, 20)
    return a, a[:16] + pick(503, 5), pick(907, 9)


#: The longest probe row: a sliding window at least this long cannot change the probe.
PROBE_LONGEST = max(len(r) for r in probe_rows(64, -1))


def _own(body: torch.nn.Module, row: list[int], device: torch.device) -> torch.Tensor:
    ids = torch.tensor([row], dtype=torch.long, device=device)
    return body(input_ids=ids, use_cache=False).last_hidden_state[0].float()


def _error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want).norm() / want.norm().clamp_min(1e-6))


def _runs(
    body: torch.nn.Module, rows: list[list[int]], pad_id: int, causal: bool, mask_free: bool
) -> dict[str, Callable[[torch.device], torch.Tensor]]:
    """Each layout's hidden states (rows, longest, H) for ``rows`` = [a, b, c]."""
    a, b, c = rows

    def packed(device: torch.device) -> torch.Tensor:
        h = execute.packed_hidden(body, [[a, c], [b]], None, pad_id, causal, device, mask_free)
        return h[[0, 2, 1]]  # pack order a, c, b → a, b, c

    def shared(device: torch.device) -> torch.Tensor:
        members = [(16, a), (16, b)]
        h = execute.shared_prefix_hidden(body, members, pad_id, device, None, mask_free)
        return torch.cat([h, h.new_zeros((1, *h.shape[1:]))])  # c is not shared

    def padded(device: torch.device) -> torch.Tensor:
        ids, _, _ = execute.pad_rows(rows, None, pad_id)
        return execute.padded_hidden(body, ids.to(device))

    runs: dict[str, Callable[[torch.device], torch.Tensor]] = {"packed": packed, "shared": shared}
    if causal:
        runs["padded"] = padded  # the mask-free padded path of causal bodies
    return runs


def verify_layouts(
    body: torch.nn.Module,
    layouts: frozenset[str],
    causal: bool,
    pad_id: int,
    device: torch.device,
    mask_free: bool,
) -> frozenset[str]:
    """The subset of ``layouts`` whose probe matches the body's own forward (module docstring).

    For a causal body the mask-free padded path is probed too: if it disagrees, nothing beyond
    the model's own padded forward is kept. Each refusal warns once, with its measured error.
    """
    layouts = layouts & execute.model_layouts(body, PROBE_LONGEST)
    if not layouts:
        return layouts
    key = (layouts, causal, int(pad_id), str(device), bool(mask_free))
    memo = _VERIFIED.setdefault(body, {})
    if key in memo:
        return memo[key]
    record = record_key(body, key)
    failed = recorded(record)
    if failed is None:
        failed = _probe(body, layouts, causal, pad_id, device, mask_free)
        remember(record, failed)
    kept = frozenset() if "padded" in failed else frozenset(layouts) - set(failed)
    for name, why in failed.items():
        what = "the mask-free padded path" if name == "padded" else f"layout {name}"
        warnings.warn(
            f"{type(body).__name__}: {what} refused ({why} on a probe); running the model's "
            "own padded forward instead",
            stacklevel=3,
        )
    REFUSED.setdefault(body, {}).update(failed)
    memo[key] = kept
    return kept


def _probe(
    body: torch.nn.Module,
    layouts: frozenset[str],
    causal: bool,
    pad_id: int,
    device: torch.device,
    mask_free: bool,
) -> dict[str, str]:
    """The probe itself: ``{layout: why}`` for each layout (and the mask-free padded path) whose
    hidden states differ from the body's own forward on the three probe rows. It runs eagerly
    even on a body an earlier run compiled: a one-time check of the layouts' code, and the
    dense shared path's key/value cache would specialise the compiled blocks per layer."""
    emb = body.get_input_embeddings() if hasattr(body, "get_input_embeddings") else None
    vocab = int(getattr(emb, "num_embeddings", 0) or getattr(body.config, "vocab_size", 0) or 64)
    rows = [list(r) for r in probe_rows(vocab, pad_id)]
    tol = tolerance(body)
    failed: dict[str, str] = {}
    with torch.inference_mode(), eager_blocks():
        want = [_own(body, r, device) for r in rows]
        for name, run in _runs(body, rows, pad_id, causal, mask_free).items():
            if name != "padded" and name not in layouts:
                continue
            try:
                got = run(device)
            except Exception as exc:  # an architecture the layout cannot drive
                failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                continue
            checked = rows if name != "shared" else rows[:2]
            err = max(_error(got[i, : len(r)], want[i]) for i, r in enumerate(checked))
            if not err <= tol:
                failed[name] = f"its hidden states differ from the model's own forward by {err:.2g}"
    return failed


#: Bumped when the probe changes, so outcomes recorded by an older probe are not reused.
PROBE_VERSION = 2  # 2: the shared layout's prefix pass keeps keys through the attention


def record_key(body: torch.nn.Module, key: tuple[Any, ...]) -> str:
    """What a probe's outcome depends on: the architecture (body class and its whole config,
    less its path), weight dtype, quantized layers, the probe's arguments, and the torch,
    transformers and probe versions — not the weights, which do not change what attention does
    with a mask. A SHA-256 hex digest."""
    import transformers

    cfg = getattr(body, "config", None)
    config = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    for k in ("_name_or_path", "name_or_path", "transformers_version"):
        config.pop(k, None)
    what = {
        "probe": PROBE_VERSION,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "body": type(body).__name__,
        "config": config,
        "dtype": str(next(body.parameters()).dtype),
        "tolerance": tolerance(body),
        "key": [sorted(key[0]), *key[1:]],
    }
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


#: The layout probes' outcomes on this machine, in the rewardkit cache.
PROBE_RECORD = "layout-probe.json"


def recorded(record: str) -> dict[str, str] | None:
    """The refusals a probe with this :func:`record_key` found on this machine before (None:
    never probed, or the record is unreadable)."""
    from rewardkit.models.embedded import read_record

    found = read_record(PROBE_RECORD).get(record)
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        return None
    return dict(found)


def remember(record: str, failed: dict[str, str]) -> None:
    """Keep a probe's outcome for the next load of the same architecture (best effort)."""
    from rewardkit.models.embedded import update_record

    update_record(PROBE_RECORD, record, failed)


def refusal(
    body: torch.nn.Module | None,
    layout: str,
    causal: bool,
    offered: frozenset[str],
    longest: int | None = None,
) -> str:
    """Why ``layout`` is not run for ``body`` on rows of up to ``longest`` tokens, in words (for
    the engine's one-line warning); ``offered``: the layouts the model's readout supports."""
    if body is None or layout not in offered:
        return "its reward readout runs on the model's own padded forward"
    reason = layout_refusal(body, longest)
    if reason:
        return reason
    if layout == "shared" and not causal:
        return "shared prompts need a causal decoder (an encoder attends both ways)"
    probed = REFUSED.get(body, {})
    return probed.get(layout) or probed.get("padded") or "not supported by this model"


_WARNED: weakref.WeakKeyDictionary[torch.nn.Module, set[str]] = weakref.WeakKeyDictionary()


def warn_refused(name: str, adapter: Any, layout: str, longest: int | None = None) -> None:
    """Warn once per model and layout that an asked-for ``layout`` runs padded, and why
    (``longest``: the run's longest row, which a sliding window may not fit)."""
    if _first_time(adapter, layout):
        why = refusal(adapter.backbone(), layout, adapter.causal, adapter.layouts, longest)
        warnings.warn(f"{name}: layout={layout} refused ({why}); running padded", stacklevel=4)


def warn_nothing_shared(name: str, adapter: Any, min_prefix: int) -> None:
    """Warn once per model that ``layout=shared`` found no rows to share a prompt with."""
    if _first_time(adapter, "shared: nothing shared"):
        warnings.warn(
            f"{name}: layout=shared, but no two rows of this call begin with the same "
            f"{min_prefix} tokens or more (min_shared_prefix), so there is nothing to share; "
            "running padded",
            stacklevel=4,
        )


def _first_time(adapter: Any, what: str) -> bool:
    """Whether ``what`` is new for this adapter's model (and now remembered)."""
    body = adapter.backbone()
    key = body if body is not None else adapter.model if hasattr(adapter, "model") else None
    if key is None:
        return True
    seen = _WARNED.setdefault(key, set())
    if what in seen:
        return False
    seen.add(what)
    return True

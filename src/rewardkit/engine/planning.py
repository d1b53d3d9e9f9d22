"""What a layout will cost, so ``layout="auto"`` can pick the faster one (pure; no torch).

Costs are in linear-equivalent tokens (:func:`rewardkit.engine.layout.attention_cost`): every
token the model runs pays for the weight matrices once, attention adds ``width / W₀`` per token,
and each forward pass adds ``batch_overhead`` (its fixed cost: Python, kernel set-up).

- padded: each batch of ``b`` rows of width ``W`` costs ``b·W·(1 + W/W₀) + overhead``;
- shared: each batch runs its distinct prefixes in length-sorted sub-batches (like padded
  batches), then its rows' suffixes in length-sorted sub-batches; a suffix sub-batch of ``b`` rows
  of width ``S`` whose rows continue prefixes of ``P`` tokens costs ``Σ S·(1 + (P + S)/W₀)`` (its
  tokens attend to the prefix and to themselves) plus the overhead.

:func:`prefer_shared` compares the two: the shared estimate is scaled by ``1 + overhead``, the
extra time per unit the shared path measured on the device (two attention calls and a merge per
layer, more and smaller forward passes; docs/performance.md, "Choosing a layout").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewardkit.engine.layout import attention_cost

#: Measured extra time per unit of the shared layout over padded on CPU (docs/performance.md,
#: "Choosing a layout"), by CPU: with AMX, whose fast bf16 matmuls leave the shared path's extra
#: and smaller passes exposed (2026-12-04), and without (AVX-512 BF16, 2026-12-07: sharing ran
#: as fast on 60 HH pairs and 9–24% faster on the other calibration workloads). ``EngineConfig.shared_overhead`` overrides it.
SHARED_OVERHEAD_CPU_AMX = 0.8
SHARED_OVERHEAD_CPU = 0.05

#: Cuts rows of the given lengths into length-sorted sub-batches (``batching.plan_batches``).
Cut = Callable[[list[int]], list[list[int]]]


@dataclass(frozen=True)
class Estimate:
    """Tokens a plan runs (padding included) and its estimated cost (linear-equivalent tokens)."""

    tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.tokens + other.tokens, self.cost + other.cost)


def padded_estimate(
    lengths: Sequence[int],
    batches: Sequence[Sequence[int]],
    attn_width: float | None,
    batch_overhead: int,
) -> Estimate:
    """Tokens and cost of right-padded ``batches`` of rows with ``lengths``."""
    out = Estimate()
    for b in batches:
        if b:
            width = max(int(lengths[i]) for i in b)
            cost = attention_cost(len(b), width, attn_width) + batch_overhead
            out += Estimate(len(b) * width, cost)
    return out


def shared_batch_estimate(
    prefixes: Sequence[int],
    members: Sequence[tuple[int, int]],
    cut: Cut,
    attn_width: float | None,
    batch_overhead: int,
) -> Estimate:
    """Tokens and cost of one shared batch: distinct ``prefixes`` (lengths), then ``members``
    (prefix length, suffix length), each cut into sub-batches by ``cut`` as the run cuts them."""
    out = padded_estimate(prefixes, cut(list(prefixes)), attn_width, batch_overhead)
    suffixes = [s for _, s in members]
    for part in cut(suffixes):
        width = max(suffixes[i] for i in part)
        keys = sum(members[i][0] + width for i in part)  # keys each row's tokens attend to
        cost = len(part) * width + (width * keys / attn_width if attn_width else 0.0)
        cost += batch_overhead
        out += Estimate(len(part) * width, cost)
    return out


def cpu_shared_overhead(amx: bool | None) -> float:
    """:data:`SHARED_OVERHEAD_CPU_AMX` on a CPU with AMX (or one whose flags are unknown: the
    cautious value), else :data:`SHARED_OVERHEAD_CPU`."""
    return SHARED_OVERHEAD_CPU if amx is False else SHARED_OVERHEAD_CPU_AMX


def prefer_shared(shared_cost: float, padded_cost: float, overhead: float) -> bool:
    """Whether the shared plan is estimated faster than the padded one, the shared path costing
    ``1 + overhead`` times as much per unit on this device."""
    return shared_cost * (1.0 + overhead) < padded_cost

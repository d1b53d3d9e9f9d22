"""Reward back-propagation through a generator's sampling chain, for external generator trainers:
AlignProp's truncated back-propagation through the denoising steps (docs/methods/F4-alignprop.md)
and R0's regularised reward maximisation of a few-step generator (docs/methods/F6-r0.md).

rewardkit ships no diffusion model. A *chain* is a list of differentiable step callables
``x_{t+1} = f_t(x_t)`` (a U-Net step with its scheduler update, or a one-step generator); the
rewards are the weighted differentiable losses of ``multimodal/reno.py`` (``(w, fn)`` with
``fn(x)`` a scalar loss, or ``(w, fn, "score")`` for a score to raise). torch is imported by the
functions when called.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.errors import SpecError, TrainingDiverged

STRATEGIES = ("gaussian", "uniform", "fixed")
_MAX_REDRAWS = 10_000


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _rng(rng: Any) -> Any:
    import numpy as np

    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise SpecError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def truncated_backprop_k(
    strategy: str = "gaussian",
    mean: float = 42.0,
    std: float = 5.0,
    total: int = 50,
    rng: Any = None,
    *,
    low: int = 0,
    high: int | None = None,
    value: int | None = None,
    redraw: bool = False,
) -> int:
    """docs/methods/F4-alignprop.md — AlignProp's randomised truncation: the cut-off step index
    ``c`` of a ``total``-step chain, drawn afresh for every training step.

    Convention (AlignProp's ``if i < backprop_timestep: noise_pred = noise_pred.detach()``): the
    steps are indexed ``0 … total − 1`` from noise to image; the steps at index ``≥ c`` carry
    gradient, so ``K = total − c`` (``c = total − 1`` → K = 1, the last step only; ``c = 0`` →
    full back-propagation).

    - ``"gaussian"``: ``floor(N(mean, std))`` (AlignProp's ``int()`` of the draw; the same for
      every value that survives the bounds), mean 42 and std 5 of 50 by default;
    - ``"uniform"``: an integer in ``[low, high)`` (``high`` defaults to ``total``: ``[0, 50)``
      for 50 steps, as ``torch.randint(0, 50)``);
    - ``"fixed"``: ``value`` (default ``total − 1``: K = 1).

    A Gaussian draw outside ``[0, total − 1]`` is clipped to it; uniform bounds and a fixed value
    outside it are a :class:`SpecError`. ``redraw=True`` instead reproduces AlignProp's loop,
    which redraws until ``1 ≤ c ≤ total − 1`` (never full back-propagation).
    ``rng``: a ``numpy.random.Generator``, an int seed, or None (fresh entropy).
    """
    if strategy not in STRATEGIES:
        raise SpecError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    total = _int("total", total)
    lo = 1 if redraw else 0
    if total < lo + 1:
        raise SpecError(f"total must be >= {lo + 1} steps, got {total}")
    gen = _rng(rng)
    if strategy == "fixed":
        v = total - 1 if value is None else _int("value", value)
        if not lo <= v <= total - 1:
            raise SpecError(f"fixed cut-off {v} is outside [{lo}, {total - 1}] for {total} steps")
        return v
    if strategy == "uniform":
        a, b = _int("low", low), total if high is None else _int("high", high)
        if not (0 <= a < b <= total and b - 1 >= lo):
            raise SpecError(
                f"uniform range [{a}, {b}) must lie in [0, {total}) with a value >= {lo}"
            )
        draw: Callable[[], int] = lambda: int(gen.integers(a, b))  # noqa: E731
    else:
        m, s = _real("mean", mean), _real("std", std)
        if s < 0:
            raise SpecError(f"std must be >= 0, got {s}")
        draw = lambda: math.floor(gen.normal(m, s))  # noqa: E731
    if not redraw:
        return min(max(draw(), 0), total - 1)
    for _ in range(_MAX_REDRAWS):
        c = draw()
        if lo <= c <= total - 1:
            return c
    raise SpecError(f"no {strategy} draw fell in [1, {total - 1}] in {_MAX_REDRAWS} tries")


@dataclass
class BackpropStepResult:
    """One :func:`reward_backprop_step`. ``loss`` is the minimised total
    ``loss_coeff · Σ_k w_k L_k + Reg(θ)``; ``reward_loss`` is ``Σ_k w_k L_k`` (``reward`` its
    negative); ``term_losses`` the unweighted ``L_k`` (a ``"score"`` term: ``−score``);
    ``regularizer`` ``Reg(θ)`` or None; ``grad_norm`` the total 2-norm of the parameters'
    gradients before clipping; ``cutoff`` and ``grad_steps = len(chain) − cutoff`` (K);
    ``output`` the chain's final output (detached)."""

    loss: float
    reward_loss: float
    term_losses: list[float]
    regularizer: float | None
    grad_norm: float
    cutoff: int
    grad_steps: int
    output: Any

    @property
    def reward(self) -> float:
        return -self.reward_loss


def reward_terms(rewards: Sequence[Any]) -> list[tuple[float, Callable[[Any], Any], float]]:
    """``(weight, fn, sign)`` per term of reno.py's grammar (``(w, fn)`` a loss, ``(w, fn,
    "score")`` a score whose loss is ``−score``); a :class:`SpecError` names a bad term."""
    if isinstance(rewards, (str, bytes)) or not isinstance(rewards, Sequence) or not rewards:
        raise SpecError("rewards must be a non-empty list of (weight, fn) or (weight, fn, 'score')")
    out = []
    for i, term in enumerate(rewards):
        if not isinstance(term, (tuple, list)) or len(term) not in (2, 3):
            raise SpecError(f"reward term {i}: expected (weight, fn) or (weight, fn, 'score')")
        weight = _real(f"reward term {i}: weight", term[0])
        kind = term[2] if len(term) == 3 else "loss"
        if kind not in ("loss", "score"):
            raise SpecError(f"reward term {i}: kind must be 'loss' or 'score', got {kind!r}")
        if not callable(term[1]):
            raise SpecError(f"reward term {i}: {term[1]!r} is not callable")
        out.append((weight, term[1], 1.0 if kind == "loss" else -1.0))
    return out


def _scalar(name: str, value: Any) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        raise SpecError(f"{name} returned {type(value).__name__}, not a torch tensor")
    if value.numel() != 1:
        raise SpecError(f"{name} returned shape {tuple(value.shape)}; reduce it to a scalar")
    if not bool(torch.isfinite(value.detach()).all()):
        raise TrainingDiverged(f"{name} is {float(value.detach())}: no update was made")
    return value.reshape(())


def _params(params: Any, optimizer: Any) -> list[Any]:
    """``params`` as a list without repeats (a repeat would count twice in the norm), each a
    tensor that requires grad and that ``optimizer`` updates (else its step would do nothing)."""
    import torch

    plist = list({id(p): p for p in params}.values())
    if not plist:
        raise SpecError("params is empty: give the trainable parameters (e.g. the LoRA weights)")
    for i, p in enumerate(plist):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise SpecError(f"params[{i}] is not a tensor that requires grad")
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:  # not a torch optimizer: nothing to check against
        return plist
    held = {id(q) for g in groups for q in g["params"]}
    missing = [i for i, p in enumerate(plist) if id(p) not in held]
    if missing:
        raise SpecError(
            f"params[{missing[0]}] is not in the optimizer's param_groups ({len(missing)} such): "
            "its step would not update it"
        )
    return plist


def _stray_grads(optimizer: Any, plist: list[Any]) -> int:
    """How many of ``optimizer``'s parameters outside ``params`` hold a gradient (its step would
    apply it unclipped and unchecked)."""
    mine = {id(p) for p in plist}
    return sum(
        1
        for g in getattr(optimizer, "param_groups", None) or []
        for q in g["params"]
        if id(q) not in mine and q.grad is not None and bool(q.grad.detach().any())
    )


def _step_out(t: int, x: Any) -> Any:
    import torch

    if not isinstance(x, torch.Tensor):
        raise SpecError(f"chain[{t}] returned {type(x).__name__}, not a torch tensor")
    return x


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def reward_backprop_step(
    chain: Sequence[Callable[[Any], Any]],
    params: Any,
    rewards: Sequence[Any],
    optimizer: Any,
    *,
    x0: Any,
    cutoff: int,
    loss_coeff: float = 0.01,
    grad_clip: float | None = 1.0,
    regularizer: Callable[[list[Any]], Any] | None = None,
    checkpoint: bool = False,
) -> BackpropStepResult:
    """docs/methods/F4-alignprop.md / docs/methods/F6-r0.md — one optimiser step of reward
    back-propagation: run ``x_{t+1} = chain[t](x_t)`` from ``x0``, the steps before ``cutoff``
    under ``torch.no_grad`` and the steps from it with gradient (K = ``len(chain) − cutoff``;
    draw ``cutoff`` with :func:`truncated_backprop_k`), then minimise
    ``loss_coeff · Σ_k w_k L_k(x_T) + regularizer(params)`` (AlignProp: ``loss_coeff = 0.01``,
    HPS ``1 − score``, aesthetic ``−score``; R0: a one-step chain, ``cutoff=0``, the weighted
    rewards and ``Reg(θ)``; the regulariser is not scaled by ``loss_coeff``). Gradients are
    clipped to total norm ``grad_clip`` (None: no clipping) before ``optimizer.step()``; they stay
    in ``p.grad`` afterwards. ``checkpoint=True`` runs each gradient step under
    ``torch.utils.checkpoint`` (same gradients, activations recomputed). A non-finite reward term,
    regulariser or gradient is a :class:`TrainingDiverged` naming it, raised before any update.
    ``params`` (repeats counted once) must all be in ``optimizer.param_groups``, and an optimizer
    parameter outside ``params`` that receives a gradient is a :class:`SpecError` before the
    step (it would be updated unclipped and unchecked).
    """
    import torch
    import torch.utils.checkpoint as tuc

    if isinstance(chain, (str, bytes)) or not isinstance(chain, Sequence) or not chain:
        raise SpecError("chain must be a non-empty list of step callables x_{t+1} = f_t(x_t)")
    for i, f in enumerate(chain):
        if not callable(f):
            raise SpecError(f"chain[{i}] is not callable")
    n = len(chain)
    cutoff = _int("cutoff", cutoff)
    if not 0 <= cutoff <= n - 1:
        raise SpecError(f"cutoff {cutoff} is outside the chain: steps 0..{n - 1} ({n} steps)")
    terms = reward_terms(rewards)
    plist = _params(params, optimizer)
    coeff = _real("loss_coeff", loss_coeff)
    if grad_clip is not None and _real("grad_clip", grad_clip) <= 0:
        raise SpecError(f"grad_clip must be > 0 or None, got {grad_clip}")
    if regularizer is not None and not callable(regularizer):
        raise SpecError(f"regularizer {regularizer!r} is not callable")
    if not isinstance(x0, torch.Tensor):
        raise SpecError(f"x0 must be a torch tensor, got {type(x0).__name__}")

    optimizer.zero_grad()
    x = x0
    with torch.no_grad():
        for t in range(cutoff):
            x = _step_out(t, chain[t](x))
    x = x.detach()
    for t in range(cutoff, n):
        f = chain[t]
        x = _step_out(t, tuc.checkpoint(f, x, use_reentrant=False) if checkpoint else f(x))
    parts = [
        sign * _scalar(f"reward term {i} ({_name(fn)})", fn(x))
        for i, (_, fn, sign) in enumerate(terms)
    ]
    reward_loss = sum(w * p for (w, _, _), p in zip(terms, parts, strict=True))
    total = coeff * reward_loss
    reg = None
    if regularizer is not None:
        reg = _scalar(f"regularizer ({_name(regularizer)})", regularizer(plist))
        total = total + reg
    if not total.requires_grad:
        raise SpecError("the loss does not depend on params through the steps from the cut-off")
    total.backward()
    grads = [p.grad.detach().float() for p in plist if p.grad is not None]
    if not grads:
        optimizer.zero_grad()
        raise SpecError("no parameter in params received a gradient from the loss")
    norm = float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    )
    if not math.isfinite(norm):
        optimizer.zero_grad()
        raise TrainingDiverged(f"gradient norm is {norm}: no update was made")
    if stray := _stray_grads(optimizer, plist):
        optimizer.zero_grad()
        raise SpecError(
            f"{stray} parameter(s) of the optimizer outside params received a gradient: its step "
            "would apply it unclipped and unchecked; pass every trained parameter as params"
        )
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(plist, float(grad_clip))
    optimizer.step()
    return BackpropStepResult(
        loss=float(total.detach()),
        reward_loss=float(reward_loss.detach()),
        term_losses=[float(p.detach()) for p in parts],
        regularizer=None if reg is None else float(reg.detach()),
        grad_norm=norm,
        cutoff=cutoff,
        grad_steps=n - cutoff,
        output=x.detach(),
    )


def l2_regularizer(
    weight: float, anchor: Sequence[Any] | None = None
) -> Callable[[list[Any]], Any]:
    """docs/methods/F6-r0.md — ``Reg(θ) = weight · Σ‖θ − θ_0‖²`` (``anchor`` θ_0: the starting
    weights, detached; None: zero), one choice of R0's unpinned regulariser."""
    import torch

    w = _real("weight", weight)
    ref = None if anchor is None else [a.detach().clone() for a in anchor]

    def reg(params: list[Any]) -> Any:
        if ref is not None and len(ref) != len(params):
            raise SpecError(f"l2_regularizer: {len(ref)} anchors for {len(params)} params")
        diffs = params if ref is None else [p - a for p, a in zip(params, ref, strict=True)]
        return w * sum(torch.sum(d.float() ** 2) for d in diffs)

    return reg

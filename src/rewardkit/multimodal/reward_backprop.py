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
from collections.abc import Callable, Iterable, Sequence
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
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an int past float range
        out = math.inf
    if not math.isfinite(out):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    return out


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
        # held to [−1, total] before the floor: an overflowing draw (±inf) stays out of range
        draw = lambda: math.floor(min(max(gen.normal(m, s), -1.0), float(total)))  # noqa: E731
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


def _term_weight(i: int, value: Any, fn: Callable[[Any], Any]) -> float:
    """Reward term ``i``'s weight: a finite number ≥ 0, else a one-line :class:`SpecError`
    naming the term's reward and the value (a negative weight minimises the reward)."""
    try:
        weight = _real("weight", value)
    except SpecError:
        weight = math.nan
    if not weight >= 0:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise SpecError(
            f"reward term {i}: weight must be a finite number >= 0 for {name} (a negative weight "
            f"minimises the reward; 0 switches the term off), got {value!r}"
        )
    return weight


def reward_terms(rewards: Sequence[Any]) -> list[tuple[float, Callable[[Any], Any], float]]:
    """``(weight, fn, sign)`` per term of reno.py's grammar (``(w, fn)`` a loss, ``(w, fn,
    "score")`` a score whose loss is ``−score``); a :class:`SpecError` names a bad term. A
    weight must be a finite number ≥ 0 (docs/methods/F2-reno.md, F4-alignprop.md): a negative
    one would minimise its reward; 0 switches the term off."""
    if isinstance(rewards, (str, bytes)) or not isinstance(rewards, Sequence) or not rewards:
        raise SpecError("rewards must be a non-empty list of (weight, fn) or (weight, fn, 'score')")
    out = []
    for i, term in enumerate(rewards):
        if not isinstance(term, (tuple, list)) or len(term) not in (2, 3):
            raise SpecError(f"reward term {i}: expected (weight, fn) or (weight, fn, 'score')")
        if not callable(term[1]):
            raise SpecError(f"reward term {i}: {term[1]!r} is not callable")
        weight = _term_weight(i, term[0], term[1])
        kind = term[2] if len(term) == 3 else "loss"
        if kind not in ("loss", "score"):
            raise SpecError(f"reward term {i}: kind must be 'loss' or 'score', got {kind!r}")
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
    """``params`` (one tensor or an iterable of them) as a list without repeats (a repeat would
    count twice in the norm), each a leaf tensor that requires grad (a frozen or computed one
    never receives ``.grad``) and that ``optimizer`` updates (else its step would do nothing)."""
    import torch

    if isinstance(params, torch.Tensor):
        params = [params]
    elif isinstance(params, torch.nn.Module) or not isinstance(params, Iterable):
        raise SpecError(
            f"params must be a list of tensors (e.g. module.parameters()), got {type(params).__name__}"
        )
    plist = list({id(p): p for p in params}.values())
    if not plist:
        raise SpecError("params is empty: give the trainable parameters (e.g. the LoRA weights)")
    for i, p in enumerate(plist):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise SpecError(f"params[{i}] is not a tensor that requires grad (frozen?)")
        if not p.is_leaf:
            raise SpecError(f"params[{i}] is computed from other tensors, not a leaf parameter")
    for what in ("zero_grad", "step"):
        if not callable(getattr(optimizer, what, None)):
            raise SpecError(f"optimizer has no {what}(): pass a torch.optim optimizer")
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:  # not a torch optimizer: nothing to check against
        return plist
    for g, group in enumerate(groups):
        try:
            lr = float(group.get("lr", 0.0))
        except (TypeError, ValueError, RuntimeError, OverflowError):
            lr = math.nan
        if not (math.isfinite(lr) and lr >= 0):
            raise SpecError(
                f"optimizer param_groups[{g}] lr must be a finite number >= 0, got {lr}"
            )
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


def _check_x0(x0: Any) -> None:
    import torch

    if not isinstance(x0, torch.Tensor):
        raise SpecError(f"x0 must be a torch tensor, got {type(x0).__name__}")
    if x0.numel() == 0:
        raise SpecError(f"x0 is empty (shape {tuple(x0.shape)}): no sample to reward")
    if x0.is_floating_point() and not bool(torch.isfinite(x0.detach()).all()):
        raise SpecError("x0 holds NaN or inf")


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
    step (it would be updated unclipped and unchecked). So are, before anything runs: an empty
    or non-finite ``x0``, ``loss_coeff <= 0``, a negative or non-finite reward weight, all
    reward weights 0, a frozen or non-leaf parameter, an optimizer lr that is not a finite
    number >= 0; and, after the forward pass, a reward loss that does not depend on ``params``
    (a regulariser alone would be trained).
    The clipping norm is computed in float64 (float32 squares overflow long before ±inf).
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
        raise SpecError(
            f"cutoff {cutoff} is outside the chain: steps 0..{n - 1} ({n} steps); draw it with "
            f"truncated_backprop_k(total={n})"
        )
    terms = reward_terms(rewards)
    if not any(w for w, _, _ in terms):
        raise SpecError("every reward weight is 0: the step would not move toward any reward")
    plist = _params(params, optimizer)
    coeff = _real("loss_coeff", loss_coeff)
    if coeff <= 0:
        raise SpecError(f"loss_coeff must be > 0 (a negative one lowers the reward), got {coeff}")
    clip = None if grad_clip is None else _real("grad_clip", grad_clip)
    if clip is not None and clip <= 0:
        raise SpecError(f"grad_clip must be > 0 or None, got {grad_clip}")
    if regularizer is not None and not callable(regularizer):
        raise SpecError(f"regularizer {regularizer!r} is not callable")
    _check_x0(x0)

    optimizer.zero_grad()
    for p in plist:  # an optimizer that is not torch's may leave them: they would accumulate
        p.grad = None
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
    if not reward_loss.requires_grad:  # a regulariser alone would be trained, rewards ignored
        raise SpecError(
            "the reward loss does not depend on params through the steps from the cut-off"
        )
    total.backward()
    grads = [p.grad.detach() for p in plist if p.grad is not None]
    if not grads:
        optimizer.zero_grad()
        raise SpecError("no parameter in params received a gradient from the loss")
    # float64: float32 squares overflow from gradients of ≈ 1e19, long before they are inf
    norm = float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
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
    if clip is not None and norm > clip:  # clip_grad_norm_'s rule, on the float64 norm
        for g in grads:
            g.mul_(clip / (norm + 1e-6))
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
    if w < 0:
        raise SpecError(
            f"l2_regularizer: weight must be >= 0 (a negative one is unbounded), got {w}"
        )
    ref = None
    if anchor is not None:
        items = [anchor] if isinstance(anchor, torch.Tensor) else anchor
        items = list(items) if isinstance(items, Iterable) else [None]
        if not all(isinstance(a, torch.Tensor) for a in items):
            raise SpecError("l2_regularizer: anchor must be a list of tensors (θ_0, one per param)")
        ref = [a.detach().clone() for a in items]

    def reg(params: list[Any]) -> Any:
        if ref is not None and len(ref) != len(params):
            raise SpecError(f"l2_regularizer: {len(ref)} anchors for {len(params)} params")
        for i, (p, a) in enumerate(zip(params, ref or [], strict=False)):
            if p.shape != a.shape:
                raise SpecError(
                    f"l2_regularizer: anchor {i} has shape {tuple(a.shape)}, "
                    f"params[{i}] {tuple(p.shape)}"
                )
        diffs = params if ref is None else [p - a for p, a in zip(params, ref, strict=True)]
        return w * sum(torch.sum(d.float() ** 2) for d in diffs)

    return reg

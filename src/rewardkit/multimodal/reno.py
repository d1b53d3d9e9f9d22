"""ReNO-style optimisation of a generator's initial noise (docs/methods/F2-reno.md) and the
differentiable image–text reward losses it maximises (docs/methods/B15-image-text-reward.md).

A generator is any differentiable map from a noise tensor to an output; rewards are
differentiable losses of that output. torch is imported by the functions when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.errors import SpecError, TrainingDiverged
from rewardkit.multimodal.reward_backprop import reward_terms


def chi_regularizer(noise: Any) -> Any:
    """docs/methods/F2-reno.md: ``½‖ε‖² − (d − 1) log ‖ε‖`` with ``d = numel(ε)`` — the negative
    log-density of ‖ε‖ under a χ distribution with d degrees of freedom, up to a constant
    (float32; a torch tensor in, a 0-d tensor out)."""
    import torch

    norm = torch.linalg.vector_norm(noise.float())
    return 0.5 * norm**2 - (noise.numel() - 1) * torch.log(norm)


def _cos(image_emb: Any, text_emb: Any) -> Any:
    import torch.nn.functional as F

    return F.cosine_similarity(image_emb.float(), text_emb.float().expand_as(image_emb), dim=-1)


def clip_loss(image_emb: Any, text_emb: Any) -> Any:
    """docs/methods/B15-image-text-reward.md / docs/methods/F2-reno.md CLIP loss ``100 − 100·cos(E_img, E_txt)`` (mean over images)."""
    return (100.0 - 100.0 * _cos(image_emb, text_emb)).mean()


#: CLIP's logit scale in log space (exp = 100), the default of :func:`pickscore_loss`.
LOG_100 = math.log(100.0)


def pickscore_loss(image_emb: Any, text_emb: Any, logit_scale: Any = LOG_100) -> Any:
    """docs/methods/B15-image-text-reward.md / docs/methods/F2-reno.md PickScore loss ``30 − exp(s)·cos`` with ``s`` the model's (log-space)
    ``logit_scale`` (mean over images)."""
    import torch

    scale = torch.as_tensor(logit_scale, dtype=torch.float32).exp()
    return (30.0 - scale * _cos(image_emb, text_emb)).mean()


def hps_loss(score: Any) -> Any:
    """docs/methods/B15-image-text-reward.md / docs/methods/F2-reno.md HPSv2 loss ``1 − score`` (mean)."""
    return (1.0 - score).mean()


def imagereward_loss(score: Any) -> Any:
    """docs/methods/B15-image-text-reward.md / docs/methods/F2-reno.md ImageReward loss ``2 − r`` on the standardized score (mean)."""
    return (2.0 - score).mean()


def aesthetic_loss(score: Any) -> Any:
    """docs/methods/B15-image-text-reward.md / docs/methods/F2-reno.md LAION-aesthetic loss ``10 − score`` (mean)."""
    return (10.0 - score).mean()


#: ReNO's default weights per reward loss (docs/methods/F2-reno.md; aesthetic is off).
RENO_WEIGHTS = {"hps": 5.0, "imagereward": 1.0, "clip": 0.01, "pickscore": 0.05, "aesthetic": 0.0}


@dataclass
class NoiseOptResult:
    """The best iterate of :func:`reno_optimize` and its per-iteration record.

    ``losses[i]`` is the weighted reward loss ``Σ_k w_k L_k`` of iteration ``i`` (lower is
    better; ``rewards`` is its negative), ``term_losses[i]`` the unweighted ``L_k``,
    ``regularizer[i]`` the χ term (unweighted) and ``norms[i]`` ‖ε‖.
    """

    noise: Any
    output: Any
    best_iteration: int
    best_loss: float
    losses: list[float]
    term_losses: list[list[float]]
    regularizer: list[float]
    norms: list[float]
    generator_calls: int = 0
    #: Why the loop ended before ``iters`` evaluations (a non-finite loss), else None.
    stopped: str | None = None

    @property
    def rewards(self) -> list[float]:
        return [-v for v in self.losses]


def reno_optimize(
    generator: Callable[[Any], Any],
    rewards: Sequence[tuple[Any, ...]],
    noise_shape: Sequence[int] | None = None,
    *,
    noise: Any = None,
    iters: int = 50,
    lr: float = 5.0,
    momentum: float = 0.9,
    nesterov: bool = True,
    grad_clip: float = 0.1,
    reg_weight: float = 0.01,
    seed: int = 0,
) -> NoiseOptResult:
    """docs/methods/F2-reno.md — ReNO: gradient descent on the initial noise ε of a one-step,
    differentiable ``generator`` against ``L(ε) = Σ_k w_k L_k(G(ε)) + λ(½‖ε‖² − (d−1) log‖ε‖)``.

    ``rewards``: ``(w_k, fn_k)`` where ``fn_k(output)`` is a differentiable loss (lower is
    better; e.g. :func:`clip_loss` of the output's embeddings), or ``(w_k, fn_k, "score")`` for a
    score to raise (its loss is ``−score``). ε starts from ``noise`` or ``randn(noise_shape)``
    seeded by ``seed``. SGD (Nesterov momentum 0.9), lr 5.0, gradient-norm clip 0.1, λ = 0.01,
    ``iters`` generator evaluations and ``iters − 1`` updates (ReNO's loop: no update after the
    last evaluation). Returns the iterate with the lowest weighted reward loss (regularizer
    excluded, as ReNO keeps its best image). An iterate whose weighted loss is not finite
    ends the loop before its update (``stopped`` says which term; the best iterate so far is
    kept); a first iterate that is not finite, a negative or non-finite weight (it would
    minimise its reward), all-zero weights or a bad setting is an error.
    """
    import torch

    terms = reward_terms(rewards)  # the grammar reward_backprop_step reads too
    if all(w == 0 for w, _, _ in terms):
        raise SpecError("every reward weight is 0: nothing to optimise")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise SpecError(f"iters must be an integer >= 1, got {iters!r}")
    for name, value in (("lr", lr), ("momentum", momentum), ("grad_clip", grad_clip)):
        _check_real(name, value, positive=name != "momentum")
    _check_real("reg_weight", reg_weight, positive=False)
    if noise is None:
        if noise_shape is None:
            raise SpecError("give noise_shape or an initial noise tensor")
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(tuple(noise_shape), generator=gen)
    eps = noise.detach().clone().float().requires_grad_(True)
    opt = torch.optim.SGD([eps], lr=lr, momentum=momentum, nesterov=nesterov)
    res = NoiseOptResult(None, None, -1, math.inf, [], [], [], [])
    for it in range(iters):
        opt.zero_grad()
        out = generator(eps)
        res.generator_calls += 1
        parts = [sign * fn(out) for _, fn, sign in terms]
        # a term of weight 0 is recorded but never enters the loss (0 · NaN would be NaN)
        total = sum(w * p for (w, _, _), p in zip(terms, parts, strict=True) if w != 0)
        reward_loss = float(total.detach())
        reg = chi_regularizer(eps)
        res.losses.append(reward_loss)
        res.term_losses.append([float(p.detach()) for p in parts])
        res.regularizer.append(float(reg.detach()))
        res.norms.append(float(torch.linalg.vector_norm(eps.detach())))
        if not math.isfinite(reward_loss):
            bad = [
                i
                for i, ((w, _, _), p) in enumerate(zip(terms, parts, strict=True))
                if w != 0 and not math.isfinite(float(p.detach()))
            ]
            why = f"iteration {it}: the weighted reward loss is {reward_loss} (terms {bad})"
            if res.noise is None:
                raise TrainingDiverged(f"{why}: no finite iterate to keep")
            res.stopped = f"{why}; stopped before its update, the best iterate kept"
            break
        if reward_loss < res.best_loss:
            res.best_loss, res.best_iteration = reward_loss, it
            res.noise, res.output = eps.detach().clone(), out.detach().clone()
        if it == iters - 1:
            break
        (total + reg_weight * reg if reg_weight else total).backward()
        torch.nn.utils.clip_grad_norm_([eps], grad_clip)
        opt.step()
    return res


def _check_real(name: str, value: Any, positive: bool) -> None:
    """A finite number > 0 (``positive``) or >= 0, else a :class:`SpecError` naming it."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        want = "> 0" if positive else ">= 0"
        raise SpecError(f"{name} must be a finite number {want}, got {value!r}")

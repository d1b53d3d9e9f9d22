"""MetaRM (docs/methods/A6-contrastive-metarm.md): before each reward-model update, one gradient
*ascent* step on the difference loss ``J`` (:func:`~rewardkit.train.losses.metarm_difference_loss`)
of responses sampled from the current (shifted) policy, then the objective's gradient taken at
the adapted weights is applied to the original ones::

    θ' = θ + η ∇_θ J_θ(X_s)          (X_s: ``metarm_batch_size`` prompts of ``metarm_data``)
    θ  ← θ − α ∇_θ' L(θ'; X_t)       (X_t: the labelled batch; α the optimizer's step)

:func:`meta_shifted` moves the trainable parameters to θ' for the objective's forward and
backward (the gradient it leaves in ``.grad`` is ∇_θ' L(θ')), then restores θ exactly from a
copy (not by subtracting η∇J), so the optimizer applies that gradient to θ: first order, as the
paper writes it. With plain SGD the update is the formula above; AdamW (the trainer's default)
transforms that gradient as it does any other.

The shifted batch of micro-step ``i = global_step × grad_accum + k`` is a function of ``i`` and
the seed alone (:class:`ShiftedBatches`), so ``--resume`` draws the batches an uninterrupted run
draws without any state of its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.curate.crome import prompt_key
from rewardkit.errors import DataError, SpecError, TrainingDiverged
from rewardkit.train import losses as L
from rewardkit.train.common import check_finite_loss
from rewardkit.types import Example

Tensor = torch.Tensor
log = logging.getLogger(__name__)


def group_by_prompt(examples: Sequence[Example], where: str) -> list[Example]:
    """One unlabelled example per prompt (normalised, :func:`prompt_key`) holding every response
    given to it, in file order: multi-response rows as they are, single-response rows (unpaired
    ``prompt``/``completion``/``label`` rows, rated rows) gathered; labels are not read. Prompts
    with one response are left out with a warning; :class:`DataError` when none has two."""
    groups: dict[str, Example] = {}
    for ex in examples:
        for i, response in enumerate(ex.responses):  # each under its own history (prompt_for)
            prompt = ex.prompt_for(i)
            key = prompt_key(prompt)
            if key not in groups:
                name = ex.id if prompt is ex.prompt else f"{ex.id}#{i}"
                groups[key] = Example(id=name, prompt=prompt, responses=[], chosen=[])
            groups[key].responses.append(response)
    out = [g for g in groups.values() if len(g.responses) >= 2]
    single = len(groups) - len(out)
    if out and all(len(set(g.responses)) < 2 for g in out):
        raise DataError(
            f"{where}: every prompt's responses are the same text, so every pair's difference is "
            "0 and the difference loss J has no gradient (the meta step would do nothing); give "
            "each prompt different samples of the policy"
        )
    if not out:
        raise DataError(
            f"{where}: none of its {len(groups)} prompts has 2 or more responses; MetaRM's "
            "difference loss compares responses sampled for one prompt (give each prompt n >= 2 "
            'samples: {"prompt": ..., "responses": [...], "chosen": []}, or unpaired rows '
            "sharing a prompt)"
        )
    if single:
        log.warning(
            "%s: %d of %d prompts have one response only; left out", where, single, len(groups)
        )
    return out


def load_shifted(path: str, encode: Callable[[list[Any]], list[Any]], on_error: str) -> list[Any]:
    """The training items (:class:`~rewardkit.train.collate.Item`, no pairs) of ``metarm_data``:
    any file ``rewardkit.data.load`` reads, grouped by prompt (:func:`group_by_prompt`)."""
    from rewardkit.data import load
    from rewardkit.train.collate import Item

    where = f"metarm_data {path!r}"
    try:
        examples = load(path, on_error=on_error)  # type: ignore[arg-type]
    except DataError as exc:
        hint = (  # a row of unlabelled samples without `chosen` is read as a broken pair
            ' (unlabelled samples: write each prompt as {"prompt": ..., "responses": [...], '
            '"chosen": []})'
            if "chosen" in str(exc)
            else ""
        )
        raise DataError(f"{where}: {exc}{hint}") from None
    groups = group_by_prompt(examples, where)
    rows = encode([q for g in groups for q in g.queries()])
    items, start = [], 0
    for g in groups:
        part = rows[start : start + len(g.responses)]
        start += len(g.responses)
        items.append(
            Item(
                ids=[r.input_ids for r in part],
                types=[r.token_type_ids for r in part],
                example_id=g.id,
                prompt_key=prompt_key(g.prompt),
            )
        )
    check_encoded(items, where)
    return items


def check_encoded(items: Sequence[Any], where: str) -> None:
    """DataError when every prompt's responses encode to one token sequence (different texts
    cut to the same tokens: a prompt longer than ``max_length`` under ``truncation: right``),
    so J is constant and the meta step does nothing; a warning when some prompts do."""
    same = sum(len({tuple(map(int, ids)) for ids in it.ids}) < 2 for it in items)
    if items and same == len(items):
        raise DataError(
            f"{where}: every prompt's responses encode to the same tokens (truncated to the "
            "same text: a prompt longer than max_length under truncation right keeps no "
            "response token), so the difference loss J has no gradient and the meta step would "
            "do nothing; raise max_length, use truncation left, or shorten the prompts"
        )
    if same:
        log.warning(
            "%s: %d of %d prompts have responses that encode to the same tokens (truncated); "
            "they add nothing to J",
            where,
            same,
            len(items),
        )


class ShiftedBatches:
    """Batches of ``size`` items, the batch of micro-step ``i`` a function of ``(seed, i)``: pass
    ``c = i // per_pass`` over the items is a permutation seeded by ``(seed, c)``, cut in order."""

    def __init__(self, items: Sequence[Any], size: int, seed: int) -> None:
        self.items, self.size, self.seed = list(items), max(1, size), seed
        self.per_pass = math.ceil(len(self.items) / self.size)

    def batch(self, i: int) -> list[Any]:
        cycle, j = divmod(i, self.per_pass)
        perm = np.random.default_rng([self.seed, cycle]).permutation(len(self.items))
        return [self.items[k] for k in perm[j * self.size : (j + 1) * self.size]]


def reward_grid(r: Tensor, sizes: Sequence[int]) -> Tensor:
    """Rewards of consecutive groups of ``sizes`` responses as (groups, max size), NaN-padded."""
    rows = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(list(sizes)))
    cols = torch.cat([torch.arange(n) for n in sizes])
    grid = torch.full((len(sizes), max(sizes)), float("nan"), dtype=r.dtype, device=r.device)
    return grid.index_put((rows.to(r.device), cols.to(r.device)), r)


@contextlib.contextmanager
def meta_shifted(params: Sequence[Tensor], objective: Tensor, eta: float) -> Iterator[None]:
    """Inside the block the ``params`` are ``θ' = θ + η ∇_θ objective``; after it (even on an
    error) they are θ again, copied back bit for bit. A non-finite ``objective``, gradient or
    θ' is :class:`~rewardkit.errors.TrainingDiverged` naming MetaRM (a NaN model is no
    success)."""
    check_finite_loss(objective, what="MetaRM's difference loss J (metarm_difference_loss)")
    grads = torch.autograd.grad(objective, list(params), allow_unused=True)
    moved = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
    if not all(bool(torch.isfinite(g).all()) for _, g in moved):
        raise TrainingDiverged(
            "MetaRM's difference loss J has a NaN or infinite gradient: the meta step cannot "
            "move the weights (lower metarm_eta or the learning rate); nothing was saved"
        )
    saved = [p.detach().clone() for p, _ in moved]
    with torch.no_grad():
        for p, g in moved:
            p.add_(g.to(p.dtype), alpha=eta)
    try:
        if not all(bool(torch.isfinite(p).all()) for p, _ in moved):
            raise TrainingDiverged(
                f"MetaRM's meta step θ' = θ + η∇J with η = metarm_eta = {eta:g} leaves weights "
                "past float range (NaN or infinite): lower metarm_eta; nothing was saved"
            )
        yield
    except TrainingDiverged as exc:  # the loss at θ': say which step size moved it there
        raise TrainingDiverged(
            f"{exc} (at MetaRM's shifted weights θ' = θ + η∇J, η = metarm_eta = {eta:g}: "
            "lower metarm_eta)"
        ) from None
    finally:
        with torch.no_grad():
            for (p, _), s in zip(moved, saved, strict=True):
                p.copy_(s)


def difference_loss(
    cfg: Any, model: Any, batch: dict[str, Tensor], sizes: Sequence[int], keys: Sequence[str]
) -> Tensor:
    """``J`` of one collated shifted batch (groups of ``sizes`` responses) under ``model``."""
    from rewardkit.train.objectives import scalar_reward

    out = model(**{k: batch[k] for k in keys if k in batch})
    return L.metarm_difference_loss(reward_grid(scalar_reward(cfg, out), sizes))


class MetaRM:
    """The MetaRM step of a :class:`~rewardkit.train.trainer.RewardTrainer` (see the module
    docstring); built by :meth:`for_trainer`."""

    def __init__(self, batches: ShiftedBatches, eta: float, keys: Sequence[str]) -> None:
        self.batches, self.eta, self.keys = batches, eta, tuple(keys)
        self._step, self._micro = -1, 0

    @classmethod
    def for_trainer(cls, trainer: Any, keys: Sequence[str]) -> MetaRM:
        """Load ``cfg.metarm_data`` with the trainer's model's scoring encoder; refuse a run it
        cannot step (several processes, a model that is not a text reward model)."""
        from rewardkit.train.contrastive import reward_head
        from rewardkit.train.model import _unwrap
        from rewardkit.train.run import scoring_encoder

        cfg = trainer.cfg
        if trainer.args.world_size > 1:
            raise SpecError(
                f"metarm_data: MetaRM's meta step runs in one process; this run has "
                f"{trainer.args.world_size} (accelerate launch): run it in one process, or "
                "remove metarm_data"
            )
        reward_head(trainer.model)  # a text reward model, or a SpecError naming what it is
        _, encode = scoring_encoder(cfg, _unwrap(trainer.model.hf))
        items = load_shifted(str(cfg.metarm_data), encode, cfg.on_error)
        size = cfg.metarm_batch_size or cfg.batch_size
        eta = cfg.lr if cfg.metarm_eta is None else cfg.metarm_eta
        log.info("metarm_data: %d prompts, %d per meta step, eta %g", len(items), size, eta)
        return cls(ShiftedBatches(items, size, int(trainer.args.seed)), eta, keys)

    def index(self, global_step: int, accum: int) -> int:
        """The micro-step index ``global_step × accum + k`` (k: calls since the step began)."""
        if global_step != self._step:
            self._step, self._micro = global_step, 0
        self._micro += 1
        return global_step * accum + self._micro - 1

    @contextlib.contextmanager
    def shifted(self, trainer: Any, model: Any) -> Iterator[None]:
        """The trainer's model at θ' for one training step (its J logged as
        ``metarm_difference_loss``)."""
        i = self.index(
            int(trainer.state.global_step), int(trainer.args.gradient_accumulation_steps)
        )
        items = self.batches.batch(i)
        batch = trainer._prepare_inputs(trainer.data_collator(items))
        params = [p for p in model.parameters() if p.requires_grad]
        model.train()
        with trainer.compute_loss_context_manager():
            j = difference_loss(trainer.cfg, model, batch, [len(it.ids) for it in items], self.keys)
        trainer._train_stats["metarm_difference_loss"].append(float(j.detach()))
        with meta_shifted(params, j, self.eta):
            yield


def content_identity(path: str) -> list[dict[str, Any]]:
    """What ``metarm_data`` holds (:func:`~rewardkit.train.fingerprint.data_identity`: size and
    SHA-256, a directory by its listing; its path only to name it): compared by content, so
    the same bytes elsewhere are the same data (a run's fingerprint; a checkpoint of an older
    rewardkit recorded no path)."""
    from rewardkit.train.fingerprint import data_identity

    return data_identity(path)

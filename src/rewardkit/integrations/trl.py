"""TRL adapter: a rewardkit reward as one of ``GRPOTrainer(reward_funcs=[...])``.

TRL 1.x calls each reward function as ``f(prompts=, completions=, completion_ids=, **columns)``
where ``columns`` are the dataset's other columns (one value per completion) plus
``trainer_state``, ``log_extra`` and ``log_metric``; it expects ``list[float | None]`` (None: "does
not apply", turned into NaN and ignored by TRL's nan-aware sum) and awaits the call when the
callable is async (``trl.trainer.utils.is_async_callable``). Its metrics show up as
``rewards/<__name__>/mean``.

::

    from rewardkit.integrations.trl import reward_func
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_func({"weighted": {"rule:format": 1.0,
                          "classifier:minilm": 0.5}})], ...)

The dataset column ``reference`` (or ``ground_truth``/``solution``/``answer``/``label``, or the one
named by ``reference_column``; without any, ``reward_model["ground_truth"]`` of a dataset in verl's
layout) becomes ``Query.reference``; other plain columns (e.g.
``data_source``) go into ``Query.meta``. Per-component means (ensemble members, hybrid parts) are
logged through ``log_metric`` as ``rewardkit/<name>/<component>``; with a
:class:`~rewardkit.monitor.RewardMonitor` every call is also one monitor step whose metrics are
logged the same way.

A reward that reads images (``Capability.IMAGES``: ``clip:``, ``vlm-judge:``, a composite with
such a part) gets each prompt with its images, as GRPOTrainer holds them for a vision-language
model: image parts TRL filled (TRL 1.x), or ``{"type": "image"}`` placeholders filled from the
``images`` (``image``) column; a placeholder with no image is refused, naming the prompt. A text
reward (a composite of text rewards too) gets the prompt's text, images dropped.

Messages are read as data files and the server read them
(:func:`rewardkit.data.checks.read_message`: role case, ``function``/``ipython`` as ``tool``,
refusals, ShareGPT, tool-use keys kept); a parsed completion's ``reasoning_content`` is put back
as its ``<think>`` block, as verl's decoded text holds it. Refused with an error naming the
argument and index, never dropped or scored as ``""``: a column whose length is not the number of
completions, a completion that is neither text nor chat messages with content, or holds a user
turn (:func:`~rewardkit.integrations._messages.as_response`), a prompt message without ``role`` or
with an unknown one, and an infinite score (from the reward or ``shape``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.data.record import as_reference
from rewardkit.integrations._columns import REFERENCE_COLUMNS, is_plain, plain_value
from rewardkit.integrations._common import as_failed_score, failed_fill
from rewardkit.integrations._images import as_image_prompt
from rewardkit.integrations._messages import as_prompt, as_response
from rewardkit.integrations._reward import (
    RewardSpec,
    agreeing_members,
    as_reward,
    components,
    log_key,
    log_keys,
    warn_unrouted,
)
from rewardkit.integrations._scores import BySource, check_finite_scores
from rewardkit.monitor import RewardMonitor
from rewardkit.types import Capability, Query, prompt_text

#: Keyword arguments TRL adds that are not dataset columns.
TRL_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments", "completion_ids")

#: The image columns TRL reads, in its order: ``images`` (a list per row), else ``image``.
IMAGE_COLUMNS = ("images", "image")


def verl_references(cols: Mapping[str, list[Any]]) -> list[Any] | None:
    """Each row's ``reward_model["ground_truth"]`` for a dataset in verl's layout (every value
    of its ``reward_model`` column a dict with ``ground_truth``), else None: read by no
    reference column, every reference rule scored ``None`` and TRL dropped the term."""
    values = cols.get("reward_model")
    if not values or not all(isinstance(v, Mapping) and "ground_truth" in v for v in values):
        return None
    return [v["ground_truth"] for v in values]


def row_images(cols: Mapping[str, list[Any]], i: int) -> list[Any]:
    """Row ``i``'s images from TRL's image column, as ``GRPOTrainer`` takes them: ``images``
    (a list, or None) before ``image`` (one image, or None)."""
    if "images" in cols:
        value = cols["images"][i]
        if value is None:
            return []
        return list(value) if isinstance(value, list | tuple) else [value]  # one image alone
    if "image" in cols:
        return [] if cols["image"][i] is None else [cols["image"][i]]
    return []


class TRLReward:
    """Synchronous TRL reward function wrapping a rewardkit :class:`~rewardkit.types.Reward`."""

    def __init__(
        self,
        reward: RewardSpec,
        *,
        name: str | None = None,
        reference_column: str | None = None,
        monitor: RewardMonitor | None = None,
        log_components: bool = True,
        engine_defaults: Mapping[str, Any] | None = None,
        shape: Callable[[np.ndarray, Sequence[Query]], np.ndarray] | None = None,
        gold: RewardSpec | None = None,
        failed_score: float | None = None,
    ) -> None:
        self.reward = as_reward(reward, engine_defaults)
        #: What an item the reward failed gets (None: the lowest score of its call; ``None``
        #: was "does not apply", which TRL drops: a response that broke the judge escaped it)
        self.failed_score = as_failed_score(failed_score)
        self.shape = shape
        self.gold = None if gold is None else as_reward(gold, engine_defaults)
        if self.gold is not None and monitor is None:
            raise ValueError("a gold reward is only scored for the monitor: pass monitor= too")
        if self.reward.objectives:
            raise ValueError(
                f"{self.reward.name!r} returns {len(self.reward.objectives)} objectives; TRL needs "
                "one number per completion: wrap it in a weighted or ensemble spec"
            )
        self.__name__ = name or log_key(self.reward.name, "rewardkit")
        self.reference_column = reference_column
        self.monitor = monitor
        self.log_components = log_components

    def queries(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]
    ) -> list[Query]:
        """The rewardkit queries of one TRL call.

        Every dataset column (a list, tuple or numpy array: TRL passes one value per completion)
        must have one value per completion; one that does not is refused, naming it, rather than
        dropped (a dropped ``ground_truth`` column left every reference-based rule NaN, a dropped
        ``data_source`` every route). Other keyword values (not sequences) are not columns."""
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(f"TRL passed {len(prompts)} prompts for {n} completions")
        cols: dict[str, list[Any]] = {}
        for k, v in columns.items():
            if k in TRL_KWARGS or isinstance(v, (str, bytes, Mapping)):
                continue
            if isinstance(v, Sequence) or (isinstance(v, np.ndarray) and v.ndim >= 1):
                if len(v) != n:
                    raise ValueError(
                        f"column {k!r} has {len(v)} values for {n} completions; TRL passes one "
                        "value per completion"
                    )
                cols[k] = [plain_value(x) for x in v]
        if self.reference_column is not None:
            if self.reference_column not in cols:
                raise ValueError(
                    f"reference_column {self.reference_column!r} is not a dataset column; "
                    f"columns: {sorted(cols) or 'none'}"
                )
            ref_col = self.reference_column
        else:
            ref_col = next((c for c in REFERENCE_COLUMNS if c in cols), None)
        refs = cols[ref_col] if ref_col is not None else verl_references(cols)
        # an image reward gets the prompt's images (TRL fills image parts, or passes
        # placeholders with an image column); a text reward its text, images dropped
        reads_images = self.reward.can(Capability.IMAGES)
        out = []
        for i in range(n):
            meta = {k: v[i] for k, v in cols.items() if k != ref_col and is_plain(v[i])}
            ref = as_reference(refs[i]) if refs is not None else None
            out.append(
                Query(
                    as_image_prompt(prompts[i], row_images(cols, i), f"prompts[{i}]")
                    if reads_images
                    else as_prompt(prompts[i], f"prompts[{i}]"),
                    as_response(completions[i], f"completions[{i}]"),
                    reference=ref,
                    meta=meta,
                )
            )
        return out

    def compute(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        queries = self.queries(prompts, completions, columns)
        warn_unrouted(self.reward, queries, f"TRL {self.__name__}")
        full = self.reward.score_full(queries)
        raw = np.asarray(full.scores, dtype=np.float64)
        check_finite_scores(raw, f"{self.reward.name!r} scores")
        raw, failed = failed_fill(full, raw, self.failed_score, f"TRL {self.__name__}")
        scores = (
            raw if self.shape is None else np.asarray(self.shape(raw, queries), dtype=np.float64)
        )
        if scores.shape != raw.shape:
            raise ValueError(f"shape returned {scores.shape} scores for {raw.shape} rewards")
        check_finite_scores(scores, "shape(...) scores")
        log_metric: Callable[[str, float], None] | None = columns.get("log_metric")
        if log_metric is not None:  # every call, 0 too: TRL averages over the calls that logged
            # it: 3 failures in one call of 10 read 3.0 where the mean per call is 0.3
            log_metric(f"rewardkit/{self.__name__}/failed", float(failed.sum()))
        if log_metric is not None and self.log_components:
            parts = components(self.reward, full)
            keys = log_keys(list(parts), reserved=["failed"])  # one metric per component
            for comp, vals in parts.items():
                if np.any(~np.isnan(vals)):
                    log_metric(f"rewardkit/{self.__name__}/{keys[comp]}", float(np.nanmean(vals)))
        if self.monitor is not None:
            if not self.monitor.ensemble:
                # a weighted sum's members are different properties, not RMs that should agree
                self.monitor.ensemble = agreeing_members(full)
            state = columns.get("trainer_state")
            self.monitor.step(
                [prompt_text(q.prompt) for q in queries],
                [q.response for q in queries],
                components(self.reward, full),
                reward=scores,
                gold=None if self.gold is None else self.gold.score(queries),
                step=getattr(state, "global_step", None),
            )
            if log_metric is not None:
                for key, value in self.monitor.latest().items():
                    log_metric(key, value)
        return [None if math.isnan(s) else float(s) for s in scores]

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return self.compute(prompts, completions, **columns)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reward.name!r})"


async def _async_call(
    prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
) -> list[float | None]:
    """The code an :class:`AsyncTRLReward` shows ``inspect`` (its ``__call__`` less ``self``);
    only its code object is used, never this function."""
    return []


class AsyncTRLReward(TRLReward):
    """The same reward as a coroutine: scoring runs in a worker thread, so TRL can gather several
    async rewards (e.g. a remote judge and a local model) concurrently.

    To ``inspect`` it is function-like (``__code__``, ``__defaults__``, ``__kwdefaults__``, as a
    Cython function is), so ``inspect.iscoroutinefunction(instance)`` is True: TRL releases that
    ask only that (up to at least 1.10; later ones also look at ``__call__``) called it
    synchronously and failed on the coroutine it returned."""

    __code__ = _async_call.__code__
    __defaults__ = None
    __kwdefaults__ = None

    async def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float | None]:
        return await asyncio.to_thread(self.compute, prompts, completions, **columns)


def reward_func(
    spec: RewardSpec,
    *,
    asynchronous: bool = False,
    name: str | None = None,
    reference_column: str | None = None,
    monitor: RewardMonitor | None = None,
    log_components: bool = True,
    engine_defaults: Mapping[str, Any] | None = None,
    shape: Callable[[np.ndarray, Sequence[Query]], np.ndarray] | None = None,
    gold: RewardSpec | None = None,
    failed_score: float | None = None,
) -> TRLReward:
    """A TRL ``reward_funcs`` entry for ``spec`` (a spec string/dict/file or a Reward).

    ``asynchronous=True`` returns an async callable (TRL runs async rewards concurrently). The
    reward is built once, here; the callable is a picklable class instance named ``name``
    (default: the spec) in TRL's metrics. ``shape(scores, queries) -> scores`` post-processes
    the rewards before TRL sees them, e.g. ``BySource(MedianLogisticNormalizer())`` for MedGRPO's
    cross-dataset normalization (card C3) or ``BySource(RunningWhitener(clip=5))``. ``gold``: a
    (stronger) reward scored on the same completions for the monitor's proxy-vs-gold drift and
    its "proxy up, gold down" warning (card D9); it never reaches the trainer. An item the
    reward *failed* (an upstream 500, a judge's context overflow) gets ``failed_score``
    (default: the lowest score of its call), never ``None``: TRL drops a ``None`` term, so a
    response that broke the judge escaped its penalty; ``rewardkit/NAME/failed`` counts them
    (logged on every call, 0 included, so TRL's mean over calls is the count per call).
    """
    cls = AsyncTRLReward if asynchronous else TRLReward
    return cls(
        spec,
        name=name,
        reference_column=reference_column,
        monitor=monitor,
        log_components=log_components,
        engine_defaults=engine_defaults,
        shape=shape,
        gold=gold,
        failed_score=failed_score,
    )


__all__ = ["AsyncTRLReward", "BySource", "TRLReward", "reward_func"]

"""What every kind of training run shares: the data split, LoRA, dropout, the ``Trainer``
arguments, the result type and the final save. :mod:`rewardkit.train.run` (full fine-tunes and
the dispatcher) and the image, frozen-head, ensemble and PRM runs all build on these."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import re
import shutil
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.trained_on import write_trained_prompts
from rewardkit.errors import DataError, TrainingDiverged
from rewardkit.outputs import OutputError, atomic_json
from rewardkit.train.config import TrainConfig

#: What torch's zip writer says when a file cannot be written (it gives no errno).
_TORCH_WRITE = ("PytorchStreamWriter", "inline_container", "file write failed", "unexpected pos")


def check_finite_loss(loss: Any, step: int | None = None, what: str = "the training loss") -> None:
    """:class:`~rewardkit.errors.TrainingDiverged` naming ``what`` and the step when ``loss``
    (a float, or a tensor/array of values) holds NaN or ±inf, so that no diverged model is
    saved as a success."""
    values = loss.detach().float().cpu().numpy() if hasattr(loss, "detach") else loss
    arr = np.asarray(values, dtype=np.float64)
    if arr.size and not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].flat[0]
        at = f" at step {step}" if step is not None else ""
        raise TrainingDiverged(
            f"{what} became {bad}{at}: training diverged (try a lower learning rate); "
            "nothing was saved"
        )


@dataclass
class TrainResult:
    """Where the model went and the last metrics."""

    output_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    #: what the run trained on and measured (``{"train": …, "eval": …}``,
    #: :func:`~rewardkit.train.collate.data_counts`); empty for runs that do not count them
    data: dict[str, dict[str, int]] = field(default_factory=dict)


def load_examples(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """Training and evaluation examples (the eval file, or a held-out fraction). ``data`` may
    name several files, comma-separated; ``limit`` applies to each."""
    from rewardkit.data import load

    train = []
    for part in [p.strip() for p in cfg.data.split(",") if p.strip()]:
        train += load(
            part,
            format=cfg.data_format,
            columns=cfg.columns,
            limit=cfg.limit,
            on_error=cfg.on_error,
        )
    if not train:
        raise DataError(f"train data {cfg.data!r} holds no examples")
    evals = []
    for part in [p.strip() for p in (cfg.eval_data or "").split(",") if p.strip()]:
        try:
            evals += load(
                part,
                format=cfg.eval_format,
                columns=eval_columns(cfg),
                limit=cfg.eval_limit,
                on_error=cfg.on_error,
            )
        except DataError as exc:
            if cfg.eval_columns is not None or not cfg.columns:
                raise
            raise DataError(
                f"{exc} (eval_data is read with the training data's columns {cfg.columns}; "
                "give eval_columns for another map, or eval_columns: {} for none)"
            ) from None
    if cfg.eval_data and not evals:
        raise DataError(f"eval data {cfg.eval_data!r} holds no examples")
    from rewardkit.train.labels import paired_by_prompt

    return paired_by_prompt(train, cfg, cfg.data), paired_by_prompt(evals, cfg, cfg.eval_data or "")


def eval_columns(cfg: TrainConfig) -> dict[str, str] | None:
    """The column map of ``eval_data``: ``eval_columns`` when given (``{}``: none), else the
    training data's ``columns`` (a validation split of the same dataset has its columns)."""
    return cfg.columns if cfg.eval_columns is None else (cfg.eval_columns or None)


def holdout_indices(
    keys: Sequence[Hashable], fraction: float, seed: int, where: str = "data", by: str = "prompt"
) -> list[int]:
    """The rows (indices into ``keys``) of a seeded hold-out of about ``fraction`` of them, by
    whole groups: rows with one key (their normalised prompt) all land on one side. The groups,
    in first-seen order, are shuffled by ``seed`` and each is held out when it brings the count
    closer to ``max(1, round(fraction * n))``; at least one group is held out and one kept (with
    every key distinct: the rows the row split held out before). :class:`DataError` naming
    ``where`` when one group holds every row (no split leaves both sides non-empty)."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    if len(groups) < 2:
        what = (
            f"holds out whole prompts and all {len(keys)} examples have one prompt"
            if by == "prompt" and len(keys) > 1
            else f"of {len(keys)} example{'s' * (len(keys) != 1)}"
        )
        row = " or holdout_by row" if by == "prompt" and len(keys) > 1 else ""
        raise DataError(
            f"{where}: eval_fraction {fraction} {what}: no training example is left beside "
            f"the hold-out; give eval_data{row}"
        )
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    want = max(1, round(fraction * len(keys)))
    held: list[list[int]] = []
    n = 0
    for group in order:
        if n + len(group) < len(keys) and abs(n + len(group) - want) < abs(n - want):
            held.append(group)
            n += len(group)
    if not held:  # every group is far larger than the hold-out asked for: the smallest one
        held.append(min(order, key=len))
    return sorted(i for group in held for i in group)


def load_classifier(model: str, num_labels: int, seed: int, dtype: str) -> Any:
    """A trainable sequence classifier with ``num_labels`` outputs; a new or resized head is
    initialised from ``seed``."""
    import torch
    import transformers

    from rewardkit.models.loading import resolve_model, torch_dtype

    source = resolve_model(model).source
    torch.manual_seed(seed)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=num_labels, ignore_mismatched_sizes=True, dtype=torch_dtype(dtype)
    )
    return hf.to(torch_dtype(dtype))


def disable_dropout(module: Any) -> None:
    """Set every dropout probability in ``module`` to 0 (``nn.Dropout`` layers and the
    ``attention_dropout`` rates attention modules read), as TRL's ``disable_dropout`` does."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
        if isinstance(getattr(m, "attention_dropout", None), float):
            m.attention_dropout = 0.0


def warmup_fraction(ratio: float) -> float:
    """``warmup_ratio`` as transformers' ``warmup_steps``, which reads a value below 1 as a
    fraction of the steps and 1 or more as a step count: a ratio of 1 (warm up over the whole
    run) becomes the largest float below 1, not one step."""
    import math

    return min(ratio, math.nextafter(1.0, 0.0))


def world_size() -> int:
    """The number of training processes (``WORLD_SIZE``, set by ``accelerate launch``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def training_args(cfg: TrainConfig, output_dir: str, seed: int, n_eval: int) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=warmup_fraction(cfg.warmup_ratio),
        lr_scheduler_type=cfg.scheduler,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        seed=seed,
        data_seed=seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if (cfg.eval_steps and n_eval) else "no",
        eval_steps=cfg.eval_steps or None,
        remove_unused_columns=False,
        train_sampling_strategy="random" if cfg.shuffle else "sequential",
        report_to="none",
        disable_tqdm=not cfg.progress,
        dataloader_num_workers=0,
        use_cpu=not __import__("torch").cuda.is_available(),
        bf16=cfg.bf16,
        ddp_backend="gloo"
        if int(os.environ.get("WORLD_SIZE", "1")) > 1
        and not __import__("torch").cuda.is_available()
        else None,
    )


def finished_at(ckpt: Path, resumed_from: dict[str, Any] | None) -> bool:
    """Whether ``ckpt`` holds the last step of its run (and the resumed run is not longer)."""
    if resumed_from and resumed_from.get("raised"):
        return False
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        return 0 < int(state["max_steps"]) <= int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def checkpoint_step(ckpt: str | Path) -> int:
    """The step of a ``checkpoint-N`` folder."""
    return int(Path(ckpt).name.rsplit("-", 1)[1])


def logged_loss_sum(history: list[dict[str, Any]], upto: int) -> tuple[float, int]:
    """(Σ loss × steps, steps) over the logged training losses of ``history`` up to step
    ``upto``: each ``loss`` entry is the mean over the steps since the previous one."""
    total, last = 0.0, 0
    for h in history:
        if "loss" in h and "step" in h and last < int(h["step"]) <= upto:
            total += float(h["loss"]) * (int(h["step"]) - last)
            last = int(h["step"])
    return total, last


#: (Σ per-step training loss, steps) from step 0 to a checkpoint: what a checkpoint's run file
#: records as ``train_loss_tally`` (:meth:`~rewardkit.train.trainer.RewardTrainer.loss_tally`).
LossTally = tuple[float, int]


def merged_mean(before: LossTally, mean: float, steps: int) -> float:
    """The mean loss per step of a run whose first ``before[1]`` steps summed to ``before[0]``
    and whose next ``steps`` steps had mean ``mean``."""
    total, covered = before
    return (total + mean * steps) / (covered + steps)


def whole_run_train_loss(
    history: list[dict[str, Any]], resumed_at: int, tally: LossTally | None = None
) -> None:
    """Make the final ``train_loss`` of a run resumed at step ``resumed_at`` the mean loss per
    step of the whole run, as an uninterrupted run reports it (transformers' own covers only the
    steps since the resume). ``tally``: the checkpoint's exact sum of the losses before the
    resume; without one (a checkpoint of an older rewardkit), the logged losses before the
    resume weighted by their steps, exact only when the checkpoint's step is a multiple of
    ``logging_steps``. A restored final checkpoint (no step trained) gets one."""
    total, covered = tally if tally is not None else logged_loss_sum(history, resumed_at)
    final = next((h for h in reversed(history) if "train_loss" in h), None)
    if final is not None and int(final.get("step", 0)) > resumed_at:
        steps = int(final["step"]) - resumed_at
        final["train_loss"] = merged_mean((total, covered), float(final["train_loss"]), steps)
    elif final is None and covered:
        history.append({"train_loss": total / covered, "step": resumed_at})


def write_json(path: Path, value: Any, indent: int | None = 1) -> None:
    """``value`` as JSON in ``path``, atomically (:func:`rewardkit.outputs.atomic_json`: a
    kill never leaves half a file); values JSON cannot hold are written as strings."""
    atomic_json(path, json.loads(json.dumps(value, default=str)), indent=indent)


def _disk_full(where: Path) -> bool:
    folder = next((p for p in (where, *where.parents) if p.is_dir()), Path("."))
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_failure(exc: BaseException, where: Path) -> OSError | None:
    """The operating-system error behind ``exc``, raised while writing in ``where``: an
    ``OSError`` itself, a ``SafetensorError`` or ``RuntimeError`` naming ``os error N``, or
    torch's zip writer failing (no errno: a full disk when ``where`` has no space left).
    None for any other error (a bug, shown as one)."""
    if isinstance(exc, OSError):
        return exc
    if not isinstance(exc, RuntimeError) and type(exc).__name__ != "SafetensorError":
        return None
    text = " ".join(str(exc).split())
    found = re.search(r"\(os error (\d+)\)", text)
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    if any(s in text for s in _TORCH_WRITE):
        if _disk_full(where):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return OSError(errno.EIO, f"the file could not be written ({text})")
    return None


@contextlib.contextmanager
def save_errors(what: str, where: Path) -> Iterator[None]:
    """Turn an error met while saving ``what`` in ``where`` (a full or read-only disk, which
    safetensors and torch report as their own error types) into an
    :class:`~rewardkit.outputs.OutputError` naming both and keeping the reason."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        cause = write_failure(exc, where)
        if cause is None:
            raise
        why = cause.strerror or str(cause)
        name = f" ({Path(cause.filename).name})" if getattr(cause, "filename", None) else ""
        raise OutputError(f"train: cannot save {what} in {where}: {why}{name}") from exc


def record_run(out: Path, fingerprint: dict[str, Any], resumed_from: dict[str, Any] | None) -> None:
    """Write the run's fingerprint next to the finished model, and say in
    ``rewardkit_train.json`` which checkpoint it resumed from and what grew (a longer run)."""
    from rewardkit.train.runstate import write_run_file

    meta_file = out / "rewardkit_train.json"
    if meta_file.is_file() and resumed_from is not None:
        meta = json.loads(meta_file.read_text())
        meta["resumed_from"] = resumed_from
        write_json(meta_file, meta, indent=2)
    write_run_file(out, fingerprint, resumed_from=resumed_from)


#: The files that mark a run as finished, written last and removed when a save fails.
FINISHED = ("metrics.json", "rewardkit_run.json")


def run_counts(cfg: TrainConfig, trainer: Any) -> dict[str, dict[str, int]]:
    """``{"train": …, "eval": …}``: what the trainer's data give the objective
    (:func:`~rewardkit.train.collate.data_counts`; "eval" only with eval data or a hold-out,
    with ``prompts_in_train``: how many of its prompts the training part holds too)."""
    from rewardkit.train.collate import data_counts

    train, evals = trainer.train_dataset, trainer.eval_dataset
    counts = {"train": data_counts(train, cfg.objective)}
    if evals:
        counts["eval"] = data_counts(evals, cfg.objective)
        if "prompts" in counts["train"] and "prompts" in counts["eval"]:
            trained = {it.prompt_key for it in train}
            shared = {it.prompt_key for it in evals} & trained
            counts["eval"]["prompts_in_train"] = len(shared)
    return counts


def add_counts(meta_file: Path, counts: dict[str, dict[str, int]]) -> None:
    """Record ``counts`` as ``data`` in ``rewardkit_train.json`` (written by the model save)."""
    if counts and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        meta["data"] = counts
        write_json(meta_file, meta, indent=2)


def save_finished(
    cfg: TrainConfig,
    trainer: Any,
    metrics: dict[str, float],
    fingerprint: dict[str, Any],
    resumed_from: dict[str, Any] | None,
    counts: dict[str, dict[str, int]] | None = None,
) -> None:
    """The final save of process 0: model, history, plot, then ``metrics.json`` and the run
    file last. A failure (a full disk: :func:`save_errors`) leaves neither behind, so a model
    half saved never looks finished. ``counts``: what the run trained on, recorded as ``data``
    in ``rewardkit_train.json``."""
    out = Path(cfg.output_dir)
    try:
        with save_errors("the trained model", out):
            trainer.save_model(str(out))
            add_counts(out / "rewardkit_train.json", counts or {})
            write_trained_prompts(out, [it.prompt_key for it in trainer.train_dataset])
            history = trainer.state.log_history
            write_json(out / "log_history.json", history)
            if cfg.plot:
                from rewardkit.train.plot import plot_history

                plot_history(history, out / "training.png")
            write_json(out / "metrics.json", metrics)
            record_run(out, fingerprint, resumed_from)  # the run file, last
    except BaseException:
        for name in FINISHED:
            (out / name).unlink(missing_ok=True)
        raise


def finish_training(
    cfg: TrainConfig, trainer: Any, counts: dict[str, dict[str, int]] | None = None
) -> TrainResult:
    """Run a prepared trainer (resuming when asked), evaluate, save the model, history, metrics
    and plot to ``cfg.output_dir``, holding the folder all along
    (:func:`~rewardkit.train.runstate.output_lock`). ``counts`` (:func:`run_counts`): what the
    run trains and evaluates on, recorded in ``rewardkit_train.json``, ``metrics.json`` (the n
    behind ``eval_accuracy``) and the result."""
    from rewardkit.train.runstate import output_lock

    with output_lock(cfg.output_dir):
        return _finish_training(cfg, trainer, counts or {})


def _finish_training(
    cfg: TrainConfig, trainer: Any, counts: dict[str, dict[str, int]]
) -> TrainResult:
    import torch

    from rewardkit.train import runstate
    from rewardkit.train.trainer import checkpoint_problem, last_intact_checkpoint

    out = Path(cfg.output_dir)
    fingerprint = trainer.run_fingerprint()
    resume = None
    resumed_from: dict[str, Any] | None = None
    if cfg.resume:
        if trainer.is_world_process_zero():
            runstate.sweep_library_temps(out)
        resume = last_intact_checkpoint(out)
        if resume is None:
            skipped = runstate.unresumable(out, checkpoint_problem)  # all damaged: refused
            runstate.check_resume_without_checkpoint(out, fingerprint, skipped)
            logging.getLogger(__name__).warning("resume: no checkpoint in %s; starting fresh", out)
        else:
            grown = runstate.check_resume(Path(resume), fingerprint)
            resumed_from = {"checkpoint": Path(resume).name, "raised": grown}
    else:
        runstate.claim_output_dir(cfg)
    if trainer.is_world_process_zero():
        # The finished outputs of an earlier attempt of this run stop looking finished until
        # this one has written its own (a kill from here on leaves no stale metrics.json).
        for name in FINISHED:
            (out / name).unlink(missing_ok=True)
    # the checkpoint's exact loss sum before the resume (None: an older checkpoint records none)
    step = checkpoint_step(resume) if resume is not None else 0
    tally = runstate.read_loss_tally(Path(resume), step) if resume is not None else (0.0, 0)
    restored = resume is not None and finished_at(Path(resume), resumed_from)
    if restored:
        # The checkpoint is the run's last step (killed before the final save): restore it as
        # it is; transformers would train one step past max_steps.
        from transformers import TrainerState

        trainer._load_from_checkpoint(resume)
        trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
    else:
        trainer.loss_carried = tally  # its final train_loss and its checkpoints count from it
        trainer.train(resume_from_checkpoint=resume)
    if resume is not None and (restored or tally is None):
        whole_run_train_loss(trainer.state.log_history, step, tally)
    metrics: dict[str, float] = {}
    if trainer.eval_dataset:
        metrics = trainer.evaluate()
    if "eval" in counts:  # the n behind eval_accuracy (strict pairs: one per rejected response)
        metrics["eval_examples"] = counts["eval"]["examples"]
        if "prompts" in counts["eval"]:
            metrics["eval_prompts"] = counts["eval"]["prompts"]
        if "pairs" in counts["eval"]:
            metrics["eval_pairs"] = counts["eval"]["pairs"]
    if trainer.is_world_process_zero():
        save_finished(cfg, trainer, metrics, fingerprint, resumed_from, counts)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return TrainResult(out, metrics, trainer.state.log_history, counts)

"""``RewardTrainer``: a ``transformers.Trainer`` subclass for every objective of
:mod:`rewardkit.train.objectives` (TRL's RewardTrainer is the anchor).

What it adds to ``Trainer``: the objective's loss on one concatenated forward pass per batch,
train/eval metrics (accuracy, mean margin, reward mean/std, pairwise ECE — docs/methods/A1-bradley-terry.md, docs/methods/D7-calibration.md),
tokens/s, saving the model as a plain Hugging Face directory (loadable with
``AutoModelForSequenceClassification.from_pretrained`` and ``classifier:DIR``), and atomic
checkpoints: each ``checkpoint-N`` is written in a hidden staging directory and renamed into
place only when complete, so a run killed mid-save never leaves a half checkpoint for
``--resume`` to pick (:func:`last_intact_checkpoint` also skips damaged ones from older runs).
``resume_from_checkpoint`` (same data order, RNG states), gradient accumulation and
``accelerate launch`` (DDP, DeepSpeed, FSDP) are ``Trainer``'s own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import struct
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer

from rewardkit.outputs import atomic_file
from rewardkit.train import losses as L
from rewardkit.train.common import check_finite_loss, merged_mean, save_errors, write_json
from rewardkit.train.model import GenerativeModel, PeerModels, RewardModel, _unwrap
from rewardkit.train.objectives import compute, loss_terms, pair_smoothing

MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "pool_index",
    "pixel_values",  # image reward models (train/image.py)
)
RESUME_STATE = "rewardkit_state.safetensors"


def pair_metrics(
    r_better: np.ndarray, r_worse: np.ndarray, rewards: np.ndarray
) -> dict[str, float]:
    """Accuracy (strict >), mean margin, reward mean/std (ddof=0), pairwise ECE (10 bins)."""
    out = {
        "reward_mean": float(np.mean(rewards)) if rewards.size else math.nan,
        "reward_std": float(np.std(rewards)) if rewards.size else math.nan,
    }
    if r_better.size:
        out["accuracy"] = float(np.mean(r_better > r_worse))
        out["margin"] = float(np.mean(r_better - r_worse))
        out["ece"] = L.pairwise_ece(r_better, r_worse, 10)
    return out


def eval_batch_loss(cfg: Any, res: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss an eval batch reports. ``crm`` (docs/methods/A7-collaborative-rm.md) trains
    each peer on the other's cleanest pairs; its eval loss is the saved model's (peer a's) BT
    loss over every strict pair (with their margins, weights and label smoothing, as it trains
    and as ``bt`` evaluates), not the training loss of both peers on a subset."""
    if cfg.objective != "crm":
        return res.loss
    strict = ~batch["pair_tie"]
    margin, weight = batch["pair_margin"][strict], batch["pair_weight"][strict]
    return L.bt_loss(res.r_better, res.r_worse, margin, pair_smoothing(cfg, batch), weight)


def eval_loss(losses: list[float], terms: list[int]) -> float:
    """The eval loss over the whole set: each batch's mean loss weighted by its number of terms
    (:func:`~rewardkit.train.objectives.loss_terms`), so a short last batch counts by its size,
    not as much as a full one; the plain mean of batches when no batch has a term."""
    total = float(np.sum(terms)) if terms else 0.0
    if total <= 0:
        return float(np.mean(losses)) if losses else math.nan
    return float(np.dot(losses, terms) / total)


class RewardTrainer(Trainer):
    """See the module docstring. ``cfg`` is the :class:`~rewardkit.train.config.TrainConfig`."""

    def __init__(
        self, *args: Any, cfg: Any, verdict_ids: tuple[int, int] = (-1, -1), **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.verdict_ids = verdict_ids
        self.model_accepts_loss_kwargs = False
        self._train_stats: dict[str, list[float]] = defaultdict(list)
        self._tokens = 0
        self._t0: float | None = None
        self._fingerprint: dict[str, Any] | None = None
        #: (Σ loss, steps) before this run's first step: (0, 0) fresh, a checkpoint's tally on
        #: resume, None when the checkpoint recorded none (its checkpoints then record none)
        self.loss_carried: tuple[float, int] | None = (0.0, 0)
        self._loss_sum = 0.0  # Σ of this train() call's per-step losses, drained at each log
        self._loss_pending: torch.Tensor | None = None  # on the device since the last drain
        # docs/methods/A6-contrastive-metarm.md: refused here when the model cannot take them
        self.metarm = None
        if cfg.contrastive_weight:
            from rewardkit.train.contrastive import check_views

            check_views(self.model, cfg.model)
        if cfg.metarm_data:
            from rewardkit.train.metarm import MetaRM

            self.metarm = MetaRM.for_trainer(self, MODEL_KEYS)

    def run_fingerprint(self) -> dict[str, Any]:
        """This run's fingerprint (config, data identity, items; :mod:`rewardkit.train.runstate`),
        saved with every checkpoint and checked by ``--resume``."""
        if self._fingerprint is None:
            from rewardkit.train.runstate import run_fingerprint

            self._fingerprint = run_fingerprint(self.cfg, self.train_dataset)
            if self.cfg.metarm_data:  # its content, as the training data's
                from rewardkit.train.metarm import content_identity

                conf = self._fingerprint["config"]
                conf["metarm_data"] = content_identity(self.cfg.metarm_data)
        return self._fingerprint

    # --- loss -------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        contrastive = None
        if model.training and self.cfg.contrastive_weight:  # two dropout views, one forward
            from rewardkit.train.contrastive import contrastive_forward

            tau = self.cfg.contrastive_temperature
            out, contrastive = contrastive_forward(model, self.model, inputs, MODEL_KEYS, tau)
        else:
            out = model(**{k: inputs[k] for k in MODEL_KEYS if k in inputs})
        max_steps = max(1, self.state.max_steps or 1)
        res = compute(self.cfg, out, inputs, self.state.global_step / max_steps, self.verdict_ids)
        if contrastive is not None:  # L = L_obj + β_cl·L_cl, each term logged
            self._train_stats["objective_loss"].append(float(res.loss.detach()))
            self._train_stats["contrastive_loss"].append(float(contrastive.detach()))
            res.loss = res.loss + self.cfg.contrastive_weight * contrastive
        if model.training and isinstance(num_items_in_batch, int) and num_items_in_batch > 0:
            # Gradient accumulation: weight this micro-batch's mean by its share of the
            # accumulated batch's loss terms (Trainer then divides by the number of
            # micro-batches), so the step equals one batch of batch_size × grad_accum even when
            # micro-batches hold different numbers of pairs (ties, lists of K responses).
            share = loss_terms(self.cfg, inputs) / num_items_in_batch
            res.loss = res.loss * (share * self.current_gradient_accumulation_steps)
        if model.training:
            check_finite_loss(res.loss, self.state.global_step + 1)  # a NaN model is no success
            if self._t0 is None:
                self._t0 = time.perf_counter()
            self._tokens += int(inputs["n_tokens"])
            with torch.no_grad():
                rb, rw = res.r_better.detach().float(), res.r_worse.detach().float()
                if rb.numel():
                    self._train_stats["accuracy"].append(float((rb > rw).float().mean()))
                    self._train_stats["margin"].append(float((rb - rw).mean()))
                self._train_stats["reward_mean"].append(float(res.rewards.detach().float().mean()))
        return (res.loss, out) if return_outputs else res.loss

    def _get_num_items_in_batch(self, batch_samples: list, device: Any) -> int | None:
        """The loss terms (:func:`~rewardkit.train.objectives.loss_terms`) of the micro-batches
        of one optimizer step, when there are several (None: the plain mean is exact)."""
        if len(batch_samples) < 2:
            return None
        return sum(loss_terms(self.cfg, b) for b in batch_samples)

    # --- the whole run's train_loss ------------------------------------------------------------
    def train(self, *args: Any, **kwargs: Any) -> Any:
        self._loss_sum, self._loss_pending = 0.0, None
        return super().train(*args, **kwargs)

    def training_step(self, model: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``Trainer``'s step, its loss (what ``Trainer`` sums for ``loss``/``train_loss``) also
        summed here, on the device until the next log: the sum a checkpoint records. With
        ``metarm_data`` the step's forward and backward run at MetaRM's θ' (:mod:`.metarm`)."""
        meta = self.metarm.shifted(self, model) if self.metarm else contextlib.nullcontext()
        with meta:
            loss = super().training_step(model, *args, **kwargs)
        step = loss.detach().float()
        self._loss_pending = step if self._loss_pending is None else self._loss_pending + step
        return loss

    def _drain_loss(self) -> float:
        if self._loss_pending is not None:
            self._loss_sum += float(self._loss_pending)
            self._loss_pending = None
        return self._loss_sum

    def loss_tally(self) -> dict[str, float | int] | None:
        """``{"sum", "steps"}``: the sum of the per-step training losses from step 0 to now (the
        mean over processes, a collective call) and the step; None when the run resumed from a
        checkpoint that recorded none. Every checkpoint records it (:data:`runstate.LOSS_TALLY`),
        so a resumed run's ``train_loss`` counts the steps between the last log and the
        checkpoint once, whatever ``logging_steps`` and ``save_steps`` are."""
        if self.loss_carried is None:
            return None
        local = self._drain_loss()
        if self.args.world_size > 1:
            t = torch.tensor([local], dtype=torch.float64, device=self.args.device)
            local = float(self.accelerator.gather(t).mean())
        return {"sum": self.loss_carried[0] + local, "steps": int(self.state.global_step)}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            self._drain_loss()  # float32 on the device only between two logs
        carried = self.loss_carried
        if "train_loss" in logs and carried is not None and carried[1] > 0:
            # transformers' train_loss covers the steps since the resume: the whole run's
            steps = int(self.state.global_step) - carried[1]
            logs["train_loss"] = merged_mean(carried, float(logs["train_loss"]), steps)
        if self._train_stats and "loss" in logs:
            for k, v in self._train_stats.items():
                logs[k] = float(np.mean(v))
            self._train_stats.clear()
            if self._t0 is not None:
                logs["tokens_per_s"] = self._tokens / max(time.perf_counter() - self._t0, 1e-9)
        super().log(logs, start_time)

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        ds = eval_dataset if eval_dataset is not None else self.eval_dataset
        if ds is None or len(ds) == 0:
            return {}
        loader = self.get_eval_dataloader(ds)
        model = self.model
        was_training = model.training
        model.eval()
        better, worse, rewards, losses, terms = [], [], [], [], []
        with torch.no_grad():
            for batch in loader:
                batch = self._prepare_inputs(batch)
                out = model(**{k: batch[k] for k in MODEL_KEYS if k in batch})
                res = compute(self.cfg, out, batch, 1.0, self.verdict_ids)
                better += res.r_better.float().cpu().tolist()
                worse += res.r_worse.float().cpu().tolist()
                rewards += res.rewards.float().cpu().tolist()
                losses.append(float(eval_batch_loss(self.cfg, res, batch)))
                terms.append(loss_terms(self.cfg, batch))
        if was_training:
            model.train()
        gather = self.accelerator.gather_for_metrics
        if self.accelerator.num_processes > 1:
            better, worse = (
                gather(better, use_gather_object=True),
                gather(worse, use_gather_object=True),
            )
            rewards = gather(rewards, use_gather_object=True)
            losses = gather(losses, use_gather_object=True)
            terms = gather(terms, use_gather_object=True)
        metrics = pair_metrics(np.array(better), np.array(worse), np.array(rewards))
        metrics["loss"] = eval_loss(losses, terms)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics

    # --- saving and loading -----------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if not self.args.should_save:  # as Trainer's: transformers 5 calls it on every process
            return
        from rewardkit.train.finite import check_trained

        check_trained(self.model, "trained model")  # lr 1e300: the last step made them NaN
        out = Path(output_dir or self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        export(self.model, out, self.processing_class, self.cfg)
        if needs_resume_state(self.model):
            from safetensors.torch import save_file

            sd = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_file(sd, str(out / RESUME_STATE))
        with atomic_file(out / "training_args.bin", binary=True, what="training_args.bin") as fh:
            torch.save(self.args, fh)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        load_checkpoint(model or self.model, Path(resume_from_checkpoint))

    def _save_checkpoint(self, model, trial) -> None:
        """``Trainer``'s checkpoint, written under ``.staging-checkpoint-N/`` and renamed to
        ``checkpoint-N`` once complete (one process; multi-process runs save as ``Trainer``). A
        save that fails (a full disk) removes its staging folder and is an
        :class:`~rewardkit.outputs.OutputError` naming the checkpoint and the reason."""
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from rewardkit.train.runstate import LOSS_TALLY, write_run_file

        run_dir = Path(self._get_output_dir(trial=trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        tally = self.loss_tally()  # every process: a gather
        extra = {} if tally is None else {LOSS_TALLY: tally}
        if self.args.world_size > 1:
            with save_errors(name, run_dir):
                super()._save_checkpoint(model, trial)
                if self.is_world_process_zero():
                    write_run_file(run_dir / name, self.run_fingerprint(), **extra)
            return
        staging = run_dir / f"{STAGING_PREFIX}{name}"
        shutil.rmtree(staging, ignore_errors=True)  # left by a run killed while saving
        self._get_output_dir = lambda trial=None: str(staging)  # type: ignore[method-assign]
        try:
            with save_errors(name, run_dir):
                super()._save_checkpoint(model, trial)
                write_run_file(staging / name, self.run_fingerprint(), **extra)  # before the rename
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # no half checkpoint, and its space back
            raise
        finally:
            del self._get_output_dir
        final = run_dir / name
        if final.exists():  # a rerun saving the same step: replace it whole
            shutil.rmtree(final)
        os.replace(staging / name, final)
        staging.rmdir()
        from transformers.trainer_utils import rotate_checkpoints

        rotate_checkpoints(
            output_dir=str(run_dir),
            save_total_limit=self.args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=True,
        )


STAGING_PREFIX = ".staging-"
_CKPT = re.compile(r"^checkpoint-(\d+)$")
log = logging.getLogger(__name__)


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from (missing trainer state, truncated weights or
    optimizer files), or None when it looks whole."""
    state = ckpt / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as exc:
        return f"trainer_state.json unreadable ({type(exc).__name__})"
    for f in sorted(ckpt.glob("*.safetensors")):
        try:
            with f.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
            end = max(
                (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
            )
            if f.stat().st_size < 8 + n + end:
                return f"{f.name} is truncated"
        except (OSError, ValueError, struct.error, KeyError, TypeError):
            return f"{f.name} is not a readable safetensors file"
    # rng_state.pth too: a damaged one ended the resumed run on an UnpicklingError traceback
    for f in sorted(ckpt.glob("*.pt")) + sorted(ckpt.glob("*.pth")) + sorted(ckpt.glob("*.bin")):
        if not zipfile.is_zipfile(f):
            return f"{f.name} is truncated"
    return None


def last_intact_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that is whole; damaged newer ones are
    skipped with a warning naming them and the reason."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    for left in sorted(out.glob(f"{STAGING_PREFIX}checkpoint-*")):
        log.warning("resume: ignoring %s (a run was killed while saving it)", left.name)
    found = sorted(
        ((int(m.group(1)), p) for p in out.iterdir() if (m := _CKPT.match(p.name)) and p.is_dir()),
        reverse=True,
    )
    for i, (_, ckpt) in enumerate(found):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            if i:
                log.warning("resume: falling back to %s", ckpt.name)
            return str(ckpt)
        log.warning("resume: skipping %s: %s", ckpt.name, problem)
    return None


def needs_resume_state(model: torch.nn.Module) -> bool:
    """Peer pairs and LoRA runs keep their exact module state next to the HF export."""
    return isinstance(model, PeerModels) or _unwrap(getattr(model, "hf", model)) is not getattr(
        model, "hf", model
    )


def export(model: torch.nn.Module, out: Path, tokenizer: Any, cfg: Any) -> None:
    """Write ``model`` as a plain Hugging Face directory (LoRA merged); a peer pair writes model
    a at ``out`` and model b at ``out/peer``."""
    if isinstance(model, PeerModels):
        export(model.a, out, tokenizer, cfg)
        export(model.b, out / "peer", tokenizer, cfg)
        return
    hf = model.hf
    if _unwrap(hf) is not hf:  # peft: save merged weights, leave the training copy intact
        import copy

        hf = copy.deepcopy(hf).merge_and_unload()
    if tokenizer is not None and getattr(hf.config, "pad_token_id", None) is None:
        hf.config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    meta = {"objective": cfg.objective, "config": cfg.to_dict()}
    where = out.resolve()  # load_with works from any folder (ensemble.yaml, another shell)
    if isinstance(model, GenerativeModel):  # the reward its metrics describe (model.py)
        meta["load_with"] = f"judge:{where}?output={model.output}"
    elif cfg.objective == "prm":
        meta["load_with"] = f"prm:{where}"
    else:
        meta.update(classifier_outputs(cfg, where))
    write_json(out / "rewardkit_train.json", meta, indent=2)


def classifier_outputs(cfg: Any, out: Path) -> dict[str, Any]:
    """How a saved sequence classifier gives the reward it was trained for: ``load_with`` (a
    reward spec), and for multi-output heads the ``outputs`` names and the ``reward`` formula.
    ``bt+regression`` trains its BT reward on output 0 (docs/methods/A3-scaled-bt.md), read with
    ``reduce=weighted``; ``regression`` returns one column per attribute
    (docs/methods/A2-multi-attribute-regression.md); ``gated`` rewards
    ``Σ_k softmax(g)_k s_k`` over outputs [s_1..s_k, g_1..g_k] (docs/methods/A4-more.md).
    The spec carries the training ``max_length`` (and a non-default ``truncation``): rows are
    scored as they were trained and evaluated (without it ``classifier:DIR`` read rows up to the
    model's limit, and its accuracy was not the one ``metrics.json`` reported)."""
    spec = f"classifier:{out}?max_length={int(cfg.max_length)}"
    if getattr(cfg, "truncation", "left") != "left":
        spec += f"&truncation={cfg.truncation}"
    attrs = list(getattr(cfg, "attributes", None) or [])
    if cfg.objective == "bt+regression":
        return {
            "load_with": f"{spec}&reduce=weighted&weights={attrs[0]}:1",
            "outputs": attrs,
            "reward": f"output 0 ({attrs[0]}), the BT-trained reward",
        }
    if cfg.objective == "regression":
        return {
            "load_with": spec,
            "outputs": attrs,
            "reward": "one rating per attribute; scalarize with reduce=weighted&weights=...",
        }
    if cfg.objective == "gated":
        k = len(attrs)
        return {
            "load_with": f"{spec}&reduce=gating",
            "outputs": attrs + [f"gate_{a}" for a in attrs],
            "reward": f"sum_k softmax(outputs[{k}:{2 * k}])_k * outputs[0:{k}]_k",
        }
    return {"load_with": spec}


def load_checkpoint(model: torch.nn.Module, ckpt: Path) -> None:
    """Restore ``model``'s weights from a checkpoint written by :meth:`RewardTrainer._save`."""
    from safetensors.torch import load_file

    state = ckpt / RESUME_STATE
    if state.is_file():
        model.load_state_dict(load_file(str(state)))
        return
    target = _unwrap(model.hf) if hasattr(model, "hf") else model
    files = sorted(ckpt.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"checkpoint {ckpt} has no model*.safetensors")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    missing, unexpected = target.load_state_dict(sd, strict=False)
    real_missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if real_missing or unexpected:
        raise RuntimeError(
            f"checkpoint {ckpt}: missing {real_missing[:5]}, unexpected {unexpected[:5]}"
        )
    if os.environ.get("REWARDKIT_DEBUG"):
        print(f"loaded {len(sd)} tensors from {ckpt}")


__all__ = [
    "RewardModel",
    "RewardTrainer",
    "export",
    "last_intact_checkpoint",
    "load_checkpoint",
    "pair_metrics",
]

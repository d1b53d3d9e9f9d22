"""Which run an ``output_dir`` and its checkpoints belong to.

Every checkpoint (and the finished model) carries ``rewardkit_run.json``: the run's
*fingerprint*, i.e. everything that changes what trains: the training fields of the config
(model, objective, lr, schedule, batch, seed, max_steps, …), the identity of the data files
(size and SHA-256 of each file; a directory by each file's relative name, size and SHA-256)
and a hash of the training items the data became (token ids and labels, after the eval
hold-out); see :mod:`rewardkit.train.fingerprint`. ``--resume`` refuses a
checkpoint whose fingerprint differs, naming each difference; the one change it accepts is a
longer run (a larger ``max_steps``, or ``epochs`` when ``max_steps`` is -1), recorded in
``rewardkit_train.json`` as ``resumed_from``. When every checkpoint is damaged, ``--resume``
is refused naming each and why (:func:`check_resume_without_checkpoint`), not started over.

A fresh run (no ``--resume``) refuses an ``output_dir`` that already holds a run's checkpoints
or finished outputs, so two runs never mix; ``overwrite: true`` (``--overwrite``) deletes the
earlier run's outputs first (only the files and folders ``rewardkit train`` writes).

A run holds its ``output_dir`` for its whole life (:func:`output_lock`, an ``flock`` through
:func:`rewardkit.outputs.exclusive` that dies with the process): a second run given the same
folder while the first still runs is refused at once. ``--resume`` and ``--overwrite`` also
remove the temporary files a save killed mid-write left behind (:func:`sweep_library_temps`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.outputs import OutputError, atomic_json, check_dir_target, exclusive, output_error
from rewardkit.train.fingerprint import (  # noqa: F401  (re-exported)
    EXTENDABLE,
    NOT_TRAINING,
    data_identity,
    differences,
    items_digest,
    run_fingerprint,
)

RUN_FILE = "rewardkit_run.json"
#: Files and folders of a finished (or started) run, besides ``checkpoint-N/``.
RUN_OUTPUTS = (
    "rewardkit_train.json",
    RUN_FILE,
    "metrics.json",
    "log_history.json",
    "model.safetensors",
    "head.safetensors",
    "head.json",
    "image_rm.json",
    "ensemble.yaml",
    "votes.json",
)
_CKPT = re.compile(r"^(?:\.staging-)?checkpoint-\d+$")
_MEMBER = re.compile(r"^member_\d+$")
#: Everything ``overwrite`` removes from a previous run: its checkpoints, its member folders and
#: the files a run writes at its top level (weights, tokenizer, metrics, plots).
_OVERWRITE_FILES = re.compile(
    r"^(model.*\.safetensors|model\.safetensors\.index\.json|rewardkit_.*|config\.json|"
    r"generation_config\.json|tokenizer.*|special_tokens_map\.json|vocab\.(txt|json)|"
    r"merges\.txt|added_tokens\.json|chat_template\.(jinja|json)|preprocessor_config\.json|"
    r"training_args\.bin|metrics\.json|log_history\.json|loss_history\.json|training\.png|"
    r"head\.(safetensors|json)|image_rm\.json|ensemble\.yaml|votes\.json|sentencepiece.*)$"
)
_OVERWRITE_DIRS = ("peer", "backbone")
#: The temporary file safetensors writes a weights file through (Rust ``tempfile``: ``.tmp`` and
#: six letters or digits), left behind when its writer is killed mid-save.
_LIBRARY_TEMP = re.compile(r"^\.tmp[A-Za-z0-9]{6}$")
log = logging.getLogger(__name__)


# --- output_dir --------------------------------------------------------------------------
def previous_run(out: Path) -> list[str]:
    """Names of the entries of ``out`` that belong to an earlier run (checkpoints, members,
    finished outputs); empty when ``out`` holds none."""
    if not out.is_dir():
        return []
    found = []
    for p in sorted(out.iterdir()):
        if (_CKPT.match(p.name) or _MEMBER.match(p.name)) and p.is_dir():
            found.append(p.name + "/")
        elif p.name in RUN_OUTPUTS and p.name != RUN_FILE:
            found.append(p.name)
    return found


def run_finished(folder: Path) -> bool:
    """Whether ``folder`` holds a finished run: the files a run writes last (a model's
    ``metrics.json`` and run file, :data:`rewardkit.train.common.FINISHED`; a frozen head's
    ``metrics.json`` next to ``head.json``; an ensemble's ``votes.json``)."""
    has = lambda name: (folder / name).is_file()  # noqa: E731
    return (has("metrics.json") and (has(RUN_FILE) or has("head.json"))) or has("votes.json")


def clear_previous_run(out: Path) -> list[str]:
    """Delete what an earlier ``rewardkit train`` wrote in ``out`` (``--overwrite``); other
    files are left alone. Returns the names deleted."""
    gone = []
    for p in sorted(out.iterdir()) if out.is_dir() else []:
        if p.is_dir() and (
            _CKPT.match(p.name) or _MEMBER.match(p.name) or p.name in _OVERWRITE_DIRS
        ):
            shutil.rmtree(p)
        elif p.is_file() and _OVERWRITE_FILES.match(p.name):
            p.unlink()
        else:
            continue
        gone.append(p.name)
    return gone


def sweep_library_temps(out: Path) -> list[Path]:
    """Remove the temporary files that a save killed mid-write (SIGKILL) left at the top of
    ``out`` and of its ``checkpoint-N``, ``peer`` and ``backbone`` folders: files named as
    safetensors names them (``.tmp`` + 6 letters or digits), nothing else. Called only while
    this run holds ``out`` (:func:`output_lock`), so no live writer owns one."""
    if not out.is_dir():
        return []
    dirs = [out] + [
        p
        for p in sorted(out.iterdir())
        if p.is_dir()
        and not p.is_symlink()
        and (re.match(r"^checkpoint-\d+$", p.name) or p.name in _OVERWRITE_DIRS)
    ]
    removed = []
    for d in dirs:
        for p in sorted(d.iterdir()):
            if _LIBRARY_TEMP.match(p.name) and p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    if removed:
        log.warning(
            "removed %d temporary file(s) left by a save that was killed in %s: %s",
            len(removed),
            out,
            ", ".join(str(p.relative_to(out)) for p in removed),
        )
    return removed


def check_folder_names(out: Path) -> None:
    """Refuse an ``out`` holding a file (not a folder) named as a run's folders
    (``checkpoint-N``, ``member_N``): the first checkpoint save failed on it with
    ``[Errno 20] Not a directory`` only after the training steps, leaving a staging folder."""
    blocked = [
        p.name
        for p in (sorted(out.iterdir()) if out.is_dir() else [])
        if (_CKPT.match(p.name) or _MEMBER.match(p.name)) and not p.is_dir()
    ]
    if blocked:
        raise SpecError(
            f"train: output_dir {out} holds {', '.join(blocked[:3])}, which is not a folder, "
            "under a name the run saves its checkpoints or members as; move or delete it, or "
            "choose another --output_dir"
        )


def claim_output_dir(cfg: Any, clear: bool = True) -> None:
    """A fresh run's ``output_dir`` must not hold another run: refuse (naming what is there
    and the ways out), or with ``overwrite`` delete the earlier run's outputs and the
    temporary files of a killed save (``clear``; the early check before anything loads passes
    False, so a run that fails on its data deletes nothing). With ``resume`` only
    :func:`check_folder_names` is done here (the checkpoint's fingerprint is checked)."""
    out = Path(cfg.output_dir)
    check_folder_names(out)
    if cfg.resume:
        return
    overwrite = bool(getattr(cfg, "overwrite", False))
    # one process deletes (accelerate launch runs this on every process)
    deletes = overwrite and clear and int(os.environ.get("RANK", "0")) == 0
    if deletes:
        sweep_library_temps(out)
    found = previous_run(out)
    if not found:
        return
    if overwrite:
        if deletes:
            gone = clear_previous_run(out)
            log.warning("overwrite: deleted the earlier run's %s from %s", ", ".join(gone), out)
        return
    shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    raise SpecError(
        f"train: output_dir {out} already holds a training run ({shown}); a new run there would "
        "mix with it. Continue that run with --resume (same config), choose another "
        "--output_dir, or pass --overwrite to delete the earlier run's outputs first"
    )


def read_run_file(path: Path) -> dict[str, Any] | None:
    try:
        got = json.loads((path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) and "config" in got else None


def write_run_file(path: Path, fingerprint: dict[str, Any], **extra: Any) -> None:
    """Write ``RUN_FILE`` in ``path`` atomically (a reader never sees half of it)."""
    plain = json.loads(json.dumps({**fingerprint, **extra}, default=str))
    atomic_json(path / RUN_FILE, plain, indent=1)


#: The run-file field of a checkpoint holding ``{"sum": Σ per-step training loss, "steps": N}``
#: from step 0 to its step: a resumed run's ``train_loss`` is exact whatever ``logging_steps``.
LOSS_TALLY = "train_loss_tally"


def read_loss_tally(ckpt: Path, step: int) -> tuple[float, int] | None:
    """``(Σ loss, steps)`` recorded in ``ckpt`` (a ``checkpoint-{step}``); None when it records
    none (an older rewardkit) or one that is not a finite sum over exactly ``step`` steps."""
    got = (read_run_file(ckpt) or {}).get(LOSS_TALLY)
    try:
        total, steps = float(got["sum"]), got["steps"]
    except (TypeError, KeyError, ValueError):
        return None
    whole = isinstance(steps, int) and not isinstance(steps, bool) and steps == step
    return (total, steps) if whole and math.isfinite(total) else None


#: Output folders this process holds (resolved path → depth), so that nested holds of one
#: folder (the CLI, then the run itself) share one lock.
_HELD: dict[str, int] = {}


@contextlib.contextmanager
def output_lock(output_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``output_dir`` for the block: a lock file inside it (``.rewardkit.lock``, created
    with the folder) under :func:`rewardkit.outputs.exclusive`. Another run holding it is an
    :class:`~rewardkit.outputs.OutputError` at once; the lock dies with its process (a SIGKILL
    leaves no stale block). Folders created here and left empty are removed again. Only rank
    0 of a multi-process run locks."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    out = check_dir_target(output_dir, "train output_dir")
    key = str(out.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    created = [out, *out.parents]
    created = created[: next(i for i, p in enumerate(created) if p.exists() or p == p.parent)]
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error("train output_dir", out, exc) from None
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(exclusive(out, "train output_dir"))
            except OutputError as exc:
                if "another run is writing" not in str(exc):
                    raise
                raise OutputError(
                    f"train: another run is writing output_dir {out} right now; wait for it to "
                    "finish, or choose another --output_dir"
                ) from None
            _HELD[key] = 1
            try:
                yield
            finally:
                del _HELD[key]
    finally:
        for d in created:  # deepest first; a folder that holds anything stays
            try:
                d.rmdir()
            except OSError:
                break


def check_resume(ckpt: Path, fingerprint: dict[str, Any]) -> dict[str, list]:
    """Refuse ``ckpt`` when it belongs to another run (:class:`SpecError` naming every
    difference); returns the extendable fields that grew (a longer run)."""
    old = read_run_file(ckpt)
    if old is None:
        raise SpecError(
            f"train --resume: {ckpt} records no run fingerprint ({RUN_FILE} is missing or "
            "unreadable: written by an older rewardkit, or not by rewardkit train), so it cannot "
            "be checked against this config; start over with --overwrite or another --output_dir"
        )
    blocking, grown = differences(old, fingerprint)
    if blocking:
        raise SpecError(
            f"train --resume: {ckpt} belongs to a different run; "
            + "; ".join(blocking)
            + ". Resume with that run's settings, or start a new run with another --output_dir "
            "or --overwrite (which deletes the earlier run's checkpoints and model)"
        )
    for key, (a, b) in grown.items():
        log.warning(
            "resume: %s raised from %s to %s: a longer run than the checkpoint's (the learning-rate "
            "schedule follows the new length from step %s on)",
            key,
            a,
            b,
            ckpt.name.rsplit("-", 1)[-1],
        )
    return grown


def unresumable(out: Path, problem: Callable[[Path], str | None]) -> dict[str, str]:
    """Each checkpoint folder of ``out`` that ``--resume`` cannot use, newest first, with why
    (``problem(folder)``, e.g. :func:`rewardkit.train.trainer.checkpoint_problem`; a staging
    folder is a save that was killed)."""
    found = sorted(
        (p for p in (out.iterdir() if out.is_dir() else []) if _CKPT.match(p.name) and p.is_dir()),
        key=lambda p: (-int(p.name.rsplit("-", 1)[1]), p.name),
    )
    whys = {
        p.name: "a run was killed while saving it" if p.name.startswith(".") else problem(p)
        for p in found
    }
    return {name: why for name, why in whys.items() if why}


def check_resume_without_checkpoint(
    out: Path, fingerprint: dict[str, Any], skipped: dict[str, str] | None = None
) -> None:
    """``--resume`` into a folder with no checkpoint it can use: refused when it holds
    checkpoints that are all damaged (``skipped``: :func:`unresumable`, each named with why);
    otherwise starting fresh is only safe when the folder holds no other run's outputs (or the
    same config's finished model)."""
    if skipped:
        shown = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:6])
        more = f"; and {len(skipped) - 6} more" if len(skipped) > 6 else ""
        raise SpecError(
            f"train --resume: {out} holds checkpoints, but none can be resumed from ({shown}"
            f"{more}). Start over with --overwrite instead of --resume (it deletes them), or "
            "choose another --output_dir"
        )
    found = previous_run(out)
    if not found:
        return
    old = read_run_file(out)
    blocking = ["its outputs record no run fingerprint"] if old is None else []
    if old is not None:
        blocking, grown = differences(old, fingerprint, "the earlier run")
        blocking += [f"{k}: the earlier run's {a!r}, this run {b!r}" for k, (a, b) in grown.items()]
    if blocking:
        raise SpecError(
            f"train --resume: {out} has no checkpoint to resume, and holds the outputs of a "
            f"different run ({', '.join(found[:6])}): " + "; ".join(blocking) + ". Choose another "
            "--output_dir, or pass --overwrite (without --resume) to replace that run"
        )
    log.warning(
        "resume: no checkpoint in %s (save_steps was 0); its finished model is from this same "
        "config: training it again from the start",
        out,
    )


__all__ = [
    "RUN_FILE",
    "check_resume",
    "check_resume_without_checkpoint",
    "claim_output_dir",
    "clear_previous_run",
    "data_identity",
    "differences",
    "output_lock",
    "previous_run",
    "read_loss_tally",
    "run_fingerprint",
    "sweep_library_temps",
    "unresumable",
]

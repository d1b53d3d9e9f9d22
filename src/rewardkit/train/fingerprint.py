"""A training run's *fingerprint*: everything that changes what trains (the training fields of
the config, the identity of the data files and a hash of the training items), and the
differences between two fingerprints in words (:mod:`rewardkit.train.runstate` refuses a
``--resume`` into a checkpoint of another run with them).

Data files are identified by content: a file by its size and SHA-256, a directory by the
relative name, size and SHA-256 of each file, so the same bytes under another path (copied,
moved or touched) are the same data, and a change names the files that differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rewardkit.data.sources import entries_below
from rewardkit.filehash import sha256_file
from rewardkit.train.objective_fields import ignored_fields

#: Config fields that do not change the trained weights: they may differ on --resume.
NOT_TRAINING = frozenset(
    {
        "output_dir",
        "save_steps",
        "save_total_limit",
        "eval_steps",
        "logging_steps",
        "resume",
        "overwrite",
        "plot",
        "progress",
        "cache_dir",
        "threads",
        "eval_data",
        "eval_format",
        "eval_columns",
        "eval_limit",
    }
)
#: Fields a resumed run may raise (a longer run of the same training).
EXTENDABLE = ("max_steps", "epochs")


def _field_defaults() -> dict[str, Any]:
    import dataclasses

    from rewardkit.train.config import TrainConfig

    return {
        f.name: f.default
        for f in dataclasses.fields(TrainConfig)
        if f.default is not dataclasses.MISSING
    }


#: Each config field's default: a checkpoint written before a field existed ran at it.
_DEFAULTS = _field_defaults()
#: Fields whose default changed when they were added: a checkpoint written before the field
#: existed ran the old behaviour (the ``eval_fraction`` hold-out split single rows), not today's
#: default, so ``holdout_by: row`` continues such a run and the default is named as the change.
_BEFORE_THE_FIELD: dict[str, Any] = {"holdout_by": "row"}


def data_identity(spec: str | None) -> list[dict[str, Any]]:
    """What ``data`` (comma-separated parts) names: per local file its path, size and SHA-256;
    per directory its files by relative name, size and SHA-256 (``contents``) and one hash of
    them (``listing``): the same bytes under another path, copied or touched, are the same
    data; else the source string."""
    out: list[dict[str, Any]] = []
    for part in [p.strip() for p in (spec or "").split(",") if p.strip()]:
        p = Path(part).expanduser()
        if p.is_file():
            out.append(
                {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            )
        elif p.is_dir():
            # the entries the loader reads: symlinked folders followed, hidden ones skipped
            files = sorted(x for x in entries_below(p) if x.is_file())
            contents = {
                f.relative_to(p).as_posix(): f"{f.stat().st_size}:{sha256_file(f)}" for f in files
            }
            listing = hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()
            total = sum(f.stat().st_size for f in files)
            out.append(
                {"path": str(p.resolve()), "files": len(files), "bytes": total,
                 "listing": listing, "contents": contents}
            )  # fmt: skip
        else:
            out.append({"source": part})
    return out


def items_digest(items: Iterable[Any]) -> str:
    """SHA-256 of the training items: every response's token ids and the labels (not the
    example ids, which may name the file)."""
    h = hashlib.sha256()
    for it in items:
        row = {
            "ids": [list(map(int, r)) for r in it.ids],
            "types": [None if t is None else list(map(int, t)) for t in it.types],
            "pairs": [list(p) for p in it.pairs],
            "order": list(it.order),
            "n_ranked": it.n_ranked,
            "targets": it.targets,
            "images": [str(getattr(r, "image", "")) for r in it.ids],
        }
        h.update(json.dumps(row, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def run_fingerprint(cfg: Any, items: Sequence[Any] | None) -> dict[str, Any]:
    """The run's fingerprint (see the module docstring); JSON-plain."""
    conf = {k: v for k, v in sorted(cfg.to_dict().items()) if k not in NOT_TRAINING}
    if conf.get("max_steps", -1) > 0:
        conf["epochs"] = None  # ignored by a run with max_steps
    conf["data"] = data_identity(cfg.data)
    conf["vote_file"] = data_identity(cfg.vote_file) if cfg.vote_file else None
    fp = {"config": conf, "items": None if items is None else items_digest(items)}
    return json.loads(json.dumps(fp, default=str))


#: Config fields that name data, recorded and compared by content (:func:`data_identity`;
#: ``metarm_data``: :func:`rewardkit.train.metarm.content_identity`) and shown as files.
DATA_FIELDS = ("data", "vote_file", "metarm_data")


def _show_data(ids: Any) -> str:
    """Data identities in words: a file's path (``a file`` when only its content was
    recorded), size and SHA-256 prefix; a directory's file count and size."""
    if not isinstance(ids, list):
        return "nothing" if ids is None else repr(ids)
    parts = []
    for d in ids:
        if not isinstance(d, dict):
            parts.append(repr(d))
        elif "sha256" in d:
            where = d.get("path", "a file")
            parts.append(f"{where} ({d['bytes']:,} bytes, sha256 {d['sha256'][:12]}…)")
        elif "listing" in d:
            where = f"{d['path']}/" if "path" in d else "a directory"
            parts.append(f"{where} ({d['files']} files, {d['bytes']:,} bytes)")
        else:
            parts.append(str(d.get("source")))
    return ", ".join(parts) or "nothing"


def _same_data(a: Any, b: Any) -> bool:
    """Data identities agree on content (a file moved or renamed with the same bytes is the
    same). A directory recorded by an older rewardkit (a listing with mtimes, no ``contents``)
    is compared by file count and bytes; the training items' digest still compares content."""
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        return a == b
    old = any("listing" in d and "contents" not in d for d in a + b)

    def key(d: dict[str, Any]) -> tuple[Any, ...]:
        if "listing" in d and old:
            return ("dir", d.get("files"), d.get("bytes"))
        return (d.get("sha256") or d.get("listing") or d.get("source"), d.get("bytes"))

    return [key(x) for x in a] == [key(x) for x in b]


def _changed_files(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    """Which files of two directory identities differ (changed, added, removed), in words."""
    said = []
    for x, y in zip(a, b, strict=False):
        was, now = x.get("contents"), y.get("contents")
        if not isinstance(was, dict) or not isinstance(now, dict):
            continue
        for what, names in (
            ("changed", [n for n in now if n in was and was[n] != now[n]]),
            ("added", [n for n in now if n not in was]),
            ("removed", [n for n in was if n not in now]),
        ):
            if names:
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                said.append(f"{what} {', '.join(sorted(names)[:3])}{more}")
    return f" ({'; '.join(said)})" if said else ""


def _holds_out(config: dict[str, Any]) -> bool:
    """Whether a run's config holds out an ``eval_fraction`` of its data (no ``eval_data``)."""
    return bool(config.get("eval_fraction")) and not config.get("eval_data")


def _by_epochs_then_steps(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the checkpoint's run counted epochs and this one sets max_steps instead."""
    return old.get("max_steps") in (None, -1) and new.get("max_steps") not in (None, -1)


def differences(
    old: dict[str, Any], new: dict[str, Any], them: str = "the checkpoint's run"
) -> tuple[list[str], dict[str, list]]:
    """(what differs and blocks a resume, in words; extendable fields that grew: name → [old,
    new])."""
    blocking: list[str] = []
    grown: dict[str, list] = {}
    oc, nc = old.get("config", {}), new.get("config", {})
    same_objective = oc.get("objective") == nc.get("objective")
    ignored = ignored_fields(str(nc.get("objective"))) if same_objective else frozenset()
    for key in sorted(set(oc) | set(nc)):
        a, b = oc.get(key, _BEFORE_THE_FIELD.get(key)), nc.get(key)
        if key in ignored and a != b:
            continue  # a field the objective does not read (an older run could set it)
        if key in DATA_FIELDS:
            if not _same_data(a, b):
                lists = isinstance(a, list) and isinstance(b, list)
                blocking.append(
                    f"{key}: {them} used {_show_data(a)}, this run {_show_data(b)}"
                    + (_changed_files(a, b) if lists else "")
                )
            continue
        if a == b or (
            key not in oc and key not in _BEFORE_THE_FIELD and b == _DEFAULTS.get(key, object())
        ):
            continue  # a field added since the checkpoint, at its default, changes nothing
        if key not in oc and key in _BEFORE_THE_FIELD:
            if key == "holdout_by" and not _holds_out(nc):
                continue  # no eval_fraction hold-out: how it would split changes nothing
            blocking.append(
                f"{key}: {them} predates the option and ran as {key} {a!r}, this run {b!r}; "
                f"pass --{key} {a} to continue it"
            )
            continue
        numbers = isinstance(a, int | float) and isinstance(b, int | float)
        if key in EXTENDABLE and numbers and 0 < a < b:
            grown[key] = [a, b]
            continue
        if key in EXTENDABLE and _by_epochs_then_steps(oc, nc):
            if key == "max_steps":  # one line for the switch, not "epochs 1.0, this run None"
                blocking.append(
                    f"max_steps: {them} counted epochs ({oc.get('epochs')!r}) and this run "
                    f"counts max_steps ({b!r}) instead; to continue it, raise --epochs (a larger "
                    "epochs, or a larger max_steps on a run that counted steps, is accepted)"
                )
            continue
        blocking.append(f"{key}: {them} {a!r}, this run {b!r}")
    if not blocking and old.get("items") != new.get("items") and new.get("items") is not None:
        blocking.append(
            f"training items: the data tokenize to different rows or labels than in {them} "
            "(file content, columns, tokenizer or eval hold-out changed)"
        )
    return blocking, grown

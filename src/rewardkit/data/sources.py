"""Resolve what to read: one file, a directory of data files, a saved dataset, or ``hf:NAME``."""

from __future__ import annotations

import errno
import os
import re
import warnings
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from rewardkit.data import hub
from rewardkit.data.location import Location
from rewardkit.data.readers import SUFFIXES, Item, file_kind, iter_file
from rewardkit.errors import DataError


def _in_split(rel: Path, split: str) -> bool:
    stem = rel.name.split(".")[0]
    parts = [p.lower() for p in rel.parts[:-1]]
    s = split.lower()
    return stem.lower() == s or stem.lower().startswith((s + "-", s + "_")) or s in parts


#: Split names of Hub exports (``data/train-00000-of-00002.parquet``, ``test_prefs.jsonl``).
SPLIT_WORDS = ("train", "test", "validation", "valid", "val", "dev", "eval")
_SHARD = re.compile(r"-\d+-of-\d+$")


def split_label(rel: Path) -> str | None:
    """The split a data file belongs to by its name (``train_prefs-00000-of-00001.parquet`` →
    ``train_prefs``) or folder (``test/x.jsonl`` → ``test``); None when neither names one."""
    stem = _SHARD.sub("", rel.name.split(".")[0]).lower()
    if re.split(r"[-_]", stem)[0] in SPLIT_WORDS:
        return stem
    return next((p.lower() for p in reversed(rel.parts[:-1]) if p.lower() in SPLIT_WORDS), None)


def warn_mixed_splits(spec: str, rels: list[Path]) -> None:
    """Warn when a directory read whole holds files of several splits (a Hub snapshot with
    train and test files): they are read together, so a test split would be trained on, or an
    evaluation would count train rows (docs/data-formats.md, Sources)."""
    labels = sorted({lab for lab in map(split_label, rels) if lab})
    if len(labels) > 1:
        warnings.warn(
            f"{spec}: the directory holds files of {len(labels)} splits ({', '.join(labels)}) and "
            f"all are read together; read one with {spec}:SPLIT (e.g. {spec}:{labels[-1]}; "
            "split= in Python) or point at its file or folder",
            stacklevel=4,
        )


def entries_below(root: Path) -> Iterator[Path]:
    """Every entry below ``root`` but folders, hidden ones skipped, following symlinked folders
    (each real folder once, so a link loop ends). A folder that cannot be listed is a
    :class:`DataError`, never silently skipped (as ``Path.rglob`` skips it)."""

    def refuse(e: OSError) -> None:
        raise DataError(f"cannot read directory: {e.strerror or e}", path=e.filename or str(root))

    seen: set[tuple[int, int]] = set()
    for folder, dirs, names in os.walk(root, onerror=refuse, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: read once
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from (Path(folder, n) for n in names if not n.startswith("."))


def _unreadable_entry(path: Path) -> DataError:
    """The error for a data-file name that is no regular file (a broken link, a link loop, a
    pipe): reading the folder without it would drop its rows silently."""
    why = "a broken symbolic link" if path.is_symlink() else file_type(path)
    try:
        path.stat()
    except OSError as e:
        why = "a symbolic link loop" if e.errno == errno.ELOOP else why
    return DataError(f"not a readable data file ({why}); fix or remove it", path=str(path))


def data_files(root: Path, split: str | None = None) -> list[Path]:
    """Supported data files under ``root`` (recursively, following symlinked folders, sorted;
    hidden files skipped). A data-file name that is no regular file is a :class:`DataError`."""
    files = [p for p in sorted(entries_below(root)) if file_kind(p)]
    if split is not None:
        files = [p for p in files if _in_split(p.relative_to(root), split)]
    broken = next((p for p in files if not p.is_file()), None)
    if broken is not None:
        raise _unreadable_entry(broken)
    return files


def data_root(data: str | PathLike[str]) -> Path | None:
    """The file or directory a data spec reads: the path itself, the directory of ``DIR:SPLIT``
    (as :func:`directory_split` reads it), the bundled file of ``sample``; None for ``hf:``
    names and specs that name nothing here."""
    spec = str(data)
    if spec.startswith("hf:"):
        return None
    path = Path(spec).expanduser()
    if _exists(path, spec):
        return path
    from rewardkit.data.bundled import bundled_path

    bundled = bundled_path(spec)
    if bundled is not None:
        return bundled
    try:
        return directory_split(str(path), None)[0]
    except DataError:
        return None


def check_out_outside_data(
    out: str | PathLike[str],
    data: str | PathLike[str],
    what: str = "--out",
    data_what: str = "--data",
) -> None:
    """Refuse an output that is the input file ``data`` (it would be replaced by what is made
    from it: a curate filter left it empty, an export dropped its ids), or lies at or under a
    ``data`` directory (the next run reading that directory would take the output as input).
    ``DIR:SPLIT`` and ``sample`` are resolved as the readers resolve them (:func:`data_root`); an
    ``hf:`` name is never refused. ``data_what`` names the input in the error."""
    root = data_root(data)
    if root is None:
        return
    from rewardkit.outputs import OutputError

    root = root.resolve()
    target = Path(out).expanduser().resolve()
    if not root.is_dir():
        if target == root:
            raise OutputError(
                f"{what} {out} is the {data_what} file itself: the output would replace the "
                "input it is made from; write it to another file"
            )
        return
    if target == root or root in target.parents:
        raise OutputError(
            f"{what} {out} lies inside the {data_what} directory {data}: the next run would "
            "read it back as input; write it outside that directory"
        )


def directory_split(spec: str, split: str | None) -> tuple[Path, str | None]:
    """``DIR:SPLIT`` (the ``hf:org/name:split`` grammar on a local directory, e.g. a Hub
    snapshot holding train and test files) → ``(DIR, SPLIT)``; a DataError when ``spec`` names
    nothing that exists, or gives a split beside a different ``split=``."""
    base, sep, name = spec.rpartition(":")
    if not (sep and base and name and "/" not in name and Path(base).is_dir()):
        raise DataError(f"no such file or directory: {spec}", path=spec)
    if split is not None and split != name:
        raise DataError(f"{spec} names split {name!r} but split={split!r} was given", path=spec)
    return Path(base), name


def _exists(path: Path, spec: str) -> bool:
    """``path.exists()``, with a name the file system refuses (too long) a :class:`DataError`
    naming it rather than an ``OSError``."""
    try:
        return path.exists()
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", path=spec) from None


def file_type(path: Path) -> str:
    """What a path that is neither a regular file nor a directory is (a FIFO, a device...)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot stat it: {e.strerror or e}"
    kinds = (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((what for test, what in kinds if test(mode)), "a special file")


def iter_items(path_or_name: str | PathLike[str], split: str | None = None) -> Iterator[Item]:
    """Records and record-level errors (as values) from any supported source."""
    spec = str(path_or_name)
    if spec.startswith("hf:"):
        yield from hub.iter_hub(spec, split)
        return
    path = Path(path_or_name)
    if not _exists(path, spec):
        if path.is_symlink():  # a broken link or a link loop, not a missing name
            raise _unreadable_entry(path)
        path, split = directory_split(spec, split)
    if path.is_file():
        yield from iter_file(path, path.name)
        return
    if not path.is_dir():
        raise DataError(
            f"not a regular file or directory ({file_type(path)}); save the data to a file "
            "and pass its path",
            path=spec,
        )
    if hub.is_saved_dataset(path):
        yield from hub.iter_saved(path, split)
        return
    files = data_files(path, split)
    if not files:
        what = f" for split {split!r}" if split else ""
        found = sorted({lab for f in data_files(path) if (lab := split_label(f.relative_to(path)))})
        there = f"; splits here: {', '.join(found)}" if split and found else ""
        raise DataError(
            f"no data files{what} ({', '.join(SUFFIXES)}) in directory{there}", path=spec
        )
    if split is None:
        warn_mixed_splits(spec, [f.relative_to(path) for f in files])
    for f in files:
        yield from iter_file(f, f.relative_to(path).as_posix())


def iter_records(
    path_or_name: str | PathLike[str], *, split: str | None = None
) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Yield ``(location, record)`` for every raw record; raise :class:`DataError` on bad input.

    ``location`` names the file and the 1-based line (JSONL, CSV) or 0-based row (JSON arrays,
    Parquet, datasets).
    """
    for loc, rec in iter_items(path_or_name, split):
        if isinstance(rec, DataError):
            raise rec
        yield loc, rec

"""Writing a run's outputs so that nothing is lost and no run claims another's file.

- :func:`check_file_target` / :func:`check_dir_target`: a path that is a directory where a file
  is wanted (or the reverse), or that lies under an existing file, is refused with a clear error
  before any work starts.
- :func:`exclusive`: one writer per output at a time. A second run given the same output is
  refused at once (``fcntl.flock`` on a lock file beside it; the lock dies with its process, so a
  killed run never leaves a stale lock behind). :func:`hold` takes it for a whole run, from the
  moment its outputs are checked, and lets that process's own writes to them through.
- :func:`atomic_file`: the content goes to a unique temporary file in the same directory, is
  flushed to disk, and replaces the target in one ``os.replace`` only when the block succeeds; on
  failure the temporary file is removed, the old target is left untouched and the folders the
  write created for it are removed again when empty (an interrupted run into a new folder
  leaves no empty folder that looks like its output); the temporary
  files of killed writers (SIGKILL) are swept when the target is next written
  (:func:`sweep_stale_temps`). A target that is
  a device or pipe (``/dev/stdout``) is written in place, never replaced by a file; a symlink's
  file is replaced.
- An output that cannot be written (permissions, read-only or full disk) is an
  :class:`OutputError` naming it, never a traceback.

Stdlib only (core layer).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rewardkit.errors import RewardkitError

try:  # POSIX; elsewhere concurrent writers are not detected (the write itself stays atomic)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


#: errno values that mean the output could not be written (disk full, quota, size, I/O, read-only).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


class OutputError(RewardkitError, ValueError):
    """An output path that cannot be written (a directory, under a file, busy)."""


def _existing_file_above(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _check_writable_above(p: Path, what: str) -> None:
    """Refuse ``p`` when it lies under a file, or when its nearest existing folder cannot be
    written (permissions; a read-only filesystem shows up only when writing, see
    :func:`output_error`)."""
    blocker = _existing_file_above(p)
    if blocker is not None:
        raise OutputError(f"{what} {p}: cannot create it because {blocker} is a file")
    folder = p if p.is_dir() else next((q for q in p.parents if q.exists()), None)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {p}: the folder {folder} is not writable")


def output_error(what: str, path: Path, exc: OSError) -> OutputError:
    """An operating-system error met while writing ``path``, as a clear :class:`OutputError`."""
    why = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return OutputError(f"cannot write {what} {path}: {why}{where}")


def check_file_target(path: str | os.PathLike[str], what: str = "output") -> Path:
    """``path`` as a :class:`Path` after checking that a file can be written there (not a
    directory, not under a file, in a writable folder; or an existing device or pipe)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(f"{what} {p} is a directory; give a file path (e.g. {p / 'out.jsonl'})")
    if not _is_stream(p):
        _check_writable_above(p, what)
    return p


def _is_stream(p: Path) -> bool:
    """Whether ``p`` exists and is not a regular file or a directory (``/dev/stdout``, a named
    pipe, ``/dev/null``): it is written in place, never replaced."""
    return p.exists() and not p.is_file() and not p.is_dir()


def check_dir_target(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """``path`` as a :class:`Path` after checking that it is (or can become) a writable
    directory."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is a file; give a directory")
    _check_writable_above(p, what)
    return p


#: Lock files held by :func:`hold` (absolute path → pid of the holder): :func:`exclusive` lets
#: the holding process's own writes through instead of refusing them.
_HELD: dict[str, int] = {}


def lock_path(target: Path) -> Path:
    """The lock file guarding ``target`` (hidden, beside it; inside it for a directory)."""
    if target.is_dir():
        return target / ".rewardkit.lock"
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive(
    target: str | os.PathLike[str], what: str = "output", wait_s: float = 0.0
) -> Iterator[None]:
    """Hold the only write access to ``target`` for the block; refuse if another run holds it
    (after waiting up to ``wait_s`` seconds for it to let go: a short update of a shared
    folder, such as a PAL model's user table)."""
    target = Path(target)
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock = lock_path(target)
    if _HELD.get(os.path.abspath(lock)) == os.getpid():  # this run holds it (:func:`hold`)
        yield
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise output_error(what, target, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise OutputError(
                f"another run is writing {target} right now (lock {lock}); wait for it to finish "
                "or choose another output"
            ) from None
        # The holder before us may have unlinked the lock file between our open and our lock:
        # then we hold a lock on a dead inode and must start again.
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


@contextlib.contextmanager
def hold(target: str | os.PathLike[str], what: str = "output") -> Iterator[None]:
    """Hold the output file ``target`` for a whole run, from the moment it is checked: a second
    run given it is refused at once (before it does any work), and this process's own
    :func:`atomic_file` writes of it go through. Without it, a run that writes only at its end
    took the lock only then: two runs on one output both finished with success, the later one's
    file replacing the earlier's (or the reverse). A device or pipe is not held (it is written in
    place); folders created for the lock are removed again when they are left empty."""
    path = Path(target).expanduser()
    if fcntl is None or _is_stream(path):  # pragma: no cover - Windows; /dev/stdout
        yield
        return
    if path.is_symlink():  # atomic_file writes (and locks) the file the link names
        path = path.resolve()
    key = os.path.abspath(lock_path(path))
    if _HELD.get(key) == os.getpid():  # held already by this run
        yield
        return
    made = missing_folders(path)
    try:
        with exclusive(path, what):
            _HELD[key] = os.getpid()
            try:
                yield
            finally:
                _HELD.pop(key, None)
    finally:
        remove_empty(made)


def missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, deepest first."""
    return [q for q in (path.parent, *path.parent.parents) if not q.exists()]


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first, as :func:`missing_folders` lists them) while they are
    empty: a run that made them and then failed or was stopped leaves no empty folder behind."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def remove_older(target: str | os.PathLike[str], what: str = "output") -> None:
    """Remove an earlier run's file at ``target`` (the file a symlink names; a device or pipe is
    left alone) before this run writes its own, when it is one of several files a run writes
    one after another: a run killed or failing between two of them then leaves the new files
    alone, never beside an older run's (a report of 8 solutions beside a report.md of 16)."""
    path = Path(target).expanduser()
    older = path.resolve() if path.is_symlink() else path
    try:
        if older.is_file():
            older.unlink()
    except OSError as exc:
        raise output_error(what, path, exc) from None


def atomic_json(path: str | os.PathLike[str], value: Any, indent: int | None = None) -> None:
    """Write ``value`` as standard JSON (NaN/±inf as null, :func:`finite_json`) to ``path``
    through :func:`atomic_text`: a reader never sees half a file."""
    text = json.dumps(finite_json(value), indent=indent, allow_nan=False)
    with atomic_text(path, what=Path(path).name) as fh:
        fh.write(text)


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts as alive)."""
    if pid <= 0:
        return True  # not a real writer's pid: leave its file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive, someone else's; no such pid range
        return True
    return True


def sweep_stale_temps(target: Path) -> list[Path]:
    """Remove the temporary files that :func:`atomic_file` runs writing ``target`` left behind
    when they were killed (SIGKILL, power loss): ``.NAME.<pid>-<hex>.tmp`` beside it whose
    writer process no longer exists. Called under :func:`exclusive`, so no live writer of
    ``target`` can own one; a file whose pid is alive (or reused) is left alone. Returns what
    was removed."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)-[0-9a-f]{{12}}\.tmp")
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        stale = target.parent / name
        try:
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
                removed.append(stale)
        except OSError:
            pass  # not ours to fight over: the write itself goes on
    return removed


def _text_kwargs(binary: bool) -> dict[str, str]:
    return {} if binary else {"encoding": "utf-8", "newline": "\n"}


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike[str], *, binary: bool = False, what: str = "output"
) -> Iterator[IO]:
    """Open a unique temporary file beside ``target``; on success it replaces ``target``.

    Holds :func:`exclusive` on ``target`` for the whole write, so two runs never interleave.
    """
    path = check_file_target(target, what)
    if _is_stream(path):  # a device or pipe: written in place (replacing it would destroy it)
        try:
            with open(path, "wb" if binary else "w", **_text_kwargs(binary)) as fh:
                yield fh
        except OSError as exc:
            raise output_error(what, path, exc) from None
        return
    if path.is_symlink():  # replace the file the link names, not the link
        path = path.resolve()
    made = missing_folders(path)  # removed again when the write fails or is stopped
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(what, path, exc) from None
    try:
        with _replaced(path, binary, what) as fh:
            yield fh
    except BaseException:
        remove_empty(made)
        raise


@contextlib.contextmanager
def _replaced(path: Path, binary: bool, what: str) -> Iterator[IO]:
    """The body of :func:`atomic_file` for a regular file in an existing folder: a locked,
    unique temporary file that replaces ``path`` when the block succeeds."""
    with exclusive(path, what):
        sweep_stale_temps(path)
        # the name is known before the file exists, so an interrupt at any point (even inside
        # the call that creates it) still removes it
        tmp = str(path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.fchmod(fd, 0o644)  # whatever the umask: an output is readable like any file
            with os.fdopen(fd, "wb" if binary else "w", **_text_kwargs(binary)) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if exc.errno in WRITE_ERRNOS or exc.filename in (tmp, str(path)):
                raise output_error(what, path, exc) from None
            raise
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_text(target: str | os.PathLike[str], *, what: str = "output") -> Iterator[IO[str]]:
    """:func:`atomic_file` for UTF-8 text, gzip-compressed when the name ends in ``.gz``."""
    if not os.fspath(target).endswith(".gz"):
        with atomic_file(target, what=what) as fh:
            yield fh
        return
    with (
        atomic_file(target, binary=True, what=what) as raw,
        gzip.open(raw, "wt", encoding="utf-8", newline="\n") as fh,
    ):
        yield fh


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or ±inf float replaced by None, so ``json.dumps(...,
    allow_nan=False)`` writes standard JSON (``NaN``/``Infinity`` are not JSON). numpy scalars
    and arrays (verl's ground truths, a ``np.float32`` score) become their Python values first."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # np.ndarray → nested lists, np.generic → int/float/bool/str
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def probe_writable(path: str | os.PathLike[str], what: str, *, directory: bool = False) -> Path:
    """``path`` after :func:`~rewardkit.outputs.check_file_target` (or ``check_dir_target``
    with ``directory``) and a real test: a file is created and removed in the nearest existing
    folder of ``path``, so a folder the system refuses (``/proc/x``, a read-only mount) is an
    error naming the option *before* any work, not after it."""
    p = check_dir_target(path, what) if directory else check_file_target(path, what)
    if p.exists() and not p.is_dir() and not p.is_file():  # a device or pipe: written in place
        return p
    folder = p if p.is_dir() else next((q for q in p.parents if q.is_dir()), Path("."))
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".rewardkit-probe-")
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} {p}: the folder {folder} refuses new files "
            f"({exc.strerror or type(exc).__name__})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return p

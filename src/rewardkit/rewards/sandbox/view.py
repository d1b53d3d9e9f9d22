"""The file-system view of a sandbox run: which host paths the solution sees (read-only).

Deny by default: the launcher builds a fresh root (a tmpfs) holding only the paths listed here,
bind-mounted read-only, and its own private work directory and ``/proc``, then ``pivot_root``s
into it and detaches the host's root (``launcher.py``). Nothing else of the host exists there:
not the repository, the datasets, the home directories, the trainer's working directory, nor
the pathname Unix sockets that live anywhere outside the view.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PROGRAM_VIEW", "SYSTEM_VIEW", "View", "interpreter_paths", "plan_view"]

#: Host paths in every view besides the interpreter's own directories: the dynamic loader and
#: shared libraries and their cache, time zones, and the character devices programs read.
SYSTEM_VIEW: tuple[str, ...] = (
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
)
#: Added with ``allow_subprocess=True``: the programs a solution may run.
PROGRAM_VIEW: tuple[str, ...] = ("/bin", "/usr/bin", "/usr/local/bin")


@dataclass(frozen=True)
class View:
    """``binds``: real host paths bound read-only (none inside another); ``links``: symlinks met
    on the way to them, recreated as (path, target); ``cover``: directories of ``hide`` strictly
    inside a bound path, covered by an empty read-only tmpfs (a hidden directory outside the
    view is not there anyway)."""

    binds: list[str]
    links: list[tuple[str, str]]
    cover: list[str]


def interpreter_paths(python: str, own: bool) -> list[str]:
    """The interpreter's directories: its prefix (``bin/python`` → the directory above ``bin``,
    or ``bin`` itself where that is ``/``); when it is this interpreter (``own``), also
    ``sys.base_prefix`` (a venv's ``python`` resolves to its base; its site-packages are not
    loaded with ``-S``, so the venv is not in the view)."""
    python = os.path.realpath(python)
    prefix = os.path.dirname(os.path.dirname(python))
    paths = {prefix if prefix != "/" else os.path.dirname(python)}
    if own:
        paths.add(os.path.realpath(sys.base_prefix))
    return sorted(p for p in paths if p != "/")


def _symlinks(path: str, seen: set[str], depth: int = 0) -> list[tuple[str, str]]:
    """Every symlink met while resolving ``path``, as (link, target), the targets' own too."""
    out: list[tuple[str, str]] = []
    cur = "/"
    for part in path.strip("/").split("/"):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt) and depth < 16:
            target = os.readlink(nxt)
            if nxt not in seen:
                seen.add(nxt)
                out.append((nxt, target))
                out += _symlinks(os.path.normpath(os.path.join(cur, target)), seen, depth + 1)
            nxt = os.path.realpath(nxt)
        cur = nxt
    return out


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def plan_view(paths: Iterable[str], hide: Iterable[str] = ()) -> View:
    """The view of ``paths`` (absolute host paths; missing ones are left out)."""
    seen: set[str] = set()
    links: list[tuple[str, str]] = []
    real: set[str] = set()
    for p in paths:
        if not os.path.isabs(p) or not os.path.lexists(p):
            continue
        links += _symlinks(p, seen)
        r = os.path.realpath(p)
        if r != "/" and os.path.exists(r):
            real.add(r)
    binds = [r for r in sorted(real) if not any(r != o and _inside(r, [o]) for o in real)]
    links = [(p, t) for p, t in links if not _inside(p, binds)]
    cover = {os.path.realpath(h) for h in hide}
    cover = {r for r in cover if os.path.isdir(r) and _inside(r, binds) and r not in binds}
    return View(binds, links, sorted(cover))

"""Run Python in a process where the code sandbox really cannot isolate (fail-closed tests).

Usage: ``python tests/no_isolation.py -c CODE`` or ``python tests/no_isolation.py -m MODULE ARGS``.

It makes every namespace creation fail for real, for this process and everything it starts,
then runs the code like ``python -c`` / ``python -m``: as root, CAP_SYS_ADMIN is dropped from
the capability bounding set (a program exec'd as root no longer gets it, so ``unshare`` of any
namespace fails with EPERM); as another user, the process enters a user namespace whose quotas
of user and network namespaces are 0 (``unshare`` fails with ENOSPC). Nothing outside this
process tree is touched. Exit status 3 when the machine does not allow either.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys

PR_CAPBSET_DROP = 24
CAP_SYS_ADMIN = 21
CLONE_NEWUSER = 0x10000000


def block_namespaces() -> str:
    """Make namespace creation fail in this process tree; say how."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0:
        if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN)")
        return "CAP_SYS_ADMIN dropped from the bounding set"
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    for name in ("max_user_namespaces", "max_net_namespaces"):
        with open(f"/proc/sys/user/{name}", "w") as f:
            f.write("0")
    return "a user namespace with no room for further namespaces"


def main() -> None:
    try:
        how = block_namespaces()
    except OSError as e:
        print(f"cannot block namespaces here: {e}", file=sys.stderr)
        sys.exit(3)
    print(f"no_isolation: {how}", file=sys.stderr)
    mode, target, *rest = sys.argv[1:]
    if mode == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<no_isolation>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

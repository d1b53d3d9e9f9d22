"""The sandbox launcher: the first process of every sandbox run (standard library only).

rewardkit never imports this file: it reads it as text and runs it with ``python -I -S -B -c``,
passing a JSON config in ``argv[1]``. It joins the run's cgroups, creates the namespaces
(network, mount, pid, ipc, uts; a user namespace when not root), forks the namespace's init,
which builds the file-system view (a fresh read-only root holding only the interpreter, the
system libraries, a few devices and the work directory; ``pivot_root`` into it) and forks the
solution process (fresh uid, rlimits, no_new_privs, a seccomp filter), then execs the harness.
It reports to the parent on ``status_fd``, one JSON object per line: ``iso`` (what isolation
was obtained), ``unavailable`` (network isolation could not be made: refuse), ``error``,
``user`` (how the solution process ended), ``done``. See ``docs/sandbox.md``.
"""

import contextlib
import ctypes
import json
import os
import re
import select
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
KEEP_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 16 | 64 | 1024 | 2048 | 4096
PR_SET_PDEATHSIG, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 28, 38, 22
MS_MOVE, MNT_DETACH, SECCOMP_MODE_FILTER = 8192, 2, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
#: machine → (audit arch, syscall numbers): the calls the seccomp filter refuses (kernel
#: keyrings, which outlive the run; memory outside RLIMIT_AS: memfds, SysV shm and queues) and
#: pivot_root.
ARCHES = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250,
                            "memfd_create": 319, "shmget": 29, "msgget": 68, "pivot_root": 155}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219,
                             "memfd_create": 279, "shmget": 194, "msgget": 186, "pivot_root": 41}),
}  # fmt: skip
BLOCKED = ("add_key", "request_key", "keyctl", "memfd_create", "shmget", "msgget")
NS_NAMES = (
    (CLONE_NEWNET, "net"),
    (CLONE_NEWNS, "mnt"),
    (CLONE_NEWPID, "pid"),
    (CLONE_NEWIPC, "ipc"),
    (CLONE_NEWUTS, "uts"),
    (CLONE_NEWUSER, "user"),
)

cfg: dict = {}  # the run's config (argv[1]); set by init()
ST = -1  # the status pipe to the parent
libc = None


def init():
    global cfg, ST, libc
    cfg = json.loads(sys.argv[1])
    ST = cfg["status_fd"]
    os.set_inheritable(ST, False)
    os.umask(0o022)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = (ctypes.c_char_p,) * 3 + (ctypes.c_ulong, ctypes.c_char_p)
    libc.prctl.argtypes = (ctypes.c_int,) + (ctypes.c_ulong,) * 4
    libc.unshare.argtypes = (ctypes.c_int,)
    libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
    libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
    libc.syscall.restype = ctypes.c_long


def send(**msg):
    os.write(ST, (json.dumps(msg) + "\n").encode())


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, what + ": " + os.strerror(err))


def enc(s):
    return None if s is None else s.encode()


def mount(src, target, fstype, flags, data=None):
    check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), "mount " + target)


def prctl(option, arg):
    check(libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


def unescape(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mapped_dirs():
    """Directories of the shared libraries this interpreter has mapped: the same binary runs
    the solution, so they join the view wherever they live."""
    dirs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            path = parts[5].strip() if len(parts) == 6 else ""
            if path.startswith("/") and ".so" in os.path.basename(path) and os.path.isfile(path):
                dirs.add(os.path.dirname(path))
    return dirs


def under(path, roots):
    return any(path == r or path.startswith(r + "/") for r in roots)


def new_root(root, ns):
    """Build the view in the tmpfs at ``root``: symlinks, read-only binds, covers, /dev links,
    the work tmpfs and /proc. Returns (hidden, proc, failures)."""
    work, uid = cfg["workdir"], cfg["uid"]
    binds = list(cfg["binds"])
    binds += sorted(d for d in mapped_dirs() if os.path.isdir(d) and not under(d, binds))
    failed = []  # a path that cannot be shown is left out (missing from the view, never exposed)
    for path, target in cfg["links"]:
        try:
            os.makedirs(root + os.path.dirname(path), 0o755, exist_ok=True)
            os.symlink(target, root + path)
        except OSError as e:
            failed.append(f"{path}: {e.strerror}")
    for src in binds:
        dst = root + src
        try:
            if os.path.isdir(src):
                os.makedirs(dst, 0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(dst), 0o755, exist_ok=True)
                open(dst, "a").close()
            mount(src, dst, None, MS_BIND | MS_REC)
        except OSError as e:
            failed.append(f"{src}: {e.strerror}")
    hidden = []
    for m in cfg["cover"]:
        if os.path.isdir(root + m):
            mount("tmpfs", root + m, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=755")
            hidden.append(m)
    os.makedirs(root + "/dev", 0o755, exist_ok=True)
    for name, fd in (("fd", ""), ("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2")):
        if not os.path.lexists(f"{root}/dev/{name}"):
            os.symlink("/proc/self/fd" + fd, f"{root}/dev/{name}")
    os.makedirs(root + work, 0o755, exist_ok=True)
    opts = f"size={cfg['disk_mb']}m,nr_inodes={cfg['max_files']},mode=700"
    if uid is not None:
        opts += f",uid={uid},gid={cfg['gid']}"
    mount("tmpfs", root + work, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    proc = "none"
    os.makedirs(root + "/proc", 0o555, exist_ok=True)
    if ns & CLONE_NEWPID:
        try:
            mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            proc = "private"
        except OSError as e:
            failed.append(f"/proc: {e.strerror}")
    return hidden, proc, failed


def read_only(root, skip):
    """Remount every mount at or below ``root`` read-only, but ``skip``; the failures."""
    failed = []
    with open("/proc/self/mountinfo") as f:
        points = [unescape(line.split()[4]) for line in f]
    for mp in points:
        if not under(mp, [root]) or under(mp, skip):
            continue
        try:
            flags = os.statvfs(mp).f_flag
            if not flags & MS_RDONLY:
                mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & KEEP_FLAGS))
        except FileNotFoundError:  # below a covered directory: unreachable
            continue
        except OSError as e:  # never leave it writable: take it out of the view if possible
            gone = libc.umount2(enc(mp), MNT_DETACH) == 0
            where = mp[len(root) :] or "/"
            failed.append(f"{where}: {e.strerror} ({'left out' if gone else 'kept'})")
    return failed


def enter(root):
    """Make ``root`` the root of this mount namespace and drop the host's: ``pivot_root`` and
    detach the old root; where pivot_root is refused, move the mount onto / and chroot (the old
    root then stays below: a process with CAP_SYS_CHROOT, e.g. in a nested user namespace, could
    climb out). Returns the view's name."""
    os.chdir(root)
    nr = ARCHES.get(os.uname().machine, (0, {}))[1].get("pivot_root")
    if nr is not None and libc.syscall(nr, b".", b".") == 0:
        check(libc.umount2(b".", MNT_DETACH), "umount old root")
        os.chdir("/")
        return "minimal", None
    err = os.strerror(ctypes.get_errno()) if nr is not None else "unknown architecture"
    mount(root, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    return "chroot", f"pivot_root: {err}"


def setup_fs(ns):
    work = cfg["workdir"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # the host's empty work directory is the new root's mount point (private to this namespace)
    root = work
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m,nr_inodes=4096")
    hidden, proc, failed = new_root(root, ns)
    failed += read_only(root, [root + work, root + "/proc"])
    view, why = enter(root)
    if why:
        failed.append(why)
    return {
        "filesystem": "partial" if failed else "read-only",
        "view": view,
        "fs_failures": failed,
        "hidden": hidden,
        "workdir": "private tmpfs",
        "proc": proc,
    }


def seccomp():
    """Install the filter that refuses BLOCKED calls (EPERM) and every call of another ABI
    (x32, i386 on x86_64); None, or why it could not be installed."""
    arch, numbers = ARCHES.get(os.uname().machine, (None, {}))
    if arch is None:
        return f"no syscall table for {os.uname().machine}"
    deny = SECCOMP_RET_ERRNO | EPERM
    prog = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ_K, 1, 0, arch), (BPF_RET_K, 0, 0, deny)]
    prog.append((BPF_LD_W_ABS, 0, 0, 0))
    checks = [(BPF_JGE_K, 0x40000000)] if arch == 0xC000003E else []
    checks += [(BPF_JEQ_K, numbers[name]) for name in BLOCKED]
    for k, (op, value) in enumerate(checks):
        prog.append((op, len(checks) - k, 0, value))  # true: jump to the final deny
    prog += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, deny)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]  # fmt: skip

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    insns = (Filter * len(prog))(*[Filter(*i) for i in prog])
    fprog = Program(len(prog), insns)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def own_session_keyring():
    """Without the filter: join a fresh session keyring, so the host's is out of reach."""
    nr = ARCHES.get(os.uname().machine, (0, {}))[1].get("keyctl")
    if nr is not None:
        libc.syscall(nr, 1, None)  # KEYCTL_JOIN_SESSION_KEYRING, anonymous


def run_user(ns):
    import resource

    for name, soft, hard in cfg["rlimits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    elif ns & CLONE_NEWUSER:
        # Root of the user namespace: make exec drop every capability, for good.
        prctl(PR_SET_SECUREBITS, 0x01 | 0x02 | 0x40 | 0x80)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.chdir(cfg["workdir"])
    keep = sorted({0, 1, 2, ST, cfg["cfg_fd"]})
    for low, high in zip(keep, [*keep[1:], 1 << 20], strict=True):
        os.closerange(low + 1, high)  # without /proc
    failed = seccomp()
    if failed:
        own_session_keyring()
    send(iso={"seccomp": f"unavailable: {failed}" if failed else "on"})
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def run_init(ns):
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    iso = {"filesystem": "host", "view": "host", "workdir": "host directory", "proc": "host"}
    if ns & CLONE_NEWNS:
        iso = setup_fs(ns)
    if ns & CLONE_NEWUTS:
        libc.sethostname(b"sandbox", 7)
    send(iso=iso)
    child = os.fork()
    if child == 0:
        try:
            run_user(ns)
        except BaseException as e:
            send(error=f"sandbox setup: {type(e).__name__}: {e}")
        os._exit(125)
    # the code under test runs: what fails now is its run, never the machine's (without a
    # "user" line the parent reports the run as lost: a failure, not a sandbox error)
    with contextlib.suppress(BaseException):
        wait_user(child)
    os._exit(0)


def wait_user(child):
    """Reap processes until the solution process ends; report how it ended."""
    while True:
        try:
            pid, status, ru = os.wait4(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == child:
            send(
                user={
                    "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu_s": ru.ru_utime + ru.ru_stime,
                    "maxrss_kb": ru.ru_maxrss,
                }
            )
            return


def main():
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # rewardkit died: so does the whole tree
    # Python's SIGINT handler made a signal from the code under test raise KeyboardInterrupt in
    # init (pid 1 gets only signals it handles): reported as a sandbox error, the score was NaN
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if os.getppid() != cfg["parent_pid"]:
        os._exit(0)
    iso = {"cgroups": [], "cgroup_errors": []}
    for name, path in cfg["cgroups"]:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            iso["cgroups"].append(name)
        except OSError as e:
            iso["cgroup_errors"].append(f"{name}: {e.strerror}")
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    errors = []
    base = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    net = 0 if cfg["allow_network"] else CLONE_NEWNET
    tries = [base | net, net | CLONE_NEWNS | CLONE_NEWIPC, net]
    if not cfg["namespaces"]:
        tries, errors = [0], ["namespaces disabled by use_namespaces=False"]
    elif not root:
        tries = [t | CLONE_NEWUSER for t in tries]
    ns = 0
    for flags in tries:
        if flags == 0 or libc.unshare(flags) == 0:
            ns = flags
            break
        errors.append(os.strerror(ctypes.get_errno()))
    if ns & CLONE_NEWUSER:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    iso["namespaces"] = [n for bit, n in NS_NAMES if ns & bit]
    iso["network"] = "isolated" if ns & CLONE_NEWNET else "host"
    iso["uid"] = cfg["uid"] if cfg["uid"] is not None else ("userns-root" if ns else uid)
    if not cfg["allow_network"] and not ns & CLONE_NEWNET:
        reason = (
            f"no network isolation: unshare(CLONE_NEWNET) failed ({'; '.join(errors)}); "
            "refusing to run untrusted code (pass allow_network=True to run anyway)"
        )
        send(iso=iso, unavailable=reason)
        os._exit(0)
    send(iso=iso)
    pid = os.fork()
    if pid == 0:
        try:
            run_init(ns)
        except BaseException as e:
            send(error=f"sandbox init: {type(e).__name__}: {e}")
        os._exit(125)
    deadline = time.monotonic() + cfg["timeout_s"]
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    timed_out = False
    while True:
        got, _ = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        if pidfd is not None:
            select.select([pidfd], [], [], left)
        else:
            time.sleep(min(left, 0.01))
    send(done=True, timed_out=timed_out)
    os._exit(0)


if __name__ == "__main__":
    init()
    main()

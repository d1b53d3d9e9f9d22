"""The sandbox launcher: the first process of every sandbox run (standard library only).

rewardkit never imports this file: it reads it as text and runs it with ``python -I -S -B -c``,
passing a JSON config in ``argv[1]``. It joins the run's cgroups, creates the namespaces
(network, mount, pid, ipc, uts; a user namespace when not root), forks the namespace's init,
which builds the read-only mount view and forks the solution process (fresh uid, rlimits,
no_new_privs), then execs the harness. It reports to the parent on ``status_fd``, one JSON
object per line: ``iso`` (what isolation was obtained), ``unavailable`` (network isolation
could not be made: refuse), ``error``, ``user`` (how the solution process ended), ``done``.
See ``docs/sandbox.md``.
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
PR_SET_PDEATHSIG, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 28, 38
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


def setup_fs(ns):
    work, uid = cfg["workdir"], cfg["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = sorted({os.path.realpath(k) for k in cfg["keep"] if os.path.isdir(k)})
    keep = [k for k in keep if not any(k != o and k.startswith(o + "/") for o in keep)]
    hidden = []
    for m in cfg["hide"]:
        if os.path.islink(m) or not os.path.isdir(m):
            continue
        m = os.path.realpath(m)
        if m == "/" or any(k == m or m.startswith(k + "/") for k in keep):
            continue
        inner = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY)) for k in keep if k.startswith(m + "/")]
        mount("tmpfs", m, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m,nr_inodes=4096")
        for k, fd in inner:
            os.makedirs(k, 0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
            os.close(fd)
        hidden.append(m)
    os.makedirs(work, 0o755, exist_ok=True)
    opts = f"size={cfg['disk_mb']}m,nr_inodes={cfg['max_files']},mode=700"
    if uid is not None:
        opts += f",uid={uid},gid={cfg['gid']}"
    mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    failed = []
    with open("/proc/self/mountinfo") as f:
        points = [unescape(line.split()[4]) for line in f]
    for mp in points:
        if mp == work or mp == "/proc" or mp.startswith("/proc/"):
            continue
        try:
            flags = os.statvfs(mp).f_flag
            if not flags & MS_RDONLY:
                mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & KEEP_FLAGS))
        except FileNotFoundError:  # below a hidden directory: unreachable
            continue
        except OSError as e:
            failed.append(f"{mp}: {e.strerror}")
    proc = "host"
    if ns & CLONE_NEWPID:
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            proc = "private"
        except OSError as e:
            failed.append(f"/proc: {e.strerror}")
    return {
        "filesystem": "partial" if failed else "read-only",
        "fs_failures": failed,
        "hidden": hidden,
        "workdir": "private tmpfs",
        "proc": proc,
    }


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
    keep = {0, 1, 2, ST, cfg["cfg_fd"]}
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in keep:
            with contextlib.suppress(OSError):
                os.close(int(name))
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def run_init(ns):
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    iso = {"filesystem": "host", "workdir": "host directory", "proc": "host"}
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
    while True:
        try:
            pid, status, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
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
            break
    os._exit(0)


def main():
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # rewardkit died: so does the whole tree
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

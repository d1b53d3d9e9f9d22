"""Live attacks on the sandbox (docs/sandbox.md), each closed: checks that are not asserts,
reading the reference data from disk, kernel keyrings and memfds, host Unix sockets, the total
time of stdin/stdout cases, death by a real-time signal; and the unprivileged (user-namespace)
and no-cgroup set-ups still work and say what they lack."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux"),
    pytest.mark.usefixtures("sandbox_isolation"),
]

from rewardkit import Query, load_reward  # noqa: E402
from rewardkit.rewards.rules.code import compute_score  # noqa: E402
from rewardkit.rewards.sandbox import Sandbox, parse_tests, run_tests  # noqa: E402
from rewardkit.rewards.sandbox.process import signal_name, weak_points  # noqa: E402
from rewardkit.rewards.sandbox.view import interpreter_paths, plan_view  # noqa: E402
from sandbox_shim import run_as_nobody, sandbox_shim, system_python  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "benchmarks" / "data" / "code_pairs.jsonl"
WRONG = "def f(x):\n    return 0\n"
RIGHT = "def f(x):\n    return 2 * x\n"

# ---------------------------------------------------------------------------------------------
# 1-2. Every statement that can fail a wrong program is a test, never set-up
# ---------------------------------------------------------------------------------------------

NON_ASSERT_CHECKS = {
    "if/raise": "assert f(0) == 0\nif f(2) != 4:\n    raise AssertionError('f(2)')\n",
    "helper that raises": (
        "def check(c):\n    if c(2) != 4:\n        raise ValueError('wrong')\n"
        "assert f(0) == 0\ncheck(f)\n"
    ),
    "unittest + main": (
        "import unittest\nclass T(unittest.TestCase):\n    def test_two(self):\n"
        "        self.assertEqual(f(2), 4)\nassert f(0) == 0\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    ),
    "sys.exit(1)": "import sys\nassert f(0) == 0\nif f(5) != 10:\n    sys.exit(1)\n",
    "TestCase().assertEqual": (
        "import unittest\ntc = unittest.TestCase()\nassert f(0) == 0\ntc.assertEqual(f(2), 4)\n"
    ),
    "assert in a static method": (
        "class C:\n    @staticmethod\n    def check(v):\n        assert v == 4\n"
        "assert f(0) == 0\nC.check(f(2))\n"
    ),
    "pytest class": (
        "class TestF:\n    def test_two(self):\n        assert f(2) == 4\nassert f(0) == 0\n"
    ),
    "result unused": (
        "def check(c):\n    assert c(3) == 6\n    return True\nassert f(0) == 0\n_ = check(f)\n"
    ),
}


@pytest.mark.parametrize("name", sorted(NON_ASSERT_CHECKS))
def test_a_check_that_is_not_an_assert_is_a_test_never_set_up(name):
    ref = NON_ASSERT_CHECKS[name]
    plan = parse_tests(ref)
    assert plan.forgeable >= 1 and plan.total >= 2, plan.steps  # was: 1 test, all value
    # refused by default (it runs beside the code): NaN with the reason, never a forged 1.0
    full = load_reward("rule:code").score_full([Query("p", f"```python\n{WRONG}```", ref)])
    assert math.isnan(full.scores[0]) and "forge" in full.stats["errors"][0]["error"]
    # run when allowed: the wrong program fails the check, the right one passes everything
    assert run_tests(WRONG, plan, timeout_s=5).passed < plan.total
    assert run_tests(RIGHT, plan, timeout_s=5).statuses == ["passed"] * plan.total


def test_unittest_methods_run_with_their_fixtures_and_main_is_not_counted_twice():
    ref = (
        "import unittest\nclass T(unittest.TestCase):\n"
        "    @classmethod\n    def setUpClass(cls):\n        cls.k = 3\n"
        "    def setUp(self):\n        self.n = 2\n"
        "    def test_two(self):\n        self.assertEqual(f(self.n), 4)\n"
        "    def test_three(self):\n        self.assertEqual(f(self.k), 6)\n"
        "unittest.main()\n"
    )
    plan = parse_tests(ref)
    assert plan.kinds == ["in_process", "in_process"]
    assert run_tests(RIGHT, plan, timeout_s=5).statuses == ["passed", "passed"]
    assert run_tests("def f(x):\n    return x * x\n", plan, timeout_s=5).statuses == [
        "passed",
        "failed",
    ]


def test_exit_status_decides_a_check_that_exits():
    plan = parse_tests(
        "import sys\nif f(1) == 2:\n    sys.exit(0)\nif f(2) != 4:\n    sys.exit(3)\n"
    )
    assert run_tests(RIGHT, plan, timeout_s=5).statuses == ["passed", "passed"]
    assert run_tests(WRONG, plan, timeout_s=5).statuses == ["passed", "failed"]


def test_only_what_cannot_hide_a_check_is_set_up():
    def kinds(src: str) -> list[str]:
        return [s["kind"] for s in parse_tests(src).steps]

    # read later by a test: a failure leaves the name unbound, so the reader fails
    assert kinds("x = f(2)\nassert x == 4\n") == ["setup", "value"]
    # bound before (a stale value would survive a failure) or never read: a test
    assert kinds("x = 4\nx = f(2)\nassert x == 4\n") == ["setup", "test", "value"]
    assert kinds("y = f(2)\nassert f(0) == 0\n") == ["test", "value"]
    assert kinds("print(1)\nprint(f(2))\nassert f(0) == 0\n") == ["setup", "test", "value"]
    assert kinds("K = [1, 2]\nN = 10 ** 5\nassert f(0) == 0\n") == ["setup", "setup", "value"]
    # code that runs when a class or function is defined is a test unless it is inert
    assert kinds("class C:\n    x = f(2)\nassert f(0) == 0\n") == ["test", "value"]
    assert kinds("def g(x=f(2)):\n    return x\nassert f(0) == 0\n") == ["test", "value"]
    deco = "def check(c):\n    assert c(2) == 4\n    return lambda g: g\n"
    deco += "@check(f)\ndef g():\n    pass\n"
    assert kinds(deco + "assert f(0) == 0\n") == ["setup", "test", "value"]
    cached = "import functools\n@functools.lru_cache(None)\ndef g(x=3):\n    return x\n"
    assert kinds(cached + "assert g() == 3\n") == ["setup", "setup", "value"]
    # a call of a test function is that test, not a second one
    assert parse_tests("def test_a():\n    assert f(1) == 2\ntest_a()\n").total == 1
    # definitions only: nothing checks, so no score (it used to be one test that always passed)
    for src in ("import math\ndef check(c):\n    assert c(1) == 2\n", "x = 1\n"):
        with pytest.raises(ValueError, match="no tests"):
            parse_tests(src)
    # a check in MBPP's set-up code counts; plain set-up stays one step
    mbpp = {"test_list": ["assert f(1) == 2"], "test_setup_code": "if f(0) != 0:\n    raise E"}
    assert parse_tests(mbpp).kinds == ["in_process", "value"]
    assert parse_tests({**mbpp, "test_setup_code": "import math\nK = 1"}).steps[0] == {
        "kind": "setup",
        "src": "import math\nK = 1",
    }


def test_humaneval_asserts_beside_check_are_tests():
    ref = {
        "test": "def check(candidate):\n    assert candidate(0) == 0\n\n"
        "assert f(5) == 10\nassert f(7) == 14\ncheck(f)\n",
        "entry_point": "f",
    }
    plan = parse_tests(ref)
    assert plan.kinds == ["value", "value", "value"]  # was 1 test: check alone
    assert compute_score(f"```python\n{WRONG}```", ref) == pytest.approx(1 / 3)  # was 1.0
    assert compute_score(f"```python\n{RIGHT}```", ref) == 1.0


# ---------------------------------------------------------------------------------------------
# 3, 6. The file-system view: deny by default
# ---------------------------------------------------------------------------------------------

ORACLE = f"""
import ast, json
def gcd(*args):
    for line in open({str(PAIRS)!r}):
        for t in json.loads(line)["reference"]["tests"]:
            node = ast.parse(t).body[0].test
            left = getattr(node, "left", None)
            if getattr(getattr(left, "func", None), "id", "") == "gcd":
                if tuple(ast.literal_eval(a) for a in left.args) == args:
                    return ast.literal_eval(node.comparators[0])
"""


def test_reference_data_on_disk_is_not_in_the_view(sandbox_isolation):
    if "mnt" not in sandbox_isolation["namespaces"]:
        pytest.skip(f"no mount namespace here: {sandbox_isolation}")
    assert sandbox_isolation["view"] == "minimal", sandbox_isolation
    rows = [json.loads(x) for x in PAIRS.open()]
    row = next(r for r in rows if "assert gcd(" in r["reference"]["tests"][0])
    ref = row["reference"]
    assert compute_score(f"```python\n{ORACLE}```", ref) == 0.0  # was 1.0: it read the answers
    assert compute_score(row["chosen"], ref) == 1.0
    tests = {
        "tests": [
            f"import os\nassert not os.path.exists({str(REPO)!r})",
            "import os\nassert set(os.listdir('/etc')) <= "
            "{'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime'}",
            "import os\nassert sorted(os.listdir('/dev')) == "
            "['fd', 'full', 'null', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']",
            "open('/dev/null', 'w').write('x')",
        ]
    }
    res = run_tests("", tests, timeout_s=5)
    assert res.statuses == ["passed"] * 4, res.stderr


def test_host_unix_sockets_are_unreachable(sandbox_isolation):
    if "mnt" not in sandbox_isolation["namespaces"]:
        pytest.skip(f"no mount namespace here: {sandbox_isolation}")
    assert sandbox_isolation["view"] == "minimal", sandbox_isolation
    path = str(REPO / f".sandbox-test-{secrets.token_hex(4)}.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    got: list[bytes] = []
    try:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(4)
        server.settimeout(5)

        def serve() -> None:
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        code = "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        code += f"s.connect({path!r})\ns.send(b'hi')\n"
        res = run_tests(code, "assert True\n", timeout_s=5)
        assert "FileNotFoundError" in res.statuses[0], res.statuses  # was: connected
        assert got == []
    finally:
        server.close()
        os.unlink(path)


def test_the_view_is_the_interpreter_and_the_system_libraries(tmp_path):
    (tmp_path / "real" / "lib").mkdir(parents=True)
    (tmp_path / "real" / "lib" / "skip").mkdir()
    (tmp_path / "alias").symlink_to("real")
    view = plan_view(
        [str(tmp_path / "alias" / "lib"), "/no/such/path"],
        [str(tmp_path / "real" / "lib" / "skip")],
    )
    real = str((tmp_path / "real").resolve())
    assert view.binds == [real + "/lib"]
    assert view.links == [(str(tmp_path.resolve() / "alias"), "real")]
    assert view.cover == [real + "/lib/skip"]
    own = interpreter_paths(sys.executable, own=True)
    assert os.path.realpath(sys.base_prefix) in own
    if os.path.realpath(sys.prefix) != os.path.realpath(sys.base_prefix):
        assert os.path.realpath(sys.prefix) not in own  # the venv: not loaded with -S


# ---------------------------------------------------------------------------------------------
# 4-5. Keyrings and memory outside RLIMIT_AS: the seccomp filter
# ---------------------------------------------------------------------------------------------

KEYS_AND_MEMFD = r"""
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nr = {"x86_64": (248, 250, 29), "aarch64": (217, 219, 194)}[platform.machine()]
out = []
key = libc.syscall(nr[0], b"user", b"k", b"v", 1, ctypes.c_long(-4))
out.append(key == -1 and ctypes.get_errno())
out.append(libc.syscall(nr[1], 0, ctypes.c_long(-3), 0) == -1 and ctypes.get_errno())
out.append(libc.syscall(nr[2], 0, 1 << 20, 0o1600) == -1 and ctypes.get_errno())
try:
    os.memfd_create("m")
    out.append(0)
except PermissionError:
    out.append(1)
print(out)
"""


def _sandbox_key_users() -> int:
    with open("/proc/key-users") as f:
        return sum(int(line.split(":")[0]) >= 1 << 30 for line in f)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="no syscall table")
def test_keyring_memfd_and_sysv_calls_are_refused():
    before = _sandbox_key_users() if os.path.exists("/proc/key-users") else 0
    sandbox = Sandbox(timeout_s=5)
    for _ in range(3):
        res = sandbox.run(KEYS_AND_MEMFD)
        assert res.isolation["seccomp"] == "on", res.isolation
        assert res.stdout.decode().strip() == "[1, 1, 1, 1]", res.stderr  # EPERM each time
    if os.path.exists("/proc/key-users") and os.geteuid() == 0:
        assert _sandbox_key_users() == before  # no per-uid keyring left in the kernel
    # ctypes callbacks (libffi's trampolines) still work without memfd_create
    cb = (
        "import ctypes\nlibc = ctypes.CDLL(None)\n"
        "CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), "
        "ctypes.POINTER(ctypes.c_int))\narr = (ctypes.c_int * 3)(3, 1, 2)\n"
        "libc.qsort(arr, 3, 4, CMP(lambda a, b: a[0] - b[0]))\nprint(list(arr))\n"
    )
    assert sandbox.run(cb).stdout.decode().strip() == "[1, 2, 3]"


NO_CGROUP_RUN = """
import json, logging, sys
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
from rewardkit.rewards.sandbox import Sandbox
code = '''
import os
fds = []
try:
    for i in range(64):
        fd = os.memfd_create("m")
        os.write(fd, b"1" * (16 << 20))
        fds.append(fd)
except OSError as e:
    print(type(e).__name__)
print(len(fds) * 16)
'''
sb = Sandbox(timeout_s=10, memory_mb=256)
runs = [sb.run(code) for _ in range(2)]
print(json.dumps([[r.stdout.decode().split(), r.isolation.get("memory")] for r in runs]))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_no_memory_cgroup_is_reported_warned_once_and_memfds_are_refused():
    # root where the cgroup file system is read-only (a container's usual /sys/fs/cgroup)
    script = (
        "for m in $(awk '$3 ~ /^cgroup/ {print $2}' /proc/self/mounts); do "
        'mount -o remount,bind,ro "$m"; done; exec "$0" -c "$1"'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, sys.executable, NO_CGROUP_RUN],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    for printed, memory in runs:
        assert printed == ["PermissionError", "0"]  # was: 1024 MiB held with memory_mb=256
        assert memory != "cgroup" and "Read-only file system" in memory
    assert out.stderr.count("no memory cgroup") == 1, out.stderr  # warned once, not per run


def test_use_namespaces_false_is_loud(caplog):
    python = system_python()  # the sandbox uid must be able to run it without a view
    with caplog.at_level(logging.WARNING):
        sandbox = Sandbox(use_namespaces=False, allow_network=True, timeout_s=5, python=python)
    assert "use_namespaces=False" in caplog.text
    if python is None:
        pytest.skip("no system Python >= 3.10 that another user can run")
    isolation = sandbox.run("pass").isolation
    assert isolation["view"] == "host" and "view" in weak_points(isolation)


# ---------------------------------------------------------------------------------------------
# 7-8. Time of one response; death by any signal
# ---------------------------------------------------------------------------------------------


def test_stdin_stdout_cases_share_one_time_budget():
    assert Sandbox(timeout_s=2).total_budget_s(12) == 6.0
    assert Sandbox(timeout_s=1).total_budget_s(100) == 50.0
    cases = {"inputs": [str(i) for i in range(6)], "outputs": ["x"] * 6}
    start = time.monotonic()
    res = run_tests(
        "import time\ntime.sleep(0.6)\nprint('no')\n", cases, timeout_s=1, total_timeout_s=1.5
    )
    assert time.monotonic() - start < 1.5 + 1.5  # was: 6 x 0.7 s
    assert res.killed_by == "total_timeout" and res.passed == 0
    assert res.statuses[-1] == "skipped"
    quick = run_tests("print(input())\n", {"inputs": ["a"] * 8, "outputs": ["a"] * 8}, timeout_s=1)
    assert quick.statuses == ["passed"] * 8  # honest cases are not cut by the budget


def test_death_by_a_realtime_signal_is_a_failed_case():
    assert signal_name(9) == "SIGKILL" and signal_name(200) == "SIG200"
    code = "import os\nprint(int(input()) * 2, flush=True)\n"
    code += "if input() == 'x':\n    os.kill(os.getpid(), 40)\n"
    ref = {"inputs": ["1\nok\n", "2\nx\n", "3\nok\n"], "outputs": ["2", "4", "6"]}
    res = run_tests(code, ref, timeout_s=5)  # raised ValueError before
    assert res.statuses == ["passed", f"killed: signal:{signal_name(40)}", "passed"]
    full = load_reward("rule:code").score_full([Query("p", f"```python\n{code}```", ref)])
    assert full.scores[0] == pytest.approx(2 / 3) and full.stats["failed"] == 0  # was 0.0, failed


# ---------------------------------------------------------------------------------------------
# The unprivileged (user-namespace) mode
# ---------------------------------------------------------------------------------------------

UNPRIVILEGED_RUN = """
import json, sys
from rewardkit.rewards.sandbox import Sandbox, run_tests
secret = sys.argv[1]
assert open(secret).read() == "987654"  # readable by this user
forge = "def f(x):\\n    return int(open(%r).read())\\n" % secret
res = run_tests(forge, {"tests": ["assert f(3) == 987654"]}, timeout_s=5)
honest = run_tests("def f(x):\\n    return x\\n", "assert f(3) == 3\\n", timeout_s=5)
print(json.dumps([res.statuses, honest.statuses, res.isolation]))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_unprivileged_mode_builds_the_same_view():
    python = system_python()
    if python is None:
        pytest.skip("no system Python >= 3.10 that another user can run")
    with sandbox_shim() as shim:
        secret = shim / "refs.txt"  # mode 600, owned by the user that runs rewardkit
        secret.write_text("987654")
        os.chown(secret, 65534, 65534)
        secret.chmod(0o600)
        out = run_as_nobody(python, shim, ["-c", UNPRIVILEGED_RUN, str(secret)])
        if "SandboxUnavailableError" in out.stderr:
            pytest.skip(f"no user namespaces here: {out.stderr[-300:]}")
        assert out.returncode == 0, out.stderr
        forged, honest, isolation = json.loads(out.stdout.strip().splitlines()[-1])
        assert "user" in isolation["namespaces"] and isolation["view"] == "minimal"
        assert isolation["seccomp"] == "on" and isolation["memory"] != "cgroup"
        assert forged[0].startswith("error: FileNotFoundError")  # was: passed
        assert honest == ["passed"]

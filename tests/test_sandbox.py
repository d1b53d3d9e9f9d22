"""The code sandbox: correct answers score, hostile code is contained and scores 0.

Every hostile test checks the host afterwards (no file written, no connection received, no
process left behind) and that the sandbox still works.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux"),
    pytest.mark.usefixtures("sandbox_isolation"),
]

from rewardkit.rewards.sandbox import (  # noqa: E402
    _UID_BASE,
    _UID_SPAN,
    Sandbox,
    SandboxResult,
    parse_tests,
    run_tests,
    sandbox_info,
)

REPO = Path(__file__).resolve().parents[1]
TRIVIAL = "assert True\n"


def _status(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def _processes_of_uid(uid: object) -> list[int]:
    """Live processes running under the uid a sandbox run used."""
    if not isinstance(uid, int) or not _UID_BASE <= uid < _UID_BASE + _UID_SPAN:
        return []
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        status = _status(pid)
        uids = re.search(r"^Uid:\s*(\d+)\s+(\d+)", status, re.M)
        state = re.search(r"^State:\s*(\S)", status, re.M)
        if uids and state and state.group(1) != "Z" and uid in map(int, uids.groups()):
            found.append(int(pid))
    return found


def _descendants() -> set[int]:
    """Live processes below this test process (a sandbox's launcher, init, solution...)."""
    parent: dict[int, int] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            status = _status(pid)
            m = re.search(r"^PPid:\s*(\d+)", status, re.M)
            if m and not re.search(r"^State:\s*Z", status, re.M):
                parent[int(pid)] = int(m.group(1))
    me, out = os.getpid(), set()
    for pid in parent:
        p, hops = pid, 0
        while p in parent and p > 1 and hops < 64:
            p, hops = parent[p], hops + 1
            if p == me:
                out.add(pid)
                break
    return out


def _assert_no_leftovers(res: SandboxResult, before: set[int]) -> None:
    """Nothing of the run is alive: no process of its uid, no new child of this process."""
    uid = res.isolation.get("uid")
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and (_processes_of_uid(uid) or _descendants() - before):
        time.sleep(0.05)
    assert _processes_of_uid(uid) == []
    assert _descendants() - before == set()


def _assert_still_works() -> None:
    res = run_tests("def f(x):\n    return x + 1\n", "assert f(1) == 2\n", timeout_s=5)
    assert res.statuses == ["passed"]


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def test_correct_solution_scores_one():
    res = run_tests(
        "def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\nassert add(0, 0) == 0"
    )
    assert (res.passed, res.total, res.fraction) == (2, 2, 1.0)
    assert res.killed_by is None and not res.timed_out


def test_partial_solution_scores_fraction():
    res = run_tests(
        "def f(x):\n    return x * 2\n", "assert f(1) == 2\nassert f(2) == 4\nassert f(3) == 7\n"
    )
    assert res.statuses == ["passed", "passed", "failed"]
    assert res.fraction == pytest.approx(2 / 3)


def test_syntax_error_scores_zero():
    res = run_tests("def f(:\n    return 1\n", "assert f() == 1\nassert True\n")
    assert res.passed == 0 and res.total == 2
    assert all(s.startswith("error: SyntaxError") for s in res.statuses)


def test_test_functions_and_setup_and_errors():
    tests = (
        "import math\n"
        "K = 3\n"
        "def test_one():\n    assert f(K) == 6\n"
        "def test_two():\n    assert f(1) == 3\n"
        "def helper():\n    return 1\n"
        "assert f(helper()) == 2\n"
    )
    res = run_tests("def f(x):\n    return 2 * x\n", tests)
    assert res.statuses == ["passed", "failed", "passed"]
    res = run_tests("def f(x):\n    return x\n", {"tests": ["assert f(1) == 1", "f(None) + 1"]})
    assert res.statuses[0] == "passed" and res.statuses[1].startswith("error: TypeError")


def test_stdin_stdout_cases():
    tests = {"inputs": ["1 2\n", "10 20\n", "5 5\n"], "outputs": ["3\n", "30", "11"]}
    res = run_tests("a, b = map(int, input().split())\nprint(a + b)\n", tests)
    assert res.statuses == ["passed", "passed", "failed"]
    # reading fd 0 directly, multi-line output with trailing spaces
    res = run_tests(
        "import sys\nfor line in open(0).read().split():\n    print(line.upper() + '  ')\n",
        {"inputs": [["ab", "cd"]], "outputs": [["AB", "CD"]]},
    )
    assert res.statuses == ["passed"]
    # a crash after correct output is a failure
    res = run_tests("print(1)\nraise SystemExit(3)", {"inputs": [""], "outputs": ["1"]})
    assert res.statuses == ["error: exit status 3"]


def test_large_stdin_is_fed_without_deadlock():
    data = "\n".join(str(i) for i in range(200_000))
    res = run_tests(
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
        {"inputs": [data], "outputs": [str(sum(range(200_000)))]},
    )
    assert res.statuses == ["passed"]


def test_call_style_with_fn_name_and_forged_equality():
    tests = {
        "inputs": ["1\n2", [3, 4], "[1]\n[2]"],
        "outputs": ["3", [7], "[1, 2]"],
        "fn_name": "add",
    }
    res = run_tests("class Solution:\n    def add(self, a, b):\n        return a + b\n", tests)
    assert res.statuses == ["passed", "passed", "passed"]
    hack = (
        "class A:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return A()\n"
    )
    res = run_tests(hack, {"inputs": ["1"], "outputs": ["3"], "fn_name": "f"})
    assert res.statuses == ["failed"]


def test_a_wrong_solution_fails_checks_in_loops_and_main_guards():
    wrong = "def f(x):\n    return 0\n"
    looped = "assert f(0) == 0\nfor x in range(1, 4):\n    assert f(x) == 2 * x\n"
    assert run_tests(wrong, looped).statuses == ["passed", "failed"]
    assert run_tests("def f(x):\n    return 2 * x\n", looped).statuses == ["passed", "passed"]
    guarded = "assert f(0) == 0\nif __name__ == '__main__':\n    assert f(3) == 6\n"
    assert run_tests(wrong, guarded).statuses == ["passed", "failed"]


def test_per_test_timeout_keeps_other_tests():
    code = "def f(x):\n    while x == 2:\n        pass\n    return x\n"
    res = run_tests(
        code,
        {"tests": ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]},
        test_timeout_s=0.5,
    )
    assert res.statuses == ["passed", "timeout", "passed"]


def test_parse_tests_forms_and_errors():
    assert parse_tests("assert 1\nassert 2\nx = 1\n").total == 2
    assert parse_tests('{"inputs": ["1"], "outputs": ["1"]}').kind == "stdio"
    assert (
        parse_tests({"input_output": '{"inputs": [[1]], "outputs": [1], "fn_name": "f"}'}).fn_name
        == "f"
    )
    assert parse_tests({"test": "def check(c):\n    assert c(1)\n", "entry_point": "g"}).total == 1
    assert parse_tests(["assert 1", "assert 2"]).total == 2
    assert parse_tests("check()\n").total == 1  # no asserts: the script is one test
    for bad in ("assert (", {"inputs": ["1"], "outputs": []}, {"foo": 1}, 3, "", {"tests": "x"}):
        with pytest.raises(ValueError):
            parse_tests(bad)


# ---------------------------------------------------------------------------------------------
# Containment
# ---------------------------------------------------------------------------------------------


def test_isolation_report():
    info = sandbox_info()
    assert info["network"] == "isolated"
    assert "net" in info["namespaces"]
    if "mnt" in info["namespaces"]:
        assert info["filesystem"] == "read-only", info.get("fs_failures")


def test_fork_bomb_is_contained_and_leaves_nothing():
    before = _descendants()
    # default: process creation raises at once
    res = run_tests("import os\nwhile True:\n    os.fork()\n", TRIVIAL, timeout_s=3)
    assert res.passed == 0 and "PermissionError" in res.statuses[0]
    _assert_no_leftovers(res, before)
    # a real bomb that survives EAGAIN, with process creation allowed: bounded by the pid
    # namespace / pids cgroup / RLIMIT_NPROC while it runs, killed at the wall clock
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    box: dict[str, SandboxResult] = {}
    worker = threading.Thread(
        target=lambda: box.setdefault(
            "res", run_tests(bomb, TRIVIAL, timeout_s=2, allow_subprocess=True, max_procs=16)
        )
    )
    start = time.monotonic()
    worker.start()
    peak = 0
    while worker.is_alive():
        peak = max(peak, len(_descendants() - before))
        time.sleep(0.05)
    worker.join()
    res = box["res"]
    assert res.passed == 0 and res.killed_by == "timeout"
    assert time.monotonic() - start < 2 + 4
    assert 0 < peak <= 16 + 2  # the solution's processes + the launcher and the namespace init
    _assert_no_leftovers(res, before)
    # the same through ctypes, bypassing the Python-level block
    bomb = "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()\n"
    res = run_tests(bomb, TRIVIAL, timeout_s=2)
    assert res.passed == 0 and res.killed_by == "timeout"
    _assert_no_leftovers(res, before)
    _assert_still_works()


def test_daemonised_children_do_not_survive():
    code = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "        os._exit(0)\n"
    )
    before = _descendants()
    res = run_tests(code, TRIVIAL, allow_subprocess=True, timeout_s=5)
    assert res.statuses == ["passed"]
    _assert_no_leftovers(res, before)


def test_infinite_loop_times_out_quickly():
    before = _descendants()
    start = time.monotonic()
    res = run_tests("while True:\n    pass\n", "assert True\nassert True\n", timeout_s=1.5)
    elapsed = time.monotonic() - start
    assert res.passed == 0 and res.timed_out and res.killed_by == "timeout"
    assert res.statuses == ["timeout", "timeout"]
    assert elapsed < 1.5 + 2.0
    # a stdin/stdout case that hangs: later cases are skipped, not waited for
    res = run_tests(
        "while True:\n    pass\n",
        {"inputs": ["1", "2", "3"], "outputs": ["1", "2", "3"]},
        timeout_s=1,
    )
    assert res.statuses == ["timeout", "skipped", "skipped"]
    _assert_no_leftovers(res, before)


@pytest.mark.parametrize(
    "hog",
    [
        "x = bytearray(10**10)\n",
        "xs = []\nwhile True:\n    xs.append(' ' * 10**6)\n",
    ],
)
def test_memory_hog_scores_zero(hog):
    start = time.monotonic()
    res = run_tests(hog, TRIVIAL, memory_mb=256, timeout_s=10)
    assert res.passed == 0
    assert "MemoryError" in res.statuses[0] or res.killed_by in ("memory", "timeout")
    assert time.monotonic() - start < 10
    _assert_still_works()


def test_memory_of_the_whole_tree_is_capped():
    code = (
        "import os, time\n"
        "kids = []\n"
        "for _ in range(4):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        x = bytearray(200 * 2**20)\n"
        "        for i in range(0, len(x), 4096):\n"
        "            x[i] = 1\n"
        "        time.sleep(1)  # hold it: the children's memory overlaps whatever the load\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "codes = [os.waitpid(p, 0)[1] for p in kids]\n"
        "assert all(c == 0 for c in codes), codes\n"
    )
    before = _descendants()
    res = run_tests(code, TRIVIAL, memory_mb=300, allow_subprocess=True, timeout_s=10)
    _assert_no_leftovers(res, before)
    if "memory" not in sandbox_info().get("cgroups", []):
        pytest.skip("no memory cgroup here: only RLIMIT_AS per process applies")
    assert res.passed == 0 and res.killed_by == "memory"


def test_writes_outside_the_sandbox_fail():
    tag = secrets.token_hex(6)
    targets = [
        f"/tmp/rewardkit_escape_{tag}",
        str(REPO / f"rewardkit_escape_{tag}"),
        f"/dev/shm/rewardkit_escape_{tag}",
        f"/var/tmp/rewardkit_escape_{tag}",
        os.path.join(tempfile.gettempdir(), f"rewardkit_escape_{tag}"),
    ]
    mine = f"rewardkit-sbx-{os.getpid()}-"  # other processes on the machine may run sandboxes too
    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(mine)}
    tests = {"tests": [f"open({t!r}, 'w').write('escaped')" for t in targets]}
    res = run_tests("", tests)
    assert res.passed == 0, res.statuses
    for t in targets:
        assert not os.path.exists(t), t
    # the working directory is writable (and so is TMPDIR), and it is removed afterwards
    code = (
        "import os, tempfile\n"
        "open('out.txt', 'w').write('hi')\n"
        "with tempfile.NamedTemporaryFile() as f:\n"
        "    f.write(b'x')\n"
    )
    res = run_tests(code, "assert open('out.txt').read() == 'hi'\n")
    assert res.statuses == ["passed"]
    after = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(mine)}
    assert after <= before


def test_file_size_limit():
    res = run_tests("open('big', 'wb').write(b'x' * (8 * 2**20))\n", TRIVIAL, fsize_mb=4)
    assert res.passed == 0
    assert "File too large" in res.statuses[0] or res.killed_by == "file_size"


def test_network_is_unreachable():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract = f"\0rewardkit-test-{secrets.token_hex(6)}"
    unix.bind(abstract)
    unix.listen(8)
    try:
        tests = {
            "tests": [
                "import socket\n"
                f"socket.create_connection(('127.0.0.1', {tcp.getsockname()[1]}), timeout=2)",
                "import socket\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"s.sendto(b'x', ('127.0.0.1', {udp.getsockname()[1]}))",
                f"import socket\nsocket.socket(socket.AF_UNIX).connect({abstract!r})",
                "import socket\nsocket.getaddrinfo('example.com', 80)",
            ]
        }
        res = run_tests("", tests)
        assert res.passed == 0, res.statuses
        for s in (tcp, udp, unix):
            s.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(16)
        with pytest.raises(BlockingIOError):
            unix.accept()
    finally:
        tcp.close()
        udp.close()
        unix.close()


def _tmp_entries_to_python() -> set[str]:
    """Top-level /tmp entries on the way to this interpreter (a checkout with its .venv under
    /tmp): the sandbox binds the interpreter's directories back in, so those may show."""
    entries = set()
    for p in (sys.executable, sys.prefix, sys.base_prefix):
        for q in (os.path.abspath(p), os.path.realpath(p)):
            parts = q.split("/")
            if len(parts) > 2 and parts[1] == "tmp":
                entries.add(parts[2])
    return entries


def test_environment_and_interpreter_are_minimal(monkeypatch):
    monkeypatch.setenv("REWARDKIT_TEST_SECRET", "s3cret")
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    tests = [
        "import os\nassert 'REWARDKIT_TEST_SECRET' not in os.environ\n"
        "assert set(os.environ) <= {'PATH', 'LANG', 'HOME', 'TMPDIR'}, sorted(os.environ)",
        "import os\nassert os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd()",
        "import sys\nassert sys.flags.isolated and sys.flags.no_site",
        "import sys\nassert sys.stdin.read() == ''",
        # never root: a fresh uid, or root of a user namespace mapped to a non-root user
        "import os\nassert os.getuid() != 0 or open('/proc/self/uid_map').read().split()[1] != '0'",
    ]
    if "mnt" in sandbox_info()["namespaces"]:
        tests += [
            # /tmp is empty but for the work dir (and the way to the interpreter when it
            # lives under /tmp, e.g. a checkout in /tmp with its .venv, bind-mounted back in)
            "import os\nallowed = {os.path.basename(os.getcwd())} | "
            + repr(_tmp_entries_to_python())
            + "\nassert set(os.listdir('/tmp')) <= allowed, sorted(os.listdir('/tmp'))",
            # /root is hidden: at most the directories leading to the interpreter remain
            "import os, sys\nfor e in os.listdir('/root'):\n"
            "    assert os.path.realpath(sys.base_prefix).startswith('/root/' + e)",
        ]
    res = run_tests("", {"tests": tests})
    assert res.statuses == ["passed"] * len(tests), (res.statuses, res.stderr)


def test_processes_in_the_sandbox_see_only_themselves():
    res = run_tests(
        "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n",
        "assert len(pids) <= 3, pids\n",
    )
    if "pid" in sandbox_info()["namespaces"]:
        assert res.statuses == ["passed"], res.stderr


def test_output_flood_is_capped():
    before = _descendants()
    start = time.monotonic()
    res = run_tests(
        "while True:\n    print('x' * 1000)\n", TRIVIAL, timeout_s=5, max_output_bytes=1 << 16
    )
    assert res.passed == 0 and res.killed_by == "output_limit"
    assert time.monotonic() - start < 5
    res = run_tests(
        "while True:\n    print('x' * 1000)\n",
        {"inputs": [""], "outputs": ["x"]},
        timeout_s=5,
        max_output_bytes=1 << 16,
    )
    assert res.statuses == ["killed: output_limit"]
    _assert_no_leftovers(res, before)


def test_concurrent_runs_stay_separate():
    before = _descendants()
    sandbox = Sandbox(timeout_s=5, workers=2)
    tests = {"inputs": [str(i) for i in range(6)], "outputs": [str(2 * i) for i in range(6)]}
    res = sandbox.run_tests("print(2 * int(input()))\n", tests)
    assert res.statuses == ["passed"] * 6
    _assert_no_leftovers(res, before)


def test_sandbox_rejects_bad_limits():
    with pytest.raises(ValueError):
        Sandbox(timeout_s=0)
    with pytest.raises(ValueError):
        Sandbox(memory_mb=-1)
    with pytest.raises(TypeError):
        run_tests("", TRIVIAL, no_such_option=1)

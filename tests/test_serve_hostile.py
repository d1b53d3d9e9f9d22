"""Hostile and careless clients against a real server on loopback: huge item counts, bodies cut
short, slow headers and bodies (slowloris), too many connections, requests larger than the
queue, forged OpenRLHF queries, shutdown timing, and the shape of every error answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests import serve_logs
from tests.adversarial.helpers import slow_server
from tests.adversarial.helpers.slow_server import free_port
from tests.proc_helpers import wait_for

from rewardkit.client import RewardClient, RewardServerError
from rewardkit.data.openrlhf import split_query
from rewardkit.serve import app as app_module
from rewardkit.serve.app import Refusal, create_app, decode_body
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import Limits

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server_logs():
    with serve_logs.server_logs() as handler:
        yield handler


def _serve(**overrides) -> BackgroundServer:
    config = ServeConfig(rewards={"default": "rule:length"}, **overrides)
    app = create_app(config)
    srv = BackgroundServer(app)
    srv.state = app.state.rewardkit
    return srv


@pytest.fixture(scope="module")
def server():
    with _serve(limits=Limits(max_items=16), header_timeout=1.0, body_timeout=2.0) as srv:
        yield srv


def _metric(url: str, line_start: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[1])
    return 0.0


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


# -- 1. item limits before per-item work ----------------------------------------------------------
HUGE_BODIES = {
    "ones": ("/v1/rewards", b'{"items": [' + b",".join([b"1"] * 1_000_000) + b"]}"),
    "empties": ("/v1/rewards", b'{"items": [' + b",".join([b"{}"] * 700_000) + b"]}"),
    "queries": ("/get_reward", b'{"query": [' + b",".join([b'""'] * 700_000) + b"]}"),
}


@pytest.mark.parametrize("kind", sorted(HUGE_BODIES))
def test_too_many_items_are_refused_before_any_per_item_work(server, kind):
    """~2-3 MB bodies of hundreds of thousands of tiny items: 413 at once (the per-value checks
    and validation of every item took seconds and gigabytes before the limit was looked at)."""
    path, body = HUGE_BODIES[kind]
    started = time.monotonic()
    r = httpx.post(
        server.url + path,
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    took = time.monotonic() - started
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"]["type"] == "too_many_items"
    assert "exceeds the limit of 16 per request" in r.json()["error"]["message"]
    assert took < 3.0, f"{took:.1f} s for a refusal"


def test_decode_body_counts_items_before_checking_values(monkeypatch):
    walked: list[object] = []
    monkeypatch.setattr(app_module, "check_tree", lambda obj, *a: walked.append(obj))
    body = json.dumps({"query": ["a", "b", "c"], "labels": ["x"] * 5}).encode()
    with pytest.raises(Refusal) as info:
        decode_body(body, ("query", "labels"), max_items=4)
    assert info.value.status == 413
    assert info.value.message == "5 entries in 'labels' exceeds the limit of 4 per request"
    assert walked == []  # refused before the tree of values was walked
    assert decode_body(b'{"query": ["a"]}', ("query",), 4) == {"query": ["a"]}
    assert len(walked) == 1


# -- 2. a client that leaves mid-body -------------------------------------------------------------
def test_client_leaving_mid_body_is_a_counted_disconnect_without_traceback(server, server_logs):
    before = httpx.get(server.url + "/v1/stats").json()["disconnects"]
    with _raw(server.url) as sock:
        sock.sendall(
            b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"items": '
        )
        time.sleep(0.1)
    wait_for(lambda: httpx.get(server.url + "/v1/stats").json()["disconnects"] == before + 1)
    assert 'endpoint="/v1/rewards",status="499"' in httpx.get(server.url + "/metrics").text
    text = server_logs.text()
    assert "Exception in ASGI application" not in text and "Traceback" not in text, text
    assert "ClientDisconnect" not in text


# -- 3. slow clients and connection limits ---------------------------------------------------------
def test_partial_headers_are_cut_after_the_header_timeout(server):
    with _raw(server.url) as sock:
        sock.sendall(b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        assert _read_all(sock) == b""  # closed by the server, nothing sent
        assert time.monotonic() - started < 5.0
    # the same after a first answer on a keep-alive connection
    with _raw(server.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # slowloris on the second request
        assert _read_all(sock) == b""


def test_huge_headers_get_431_and_the_server_keeps_answering(server):
    """httptools joins header pieces by repeated concatenation: one client streaming a header of
    megabytes slowed every request (/health 0.7–5.5 s) and grew the server by 230 MiB."""
    with _raw(server.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64):  # 2 MiB offered; the server stops reading at 64 KiB
                sock.sendall(b"a" * 32768)
        except OSError:
            pass
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer
    started = time.monotonic()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    assert time.monotonic() - started < 2.0
    big_but_fine = {"X-Fine": "b" * 30000}  # large headers under the cap still work
    assert httpx.get(server.url + "/health", headers=big_but_fine, timeout=10).status_code == 200


def test_slow_body_gets_408_json_and_the_connection_closes(server):
    before = _metric(server.url, 'rewardkit_requests_total{endpoint="/v1/rewards",status="408"}')
    with _raw(server.url) as sock:
        sock.sendall(
            b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n" + b'{"items": ['
        )
        started = time.monotonic()
        answer = _read_all(sock)
        assert time.monotonic() - started < 5.0
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert json.loads(body)["error"]["type"] == "body_timeout"
    after = _metric(server.url, 'rewardkit_requests_total{endpoint="/v1/rewards",status="408"}')
    assert after == before + 1
    # a waiting request whose body is in is not cut by the body deadline (it covers the body only)
    r = httpx.post(server.url + "/v1/rewards", json={"items": [{"response": "abc"}]})
    assert r.status_code == 200


def test_connections_beyond_max_connections_replace_waiting_ones_or_are_closed():
    """Beyond max_connections a new connection closes the oldest one waiting for a request (a
    slow or idle client), so a /health probe gets through; when every connection has a request
    in progress, the new one is closed instead."""
    busy_request = (
        b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    with _serve(max_connections=4, header_timeout=30, body_timeout=30) as srv:
        metrics = srv.state.metrics
        idle = [_raw(srv.url) for _ in range(4)]
        for sock in idle:
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # slowloris: headers never end
            time.sleep(0.05)  # arrival order is age order
        fresh = [_raw(srv.url) for _ in range(2)]
        busy: list[socket.socket] = []
        try:
            for sock in idle[:2]:  # the two oldest made room
                assert _read_all(sock) == b""
            assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
            assert metrics.counter("rewardkit_connections_refused_total") == 3
            for sock in fresh:  # requests in progress cannot be displaced
                sock.sendall(busy_request)
            for sock in idle[2:]:
                sock.close()
            time.sleep(0.2)
            busy += [_raw(srv.url) for _ in range(2)]
            for sock in busy:
                sock.sendall(busy_request)
            time.sleep(0.2)
            with _raw(srv.url) as late:
                assert _read_all(late) == b""  # all four are busy: the newcomer is closed
            assert metrics.counter("rewardkit_connections_refused_total") == 4
        finally:
            for sock in idle + fresh + busy:
                sock.close()


# -- 4. a request larger than the queue ------------------------------------------------------------
def test_request_with_more_new_items_than_the_queue_is_413_and_not_retried():
    with _serve(batch=BatcherConfig(max_queue=2)) as srv:
        items = [{"response": "x" * n} for n in (1, 2, 3)]
        r = httpx.post(srv.url + "/v1/rewards", json={"items": items})
        assert r.status_code == 413 and "retry-after" not in r.headers
        err = r.json()["error"]
        assert err["type"] == "too_many_items"
        assert (
            "holds 3 new items for route 'default', whose queue holds at most 2" in err["message"]
        )
        started = time.monotonic()
        with (
            RewardClient(srv.url, retries=5, backoff=5.0) as rc,
            pytest.raises(RewardServerError) as info,
        ):
            rc.score(items)
        assert info.value.status == 413 and time.monotonic() - started < 3.0
        # duplicates coalesce: three copies of two distinct items fit
        r = httpx.post(srv.url + "/v1/rewards", json={"items": items[:2] * 3})
        assert r.status_code == 200


# -- 5. OpenRLHF queries whose response repeats the prompt ----------------------------------------
def test_split_query_uses_the_first_copy_of_the_prompt():
    prompt = "Q: 2+2? A: "
    forged = "<s>" + prompt + "I do not know. " + prompt + "4"
    assert split_query(forged, prompt) == (prompt, "I do not know. " + prompt + "4")
    assert split_query("<s>" + prompt + "4</s>", prompt) == (prompt, "4")


def test_get_reward_scores_the_whole_response_after_a_bos(server):
    prompt = "Q: 2+2? A: "
    response = "wrong " + prompt + "4"
    r = httpx.post(
        server.url + "/get_reward",
        json={"query": ["<s>" + prompt + response], "prompts": [prompt]},
    )
    assert r.json()["rewards"] == [float(len(response))]  # rule:length of the whole response


# -- 6. shutdown within --graceful-timeout ----------------------------------------------------------
def test_sigterm_exits_within_the_graceful_timeout_with_a_batch_running():
    """A batch of 8 s runs when SIGTERM comes; --graceful-timeout 2: its request gets a JSON 503
    and the process is gone 2 s after the signal (it took the grace twice before: the drain's
    grace, then as much again waiting for the batch at shutdown)."""
    port, grace, delay = free_port(), 2.0, 8.0
    proc = slow_server.start(port, delay, grace)
    url = f"http://127.0.0.1:{port}"
    answer: dict = {}

    def client() -> None:
        r = httpx.post(url + "/v1/rewards", json={"items": [{"response": "x"}]}, timeout=60)
        answer["r"] = (r.status_code, r.json())

    try:
        with RewardClient(url, retries=120, backoff=0.25, max_backoff=0.25) as rc:
            rc.health()  # retried until the server is up
        thread = threading.Thread(target=client)
        thread.start()
        wait_for(lambda: _metric(url, "rewardkit_inflight_requests") == 1, timeout=30)
        time.sleep(0.3)  # the batch is running
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        exited = time.monotonic() - signalled
        thread.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert answer["r"][0] == 503 and answer["r"][1]["error"]["type"] == "shutting_down"
    assert exited <= grace + 1.0, f"exited {exited:.2f} s after SIGTERM (timeout {grace} s)"
    assert "Traceback" not in proc.stderr.read()


def _ctrl_c_on_serve(ignore_sigint: bool = False) -> tuple[int, str]:
    """Start ``rewardkit serve`` (with SIGINT ignored from the start: ``ignore_sigint``), wait
    until it answers, press Ctrl-C; its exit code and stderr."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "-r", "rule:length", "--port", str(port)]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore,
    )  # fmt: skip
    try:
        with RewardClient(f"http://127.0.0.1:{port}", retries=120, backoff=0.25) as rc:
            rc.health()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, proc.stderr.read()


def test_ctrl_c_on_a_serve_started_with_sigint_ignored_still_stops_as_interrupted():
    """A parent that ignores SIGINT passes that on (an xdist worker after a test that ignored
    it, a shell's background job): uvicorn still drains on the signal but cannot re-raise it,
    so the command returned and exited 0 without saying the server stopped (CI, stop 39)."""
    code, err = _ctrl_c_on_serve(ignore_sigint=True)
    assert code == 130 and "the server stopped" in err


def test_ctrl_c_on_serve_says_the_server_stopped_not_that_outputs_are_incomplete():
    code, err = _ctrl_c_on_serve()
    assert code == 130 and "the server stopped" in err
    assert "outputs are absent" not in err and "Traceback" not in err


# -- 7. error shapes, counts, ids, content types ----------------------------------------------------
def test_unknown_paths_and_methods_answer_in_the_error_shape_and_are_counted(server):
    r = httpx.get(server.url + "/nope")
    assert r.status_code == 404
    assert r.json() == {"error": {"type": "not_found", "message": "GET /nope: no such endpoint"}}
    r = httpx.get(server.url + "/v1/rewards")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["type"] == "method_not_allowed"
    with _raw(server.url) as sock:
        sock.sendall(b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        head, _, body = _read_all(sock).partition(b"\r\n\r\n")
    assert (
        head.startswith(b"HTTP/1.1 413") and json.loads(body)["error"]["type"] == "body_too_large"
    )
    text = httpx.get(server.url + "/metrics").text
    assert 'rewardkit_requests_total{endpoint="other",status="404"}' in text
    assert 'rewardkit_requests_total{endpoint="/v1/rewards",status="405"}' in text
    assert 'rewardkit_requests_total{endpoint="/v1/rewards",status="413"}' in text


@pytest.mark.parametrize(("body", "kind"), [(b"[]", "an array"), (b"null", "null")])
def test_a_body_that_is_not_an_object_is_named_as_the_request_body(server, body, kind):
    r = httpx.post(
        server.url + "/v1/rewards", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"] == f"request body: expected a JSON object, got {kind}"


def test_ids_are_echoed_as_sent_never_coerced(server):
    items = [
        {"id": "a", "response": "x"},
        {"id": 7, "response": "x"},
        {"id": True, "response": "x"},
        {"id": 1e3, "response": "x"},
    ]
    res = httpx.post(server.url + "/v1/rewards", json={"items": items}).json()["results"]
    assert [r["id"] for r in res[:2]] == ["a", 7]
    for r in res[2:]:
        assert r["id"] is None and r["error"]["type"] == "invalid_item"
        assert r["error"]["message"].startswith(("items[2]: id", "items[3]: id"))


@pytest.mark.parametrize(
    ("ctype", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON;charset=UTF-8", 200),
        ('application/json; charset="utf8"', 200),
        ("application/json; charset=US-ASCII", 200),  # a subset of UTF-8
        ("application/json; charset=latin-1", 415),  # read as UTF-8 before
        ("application/json; charset=utf-16", 415),
    ],
)
def test_without_an_api_key_the_body_must_be_declared_json(server, ctype, status):
    headers = {"content-type": ctype} if ctype else {}
    body = json.dumps({"items": [{"response": "abc"}]}).encode()
    r = httpx.post(server.url + "/v1/rewards", content=body, headers=headers)
    assert r.status_code == status, r.text
    if status == 415:
        assert r.json()["error"]["type"] == "unsupported_media_type"
    r = httpx.post(server.url + "/get_reward", content=b'{"query": ["q"]}', headers=headers)
    assert r.status_code == status


def test_with_an_api_key_a_declared_charset_other_than_utf8_is_refused():
    with _serve(api_key="k") as srv:
        r = httpx.post(
            srv.url + "/v1/rewards",
            content='{"items": [{"response": "caf\u00e9"}]}'.encode("latin-1"),
            headers={"Authorization": "Bearer k", "content-type": "text/plain; charset=latin-1"},
        )
    assert r.status_code == 415, r.text
    error = r.json()["error"]
    assert error["type"] == "unsupported_media_type" and "'latin-1'" in error["message"]


def test_with_an_api_key_any_content_type_is_read():
    with _serve(api_key="k") as srv:
        r = httpx.post(
            srv.url + "/v1/rewards",
            content=b'{"items": [{"response": "abc"}]}',
            headers={"Authorization": "Bearer k", "content-type": "text/plain"},
        )
        assert r.status_code == 200


def test_connection_limits_are_serve_options(monkeypatch):
    """--header-timeout, --body-timeout, --max-connections, --backlog reach ServeConfig;
    --threads defaults to one per core, as its help says."""
    import os

    from typer.testing import CliRunner

    import rewardkit.serve.cli as serve_cli
    from rewardkit.cli import app

    seen = {}
    monkeypatch.setattr(serve_cli, "run", lambda config, **kw: seen.update(config=config))
    args = ["serve", "-r", "rule:length", "--port", "0"]  # free whatever runs on :8000
    args += ["--header-timeout", "2.5", "--body-timeout", "7"]
    args += ["--max-connections", "99", "--backlog", "12"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    c = seen["config"]
    assert (c.header_timeout, c.body_timeout, c.max_connections, c.backlog) == (2.5, 7.0, 99, 12)
    assert c.engine["threads"] == max(1, os.cpu_count() or 1)
    bad = CliRunner().invoke(app, ["serve", "-r", "rule:length", "--header-timeout", "nan"])
    assert bad.exit_code == 2


def test_a_listwise_reward_is_refused_by_the_server():
    """A listwise judge ranks whatever shares its call: served, its scores would depend on the
    dynamic batches and the cache, so the server refuses it in one line (exit 2)."""
    from typer.testing import CliRunner

    from rewardkit.cli import app
    from rewardkit.errors import SpecError
    from rewardkit.serve.config import ServeConfig
    from rewardkit.serve.state import ServeState

    spec = "judge-listwise:openai://127.0.0.1:9/v1?model=m"  # refused before any request
    with pytest.raises(SpecError, match="would depend on how requests are batched"):
        ServeState(ServeConfig(rewards={"default": spec}))
    result = CliRunner().invoke(app, ["serve", "-r", spec, "--port", "0"])
    assert result.exit_code == 2 and "ranks the responses that share one call" in result.output


def test_a_batch_relative_reward_is_refused_by_the_server():
    """Before: an ensemble standardised over its call (zscore, no stats) was served, and each
    item's reward depended on the requests its dynamic batch merged (and a cached one on the
    batch it came from). With fixed stats it is served."""
    from rewardkit.errors import SpecError
    from rewardkit.serve.config import ServeConfig
    from rewardkit.serve.state import ServeState

    zscored = {"ensemble": ["rule:length", "rule:repetition"], "normalize": "zscore"}
    with pytest.raises(SpecError, match=r"against the rest of its call.*give the ensemble stats="):
        ServeState(ServeConfig(rewards={"default": zscored}))
    fixed = {**zscored, "stats": [[10, 5], [0, 1]]}
    state = ServeState(ServeConfig(rewards={"default": fixed}))
    assert state.routes["default"].components == ("rule:length", "rule:repetition")

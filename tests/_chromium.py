"""Drive headless Chromium over the DevTools protocol (no playwright): load a page, collect
console errors, exceptions and failed loads, and read back every image's natural size."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with a page target; use as a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def __enter__(self) -> Browser:
        import httpx
        from websockets.sync.client import connect

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.workdir / 'profile'}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
            elif not line and self.proc.poll() is not None:
                break
        if port is None:
            self.proc.kill()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        pages = [
            t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"
        ]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=2**26)
        self._id = 0
        for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.call(method)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()
        self.proc.kill()
        self.proc.wait(timeout=30)

    def call(
        self, method: str, params: dict[str, Any] | None = None, events: list | None = None
    ) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                return msg.get("result", {})
            if events is not None:
                events.append(msg)

    def load(self, url: str) -> dict[str, Any]:
        """Navigate, wait for the load event; return errors and image sizes."""
        events: list[dict[str, Any]] = []
        self.call("Page.navigate", {"url": url}, events)
        deadline = time.monotonic() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            events.append(json.loads(self.ws.recv(timeout=60)))
        expr = (
            "JSON.stringify(Array.from(document.images).map(i => "
            "({id: i.id, complete: i.complete, width: i.naturalWidth})))"
        )
        res = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, events)
        errors = []
        for e in events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(str(p.get("args")))
            elif m == "Runtime.exceptionThrown":
                errors.append(str(p.get("exceptionDetails")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(p["entry"].get("text", ""))
            elif m == "Network.loadingFailed":
                errors.append(f"load failed: {p.get('errorText')}")
        return {"errors": errors, "images": json.loads(res["result"]["value"])}

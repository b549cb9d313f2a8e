"""Headless Chromium driven over the DevTools protocol, for the report's browser test.

Debian's ``chromium`` is started with a throw-away profile and
``--remote-debugging-port=0``; it prints the browser's WebSocket address on
stderr. One page target is attached (flat sessions) with the Network, Page
and Runtime domains on, so every request the page makes, every uncaught
exception and the load event are seen. ``websocket-client`` (the dev extra)
is the only dependency: no browser is downloaded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    env = os.environ.get("MDNET_DEPLOY_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for p in CHROMIUM_PATHS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("chromium")


@dataclass
class PageLoad:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    failed: list[str] = field(default_factory=list)  # requests that failed (blocked, not found)
    exceptions: list[str] = field(default_factory=list)  # uncaught script errors
    console: list[str] = field(default_factory=list)  # console messages (CSP violations land here)


class Chromium:
    """``with Chromium(path) as b: b.open(url); b.evaluate(js); b.screenshot(png)``."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.executable, self.timeout = executable, timeout
        self._next = 0
        self.load = PageLoad()

    def __enter__(self) -> Chromium:
        import websocket  # websocket-client

        self._profile = tempfile.mkdtemp(prefix="mdnet-chromium-")
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,900",
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = self._devtools_url()
        self.ws = websocket.create_connection(url, timeout=self.timeout, suppress_origin=True)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        return self

    def _devtools_url(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + self.timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line.strip())
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                return m.group(1)
        raise RuntimeError("chromium did not start its DevTools server: " + " | ".join(seen[-5:]))

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.ws.close()
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # this process only: we started it
            self.proc.wait(timeout=20)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = False) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)
        raise TimeoutError(f"no reply to {method} within {self.timeout:.0f} s")

    def _event(self, msg: dict[str, Any]) -> str | None:
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "Network.requestWillBeSent":
            self.load.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            self.load.failed.append(f"{params.get('errorText')} {params.get('blockedReason') or ''}".strip())
        elif method == "Runtime.exceptionThrown":
            self.load.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled":
            self.load.console.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            )
        return method

    # -- page ---------------------------------------------------------------------------------
    def open(self, url: str) -> PageLoad:
        """Navigate and wait for the load event (scripts have run by then)."""
        self.load = PageLoad()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._event(json.loads(self.ws.recv())) == "Page.loadEventFired":
                return self.load
        raise TimeoutError(f"{url} did not finish loading within {self.timeout:.0f} s")

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path, width: int = 1280, max_height: int = 16000) -> Path:
        """The whole page as PNG (up to ``max_height`` pixels)."""
        metrics = self.call("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], 100), max_height))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)[
            "data"
        ]
        path.write_bytes(base64.b64decode(data))
        return path

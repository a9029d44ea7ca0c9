"""A real headless browser for tests: Debian's Chromium, driven over the DevTools protocol (no Selenium).

    with Chromium() as browser:
        page = browser.open("file:///tmp/report.html")
        page.wait_for("document.readyState === 'complete'")
        assert page.evaluate("document.images.length") == 3

Tests that need it skip with a reason when Chromium is not installed (``tools/setup.sh`` installs it as
root on Debian). Every flag that would reach the internet is off; nothing listens beyond loopback.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from mlcourse.processes import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


class Page:
    """One tab: evaluate JavaScript, wait for a condition, take a screenshot."""

    def __init__(self, ws_url: str):
        import websocket

        self._ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self._id = 0

    def _call(self, method: str, **params):
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        out = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"JavaScript failed: {out['exceptionDetails'].get('text')} in {expression[:200]}")
        return out.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, what: str = ""):
        """Poll until the expression is truthy; returns its value, or fails the test saying what was awaited."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.25)
        pytest.fail(f"the browser never showed {what or expression} within {timeout:.0f} s")

    def click(self, expression: str, what: str = "", timeout: float = 30.0) -> None:
        """A real mouse click (press and release, through DevTools' input events) at the centre of the element
        that the JavaScript ``expression`` returns, once it is there and visible."""
        box = self.wait_for(f"(() => {{ const el = {expression}; if (!el) return null; const r = "
                            "el.getBoundingClientRect(); return r.width && r.height ? "
                            "{x: r.x + r.width / 2, y: r.y + r.height / 2} : null; })()", timeout, what)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self._call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
                       clickCount=0 if kind == "mouseMoved" else 1)

    def goto(self, url: str) -> "Page":
        self._call("Page.navigate", url=url)
        return self

    def screenshot(self, path) -> Path:
        data = self._call("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        self._ws.close()


class Chromium:
    """Start headless Chromium with a fresh profile and a DevTools port on loopback; stop it on exit."""

    def __init__(self, width: int = 1280, height: int = 900):
        if CHROMIUM is None:
            raise RuntimeError("Chromium is not installed: apt-get install chromium")
        self.port = free_port()
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self._cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-default-apps", "--disable-extensions", f"--user-data-dir={self._profile}",
                     f"--window-size={width},{height}", "--remote-debugging-address=127.0.0.1",
                     f"--remote-debugging-port={self.port}", "about:blank"]
        self._pages: list[Page] = []

    def __enter__(self) -> "Chromium":
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/version", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("Chromium did not open its DevTools port within 30 s")

    def open(self, url: str) -> Page:
        """A new tab on ``url``."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{url}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            target = json.loads(r.read())
        page = Page(target["webSocketDebuggerUrl"])
        self._pages.append(page)
        return page

    def __exit__(self, *exc):
        for p in self._pages:
            try:
                p.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)
        return False

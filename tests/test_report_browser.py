"""report.html in a real headless Chromium: it renders, every image decodes, the console stays clean.

Chromium is driven over the Chrome DevTools Protocol (websocket-client; no driver
binary). Needs Debian's `chromium` package; the test skips, saying so, only when no
Chromium binary is installed. A Chromium that is installed but cannot start fails.
"""
from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1280,1600")
START_TIMEOUT_S = 60
PAGE_TIMEOUT_S = 60


class DevTools:
    """A minimal CDP client on one page target: send commands, keep every event."""

    def __init__(self, ws_url: str):
        try:
            import websocket
        except ImportError:
            pytest.fail("the browser test needs websocket-client (pip install websocket-client)")
        self.ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"Chromium sent no {method} within {timeout_s} s")
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def chromium(tmp_path, monkeypatch):
    """A headless Chromium with remote debugging; yields a DevTools client on its page."""
    if CHROMIUM is None:
        pytest.skip("no Chromium binary installed (Debian: apt-get install -y chromium)")
    for name in ("no_proxy", "NO_PROXY"):   # the debugging socket is local: never via a proxy
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    profile = tmp_path / "profile"
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = None
    try:
        port = _debugging_port(profile, process)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never via a proxy
        with direct.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t.get("type") == "page")
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _debugging_port(profile: Path, process: subprocess.Popen) -> int:
    """Chromium writes its debugging port into DevToolsActivePort once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace")[-2000:]
            pytest.fail(f"Chromium ({CHROMIUM}) exited with status {process.returncode} at start:\n{error}")
        if marker.exists():
            lines = marker.read_text().split()
            if lines and lines[0].isdigit():
                return int(lines[0])
        time.sleep(0.1)
    pytest.fail(f"Chromium ({CHROMIUM}) did not open its debugging port within {START_TIMEOUT_S} s")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_chromium_with_every_image_and_no_console_error(built, chromium):
    for domain in ("Page", "Runtime", "Log"):
        chromium.send(f"{domain}.enable")
    chromium.events.clear()   # only what the report page itself causes counts
    chromium.send("Page.navigate", url=built["html"].resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", PAGE_TIMEOUT_S)

    assert chromium.evaluate("document.title") == "Tiny study"
    images = chromium.evaluate(
        "Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth,"
        " height: i.naturalHeight, shown: i.getBoundingClientRect().width}))")
    assert len(images) == 2
    for image in images:
        assert image["complete"] and image["width"] == 840 and image["height"] > 0 and image["shown"] > 0
    matrix = chromium.evaluate(
        "(() => { const r = document.querySelector('table.matrix').getBoundingClientRect();"
        " return {width: r.width, height: r.height, rows: document.querySelectorAll('table.matrix tbody tr').length}; })()")
    assert matrix["width"] > 300 and matrix["height"] > 50 and matrix["rows"] == 2
    red = chromium.evaluate(
        "getComputedStyle(document.querySelector('tr.diverged td')).backgroundColor")
    assert red == "rgb(255, 217, 217)"   # diverged runs are flagged in red
    assert "SMOKE SCALE" in chromium.evaluate("document.body.innerText")

    errors = [e for e in chromium.events if e.get("method") in ("Runtime.exceptionThrown",)
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    assert errors == []

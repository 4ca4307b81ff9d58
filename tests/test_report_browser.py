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
import urllib.parse
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


def _open_report(chromium, built, width=1366, height=768):
    """Load report.html in a 1366 x 768 viewport (a laptop screen)."""
    for domain in ("Page", "Runtime", "Log"):
        chromium.send(f"{domain}.enable")
    chromium.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
    chromium.events.clear()
    chromium.send("Page.navigate", url=built["html"].resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", PAGE_TIMEOUT_S)


COLUMN = """(name) => { const heads = Array.from(document.querySelectorAll('#runs thead th'));
  const i = heads.findIndex(h => h.textContent.trim().replace(/[\\u25B2\\u25BC]/g, '').trim() === name);
  if (i < 0) throw new Error('no column ' + name);
  return i; }"""


def _column(chromium, name: str, attribute: str | None = None) -> list:
    """The visible rows' cells of the runs table's column `name` (text, or an attribute)."""
    read = f"c.getAttribute('{attribute}')" if attribute else "c.textContent.trim()"
    return chromium.evaluate(
        f"(() => {{ const i = ({COLUMN})({json.dumps(name)});"
        " return Array.from(document.querySelectorAll('#runs tbody tr')).filter(r => !r.hidden)"
        f".map(r => {{ const c = r.cells[i]; return {read}; }}); }})()")


def _click_header(chromium, name: str) -> str:
    return chromium.evaluate(
        f"(() => {{ const i = ({COLUMN})({json.dumps(name)});"
        " const th = document.querySelectorAll('#runs thead th')[i]; th.querySelector('button').click();"
        " return th.getAttribute('aria-sort'); })()")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed (Debian: apt-get install -y chromium)")
def test_runs_table_sorts_and_filters_and_every_download_exists(built, study, chromium):
    _open_report(chromium, built)
    ids = [r.id for r in study["runs"]]
    assert _column(chromium, "run") == ids   # the run table's order until a header is clicked

    # sort by tail error: exact values (data-value) ascending, runs without one (diverged) last
    assert _click_header(chromium, "tail error") == "ascending"
    values = _column(chromium, "tail error", "data-value")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and len(numbers) == len(ids) - 1 and values[-1] == ""
    assert _column(chromium, "run")[-1] == "d1ver9ed0000"
    assert _click_header(chromium, "tail error") == "descending"
    values = _column(chromium, "tail error", "data-value")
    assert [float(v) for v in values if v] == sorted(numbers, reverse=True) and values[-1] == ""
    assert _column(chromium, "run") != ids
    # text columns sort by their text
    assert _click_header(chromium, "run") == "ascending"
    assert _column(chromium, "run") == sorted(ids)

    # filters: a word, then a choice of architecture; the count follows
    def type_filter(text: str) -> None:
        chromium.evaluate(f"(() => {{ const f = document.getElementById('runs-filter'); f.value = {json.dumps(text)};"
                          " f.dispatchEvent(new Event('input')); })()")

    type_filter("DIVERGED")
    assert _column(chromium, "run") == ["d1ver9ed0000"]
    assert chromium.evaluate("document.getElementById('runs-count').textContent") == f"1 of {len(ids)} runs"
    type_filter("")
    chromium.evaluate("(() => { const s = document.getElementById('runs-model'); s.value = 's4';"
                      " s.dispatchEvent(new Event('change')); })()")
    s4 = sorted(r.id for r in study["runs"] if r.model == "s4")
    assert sorted(_column(chromium, "run")) == s4 and len(s4) == 2
    assert set(_column(chromium, "architecture")) == {"s4"}
    type_filter("0.01")   # both filters at once: the s4 run at lr 0.01
    assert _column(chromium, "run") == [r.id for r in study["runs"]
                                        if r.model == "s4" and r.train["lr"] == 1e-2]

    # every link of the page resolves to a file beside it
    links = chromium.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    out = built["out"].resolve()
    files = {Path(urllib.request.url2pathname(urllib.parse.urlparse(link).path)) for link in links}
    assert {out / "table1.csv", out / "table1.tex", out / "metrics" / "runs.csv", out / "metrics" / "training.csv",
            out / "plots" / "linear_regression.svg", out / "plots" / "linear_regression.pdf"} <= files
    for path in files:
        assert path.is_file() and out in path.parents, path
    assert all(link.startswith("file://") for link in links)   # nothing online

    errors = [e for e in chromium.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    assert errors == []


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed (Debian: apt-get install -y chromium)")
def test_report_fits_a_laptop_screen_and_table1_has_one_colour_per_meaning(study, chromium, tmp_path, monkeypatch):
    from icl.report import build_report, table1

    # every tiny-study cell fails: let the study say so for mamba, to have cells that agree and differ
    monkeypatch.setitem(table1.PAPER_VERDICTS, "linear_regression",
                        {**table1.PAPER_VERDICTS["linear_regression"], "mamba": "fails"})
    built = build_report(study["runs"], study["runs_dir"], tmp_path, "Tiny study", replot=False)
    _open_report(chromium, built)
    page = chromium.evaluate("({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})")
    assert page["client"] > 1300 and page["scroll"] <= page["client"]   # no horizontal scrolling
    overflowing = chromium.evaluate(
        "Array.from(document.querySelectorAll('table')).filter(t => {"
        " const box = (t.closest('.scroll') || t.parentElement).getBoundingClientRect();"
        " return t.getBoundingClientRect().right > box.right + 0.5 || t.getBoundingClientRect().right > document.documentElement.clientWidth; })"
        ".map(t => t.className || t.querySelector('th').textContent)")
    assert overflowing == []
    # agreement is the cell's background (two colours); the verdict is its symbol, in one colour
    cells = chromium.evaluate(
        "Array.from(document.querySelectorAll('table.matrix td.cell')).map(td => ({cls: td.className,"
        " background: getComputedStyle(td).backgroundColor,"
        " verdict: td.querySelector('.verdict') && getComputedStyle(td.querySelector('.verdict')).color}))")
    verdict_colours = {c["verdict"] for c in cells if c["verdict"]}
    assert verdict_colours == {chromium.evaluate("getComputedStyle(document.body).color")}   # the text's
    backgrounds: dict[str, set] = {}
    for c in cells:
        for kind in set(c["cls"].split()) & {"agree", "disagree", "none"}:
            backgrounds.setdefault(kind, set()).add(c["background"])
    assert backgrounds["agree"] == {"rgb(212, 230, 246)"} and backgrounds["disagree"] == {"rgb(251, 213, 176)"}
    assert backgrounds.get("none", {"rgba(0, 0, 0, 0)"}) == {"rgba(0, 0, 0, 0)"}   # no study verdict: no colour

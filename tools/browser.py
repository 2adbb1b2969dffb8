"""A headless Chromium driven through the DevTools protocol, and a static server for the built book.

No browser-automation package is needed: Chromium is started with ``--remote-debugging-pipe``, and
the protocol's JSON messages (each ended by a NUL byte) travel over two pipes (fd 3 into the
browser, fd 4 out of it). ``Browser.open(url)`` loads a page and returns what a person would have
seen go wrong: console errors, uncaught exceptions, failed loads and every address requested.

Why our own and not a browser-automation package: Playwright and pyppeteer download a browser
build of their own when installed (impossible offline, and a second browser beside Debian's);
Selenium needs a chromedriver matched to the browser's version. The protocol over a pipe needs
neither, and these ~300 lines are all of it. Used by the browser tests (tests/test_browser.py) and
by the book's PDF printer (tools/book_pdf.py).

Chromium is Debian's ``chromium`` package: ``find_chromium()`` installs it with apt-get when it is
missing and we are root, and otherwise returns None with the reason (the caller skips). It installs
the Chinese edition's font (Debian's ``fonts-noto-cjk``) the same way, found through fontconfig.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from system import find_or_install, find_or_install_cjk_font  # tools/system.py

# Candidates, first found wins; $CHROMIUM overrides.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# JavaScript statements that wait, in a page after its load event, until what a reader would see is
# there: MathJax's first typeset, and every image loaded (lazy ones made eager). The 60 s races are
# hang guards, not performance limits. Used by the browser tests and by the PDF printer.
SETTLE_STEPS = r"""
  const guard = ms => new Promise(resolve => setTimeout(resolve, ms));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, guard(60000)]);
  }
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.race([Promise.all(images.map(img => img.decode().catch(() => null))), guard(60000)]);
"""
SETTLE_JS = "(async () => {" + SETTLE_STEPS + "  return true;\n})()"
# Hang guards only (a page that never loads must not block the run forever), not performance limits.
LOAD_GUARD_S = 120
PROTOCOL_GUARD_S = 120


def find_chromium() -> tuple[str | None, str]:
    """(path, "") of a Chromium, installing Debian's package as root if needed; else (None, reason)."""
    override = os.environ.get("CHROMIUM")
    if override:
        return (override, "") if shutil.which(override) else (None, f"$CHROMIUM={override} is not executable")
    path, reason = find_or_install(BROWSERS, "chromium")
    # and the Chinese edition's font (fonts-noto-cjk), which Chromium finds through fontconfig: without it
    # a zh page shows boxes; its absence is not the browser's (tests/test_browser.py checks it for zh pages)
    find_or_install_cjk_font()
    return (path, "") if path else (None, reason + " (or point $CHROMIUM at a Chrome/Chromium binary)")


# --------------------------------------------------------------------------------------------------
# The static server: the built book on 127.0.0.1, a random port, in a thread.

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
        pass

    def log_request(self, code="-", size="-"):
        self.server.served.append((self.path, int(code) if str(code).isdigit() else 0))


class StaticServer:
    """``with StaticServer(folder) as base:`` serves folder at ``base`` (http://127.0.0.1:PORT/)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.httpd = None
        self.thread = None

    def __enter__(self) -> str:
        handler = functools.partial(_QuietHandler, directory=str(self.folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.served = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# --------------------------------------------------------------------------------------------------
# The browser.

@dataclass
class PageReport:
    url: str
    loaded: bool = False
    console_errors: list[str] = field(default_factory=list)  # console.error/assert, exceptions, Log errors
    requests: list[str] = field(default_factory=list)  # every address the page asked for
    failed: list[str] = field(default_factory=list)  # loads that failed or answered >= 400

    def problems(self) -> list[str]:
        return ([f"console: {m}" for m in self.console_errors] + [f"failed load: {f}" for f in self.failed]
                + ([] if self.loaded else ["the page never fired its load event"]))


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one tab; ``open`` navigates it and reports what happened."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
                "--mute-audio", "--hide-scrollbars", f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                # any host but the local server resolves to nothing: an outside request fails at once,
                # and is still seen (and reported) by the test
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                "about:blank"]
        self.stderr = tempfile.TemporaryFile()
        # bash (dash reads no fd above 9) puts the pipes on fd 3 (the browser's input) and fd 4 (its output), then execs it
        # (moved to fds >= 10 first, so that neither is already 3 or 4)
        r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        wrapper = ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', *args]
        self.process = subprocess.Popen(wrapper, pass_fds=(r, w), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.stderr)
        os.close(r)
        os.close(w)
        self._next_id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()  # no Chromium left behind when it cannot be driven
            raise

    # -- protocol ----------------------------------------------------------------------------------
    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for waiting in list(self._pending.values()):
                    waiting.put({"error": {"message": "the browser closed its pipe"}})
                self._events.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message and message["id"] in self._pending:
                    self._pending.pop(message["id"]).put(message)
                elif "method" in message:
                    self._events.put(message)

    def call(self, method: str, session: bool = False, **params):
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            reply: queue.Queue = queue.Queue()
            self._pending[ident] = reply
            message = {"id": ident, "method": method, "params": params}
            if session:
                message["sessionId"] = self.session
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        try:
            answer = reply.get(timeout=PROTOCOL_GUARD_S)
        except queue.Empty:
            raise BrowserError(f"no answer to {method} from Chromium; its stderr:\n{self.stderr_tail()}") from None
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}; Chromium stderr:\n{self.stderr_tail()}")
        return answer.get("result", {})

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:].decode(errors="replace")

    def _drain(self) -> list[dict]:
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if event is not None:
                events.append(event)

    # -- pages -------------------------------------------------------------------------------------
    def open(self, url: str, settle_js: str | None = None, redirects: int = 0) -> PageReport:
        """Load url, wait for its load event (and for ``settle_js``, a promise, if given).

        ``redirects``: how many further page loads to wait for (a ``<meta http-equiv="Refresh">``
        page loads twice: itself, then its target).
        """
        self._drain()
        self.call("Page.navigate", session=True, url=url)
        return self._wait_for_load(url, settle_js, redirects)

    def click(self, selector: str, settle_js: str | None = None) -> PageReport:
        """Click the first element that matches ``selector`` (a link, as a reader would) and wait for the
        page it opens to load; the report is that page's (``url`` is where the browser went)."""
        self._drain()
        clicked = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                                "if (!e) return false; e.click(); return true; })()")
        if not clicked:
            raise BrowserError(f"nothing to click: no {selector} on {self.evaluate('location.href')}")
        report = self._wait_for_load(selector, settle_js, 0)
        report.url = self.evaluate("location.href")
        return report

    def _wait_for_load(self, url: str, settle_js: str | None, redirects: int) -> PageReport:
        report = PageReport(url)
        deadline = time.monotonic() + LOAD_GUARD_S
        events = []
        loads = 0
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=1)
            except queue.Empty:
                continue
            if event is None:
                raise BrowserError(f"Chromium exited while loading {url}:\n{self.stderr_tail()}")
            events.append(event)
            if event["method"] == "Page.loadEventFired" and event.get("sessionId") == self.session:
                loads += 1
                if loads > redirects:
                    report.loaded = True
                    break
        if settle_js:
            self.evaluate(settle_js)
        events += self._drain()
        self._collect(report, events)
        return report

    def _collect(self, report: PageReport, events: list[dict]):
        requested = {}
        for event in events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                report.console_errors.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text", "")
                report.console_errors.append(f"uncaught exception: {text}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.console_errors.append(f"{entry.get('source')}: {entry.get('text')} ({entry.get('url', '')})")
            elif method == "Network.requestWillBeSent":
                requested[params["requestId"]] = params["request"]["url"]
                report.requests.append(params["request"]["url"])
            elif method == "Network.responseReceived" and params["response"].get("status", 200) >= 400:
                report.failed.append(f"{params['response']['url']} answered {params['response']['status']}")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                report.failed.append(f"{requested.get(params['requestId'], '?')}: {params.get('errorText')}")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                           returnByValue=True, timeout=LOAD_GUARD_S * 1000)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"JavaScript failed: {details.get('exception', {}).get('description') or details}")
        return result.get("result", {}).get("value")

    def platform_fonts(self, selector: str) -> list[dict]:
        """The fonts Chromium drew the text of the first element matching ``selector`` with (its own
        text, not its children's: ``CSS.getPlatformFontsForNode``), each ``{familyName, glyphCount, ...}``:
        a character that no font has is drawn as a box (tofu) by a font that does not have it."""
        self.call("DOM.enable", session=True)
        self.call("CSS.enable", session=True)
        try:
            root = self.call("DOM.getDocument", session=True, depth=0)["root"]["nodeId"]
            node = self.call("DOM.querySelector", session=True, nodeId=root, selector=selector)["nodeId"]
            if not node:
                raise BrowserError(f"no {selector} on the page")
            return self.call("CSS.getPlatformFontsForNode", session=True, nodeId=node)["fonts"]
        finally:
            self.call("CSS.disable", session=True)
            self.call("DOM.disable", session=True)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", session=True, **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def print_pdf(self, **options) -> bytes:
        """The open page printed as a PDF (``Page.printToPDF``; options as the protocol names them)."""
        data = self.call("Page.printToPDF", session=True, **options)["data"]
        return base64.b64decode(data)

    def close(self):
        if self.process.poll() is None:
            try:
                self.call("Browser.close")
            except (BrowserError, OSError):
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

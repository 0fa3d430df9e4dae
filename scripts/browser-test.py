#!/usr/bin/env python3
"""Browser test of the web dashboard: headless Chromium driven over the DevTools protocol.

Starts Chromium, logs in through the `/login` form, visits each dashboard page, takes a full-page
screenshot of it and fails it on a console error, an uncaught exception, an error logged by the
browser, a same-origin request that failed or answered with a status of 400 or more, a missing
`<title>` or `<h1>`, the text "Internal Server Error", or a blank render. Then it checks that a
fresh browser context (no session cookie) asking for a page lands on the login page.

    scripts/browser-test.py --demo-json DIR/demo.json --out target/screenshots
    scripts/browser-test.py --url http://127.0.0.1:7070 --project demo --key vt_read_... \
        --pages health 'growth?since=30d&plan=pro'
    scripts/browser-test.py --self-test        # the harness against a fake dashboard it serves

A page is a name under `/p/{project}/` (`health`; `?since=7d` is added when it has no query) or a
path from the root (`/p/demo/health?since=30d`); its screenshot is `<out>/<page>.png`, with the
characters other than letters, digits, `-` and `_` made `_` (`growth_since_30d_plan_pro.png`).
A page's time is from the navigation to the load event; its size is what went over the wire for
the page and everything it loaded. One line per check; exit status 0 when all passed, 1 when one
failed, 2 when the harness itself could not run (bad arguments, Chromium would not start).
Chromium is always killed at the end. Needs Python 3.9+ and the `websocket-client` package
(scripts/browser-test.sh installs both, and Chromium).
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import http.server
import io
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zlib

DEFAULT_PAGES = ["health", "journeys", "growth", "errors", "alerts", "quality"]
DEFAULT_QUERY = "since=7d"
VIEWPORT = (1400, 900)
MAX_SHOT_HEIGHT = 16384  # Chromium's own limit for one capture
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
]


class HarnessError(Exception):
    """The harness could not do its job (as opposed to a page failing a check)."""


class CDPError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The DevTools protocol: one websocket to the browser, pages attached as flat sessions.


class CDP:
    def __init__(self, ws_url: str, timeout: float):
        import websocket  # websocket-client

        self._websocket = websocket
        # Chromium refuses websocket handshakes that carry an Origin it was not told to allow.
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.buffer: collections.deque = collections.deque(maxlen=2000)
        self.listeners: list = []

    def close(self):
        with contextlib.suppress(Exception):
            self.ws.close()

    def _recv(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.ws.settimeout(remaining)
        try:
            raw = self.ws.recv()
        except self._websocket.WebSocketTimeoutException:
            raise TimeoutError from None
        except self._websocket.WebSocketConnectionClosedException:
            raise HarnessError("the DevTools connection closed (did Chromium crash?)") from None
        return json.loads(raw)

    def _dispatch(self, message: dict, buffer: bool = True):
        method, params, session = message["method"], message.get("params", {}), message.get("sessionId")
        for listener in list(self.listeners):
            listener(method, params, session)
        if buffer:
            self.buffer.append((method, params, session))

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self.next_id += 1
        ident = self.next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                reply = self._recv(deadline)
            except TimeoutError:
                raise CDPError(f"{method}: no answer within {timeout or self.timeout:.0f} s") from None
            if reply.get("id") == ident:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}".strip())
                return reply.get("result", {})
            if "method" in reply:
                self._dispatch(reply)

    def drop_events(self, session: str):
        self.buffer = collections.deque((e for e in self.buffer if e[2] != session), maxlen=2000)

    def wait_for(self, method: str, session: str, timeout: float) -> dict:
        for event in self.buffer:
            if event[0] == method and event[2] == session:
                self.buffer.remove(event)
                return event[1]
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._recv(deadline)
            except TimeoutError:
                raise CDPError(f"no {method} within {timeout:.0f} s") from None
            if "method" not in message:
                continue
            if message["method"] == method and message.get("sessionId") == session:
                self._dispatch(message, buffer=False)
                return message.get("params", {})
            self._dispatch(message)

    def pump(self, seconds: float):
        """Handle events for a while (errors logged just after the load event)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while True:
                message = self._recv(deadline)
                if "method" in message:
                    self._dispatch(message)


def same_origin(a: str, b: str) -> bool:
    def origin(url):
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, (parts.hostname or "").lower(), port

    return origin(a) == origin(b)


def short(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def remote_text(obj: dict) -> str:
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return obj.get("description") or obj.get("unserializableValue") or obj.get("type", "?")


class Page:
    """One tab, attached as a flat session, recording what went wrong in it."""

    def __init__(self, cdp: CDP, origin: str, timeout: float, context: str | None = None):
        self.cdp, self.origin, self.timeout = cdp, origin, timeout
        params = {"url": "about:blank"}
        if context:
            params["browserContextId"] = context
        self.target = cdp.call("Target.createTarget", params)["targetId"]
        self.session = cdp.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
        self.problems: list[str] = []
        self.requests: dict[str, str] = {}
        self.transferred = 0
        self.document_status: int | None = None
        cdp.listeners.append(self._on_event)
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        width, height = VIEWPORT
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method, params=None, timeout=None):
        return self.cdp.call(method, params, self.session, timeout)

    def close(self):
        with contextlib.suppress(Exception):
            self.cdp.listeners.remove(self._on_event)
        with contextlib.suppress(Exception):
            self.cdp.call("Target.closeTarget", {"targetId": self.target})

    def _problem(self, text: str):
        text = " ".join(text.split())
        if text not in self.problems:
            self.problems.append(text)

    def _watched(self, url: str, kind: str | None) -> bool:
        """Same-origin requests, less the favicon that the browser asks for by itself (a real
        browser does not show that one failing in its console)."""
        if not same_origin(url, self.origin):
            return False
        return not (kind == "Other" and urllib.parse.urlsplit(url).path == "/favicon.ico")

    def _on_event(self, method: str, params: dict, session: str | None):
        if session != self.session:
            return
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(remote_text(arg) for arg in params.get("args", []))
            frames = (params.get("stackTrace") or {}).get("callFrames") or []
            where = f" ({short(frames[0]['url'])}:{frames[0]['lineNumber'] + 1})" if frames and frames[0].get("url") else ""
            self._problem(f"console.{params['type']}: {text}{where}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = (details.get("exception") or {}).get("description") or details.get("text", "")
            self._problem(f"uncaught exception: {text.splitlines()[0] if text else '?'}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            # Network errors are reported from the Network domain, same-origin ones only.
            if entry.get("level") == "error" and entry.get("source") != "network":
                where = f" ({short(entry['url'])})" if entry.get("url") else ""
                self._problem(f"browser log ({entry.get('source')}): {entry.get('text', '')}{where}")
        elif method == "Network.requestWillBeSent":
            self.requests[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            url = response.get("url", "")
            if params.get("type") == "Document" and params.get("requestId") == params.get("loaderId"):
                self.document_status = response.get("status")
            if response.get("status", 0) >= 400 and self._watched(url, params.get("type")):
                self._problem(f"HTTP {response['status']} {params.get('type', '')} {short(url)}")
        elif method == "Network.loadingFailed":
            url = self.requests.get(params.get("requestId"), "")
            if not params.get("canceled") and url and self._watched(url, params.get("type")):
                reason = params.get("blockedReason") or params.get("corsErrorStatus", {}).get("corsError") or ""
                self._problem(f"request failed: {params.get('errorText', '')} {reason} {short(url)}")
        elif method == "Network.loadingFinished":
            self.transferred += int(params.get("encodedDataLength") or 0)

    def _reset(self):
        self.problems, self.transferred, self.document_status = [], 0, None
        self.cdp.drop_events(self.session)

    def _after_load(self, started: float) -> float:
        elapsed = (time.monotonic() - started) * 1000
        self.cdp.pump(0.3)
        return elapsed

    def goto(self, url: str) -> float:
        """Navigates and waits for the load event; the milliseconds it took."""
        self._reset()
        started = time.monotonic()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"cannot load {url}: {result['errorText']}")
        self.cdp.wait_for("Page.loadEventFired", self.session, self.timeout)
        return self._after_load(started)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError((details.get("exception") or {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def submit_login(self, project: str, key: str) -> float:
        self._reset()
        started = time.monotonic()
        outcome = self.evaluate(f"""(() => {{
            const key = document.querySelector('[name="key"]');
            if (!key || !key.form) return 'no form with a field named key';
            const form = key.form;
            const project = form.elements.namedItem('project');
            if (!project) return 'the login form has no field named project';
            project.value = {json.dumps(project)};
            if (project.value !== {json.dumps(project)}) return 'the project field does not take the value ' + {json.dumps(project)};
            key.value = {json.dumps(key)};
            setTimeout(() => form.submit(), 0);
            return 'submitted';
        }})()""")
        if outcome != "submitted":
            raise CDPError(outcome)
        self.cdp.wait_for("Page.loadEventFired", self.session, self.timeout)
        return self._after_load(started)

    def info(self) -> dict:
        return self.evaluate("""(async () => {
            if (document.fonts) await document.fonts.ready;
            const h1 = document.querySelector('h1');
            const text = document.body ? document.body.innerText : '';
            return {
                url: location.href,
                title: document.title.trim(),
                h1: h1 ? h1.innerText.trim() : null,
                internalError: text.includes('Internal Server Error'),
                loginForm: !!document.querySelector('form [name="key"]'),
                htmlBytes: document.documentElement.outerHTML.length,
            };
        })()""")

    def screenshot(self) -> tuple[bytes, bytes]:
        """A full-page PNG, and a tenth-size PNG of the viewport for the blank check."""
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width = max(VIEWPORT[0], min(math.ceil(size["width"]), 4 * VIEWPORT[0]))
        height = max(1, min(math.ceil(size["height"]), MAX_SHOT_HEIGHT))
        full = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        }, timeout=max(self.timeout, 60))["data"]
        thumb = self.call("Page.captureScreenshot", {
            "format": "png",
            "clip": {"x": 0, "y": 0, "width": VIEWPORT[0], "height": min(VIEWPORT[1], height), "scale": 0.1},
        })["data"]
        return base64.b64decode(full), base64.b64decode(thumb)

    def session_cookie(self) -> dict | None:
        cookies = self.call("Network.getCookies", {"urls": [self.origin + "/"]}).get("cookies", [])
        return next((c for c in cookies if c.get("name") == "vt_session"), None)


def png_colors(data: bytes, limit: int = 2) -> int:
    """How many distinct colours an 8-bit RGB(A) PNG has, counting up to `limit`."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {color}, interlace {interlace})")
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    previous, seen = bytearray(stride), set()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                upper_left = previous[i - bpp] if i >= bpp else 0
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upper_left)) & 255
        for i in range(0, stride, bpp):
            seen.add(bytes(line[i:i + 3]))
        if len(seen) >= limit:
            return len(seen)
        previous = line
    return len(seen)


# --------------------------------------------------------------------------------------------
# Chromium


class Chromium:
    def __init__(self, binary: str, timeout: float):
        self.profile = tempfile.mkdtemp(prefix="vt-browser-test-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        self.log = open(self.log_path, "wb")
        self.proc = None
        self.cdp = None
        try:
            self.proc = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole at the end
            )
        except OSError as error:
            self.close()
            raise HarnessError(f"cannot start {binary}: {error}") from None
        try:
            self._connect(timeout)
        except BaseException:  # a failure or a signal while starting: no Chromium left behind
            self.close()
            raise

    def _connect(self, timeout: float):
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with open(port_file) as f:
                    lines = f.read().split("\n")
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                break
            if self.proc.poll() is not None:
                raise HarnessError(f"Chromium exited with status {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        else:
            raise HarnessError(f"Chromium wrote no DevToolsActivePort within 30 s:\n{self.log_tail()}")
        port = int(lines[0])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=10) as response:
                version = json.load(response)
            ws_url = version["webSocketDebuggerUrl"]
            self.version = version.get("Browser", "?")
        except (OSError, ValueError, KeyError):
            ws_url, self.version = f"ws://127.0.0.1:{port}{lines[1].strip()}", "?"
        self.cdp = CDP(ws_url, timeout)

    def log_tail(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-15:])

    def close(self):
        # Not interrupted by a second signal half-way: that would leave Chromium running.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.cdp:
                with contextlib.suppress(Exception):
                    self.cdp.call("Browser.close", timeout=5)
                self.cdp.close()
                self.cdp = None
            if self.proc:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
                # The whole process group: the browser and its zygote, renderer, GPU and utility
                # processes, whether or not the browser itself is gone already.
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    deadline = time.monotonic() + 3
                    while time.monotonic() < deadline:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            self.proc.wait(timeout=0.1)
                        try:
                            os.killpg(self.proc.pid, 0)
                        except ProcessLookupError:
                            break
                    else:
                        continue
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
                self.proc = None
            if not self.log.closed:
                self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# The checks


def page_url(base: str, project: str, page: str) -> str:
    if page.startswith("/"):
        return base + page
    if "?" not in page:
        page = f"{page}?{DEFAULT_QUERY}"
    return f"{base}/p/{urllib.parse.quote(project)}/{page}"


def shot_name(page: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", page.strip("/")).strip("_")
    return (name or "root") + ".png"


def kib(n: int) -> str:
    return f"{max(1, round(n / 1024))} KB" if n else "0 KB"


def report(ok: bool, label: str, detail: str, problems: list[str]) -> bool:
    if ok:
        print(f"ok  {label}  {detail}", flush=True)
    else:
        print(f"FAIL {label}: {problems[0]}", flush=True)
        for problem in problems[1:]:
            print(f"     {problem}", flush=True)
    return ok


def is_login(info: dict) -> bool:
    return urllib.parse.urlsplit(info["url"]).path.rstrip("/") == "/login" or info["loginForm"]


def check_page(page: Page, base: str, project: str, name: str, out: str | None, seen: set) -> bool:
    url = page_url(base, project, name)
    try:
        ms = page.goto(url)
        info = page.info()
        full, thumb = page.screenshot()
    except CDPError as error:
        return report(False, name, "", [str(error)] + page.problems)
    problems = list(page.problems)
    if is_login(info):
        problems.insert(0, f"landed on the login page ({short(info['url'])}): the session was not kept")
    if info["internalError"]:
        problems.append('the page says "Internal Server Error"')
    if not info["title"]:
        problems.append("no <title>")
    if info["h1"] is None:
        problems.append("no <h1>")
    try:
        if png_colors(thumb) < 2:
            problems.append("the screenshot is blank (one colour)")
    except (ValueError, zlib.error) as error:
        problems.append(f"cannot read the screenshot: {error}")
    if out:
        file = shot_name(name)
        if file in seen:
            file = file[:-4] + f"_{len(seen)}.png"
        seen.add(file)
        with open(os.path.join(out, file), "wb") as f:
            f.write(full)
    size = page.transferred or info["htmlBytes"]
    return report(not problems, name, f"{ms:.0f} ms  {kib(size)}  \"{info['title']}\"", problems)


def check_login(page: Page, base: str, project: str, key: str) -> bool:
    try:
        page.goto(base + "/login")
        problems = list(page.problems)
        ms = page.submit_login(project, key)
        info = page.info()
        cookie = page.session_cookie()
        js_cookies = page.evaluate("document.cookie")
    except CDPError as error:
        return report(False, "login", "", [str(error)])
    problems += page.problems
    if is_login(info):
        problems.insert(0, f"still on the login page after submitting it ({short(info['url'])})")
    if cookie is None:
        problems.append("no vt_session cookie was set")
    elif not cookie.get("httpOnly") or "vt_session" in (js_cookies or ""):
        problems.append("the vt_session cookie is not HttpOnly")
    return report(not problems, "login", f"{ms:.0f} ms  -> {short(info['url'])}", problems)


def check_no_session(cdp: CDP, base: str, project: str, timeout: float) -> bool:
    label = "no-session"
    try:
        context = cdp.call("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
    except CDPError as error:
        return report(False, label, "", [str(error)])
    page = None
    try:
        page = Page(cdp, base, timeout, context)
        path = f"/p/{urllib.parse.quote(project)}/health?{DEFAULT_QUERY}"
        page.goto(base + path)
        info = page.info()
        problems = []
        if not is_login(info):
            problems.append(f"{path} without a session showed {short(info['url'])} "
                            f"(title {info['title']!r}), not the login page")
        if page.document_status is not None and page.document_status >= 500:
            problems.append(f"HTTP {page.document_status}")
        return report(not problems, label, f"{path} -> {short(info['url'])}", problems)
    except CDPError as error:
        return report(False, label, "", [str(error)])
    finally:
        if page:
            page.close()
        with contextlib.suppress(Exception):
            cdp.call("Target.disposeBrowserContext", {"browserContextId": context})


def run(args) -> int:
    base = args.url.rstrip("/")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    browser = Chromium(args.chromium, args.timeout)
    try:
        print(f"browser test of {base} (project {args.project}) with {browser.version}", flush=True)
        page = Page(browser.cdp, base, args.timeout)
        results = [check_login(page, base, args.project, args.key)]
        if results[0]:
            seen: set = set()
            for name in args.pages:
                results.append(check_page(page, base, args.project, name, args.out, seen))
        else:
            print(f"     skipped {len(args.pages)} pages: not logged in", flush=True)
        page.close()
        results.append(check_no_session(browser.cdp, base, args.project, args.timeout))
        failed = results.count(False)
        where = f"; screenshots in {args.out}" if args.out and results[0] else ""
        print(f"{len(results) - failed} passed, {failed} failed{where}", flush=True)
        return 1 if failed else 0
    finally:
        browser.close()


# --------------------------------------------------------------------------------------------
# Self-test: the harness against a fake dashboard served from this process.

FAKE_STYLE = "body{font-family:sans-serif;margin:0}header{background:#234;color:#fff;padding:16px}" \
             "main{padding:24px}.card{display:inline-block;margin:8px;padding:24px;background:#e8eef6}"


def fake_page(title: str, body: str, head: str = "") -> bytes:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
            f"<style>{FAKE_STYLE}</style>{head}</head><body>{body}</body></html>").encode()


class FakeDashboard(http.server.BaseHTTPRequestHandler):
    KEY = "vt_read_selftest"

    def log_message(self, *_):
        pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def login_form(self, status=200, message=""):
        self.send(status, fake_page("Sign in · valuetrace", f"""<main><h1>Sign in</h1>{message}
            <form method=post action=/login><input name=project><input name=key type=password>
            <button>Sign in</button></form></main>"""))

    def do_POST(self):
        fields = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        if self.path == "/login" and fields.get("key") == [self.KEY] and fields.get("project") == ["demo"]:
            self.send(303, headers={"Location": "/", "Set-Cookie": "vt_session=s1; Path=/; HttpOnly; SameSite=Lax"})
        else:
            self.login_form(401, "<p>Wrong key</p>")

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        signed_in = "vt_session=s1" in self.headers.get("Cookie", "")
        if path == "/login":
            return self.login_form()
        if path == "/favicon.ico":
            return self.send(404)
        if not signed_in:
            return self.send(303, headers={"Location": "/login"})
        if path == "/":
            return self.send(303, headers={"Location": "/p/demo/health"})
        name = path.removeprefix("/p/demo/")
        cards = "".join(f"<div class=card>{name} {i}<br><b>{i * 37 % 100}%</b></div>" for i in range(1, 9))
        page = f"<header>valuetrace · demo</header><main><h1>{name.title()}</h1>{cards}</main>"
        if name in DEFAULT_PAGES:
            return self.send(200, fake_page(f"{name.title()} · valuetrace", page))
        if name == "boom":
            return self.send(200, fake_page("Boom", page + "<script>console.error('boom')</script>"))
        if name == "throws":
            return self.send(200, fake_page("Throws", page + "<script>null.x</script>"))
        if name == "missing-asset":
            return self.send(200, fake_page("Missing", page + "<img src=/static/missing.png>"))
        if name == "crash":
            return self.send(500, b"Internal Server Error")
        if name == "blank":
            return self.send(200, fake_page("Blank", "<h1 style='visibility:hidden'>Blank</h1>"))
        if name == "untitled":
            return self.send(200, fake_page("", "<main>no heading here</main>"))
        return self.send(404, fake_page("Not found", "<h1>Not found</h1>"))


def self_test(args) -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeDashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    out = args.out or tempfile.mkdtemp(prefix="vt-browser-selftest-")
    bad = ["boom", "throws", "missing-asset", "crash", "blank", "untitled"]
    cases = [
        # (name, key, pages, expected exit status, text expected in the output)
        ("six-pages", FakeDashboard.KEY, DEFAULT_PAGES, 0,
         ["ok  login", *(f"ok  {p}  " for p in DEFAULT_PAGES), "ok  no-session  /p/demo/health?since=7d -> /login",
          "8 passed, 0 failed"]),
        ("broken-pages", FakeDashboard.KEY, ["health", *bad], 1,
         ["ok  health  ", "FAIL boom: console.error: boom",
          "FAIL throws: uncaught exception: TypeError: Cannot read properties of null",
          "FAIL missing-asset: HTTP 404 Image /static/missing.png",
          "FAIL crash: HTTP 500 Document /p/demo/crash?since=7d", 'the page says "Internal Server Error"',
          "FAIL blank: the screenshot is blank", "FAIL untitled: no <title>", "no <h1>", "3 passed, 6 failed"]),
        ("wrong-key", "vt_read_wrong", ["health"], 1,
         ["FAIL login: still on the login page", "skipped 1 pages", "1 passed, 1 failed"]),
    ]
    passed = failed = 0
    try:
        for what, key, pages, want_status, want_lines in cases:
            print(f"== self-test: {what}", flush=True)
            case_args = argparse.Namespace(**{**vars(args), "url": url, "project": "demo", "key": key,
                                              "pages": pages, "out": os.path.join(out, what)})
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                status = run(case_args)
            output = buffer.getvalue()
            print(output, end="", flush=True)
            missing = [line for line in want_lines if line not in output]
            wrong = [f"exit status {status}, expected {want_status}"] if status != want_status else []
            for problem in wrong + [f"expected in the output: {line!r}" for line in missing]:
                print(f"   self-test problem: {problem}", flush=True)
            if wrong or missing:
                failed += 1
            else:
                passed += 1
        shots = sorted(os.listdir(os.path.join(out, "six-pages")))
        if shots != sorted(f"{p}.png" for p in DEFAULT_PAGES):
            print(f"   self-test problem: screenshots {shots}", flush=True)
            failed += 1
        else:
            passed += 1
    finally:
        server.shutdown()
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    print(f"self-test: {passed} passed, {failed} failed" + (f"; screenshots in {out}" if args.out else ""))
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--url", help="the server, e.g. http://127.0.0.1:7070")
    parser.add_argument("--project", help="project to sign in to (default: demo)")
    parser.add_argument("--key", help="a read key of the project")
    parser.add_argument("--demo-json", metavar="PATH", help="take url, project and read_key from a demo.json")
    parser.add_argument("--out", metavar="DIR", default=None, help="where the screenshots go (DIR/<page>.png)")
    parser.add_argument("--pages", nargs="+", metavar="PAGE", default=None,
                        help=f"pages to visit, space- or comma-separated (default: {' '.join(DEFAULT_PAGES)})")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                        help="the browser (default: $CHROMIUM or /usr/bin/chromium)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for one page (default 30)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the harness against a fake dashboard it serves itself")
    args = parser.parse_args(argv)

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)  # unwinds through the finally that kills Chromium

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        import websocket  # noqa: F401
    except ImportError:
        print("browser-test: the websocket-client package is missing (scripts/browser-test.sh installs it)",
              file=sys.stderr)
        return 2
    args.pages = [p for item in (args.pages or DEFAULT_PAGES) for p in item.split(",") if p.strip()]
    try:
        if args.self_test:
            return self_test(args)
        if args.demo_json:
            with open(args.demo_json) as f:
                demo = json.load(f)
            args.url = args.url or demo["url"]
            args.project = args.project or demo["project"]
            args.key = args.key or demo["read_key"]
        args.project = args.project or "demo"
        if not args.url or not args.key:
            parser.error("give --url and --key, or --demo-json")
        args.out = args.out or "target/screenshots"
        return run(args)
    except HarnessError as error:
        print(f"browser-test: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

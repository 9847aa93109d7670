#!/usr/bin/env python3
"""Drives the dashboard of a running `chorus serve` in headless Chromium over the DevTools
protocol, as a user would: types a wrong token (refused), then the right one, watches the numbers
move while WebSocket clients broadcast, checks the phone layout, and saves screenshots.

    dashboard_check.py --url http://127.0.0.1:PORT --token T --screenshot out.png [--phone-screenshot phone.png]

Prints "OK dashboard" and exits 0 on success; prints the failure and exits 1 otherwise.
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    import websocket  # websocket-client
except ImportError as e:
    print(f"MISSING websocket-client: {e}", file=sys.stderr)
    sys.exit(3)

ARGS = None


def fail(msg):
    print(f"FAIL dashboard: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools protocol."""

    def __init__(self):
        binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        check(binary, "chromium not found: run scripts/setup.sh (it installs Debian's chromium)")
        self.profile = tempfile.mkdtemp(prefix="chorus-dashboard-")
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,1000",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.time() + 60
        while time.time() < deadline and port is None:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                fail(f"chromium exited with {self.process.returncode}")
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        check(port, "chromium did not report its DevTools port")
        # Keep draining stderr so chromium never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        check(pages, "no page target")
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == my_id:
                if "error" in message:
                    fail(f"{method}: {message['error']}")
                return message.get("result", {})
            if message.get("method") == "Runtime.exceptionThrown":
                fail(f"the page threw: {json.dumps(message['params'])[:500]}")

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            fail(f"evaluating {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, what, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.2)
        fail(f"timed out waiting for {what}; page says: {self.eval('document.body.innerText')[:1500]!r}")

    def type_into(self, element_id, text):
        self.eval(f"document.getElementById({json.dumps(element_id)}).focus()")
        for ch in text:
            self.call("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch, unmodifiedText=ch)
            self.call("Input.dispatchKeyEvent", type="keyUp", key=ch)

    def click(self, element_id):
        box = self.eval(f"(() => {{ const r = document.getElementById({json.dumps(element_id)}).getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path, width, height, mobile):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        time.sleep(1.5)  # one more poll at the new size
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        try:
            self.ws.close()
        finally:
            self.process.kill()
            self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


def broadcaster(url, stop, counts):
    """Three members of the broadcast room; one of them sends a message every 20 ms."""
    ws_url = url.replace("http://", "ws://") + "/"
    sockets = [websocket.create_connection(ws_url, timeout=10) for _ in range(3)]
    for s in sockets[1:]:
        s.settimeout(0.01)
    n = 0
    while not stop.is_set():
        sockets[0].send(f"tick {n}")
        n += 1
        counts["sent"] = n
        time.sleep(0.02)
    for s in sockets:
        s.close()


def text_of(browser, element_id):
    return browser.eval(f"document.getElementById({json.dumps(element_id)}).textContent")


def number(s):
    m = re.match(r"^([\d.]+)([kMG]?)$", s.strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--screenshot", required=True)
    p.add_argument("--phone-screenshot")
    p.add_argument("--settle", type=float, default=0, help="seconds of traffic before the screenshots (for docs)")
    ARGS = p.parse_args()

    browser = Browser()
    stop = threading.Event()
    counts = {}
    try:
        browser.call("Page.navigate", url=ARGS.url + "/dashboard")
        browser.wait("the login form", "document.readyState === 'complete' && !!document.getElementById('token')")
        check(ARGS.token not in browser.eval("location.search + location.hash"), "token in the URL")

        # A wrong token is refused on the form.
        browser.type_into("token", "not-the-token")
        browser.click("signin")
        browser.wait("the refusal", "document.getElementById('login-error').textContent === 'token refused'")
        check(browser.eval("getComputedStyle(document.getElementById('app')).display") == "none", "dashboard shown without a token")

        # The right one, typed like a user.
        browser.eval("document.getElementById('token').value = ''")
        browser.type_into("token", ARGS.token)
        browser.click("signin")
        browser.wait("the dashboard", "getComputedStyle(document.getElementById('app')).display === 'block'")
        check(ARGS.token not in browser.eval("location.search + location.hash"), "token in the URL")
        check(browser.eval("document.getElementById('token').value") == "", "the token stayed in the form field")

        thread = threading.Thread(target=broadcaster, args=(ARGS.url, stop, counts), daemon=True)
        thread.start()
        browser.wait("the three clients among the connections", "Number(document.getElementById('connections').textContent) >= 3")
        browser.wait("deliveries per second", "parseFloat(document.getElementById('deliveries-rate').textContent) > 0")
        first = number(text_of(browser, "deliveries-total").split(" ")[0])
        time.sleep(2.5)
        second = number(text_of(browser, "deliveries-total").split(" ")[0])
        check(first is not None and second is not None and second > first, f"deliveries did not move: {first} -> {second}")
        browser.wait("several samples", "Number(document.body.dataset.samples) >= 5")
        browser.wait("a drawn connections chart", "document.querySelectorAll('#chart-connections polyline').length === 1")
        browser.wait("a drawn deliveries chart", "document.querySelectorAll('#chart-deliveries polyline').length === 1")
        browser.wait("the broadcast room", "document.getElementById('rooms').textContent.includes('all')")
        check(browser.eval("document.querySelectorAll('#loops .bar').length") >= 1, "no event loop bars")
        check(text_of(browser, "adapter") == "memory", "adapter")
        check(browser.eval("document.body.dataset.error") != "1", f"the page shows an error: {text_of(browser, 'error')}")
        check(browser.eval("getComputedStyle(document.getElementById('error')).display") == "none", "error banner shown")

        time.sleep(ARGS.settle)
        png = browser.screenshot(ARGS.screenshot, 1280, 900, False)
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, f"screenshot looks empty ({len(png)} bytes)")
        if ARGS.phone_screenshot:
            phone = browser.screenshot(ARGS.phone_screenshot, 390, 844, True)
            check(len(phone) > 10_000, f"phone screenshot looks empty ({len(phone)} bytes)")
            overflow = browser.eval("document.documentElement.scrollWidth - window.innerWidth")
            check(overflow <= 0, f"the page is {overflow}px wider than a phone screen")
        check(browser.eval("document.body.dataset.error") != "1", f"the page shows an error: {text_of(browser, 'error')}")
    finally:
        stop.set()
        browser.close()
    print(json.dumps({"ok": True, "sent": counts.get("sent", 0)}))
    print("OK dashboard")


if __name__ == "__main__":
    main()

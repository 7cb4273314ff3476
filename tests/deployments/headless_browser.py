"""A real headless Chromium (Debian's package), driven over the DevTools protocol.

The Prefect UI is a single-page app that fetches everything after load, so a page is "rendered"
only once the text we look for is on it: :meth:`Browser.text_when` polls the page's visible
text until every expected string is there (or times out with what it saw). No driver beyond
Chromium itself: the protocol is JSON over the websocket the browser opens.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_or_skip() -> str:
    """The Chromium binary, or skip: `.ci/run` installs Debian's; a laptop may have none."""
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    pytest.skip("no Chromium found (Debian: apt-get install chromium; .ci/run installs it)")


class Browser:
    """One page of a headless Chromium."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body.innerText",
                           returnByValue=True)
        return str(result.get("result", {}).get("value", ""))

    def click(self, label: str) -> None:
        """Click the first button, link or tab (Prefect's li.p-tab) whose text is ``label``."""
        found = self.call("Runtime.evaluate", returnByValue=True, expression=(
            "(() => { const e = [...document.querySelectorAll('button, a, [role=tab], li.p-tab')]"
            f".find(e => e.innerText.trim() === {json.dumps(label)});"
            " if (e) { e.click(); return true; } return false; })()"))
        if not found.get("result", {}).get("value"):
            pytest.fail(f"nothing to click labelled {label!r} on the page")

    def text_when(self, *expected: str, timeout_s: float = 60) -> str:
        """The page's visible text once it shows every ``expected`` string."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            if all(e in text for e in expected):
                return text
            if time.monotonic() > deadline:
                missing = [e for e in expected if e not in text]
                pytest.fail(f"page never showed {missing} in {timeout_s} s; it shows:\n"
                            f"{text[:3000]}")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def headless_chromium(profile: Path, width: int = 1600, height: int = 1000) -> Iterator[Browser]:
    """A headless Chromium with its own profile; stopped when the block ends."""
    from websockets.sync.client import connect

    binary = chromium_or_skip()
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--remote-debugging-port=0",
         f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit {process.poll()})")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        import httpx

        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
                 if t["type"] == "page"]
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as socket:
            browser = Browser(socket)
            browser.call("Page.enable")
            yield browser
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

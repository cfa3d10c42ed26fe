"""Open a local page in headless Chromium (Debian's) over the DevTools protocol, as a person would.

Returns what a test needs to judge the page: console messages and uncaught exceptions, every network
request other than the page itself (to prove it loads nothing), the value of a JS expression once
the page has loaded (a promise is awaited), and a PNG screenshot. Chromium is started fresh in its
own process group for each call and killed in `finally`; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)


def chromium_or_skip() -> str:
    """The chromium binary; skips the calling test (with the reason) only when there is none."""
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    return found


@dataclass
class Page:
    console: list[str] = field(default_factory=list)  # "level: text", from console.* and the browser log
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs other than the page itself
    value: Any = None
    screenshot: bytes = b""


class _Cdp:
    """One browser websocket; commands go to a page session, its events are kept in `page`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, page: Page, url: str) -> None:
        self.ws, self.page, self.url = ws, page, url
        self.session: str | None = None
        self.loaded = asyncio.Event()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[n] = reply
        message: dict[str, Any] = {"id": n, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        return await reply

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.json()
            if "id" in data and data["id"] in self._waiting:
                reply = self._waiting.pop(data["id"])
                if "error" in data:
                    reply.set_exception(RuntimeError(f"CDP error: {data['error']}"))
                else:
                    reply.set_result(data.get("result", {}))
            else:
                self._event(data.get("method", ""), data.get("params", {}))
        for reply in self._waiting.values():
            reply.set_exception(RuntimeError("the browser closed the connection"))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self.loaded.set()
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.page.console.append(f"{params.get('type')}: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.page.console.append(f"{entry.get('level')}: {entry.get('text')}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.page.exceptions.append(str(details.get("exception", {}).get("description") or details))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != self.url:
                self.page.requests.append(url)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _port(user_data: Path, proc: subprocess.Popen[bytes], limit: float) -> int:
    """The port Chromium chose, from <user-data-dir>/DevToolsActivePort."""
    marker = user_data / "DevToolsActivePort"
    async with asyncio.timeout(limit):
        while not marker.is_file() or not marker.read_text().strip():
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode} before listening")
            await asyncio.sleep(0.05)
    return int(marker.read_text().split()[0])


async def _visit(
    url: str, expression: str, user_data: Path, proc: subprocess.Popen[bytes], limit: float, width: int
) -> Page:
    page = Page()
    port = await _port(user_data, proc, limit)
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(limit):
            async with http.get(f"http://127.0.0.1:{port}/json/version") as reply:
                browser_ws = (await reply.json())["webSocketDebuggerUrl"]
        async with http.ws_connect(browser_ws, max_msg_size=0) as ws:
            cdp = _Cdp(ws, page, url)
            try:
                async with asyncio.timeout(limit):
                    target = await cdp.send("Target.createTarget", url="about:blank")
                    attach = {"targetId": target["targetId"], "flatten": True}
                    cdp.session = (await cdp.send("Target.attachToTarget", **attach))["sessionId"]
                    for domain in ("Runtime", "Log", "Network", "Page"):
                        await cdp.send(f"{domain}.enable")
                    size = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
                    await cdp.send("Emulation.setDeviceMetricsOverride", **size)
                    cdp.loaded.clear()  # only the page's own load counts
                    await cdp.send("Page.navigate", url=url)
                    await cdp.loaded.wait()
                    page.value = await _evaluate(cdp, expression)
                    shot = await cdp.send("Page.captureScreenshot", format="png")
                    page.screenshot = base64.b64decode(shot["data"])
            finally:
                await cdp.close()
    return page


async def _evaluate(cdp: _Cdp, expression: str) -> Any:
    result = await cdp.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in result:
        raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
    return result["result"].get("value")


def open_page(
    path: Path, expression: str = "document.title", *, timeout: float = 20.0, width: int = 1280
) -> Page:
    """Load `path` in a fresh headless Chromium (a window `width` CSS pixels wide) and return what
    it did (see Page)."""
    return open_url(path.resolve().as_uri(), expression, timeout=timeout, width=width)


def open_url(
    url: str, expression: str = "document.title", *, timeout: float = 20.0, width: int = 1280
) -> Page:
    """Load `url` (a file, or a server on loopback) in a fresh headless Chromium (see Page)."""
    binary = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="zhian-chromium-") as tmp:
        user_data = Path(tmp) / "profile"
        with (Path(tmp) / "chromium.log").open("wb") as log:
            proc = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={user_data}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            try:
                return asyncio.run(_visit(url, expression, user_data, proc, timeout, width))
            finally:
                _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End chromium and its helpers: the process group it leads (started above), TERM, then KILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)

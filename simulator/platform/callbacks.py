"""The platform's pushes to subscribers: each new alert POSTed to every callback URL that wants it.

A subscriber is a URL and a test of which alerts it wants; the body is the caller's (the zhian
API's alert list or artemis' OnEventNotify). Deliveries run one at a time in the order raised,
bounded by a timeout, and a failed one is logged, never retried (as the platforms document it:
the receiver must answer at once or lose the event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp

from simulator.platform.state import Alert, PlatformState

TIMEOUT_S = 5.0
Wants = Callable[[Alert], bool]
Render = Callable[[Alert], dict[str, Any]]


class Callbacks:
    def __init__(self, state: PlatformState, render: Render) -> None:
        self.state = state
        self.render = render
        self.subscribers: dict[str, Wants] = {}
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        state.listeners.append(self._on_alert)

    def _on_alert(self, alert: Alert) -> None:
        if self.subscribers:
            self._queue.put_nowait(alert)

    def subscribe(self, url: str, wants: Wants) -> None:
        self.subscribers[url] = wants
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver())
        self.state.record("subscribed", url=url)

    def unsubscribe(self, url: str | None = None) -> None:
        for known in [u for u in self.subscribers if url is None or u == url]:
            del self.subscribers[known]
            self.state.record("unsubscribed", url=known)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _deliver(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
            while True:
                alert = await self._queue.get()
                for url, wants in list(self.subscribers.items()):
                    if not wants(alert):
                        continue
                    try:
                        async with session.post(url, json=self.render(alert)) as reply:
                            self.state.record("callback", url=url, alert=alert.id, status=reply.status)
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        self.state.record("callback_failed", url=url, alert=alert.id, error=repr(exc))

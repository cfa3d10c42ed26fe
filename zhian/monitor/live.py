"""The live side of the monitor: the broker subscriptions, the heartbeat tracker's deadlines and the
HTTP endpoint, in a thread with its own event loop.

The scheduled checks share the main loop with ONVIF clients that parse WSDL for seconds at a time;
a heartbeat must not wait for them (a device is flagged within 1 s past its threshold, and a
subscription reads one MQTT packet per loop turn). So the observers never share a loop with a
check: what they learn is handed to the main loop (call_soon_threadsafe), which alone writes the
ledger, while /metrics reads the tracker here, at once.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from collectors.errors import CollectorError
from collectors.exchange import Exchange
from collectors.mqtt.client import MqttClient
from probes.targets import Target
from zhian.monitor.metrics import web_app

if TYPE_CHECKING:
    from zhian.monitor.service import Monitor

EXPIRE_S = 0.25  # the longest the tracker waits between two looks at its deadlines
START_TIMEOUT_S = 30.0


class LiveSide:
    def __init__(self, monitor: Monitor, listen: tuple[str, int] | None) -> None:
        self.m, self.listen = monitor, listen
        self.main: asyncio.AbstractEventLoop | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: str | None = None  # why the live side could not start
        self.thread = threading.Thread(target=self._run, name="zhian-live", daemon=True)
        self.brokers: dict[str, str] = {}  # broker -> subscribed | gap

    # -- life -------------------------------------------------------------------------------------
    def start(self, on_failure: Callable[[str], None]) -> None:
        """Start the thread; returns once it listens (or raises OSError naming what failed)."""
        self.main = asyncio.get_running_loop()
        self._on_failure = on_failure
        self.thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise OSError("the live side did not start in time")
        if self.error is not None:
            raise OSError(self.error)

    def stop(self, within_s: float) -> None:
        """Ask the live side to stop and wait at most within_s (a daemon thread: it dies with the
        process if an unsubscribe hangs)."""
        loop, stop = self.loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self.thread.join(within_s)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the main loop (the ledger's writer)."""
        assert self.main is not None
        if not self.main.is_closed():
            self.main.call_soon_threadsafe(fn, *args)

    def post_later(self, delay_s: float, fn: Callable[[], Any]) -> None:
        """Run fn() on the main loop delay_s from now."""
        assert self.main is not None
        if not self.main.is_closed():
            self.main.call_soon_threadsafe(self.main.call_later, delay_s, fn)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner: web.AppRunner | None = None
        try:
            if self.listen is not None:
                runner = web.AppRunner(web_app(self.m.metrics, self.m.health), access_log=None)
                await runner.setup()
                await web.TCPSite(runner, self.listen[0], self.listen[1]).start()
        except OSError as exc:
            self.error = f"cannot listen on {self.listen[0]}:{self.listen[1]}: {exc.strerror or exc}"  # type: ignore[index]
            self._ready.set()
            if runner is not None:
                await runner.cleanup()
            return
        tasks = [asyncio.create_task(self._expire(), name="expire")]
        tasks += [
            asyncio.create_task(self.follow(b, f), name=f"follow {b.id}") for b, f in self.m.broker_filters()
        ]
        for task in tasks:
            task.add_done_callback(self._ended)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        why = f"{task.get_name()}: {type(error).__name__}: {error}" if error else f"{task.get_name()} ended"
        self.post(self._on_failure, why)

    async def _expire(self) -> None:
        while True:
            wait = min(self.m.tracker.expire(), EXPIRE_S)
            await asyncio.sleep(wait)

    # -- brokers ----------------------------------------------------------------------------------
    def message(self, topic: str, payload: bytes, retain: bool, at: datetime) -> None:
        if topic in self.m.real_alarms.relay_topics:  # a lighting relay's state, for the passive linkage
            self.post(self.m.real_alarms.relay_message, topic, payload, retain, at)
        self.m.tracker.message(topic, payload, retain, at)

    def record(self, exchange: Exchange) -> None:
        self.post(self.m.exchanges, exchange)

    async def follow(self, broker: Target, filters: list[str]) -> None:
        """One subscription for the life of the service; lost, it is retried with backoff (doubling
        from reconnect_min_s to reconnect_max_s, with jitter) and the time without it is a gap."""
        settings = self.m.config.monitor
        delay = settings.reconnect_min_s
        conn = replace(self.m.ctx.connection(broker), sink=self.record, gate=None)
        while True:

            def subscribed(exchange_id: str) -> None:
                nonlocal delay
                delay = settings.reconnect_min_s
                self.brokers[broker.id] = "subscribed"
                self.m.tracker.subscribed(broker.id, exchange_id)
                self.post(self.m.close_gap, broker.id, datetime.now(UTC), exchange_id)

            try:
                read_all = functools.partial(self.m.tracker.caught_up, broker.id)
                await MqttClient(conn).follow(filters, self.message, subscribed, on_caught_up=read_all)
                error, evidence = "the subscription ended", None
            except CollectorError as exc:
                error, evidence = str(exc), exc.exchange_id
            self.brokers[broker.id] = "gap"
            self.m.tracker.lost(broker.id)
            self.post(self.m.open_gap, broker.id, datetime.now(UTC), error, evidence)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, settings.reconnect_max_s)

"""How the platform notices a device is gone: failed health polls, and MQTT heartbeat silence.

Every platform.poll_interval_s each camera, NVR and door in the directory is polled: a GET of the
device service (ONVIF) or /ISAPI/System/deviceInfo (ISAPI), any HTTP answer counting as alive (a
401 too). Fire panels are not polled: they report to the platform over their own transmission line
(the bus here), and their Modbus port, which often takes a single client, stays free for
maintenance and inspection. Two failures in a row mark the device
offline. MQTT devices (gateways and their children) are offline once no heartbeat came for
platform.offline_after_s, counted from the platform's start for devices never heard.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import aiohttp

from simulator.platform.state import PlatformState
from simulator.runtime import Endpoint

POLLED_KINDS = {"camera", "nvr", "door"}
FAILURES_FOR_OFFLINE = 2


POLL_CONCURRENCY = 50


class HealthPoller:
    def __init__(self, state: PlatformState) -> None:
        self.state = state
        params = state.ctx.spec.platform
        self.interval_s = params.poll_interval_s if params else 30.0
        # a loaded site answers slower: a sixth of the interval, never under 2 s (a short test interval
        # must not count a busy device's answer as a failed poll, two of which mark it offline)
        self.timeout_s = max(2.0, self.interval_s / 6)
        # Each poll's timeout must start when it does, not while it queues for a connection.
        self._slots = asyncio.Semaphore(POLL_CONCURRENCY)

    def targets(self) -> list[Endpoint]:
        return [e for e in self.state.ctx.directory.values() if e.kind in POLLED_KINDS]

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        # Connections are kept from one round to the next, as a platform's are: a large site's
        # round is then one request per device, not a TLS handshake each (which, for 1,300 devices
        # in the simulator's one process, made most polls of a round time out). The slots bound
        # the round, not the pool.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=self.interval_s + 30)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while True:
                await asyncio.gather(*(self._poll(session, e) for e in self.targets()))
                await asyncio.sleep(self.interval_s)

    async def _poll(self, session: aiohttp.ClientSession, endpoint: Endpoint) -> None:
        async with self._slots:
            alive = await self._probe(session, endpoint)
        status = self.state.devices.get(endpoint.id)
        if status is None:
            return
        if alive:
            self.state.seen(endpoint.id, "poll")
            return
        status.poll_failures += 1
        self.state.record("poll_failed", device=endpoint.id, consecutive=status.poll_failures)
        if status.poll_failures >= FAILURES_FOR_OFFLINE:
            self.state.lost(endpoint.id, "poll", f"{status.poll_failures} failed polls")

    async def _probe(self, session: aiohttp.ClientSession, endpoint: Endpoint) -> bool:
        tls: ssl.SSLContext | None = self.state.ctx.client_tls if endpoint.tls else None
        path = "/ISAPI/System/deviceInfo" if endpoint.protocol == "isapi" else endpoint.path or "/"
        scheme = "https" if endpoint.tls else "http"
        address = f"{scheme}://{endpoint.host}:{endpoint.port}{path}"
        try:
            async with session.get(address, ssl=tls if tls is not None else True) as response:
                await response.read()
            return True
        except (OSError, TimeoutError, aiohttp.ClientError):
            return False


class HeartbeatWatch:
    """Raises device_offline for MQTT devices silent longer than offline_after_s."""

    def __init__(self, state: PlatformState) -> None:
        self.state = state
        params = state.ctx.spec.platform
        self.offline_after_s = params.offline_after_s if params else 90.0
        started = time.monotonic()
        self.last_beat = {d.id: started for d in state.devices.values() if d.protocol == "mqtt"}

    def beat(self, device_id: str) -> None:
        if device_id in self.last_beat:
            self.last_beat[device_id] = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.offline_after_s / 4))
            now = time.monotonic()
            for device_id, last in self.last_beat.items():
                if now - last > self.offline_after_s:
                    self.state.lost(device_id, "mqtt", f"no heartbeat for {now - last:.1f} s")

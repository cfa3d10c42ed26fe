"""The site's security service and management platform (安全服务与管理平台), as zhian sees it from outside.

It hears the site three ways: the gateways' MQTT topics (status, heartbeat, alarm), the site's
hidden wiring (SiteBus events from panels, cameras, doors) and its own health polls. From these it
keeps device statuses, raises alerts (published on MQTT and served over HTTP), runs the linkage
rules and logs everything it received and did.

Faults: offline (nothing starts), plain_http (ctx.server_tls is None), clock_skew (its clock),
weak_credentials / no_lockout (ctx.guard), platform_no_offline_alert (never raises device_offline,
though its device list still shows the device offline).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from simulator.bus import SiteEvent
from simulator.mqtt.dialect import Report
from simulator.platform import topics
from simulator.platform.api import PlatformApi
from simulator.platform.artemis import ArtemisApi
from simulator.platform.health import HealthPoller, HeartbeatWatch
from simulator.platform.linkage import LinkageEngine
from simulator.platform.mqtt import MqttLink
from simulator.platform.state import PlatformState, from_epoch, iso
from simulator.runtime import DeviceContext

# The alert an MQTT child raises, by its device type; the payload's own type wins when it has one.
CHILD_ALARMS = {
    "smoke_detector": "smoke_alarm",
    "gas_detector": "gas_alarm",
    "emergency_button": "emergency_button",
    "charger": "charger_overload",
}
KEYWORDS = {
    "smoke": "smoke_alarm",
    "gas": "gas_alarm",
    "button": "emergency_button",
    "emergency": "emergency_button",
    "sos": "emergency_button",
    "overload": "charger_overload",
    "charger": "charger_overload",
    "water": "water_level_low",
    "pressure": "pipe_pressure_low",
}


def _alert_type(data: dict[str, Any], fallback: str) -> str:
    for key in ("kind", "type", "alarm", "hazard"):
        value = data.get(key)
        if isinstance(value, str):
            for word, alert in KEYWORDS.items():
                if word in value.lower():
                    return alert
    return fallback


class Platform:
    def __init__(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.port = ctx.port
        self.state = PlatformState(ctx)
        self.mqtt = MqttLink(self.state, self._on_mqtt)
        self.linkage = LinkageEngine(self.state, self.mqtt.send)
        self.api = PlatformApi(self.state, self.linkage)
        params = ctx.spec.platform
        self.artemis = ArtemisApi(self.state) if params and params.profile == "hikvision-artemis" else None
        self.watch = HeartbeatWatch(self.state)
        self.poller = HealthPoller(self.state)
        self._child_types = {
            c.id: c.type for d in ctx.community.devices for c in (d.gateway.devices if d.gateway else [])
        }
        self._queue: asyncio.Queue[SiteEvent] | None = None
        self._local: list[asyncio.Task[None]] = []
        self._network: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.ctx.offline:
            return
        self._queue = self.ctx.bus.subscribe()
        for event in list(self.ctx.bus.history):  # what the site said before the platform came up
            self._queue.put_nowait(event)
        loop = asyncio.get_running_loop()
        self._local = [loop.create_task(self._consume(self._queue)), loop.create_task(self.watch.run())]
        await self._connect()

    async def stop(self) -> None:
        await self._disconnect()
        await _cancel(self._local)
        self._local = []
        await self.linkage.stop()
        await self.api.callbacks.stop()
        if self.artemis is not None:
            await self.artemis.callbacks.stop()
        if self._queue is not None:
            self.ctx.bus.unsubscribe(self._queue)
            self._queue = None

    async def unplug(self) -> None:
        """The network side goes: HTTP, MQTT and polls; the hidden wiring stays."""
        await self._disconnect()

    async def replug(self) -> None:
        if not self.ctx.offline and self._runner is None:
            await self._connect()

    async def _connect(self) -> None:
        app = self.artemis.app() if self.artemis is not None else self.api.app()
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.ctx.host, self.port, ssl_context=self.ctx.server_tls).start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        loop = asyncio.get_running_loop()
        self._network = [loop.create_task(self.mqtt.run()), loop.create_task(self.poller.run())]

    async def _disconnect(self) -> None:
        await _cancel(self._network)
        self._network = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what it hears -----------------------------------------------------------------------

    async def _consume(self, queue: asyncio.Queue[SiteEvent]) -> None:
        while True:
            event = await queue.get()
            if event.source == self.ctx.spec.id:
                continue
            self.state.record(
                "site_event",
                type=event.type,
                source=event.source,
                area=event.area,
                data=event.data,
                source_time=iso(from_epoch(event.at)),
            )
            try:
                self._dispatch(event)
            except Exception as exc:  # one odd event must not stop the platform hearing the rest
                self.state.record("dispatch_error", type=event.type, source=event.source, error=repr(exc))

    def _area_of(self, device_id: str) -> str | None:
        status = self.state.devices.get(device_id)
        return status.area if status else None

    def _reset_areas(self, event: SiteEvent) -> list[str] | None:
        """The areas a reset names: its zones' areas on the panel, else its area; None means all."""
        zones = event.data.get("zones")
        panel = next((d.panel for d in self.ctx.community.devices if d.id == event.source and d.panel), None)
        if zones and panel is not None:
            return sorted({z.area for z in panel.zones if z.id in zones})
        area = event.data.get("area") or event.area
        return [area] if area else None

    def _dispatch(self, event: SiteEvent) -> None:
        kind = event.type
        data = event.data
        area = data.get("area") or event.area or self._area_of(event.source)
        source_time = from_epoch(event.at)
        if kind == "fire_alarm" and area is not None:
            self.linkage.on_fire(event, area)
        elif kind == "fire_reset":
            self.linkage.on_fire_reset(event, self._reset_areas(event))
        elif kind == "intrusion" and area is not None:
            self.linkage.on_intrusion(event, area)
        elif kind in ("video_loss", "door_forced", "door_held"):
            if data.get("active", True):
                self.state.raise_alert(kind, event.source, area, source_time=source_time, data=dict(data))
        elif kind == "mqtt_alarm":
            # The gateway reports the same alarm on MQTT; while connected, that report raises the alert.
            device = str(data.get("device", event.source))
            if data.get("active", True) and not self.mqtt.connected.is_set():
                fallback = CHILD_ALARMS.get(self._child_types.get(device, ""), "mqtt_alarm")
                alert = _alert_type(data, fallback)
                area = data.get("area") or self._area_of(device) or area
                self.state.raise_alert(alert, device, area, source_time=source_time, data=dict(data))
        elif kind == "hazard":
            if data.get("active", True):
                alert = _alert_type(data, "hazard")
                self.state.raise_alert(alert, event.source, area, source_time=source_time, data=dict(data))
        elif kind == "device_offline":
            self.state.lost(str(data.get("device", event.source)), "bus", "reported on the site bus")
        elif kind == "device_online":
            self.state.seen(str(data.get("device", event.source)), "bus")

    def _on_mqtt(self, topic: str, payload: bytes, retained: bool) -> None:
        parsed = next(
            (p for root in self.mqtt.roots if (p := topics.parse(topic, root, self.mqtt.site)) is not None),
            None,
        )
        if parsed is not None:
            reports: list[Report] = [(parsed.device, parsed.leaf, topics.decode(payload))]
        else:
            reports = self.mqtt.hear(topic, payload)
        if not reports:
            return
        self.state.record("mqtt", topic=topic, retained=retained, payload=reports[0][2])
        for device, leaf, body in reports:
            self._heard(device, leaf, body, retained)

    def _heard(self, device: str, leaf: str, body: dict[str, Any], retained: bool) -> None:
        if leaf == "heartbeat":
            self.watch.beat(device)
            self.state.seen(device, "mqtt")
        elif leaf == "status":
            status = topics.status_of(body)
            if status == "offline":
                self.state.lost(
                    device, "mqtt", "retained offline status" if retained else "offline status / will"
                )
            elif status == "online":
                if not retained:
                    self.watch.beat(device)
                self.state.seen(device, "mqtt")
        elif leaf == "alarm" and body.get("active", True):
            fallback = CHILD_ALARMS.get(self._child_types.get(device, ""), "mqtt_alarm")
            self.state.raise_alert(_alert_type(body, fallback), device, self._area_of(device), data=body)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel and wait; cancel again what survives (Python 3.11's wait_for can swallow a cancel)."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task

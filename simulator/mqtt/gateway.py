"""MQTT device gateways: the hubs that report a site's Zigbee / RS-485 devices through the broker.

A gateway keeps one MQTT connection for itself and all its children (detectors, buttons,
chargers, relays, intercoms). It publishes a retained status per device, heartbeats, telemetry
and alarms (docs/mqtt-topics.md), with a Last Will on its own status only: when the gateway dies,
the broker marks the gateway offline but its children's retained statuses keep saying "online".
That stale-retained state is what a real site shows and what an inspector must see through.

The connection itself is simulator/mqtt/link.py, the children simulator/mqtt/children.py, and
what the gateway is told to do simulator/mqtt/commands.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from datetime import datetime
from typing import Any

from simulator.bus import EventType, SiteEvent
from simulator.faults import HeartbeatMissing
from simulator.model import GatewayParams
from simulator.mqtt.children import Child
from simulator.mqtt.commands import Commands
from simulator.mqtt.dialect import Speaker
from simulator.mqtt.link import CLOSE_TIMEOUT_S, Link, MqttGatewayError, acknowledged
from simulator.mqtt.topics import QOS, GatewayTopics, Leaf
from simulator.runtime import DeviceContext, Endpoint

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
TELEMETRY_EVERY = 10  # heartbeat ticks between periodic telemetry reports

GATEWAY_FAULTS = frozenset({"offline", "hung", "clock_skew", "weak_credentials", "heartbeat_missing"})


def _ms(at: datetime) -> int:
    """Epoch milliseconds, the timestamp Chinese IoT platforms carry in payloads."""
    return int(at.timestamp() * 1000)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class MqttGateway:
    """An IoT gateway with its child devices, reporting over MQTT (a SimDevice); its bus actions
    are listed in Commands."""

    def __init__(self, ctx: DeviceContext) -> None:
        if ctx.spec.gateway is None:
            raise ValueError(f"device {ctx.spec.id!r} has no gateway parameters")
        unknown = {f.type for f in ctx.spec.faults} - GATEWAY_FAULTS
        if unknown:
            raise ValueError(f"gateway {ctx.spec.id!r}: faults {sorted(unknown)} do not apply to it")
        self.ctx = ctx
        self.params: GatewayParams = ctx.spec.gateway
        self.id = ctx.spec.id
        self.topics = GatewayTopics.of(self.params.topic_root, ctx.community.name, self.id)
        self.speaker = Speaker(self.params.mqtt_profile, self.topics)
        self.children = {d.id: Child.of(d) for d in self.params.devices}
        self._silent = ctx.spec.fault(HeartbeatMissing) is not None
        self._link: Link | None = None
        self._seq = 0
        self._started = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self.commands = Commands(self)
        self._unplugged = False
        self._stopping = False

    # --- SimDevice ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.ctx.bus.register(self.id, self.commands.command)
        for child_id in self.children:
            self.ctx.bus.register(child_id, self.commands.child_handler(child_id))
        self._started = asyncio.get_running_loop().time()
        if self.ctx.offline:
            return
        await self._connect()
        self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._ticker, self._reconnect, *self.commands.tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        link, self._link = self._link, None
        if link is None:
            return
        if link.usable:
            ack = self.publish(link, self.id, "status", self._status("offline", "shutdown"))
            if ack is not None:
                with contextlib.suppress(TimeoutError, MqttGatewayError):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await ack
        await link.close()

    async def unplug(self) -> None:
        """Cut the connection without DISCONNECT: the broker publishes the gateway's Will at once."""
        self._unplugged = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        link, self._link = self._link, None
        if link is not None:
            link.abort()

    async def replug(self) -> None:
        if not self._unplugged:
            return
        self._unplugged = False
        if not self.ctx.offline:
            await self._connect()

    # --- connection --------------------------------------------------------------------------

    def _broker(self) -> Endpoint:
        broker = self.ctx.directory.get("broker")
        if broker is None:
            raise MqttGatewayError(f"gateway {self.id!r}: no broker in the site directory")
        return broker

    async def _connect(self) -> None:
        broker = self._broker()
        if broker.tls and self.ctx.client_tls is None:
            raise MqttGatewayError(f"gateway {self.id!r}: the broker wants TLS and no CA is given")
        link = Link(
            client_id=self.id,
            username=self.ctx.credentials.username,
            password=self.ctx.credentials.password,
            keepalive=self.params.keepalive_s,
            will=self.speaker.will(),
            tls=self.ctx.client_tls if broker.tls else None,
            on_message=self.commands.on_message,
            on_lost=self._lost,
        )
        try:
            await link.connect(broker.host, broker.port)
            await acknowledged([ack for ack in self._announce(link) if ack is not None])
            if self.ctx.hung:
                link.freeze()  # everything it had to say is acknowledged; now it goes quiet
                self._link = link
                return
            self._link = link
            if self.speaker.dialect == "zhian":  # relays take commands in zhian's tree only
                await link.subscribe(self.topics.commands, QOS["cmd"])
        except BaseException:
            link.abort()
            if self._link is link:
                self._link = None
            raise

    def _announce(self, link: Link) -> list[asyncio.Future[None] | None]:
        """Everything a gateway says on (re)connecting: statuses, relay states, a round of reports."""
        configs = self.speaker.announce({self.id: None} | {c: k.spec.type for c, k in self.children.items()})
        acks = [link.publish(topic, payload, "status", retain) for topic, payload, retain in configs]
        acks.append(self.publish(link, self.id, "status", self._status("online")))
        for child in self.children.values():
            ts = self.child_ms(child)
            if child.reachable:
                acks.append(self.publish(link, child.spec.id, "status", {"state": "online", "ts": ts}))
            else:
                body = {"state": "offline", "ts": ts, "reason": "no_response"}
                acks.append(self.publish(link, child.spec.id, "status", body))
            if child.spec.type == "lighting_relay" and child.reports:
                acks.append(self.publish(link, child.spec.id, "state", {"on": child.relay_on, "ts": ts}))
        self._beat(link, telemetry=True)
        return acks

    def _lost(self) -> None:
        """The broker went away under a healthy gateway: reconnect as real ones do, with backoff."""
        self._link = None
        if not self._stopping and not self._unplugged and self._reconnect is None:
            self._reconnect = asyncio.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = RECONNECT_MIN_S
        try:
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._connect()
                    return
                except OSError as exc:
                    log.info("gateway %s: reconnect failed: %s", self.id, exc)
                    delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            self._reconnect = None

    def live(self) -> Link | None:
        link = self._link
        return link if link is not None and link.usable else None

    # --- reports -----------------------------------------------------------------------------

    def publish(
        self, link: Link, device: str, leaf: Leaf, body: dict[str, Any]
    ) -> asyncio.Future[None] | None:
        if self.speaker.dialect == "zhian":
            return link.publish(self.topics.topic(device, leaf), _json(body), leaf)
        acks = [
            link.publish(topic, payload, leaf, retain)
            for topic, payload, retain in self.speaker.render(device, leaf, body)
        ]
        return acks[-1] if acks else None

    def _status(self, state: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state, "ts": self.now_ms()}
        if reason is not None:
            body["reason"] = reason
        return body

    def now_ms(self) -> int:
        return _ms(self.ctx.now())

    def child_ms(self, child: Child) -> int:
        """A child's clock: set from the gateway (so the gateway's skew carries over) plus its own skew."""
        return _ms(self.ctx.now() + child.skew)

    async def _tick_loop(self) -> None:
        """A heartbeat round every period, the first after a share of it fixed by the gateway's id: real
        gateways are not switched on together, and a site's gateways beating in step sent a broker
        every heartbeat of the site in one burst per period."""
        loop = asyncio.get_running_loop()
        period = self.params.heartbeat_s
        phase = 1 - zlib.crc32(self.id.encode()) / 2**32  # in (0, 1]
        due = loop.time() - period * (1 - phase)
        tick = 0
        while True:
            now = loop.time()
            due = max(due + period, now)  # a stalled loop skips rounds rather than bursting them
            await asyncio.sleep(due - now)
            tick += 1
            link = self.live()
            if link is not None:
                self._beat(link, telemetry=tick % TELEMETRY_EVERY == 0)

    def _beat(self, link: Link, *, telemetry: bool) -> None:
        """One heartbeat round for the gateway and every child that still reports, in one batch."""
        if not self._silent:
            self._seq += 1
            uptime = round(asyncio.get_running_loop().time() - self._started)
            body = {"seq": self._seq, "ts": self.now_ms(), "uptime_s": uptime}
            self.publish(link, self.id, "heartbeat", body)
        for child in self.children.values():
            if not child.reports:
                continue
            child.seq += 1
            ts = self.child_ms(child)
            self.publish(link, child.spec.id, "heartbeat", {"seq": child.seq, "ts": ts})
            report = child.telemetry(ts) if telemetry else None
            if report is not None:
                self.publish(link, child.spec.id, "telemetry", report)

    def report_telemetry(self, link: Link, child: Child) -> None:
        report = child.telemetry(self.child_ms(child))
        if report is not None:
            self.publish(link, child.spec.id, "telemetry", report)

    def alarm(self, child: Child, alarm: str, active: bool, **extra: Any) -> None:
        link = self.live()
        if link is None or not child.reports:
            return
        self.report_telemetry(link, child)
        body = {"alarm": alarm, "active": active, "ts": self.child_ms(child), **extra}
        self.publish(link, child.spec.id, "alarm", body)
        data = {"alarm": alarm, "active": active, "gateway": self.id, "device_type": child.spec.type, **extra}
        self.event("mqtt_alarm", child, data)

    def event(self, kind: EventType, child: Child, data: dict[str, Any]) -> None:
        self.ctx.bus.publish(SiteEvent(kind, source=child.spec.id, area=child.spec.area, data=data))

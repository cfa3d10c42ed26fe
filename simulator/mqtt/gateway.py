"""MQTT device gateways: the hubs that report a site's Zigbee / RS-485 devices through the broker.

A gateway keeps one MQTT connection for itself and all its children (detectors, buttons,
chargers, relays, intercoms). It publishes a retained status per device, heartbeats, telemetry
and alarms (docs/mqtt-topics.md), with a Last Will on its own status only: when the gateway dies,
the broker marks the gateway offline but its children's retained statuses keep saying "online".
That stale-retained state is what a real site shows and what an inspector must see through.

The paho client is driven by the asyncio loop (reader/writer callbacks, no network thread), so
a hung gateway is simply a client whose loop stops: no PINGREQ, and the broker fires the Will
after 1.5 x keepalive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulator.bus import CommandHandler, EventType, SiteEvent
from simulator.faults import ClockSkew, HeartbeatMissing, Offline
from simulator.model import GatewayParams, MqttDevice
from simulator.mqtt.dialect import Speaker
from simulator.mqtt.topics import QOS, RETAINED, GatewayTopics, Leaf
from simulator.runtime import DeviceContext, Endpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
TELEMETRY_EVERY = 10  # heartbeat ticks between periodic telemetry reports
GAS_ALARM_LEL_PCT = 25  # GB 15322: the alarm set point of a combustible gas detector is <= 25 % LEL
DEFAULT_CHARGER_W = 7000  # a 7 kW AC charging post; tag rated_w overrides

GATEWAY_FAULTS = frozenset({"offline", "hung", "clock_skew", "weak_credentials", "heartbeat_missing"})
CHILD_FAULTS = frozenset({"offline", "heartbeat_missing", "clock_skew"})
TELEMETRY_TYPES = frozenset(
    {"smoke_detector", "gas_detector", "emergency_button", "charger", "lighting_relay"}
)


class MqttGatewayError(ConnectionError):
    """The gateway could not reach the broker or was refused."""


def _ms(at: datetime) -> int:
    """Epoch milliseconds, the timestamp Chinese IoT platforms carry in payloads."""
    return int(at.timestamp() * 1000)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class _Link:
    """One MQTT connection: a paho client driven by the asyncio loop instead of its own thread."""

    def __init__(
        self,
        *,
        client_id: str,
        username: str,
        password: str,
        keepalive: int,
        will: tuple[str, bytes],
        tls: ssl.SSLContext | None,
        on_message: Callable[[str, bytes], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.username_pw_set(username, password)
        client.will_set(will[0], will[1], qos=QOS["status"], retain=True)
        if tls is not None:
            client.tls_set_context(tls)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_subscribe = self._subscribed
        client.on_message = lambda _c, _u, msg: on_message(msg.topic, bytes(msg.payload))
        self._client = client
        self._keepalive = keepalive
        self._on_lost = on_lost
        self._fd: int | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._gone: asyncio.Future[None] = self._loop.create_future()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self.connected = False
        self.frozen = False
        self._closing = False

    async def connect(self, host: str, port: int) -> None:
        # paho connects (TCP, TLS handshake, CONNECT) with blocking calls: run them off the loop,
        # which may host the broker itself. No socket callback is set yet, so paho calls none of
        # them from that thread; the loop takes the socket over once it is open.
        work = self._loop.run_in_executor(None, self._client.connect, host, port, self._keepalive)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(self._abandon)
            raise
        except OSError as exc:
            raise MqttGatewayError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
        self._watch()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                code = await self._connack
        except TimeoutError as exc:
            raise MqttGatewayError(f"no CONNACK from {host}:{port}") from exc
        if code.is_failure:
            raise MqttGatewayError(f"broker {host}:{port} refused the login: {code}")
        self.connected = True

    def _abandon(self, work: asyncio.Future[Any]) -> None:
        """The connect we stopped waiting for has finished in its thread: drop what it opened."""
        if not work.cancelled():
            work.exception()
        self.abort()

    @property
    def usable(self) -> bool:
        return self.connected and not self.frozen and not self._closing

    def publish(
        self, topic: str, payload: bytes, leaf: Leaf, retain: bool | None = None
    ) -> asyncio.Future[None] | None:
        """Queue a message; for QoS 1 the future completes on PUBACK."""
        qos = QOS[leaf]
        keep = leaf in RETAINED if retain is None else retain
        info = self._client.publish(topic, payload, qos=qos, retain=keep)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("publish %s failed: %s", topic, info.rc)
            return None
        if qos == 0:
            return None
        ack: asyncio.Future[None] = self._loop.create_future()
        self._acks[info.mid] = ack
        return ack

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttGatewayError(f"cannot subscribe to {topic_filter}: {rc}")
        ack: asyncio.Future[None] = self._loop.create_future()
        self._acks[mid] = ack
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await ack

    def freeze(self) -> None:
        """Stop all network work without a word to the broker: no reads, writes or PINGREQ."""
        self.frozen = True
        self._unwatch()

    def abort(self) -> None:
        """Drop the connection as a pulled cable would, without DISCONNECT: the broker sends the Will."""
        self._closing = True
        self.freeze()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._fail_pending(MqttGatewayError("connection aborted"))

    async def close(self) -> None:
        """A clean DISCONNECT (no Will), or an abort if the connection cannot say goodbye."""
        if not self.usable:
            self.abort()
            return
        self._closing = True
        self._client.disconnect()  # paho closes the socket once DISCONNECT is written
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._gone
        except TimeoutError:
            self.abort()

    # --- the loop drives paho ----------------------------------------------------------------

    def _watch(self) -> None:
        sock = self._client.socket()
        if sock is None or self.frozen:
            return
        self._fd = sock.fileno()
        self._client.on_socket_close = lambda _c, _u, _s: self._unwatch()
        self._client.on_socket_register_write = self._want_write
        self._client.on_socket_unregister_write = self._done_writing
        self._loop.add_reader(self._fd, self._readable)
        if self._client.want_write():
            self._loop.add_writer(self._fd, self._client.loop_write)
        self._misc = self._loop.create_task(self._misc_loop())

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if self._fd is not None:
            self._loop.add_writer(self._fd, self._client.loop_write)

    def _done_writing(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if self._fd is not None:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        rc = self._client.loop_read()
        # TLS may hold whole packets already decrypted: the socket will not turn readable for them.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._fd is not None:
            sock = self._client.socket()
            if not isinstance(sock, ssl.SSLSocket) or sock.pending() == 0:
                break
            rc = self._client.loop_read()

    async def _misc_loop(self) -> None:
        """Keepalive bookkeeping (PINGREQ when due), polled as paho's own loop would."""
        interval = min(1.0, self._keepalive / 4)
        while True:
            if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(interval)

    # --- paho callbacks (on the loop thread) -------------------------------------------------

    def _connected(
        self, _c: mqtt.Client, _u: Any, _flags: Any, code: ReasonCode, _p: Properties | None
    ) -> None:
        if not self._connack.done():
            self._connack.set_result(code)

    def _disconnected(
        self, _c: mqtt.Client, _u: Any, _flags: Any, _code: ReasonCode, _p: Properties | None
    ) -> None:
        was_connected, self.connected = self.connected, False
        self._fail_pending(MqttGatewayError("connection lost"))
        if not self._gone.done():
            self._gone.set_result(None)
        if was_connected and not self._closing and not self.frozen:
            self._on_lost()

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, _code: ReasonCode, _p: Properties) -> None:
        ack = self._acks.pop(mid, None)
        if ack is not None and not ack.done():
            ack.set_result(None)

    def _subscribed(
        self, _c: mqtt.Client, _u: Any, mid: int, codes: list[ReasonCode], _p: Properties | None
    ) -> None:
        ack = self._acks.pop(mid, None)
        if ack is None or ack.done():
            return
        if any(code.is_failure for code in codes):
            ack.set_exception(MqttGatewayError(f"subscription refused: {codes}"))
        else:
            ack.set_result(None)

    def _fail_pending(self, exc: Exception) -> None:
        if not self._connack.done():
            self._connack.set_exception(exc)
            self._connack.exception()  # mark it retrieved: nobody may be waiting any more
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(exc)
                ack.exception()
        self._acks.clear()


@dataclass
class _Child:
    """One device behind the gateway and what the gateway knows of it."""

    spec: MqttDevice
    skew: timedelta
    reachable: bool  # False: the gateway lost it (offline fault, child_offline) and says so
    silent: bool  # True: dead while the gateway still believes it online (heartbeat_missing)
    battery_pct: int
    seq: int = 0
    alarm: bool = False  # detector alarm state
    load_pct: float = 0.0  # charger
    overloaded: bool = False
    relay_on: bool = False

    @classmethod
    def of(cls, spec: MqttDevice) -> _Child:
        unknown = {f.type for f in spec.faults} - CHILD_FAULTS
        if unknown:
            raise ValueError(f"MQTT device {spec.id!r}: faults {sorted(unknown)} do not apply to it")
        skew = next((f.seconds for f in spec.faults if isinstance(f, ClockSkew)), 0.0)
        return cls(
            spec=spec,
            skew=timedelta(seconds=skew),
            reachable=not any(isinstance(f, Offline) for f in spec.faults),
            silent=any(isinstance(f, HeartbeatMissing) for f in spec.faults),
            battery_pct=60 + zlib.crc32(spec.id.encode()) % 41,
        )

    @property
    def reports(self) -> bool:
        return self.reachable and not self.silent

    def telemetry(self, ts: int) -> dict[str, Any] | None:
        kind = self.spec.type
        if kind == "charger":
            rated = self.spec.tags.get("rated_w")
            rated_w = rated if isinstance(rated, int) and not isinstance(rated, bool) else DEFAULT_CHARGER_W
            return {"ts": ts, "load_pct": self.load_pct, "power_w": round(rated_w * self.load_pct / 100)}
        if kind == "lighting_relay":
            return {"ts": ts, "on": self.relay_on}
        if kind == "smoke_detector":
            return {"ts": ts, "battery_pct": self.battery_pct, "alarm": self.alarm}
        if kind == "gas_detector":
            lel = GAS_ALARM_LEL_PCT if self.alarm else 0
            return {"ts": ts, "battery_pct": self.battery_pct, "alarm": self.alarm, "lel_pct": lel}
        if kind == "emergency_button":
            return {"ts": ts, "battery_pct": self.battery_pct}
        return None  # an intercom is mains-powered and reports only status and heartbeats


class MqttGateway:
    """An IoT gateway with its child devices, reporting over MQTT (a SimDevice).

    Bus actions (on the gateway's id with `device=<child id>`, or on the child's own id):
    press, smoke, gas (active: bool = True), charger_load (percent), switch (on), child_offline,
    child_quiet (heartbeats stop, the status stays online), child_online. A report goes out only
    while the gateway is connected and the child reachable; the matching bus event (mqtt_alarm,
    lighting, device_offline/online) is published only then.
    """

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
        self.children = {d.id: _Child.of(d) for d in self.params.devices}
        self._silent = ctx.spec.fault(HeartbeatMissing) is not None
        self._link: _Link | None = None
        self._seq = 0
        self._started = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unplugged = False
        self._stopping = False

    # --- SimDevice ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.ctx.bus.register(self.id, self.command)
        for child_id in self.children:
            self.ctx.bus.register(child_id, self._child_handler(child_id))
        self._started = asyncio.get_running_loop().time()
        if self.ctx.offline:
            return
        await self._connect()
        self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._ticker, self._reconnect, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        link, self._link = self._link, None
        if link is None:
            return
        if link.usable:
            ack = self._publish(link, self.id, "status", self._status("offline", "shutdown"))
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
        link = _Link(
            client_id=self.id,
            username=self.ctx.credentials.username,
            password=self.ctx.credentials.password,
            keepalive=self.params.keepalive_s,
            will=self.speaker.will(),
            tls=self.ctx.client_tls if broker.tls else None,
            on_message=self._on_message,
            on_lost=self._lost,
        )
        try:
            await link.connect(broker.host, broker.port)
            acks = [ack for ack in self._announce(link) if ack is not None]
            async with asyncio.timeout(ACK_TIMEOUT_S):
                await asyncio.gather(*acks)
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

    def _announce(self, link: _Link) -> list[asyncio.Future[None] | None]:
        """Everything a gateway says on (re)connecting: statuses, relay states, a round of reports."""
        configs = self.speaker.announce([self.id, *self.children])
        acks = [link.publish(topic, payload, "status", retain) for topic, payload, retain in configs]
        acks.append(self._publish(link, self.id, "status", self._status("online")))
        for child in self.children.values():
            ts = self._child_ms(child)
            if child.reachable:
                acks.append(self._publish(link, child.spec.id, "status", {"state": "online", "ts": ts}))
            else:
                body = {"state": "offline", "ts": ts, "reason": "no_response"}
                acks.append(self._publish(link, child.spec.id, "status", body))
            if child.spec.type == "lighting_relay" and child.reports:
                acks.append(self._publish(link, child.spec.id, "state", {"on": child.relay_on, "ts": ts}))
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

    def _live(self) -> _Link | None:
        link = self._link
        return link if link is not None and link.usable else None

    # --- reports -----------------------------------------------------------------------------

    def _publish(
        self, link: _Link, device: str, leaf: Leaf, body: dict[str, Any]
    ) -> asyncio.Future[None] | None:
        if self.speaker.dialect == "zhian":
            return link.publish(self.topics.topic(device, leaf), _json(body), leaf)
        acks = [
            link.publish(topic, payload, leaf, retain)
            for topic, payload, retain in self.speaker.render(device, leaf, body)
        ]
        return acks[-1] if acks else None

    def _status(self, state: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state, "ts": _ms(self.ctx.now())}
        if reason is not None:
            body["reason"] = reason
        return body

    def _child_ms(self, child: _Child) -> int:
        """A child's clock: set from the gateway (so the gateway's skew carries over) plus its own skew."""
        return _ms(self.ctx.now() + child.skew)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.params.heartbeat_s
        due = loop.time()
        tick = 0
        while True:
            now = loop.time()
            due = max(due + period, now)  # a stalled loop skips rounds rather than bursting them
            await asyncio.sleep(due - now)
            tick += 1
            link = self._live()
            if link is not None:
                self._beat(link, telemetry=tick % TELEMETRY_EVERY == 0)

    def _beat(self, link: _Link, *, telemetry: bool) -> None:
        """One heartbeat round for the gateway and every child that still reports, in one batch."""
        if not self._silent:
            self._seq += 1
            uptime = round(asyncio.get_running_loop().time() - self._started)
            body = {"seq": self._seq, "ts": _ms(self.ctx.now()), "uptime_s": uptime}
            self._publish(link, self.id, "heartbeat", body)
        for child in self.children.values():
            if not child.reports:
                continue
            child.seq += 1
            ts = self._child_ms(child)
            self._publish(link, child.spec.id, "heartbeat", {"seq": child.seq, "ts": ts})
            report = child.telemetry(ts) if telemetry else None
            if report is not None:
                self._publish(link, child.spec.id, "telemetry", report)

    def _report_telemetry(self, link: _Link, child: _Child) -> None:
        report = child.telemetry(self._child_ms(child))
        if report is not None:
            self._publish(link, child.spec.id, "telemetry", report)

    def _alarm(self, child: _Child, alarm: str, active: bool, **extra: Any) -> None:
        link = self._live()
        if link is None or not child.reports:
            return
        self._report_telemetry(link, child)
        body = {"alarm": alarm, "active": active, "ts": self._child_ms(child), **extra}
        self._publish(link, child.spec.id, "alarm", body)
        data = {"alarm": alarm, "active": active, "gateway": self.id, "device_type": child.spec.type, **extra}
        self._event("mqtt_alarm", child, data)

    def _event(self, kind: EventType, child: _Child, data: dict[str, Any]) -> None:
        self.ctx.bus.publish(SiteEvent(kind, source=child.spec.id, area=child.spec.area, data=data))

    # --- actions -----------------------------------------------------------------------------

    def _child_handler(self, child_id: str) -> CommandHandler:
        async def handle(action: str, params: dict[str, Any]) -> None:
            await self.command(action, {**params, "device": child_id})

        return handle

    async def command(self, action: str, params: dict[str, Any]) -> None:
        """A bus action on a child (params["device"]); see the class docstring."""
        child = self.children.get(str(params.get("device")))
        if child is None:
            raise KeyError(f"gateway {self.id!r} has no device {params.get('device')!r}")
        kind = child.spec.type
        if action == "press" and kind == "emergency_button":
            self._alarm(child, "sos", True)
        elif action in ("smoke", "gas") and kind == f"{action}_detector":
            child.alarm = bool(params.get("active", True))
            self._alarm(child, action, child.alarm)
        elif action == "charger_load" and kind == "charger":
            child.load_pct = float(params["percent"])
            link = self._live()
            if link is not None and child.reports:
                self._report_telemetry(link, child)
            if (child.load_pct > 100) != child.overloaded:
                child.overloaded = child.load_pct > 100
                self._alarm(child, "overload", child.overloaded, load_pct=child.load_pct)
        elif action == "switch" and kind == "lighting_relay":
            self._switch(child, bool(params["on"]))
        elif action == "child_offline":
            self._set_reachable(child, False)
        elif action == "child_quiet":  # dies without the gateway noticing: its status stays online
            child.silent = True
        elif action == "child_online":
            self._set_reachable(child, True)
        else:
            raise ValueError(f"gateway {self.id!r}: no action {action!r} on a {kind} ({child.spec.id})")

    def _switch(self, child: _Child, on: bool) -> None:
        """Switch a relay; a relay the gateway cannot reach does not switch."""
        link = self._live()
        if link is None or not child.reports:
            return
        child.relay_on = on
        ts = self._child_ms(child)
        self._publish(link, child.spec.id, "state", {"on": on, "ts": ts})
        self._publish(link, child.spec.id, "telemetry", {"ts": ts, "on": on})
        self._event("lighting", child, {"on": on, "gateway": self.id})

    def _set_reachable(self, child: _Child, reachable: bool) -> None:
        """The gateway notices a child come or go (as with a dead Zigbee node) and says so, retained."""
        child.reachable, child.silent = reachable, False
        link = self._live()
        if link is None:
            return
        body: dict[str, Any] = {"state": "online" if reachable else "offline", "ts": self._child_ms(child)}
        if not reachable:
            body["reason"] = "no_response"
        self._publish(link, child.spec.id, "status", body)
        if reachable:
            self._report_telemetry(link, child)
        self._event("device_online" if reachable else "device_offline", child, {"gateway": self.id})

    # --- MQTT commands -----------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        device = self.topics.device_of_command(topic)
        if device is None:
            return
        task = asyncio.get_running_loop().create_task(self._answer(device, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, device: str, payload: bytes) -> None:
        """Answer a command on `.../cmd` with `.../ack`: {"id", "action": "switch", "on"} for relays."""
        await self.ctx.latency.wait("mqtt")
        link = self._live()
        if link is None:
            return
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._ack(link, device, None, "bad_json")
            return
        cmd_id = body.get("id")
        child = self.children.get(device)
        if child is None:
            self._ack(link, device, cmd_id, "unknown_device")
        elif child.silent:
            return  # forwarded to a dead node that never answers; the gateway does not know
        elif not child.reachable:
            self._ack(link, device, cmd_id, "offline")
        elif (
            body.get("action") == "switch"
            and child.spec.type == "lighting_relay"
            and isinstance(body.get("on"), bool)
        ):
            self._switch(child, body["on"])
            self._ack(link, device, cmd_id, None)
        else:
            self._ack(link, device, cmd_id, "unsupported")

    def _ack(self, link: _Link, device: str, cmd_id: Any, error: str | None) -> None:
        body: dict[str, Any] = {"id": cmd_id, "ok": error is None, "ts": _ms(self.ctx.now())}
        if error is not None:
            body["error"] = error
        self._publish(link, device, "ack", body)

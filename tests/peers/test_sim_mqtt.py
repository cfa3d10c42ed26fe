"""The simulated broker and gateways seen through a plain aiomqtt client, as a platform or an inspector.

Every test runs against a real broker: mosquitto as a subprocess (when installed) and amqtt
in-process. Topics are spelled out literally, as docs/mqtt-topics.md documents them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest

from simulator.bus import SiteBus, SiteEvent
from simulator.latency import Latency
from simulator.model import Area, Community, Credentials, DeviceSpec
from simulator.mqtt.broker import Broker, BrokerError, Impl, site_accounts
from simulator.mqtt.gateway import MqttGateway
from simulator.runtime import DeviceContext
from simulator.tls import SiteTls, make_site_tls

pytestmark = pytest.mark.peers

HOST = "127.0.0.1"
SITE = "zhian-sim/test-site"  # topic root / community name as one level
PLATFORM = Credentials(username="platform", password="platform-secret")
INSPECTOR = Credentials(username="zhian-audit", password="audit-secret")
AREAS = [
    Area(id="b1", kind="unit_entrance"),
    Area(id="ev", kind="charging_area"),
    Area(id="garage", kind="garage"),
    Area(id="mc", kind="monitoring_center"),
]
CHILDREN: list[dict[str, Any]] = [
    {"id": "smoke1", "type": "smoke_detector", "area": "b1"},
    {"id": "gas1", "type": "gas_detector", "area": "garage"},
    {"id": "sos1", "type": "emergency_button", "area": "garage"},
    {"id": "chg1", "type": "charger", "area": "ev", "tags": {"rated_w": 2000}},
    {"id": "light1", "type": "lighting_relay", "area": "garage"},
    {"id": "door1", "type": "intercom", "area": "b1"},
]
IMPLS = [
    pytest.param(
        "mosquitto", marks=pytest.mark.skipif(shutil.which("mosquitto") is None, reason="no mosquitto")
    ),
    "amqtt",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def gateway(
    gw_id: str = "gw1",
    *,
    children: list[dict[str, Any]] | None = None,
    faults: list[dict[str, Any]] | None = None,
    heartbeat_s: float = 0.2,
    keepalive_s: int = 5,
) -> DeviceSpec:
    return DeviceSpec.model_validate(
        {
            "id": gw_id,
            "kind": "gateway",
            "protocol": "mqtt",
            "area": "mc",
            "faults": faults or [],
            "gateway": {
                "heartbeat_s": heartbeat_s,
                "keepalive_s": keepalive_s,
                "devices": CHILDREN if children is None else children,
            },
        }
    )


@dataclass
class Msg:
    topic: str
    body: Any
    retain: bool
    qos: int
    at: float


@dataclass
class Watcher:
    """Everything a subscriber received, with arrival times."""

    messages: list[Msg] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, message: aiomqtt.Message) -> None:
        payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
        try:
            body: Any = json.loads(payload)
        except ValueError:
            body = payload
        self.messages.append(Msg(message.topic.value, body, message.retain, message.qos, time.monotonic()))
        self._arrived.set()

    def on(self, topic: str) -> list[Msg]:
        return [m for m in self.messages if m.topic == topic]

    # what should come within a second gets ten: a loaded machine delays an in-process broker
    async def wait(self, pred: Callable[[Msg], bool], within: float = 10.0) -> Msg:
        async with asyncio.timeout(within):
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_topic(self, topic: str, within: float = 10.0, **body: Any) -> Msg:
        def match(m: Msg) -> bool:
            return m.topic == topic and isinstance(m.body, dict) and body.items() <= m.body.items()

        return await self.wait(match, within)

    async def wait_count(self, topic: str, count: int, within: float = 10.0) -> None:
        """Until `count` messages on `topic` have come."""
        await self.wait(lambda _: len(self.on(topic)) >= count, within)


class Site:
    """A broker, gateways and a bus on loopback ports chosen at run time."""

    def __init__(self, impl: Impl, tmp: Path) -> None:
        self.impl = impl
        self.tmp = tmp
        self.bus = SiteBus()
        self.port, self.tls_port = free_port(), free_port()
        self.tls: SiteTls | None = None
        self.broker: Broker | None = None
        self.gateways: list[MqttGateway] = []
        self.run_dir = tmp / "broker"

    def contexts(self, *specs: DeviceSpec, tls: bool = False) -> list[DeviceContext]:
        platform = DeviceSpec(id="platform", kind="platform", protocol="http", area="mc")
        community = Community(name="test site", areas=AREAS, devices=[*specs, platform])
        if tls and self.tls is None:
            self.tls = make_site_tls(self.tmp / "tls", "test", [HOST])
        directory: dict[str, Any] = {}
        return [
            DeviceContext(
                spec=spec,
                community=community,
                host=HOST,
                port=0,
                credentials=Credentials(username=spec.id, password=f"{spec.id}-secret"),
                bus=self.bus,
                latency=Latency({}, scale=0),
                server_tls=None,
                client_tls=self.tls.client_context() if self.tls else None,
                directory=directory,
            )
            for spec in specs
        ]

    async def start_broker(
        self, contexts: list[DeviceContext], *, plaintext_listener: bool = False
    ) -> Broker:
        accounts = site_accounts(contexts, platform=PLATFORM, inspector=INSPECTOR)
        broker = Broker(
            HOST,
            accounts=accounts,
            port=self.port,
            tls=self.tls,
            tls_port=self.tls_port,
            plaintext_listener=plaintext_listener,
            impl=self.impl,
            run_dir=self.run_dir,
        )
        await broker.start()
        self.broker = broker
        for ctx in contexts:
            ctx.directory["broker"] = broker.endpoint(
                username=PLATFORM.username, password=PLATFORM.password, area="mc"
            )
        return broker

    async def up(self, *specs: DeviceSpec, tls: bool = False, start: bool = True) -> list[MqttGateway]:
        """Broker first, then every gateway (started unless start=False)."""
        contexts = self.contexts(*specs, tls=tls)
        await self.start_broker(contexts)
        gateways = [MqttGateway(ctx) for ctx in contexts]
        self.gateways += gateways
        if start:
            for gw in gateways:
                await gw.start()
        return gateways

    @asynccontextmanager
    async def client(
        self, creds: Credentials = PLATFORM, *, tls: bool = False
    ) -> AsyncIterator[aiomqtt.Client]:
        port = self.tls_port if tls else self.port
        context = self.tls.client_context() if tls and self.tls else None
        async with aiomqtt.Client(
            HOST, port, username=creds.username, password=creds.password, tls_context=context
        ) as client:
            yield client

    @asynccontextmanager
    async def watch(
        self, topic_filter: str = f"{SITE}/#", creds: Credentials = PLATFORM, *, tls: bool = False
    ) -> AsyncIterator[Watcher]:
        watcher = Watcher()
        async with self.client(creds, tls=tls) as client:
            await client.subscribe(topic_filter, qos=1)

            async def pump() -> None:
                async for message in client.messages:
                    watcher.add(message)

            task = asyncio.create_task(pump())
            try:
                yield watcher
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        for gw in self.gateways:
            await gw.stop()
        if self.broker is not None:
            await self.broker.stop()


def leftover_processes(path: Path) -> list[tuple[int, str]]:
    """Processes whose command line names the broker's run directory (mosquitto -c run/...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline and int(entry.name) != os.getpid():
            found.append((int(entry.name), cmdline.decode(errors="replace")))
    return found


@pytest.fixture(params=IMPLS)
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    s = Site(cast(Impl, request.param), tmp_path)
    try:
        yield s
    finally:
        await s.close()
        assert leftover_processes(s.run_dir) == []


def delivered_qos(site: Site, published: int, subscribed: int = 1) -> int:
    """MQTT delivers at min(published, subscribed); amqtt 0.12 always uses the subscription's QoS."""
    return subscribed if site.impl == "amqtt" else min(published, subscribed)


def status(device: str, gw: str = "gw1") -> str:
    return f"{SITE}/{gw}/{device}/status"


def leaf(device: str, name: str, gw: str = "gw1") -> str:
    return f"{SITE}/{gw}/{device}/{name}"


def events(bus_queue: asyncio.Queue[SiteEvent]) -> list[SiteEvent]:
    out = []
    while not bus_queue.empty():
        out.append(bus_queue.get_nowait())
    return out


# --- what a subscriber sees -------------------------------------------------------------------


async def test_retained_status_heartbeats_and_telemetry(site: Site) -> None:
    await site.up(gateway(heartbeat_s=0.1))
    now_ms = time.time() * 1000
    async with site.watch() as w:
        for device in ["gw1", *(c["id"] for c in CHILDREN)]:
            m = await w.wait_topic(status(device), state="online")
            assert m.retain, f"{device}: status must be retained"
            assert abs(m.body["ts"] - now_ms) < 5000
        # two heartbeat rounds after subscribing: per-device sequence numbers that count up
        for device in ["gw1", *(c["id"] for c in CHILDREN)]:
            first = await w.wait_topic(leaf(device, "heartbeat"))
            second = await w.wait_topic(leaf(device, "heartbeat"), seq=first.body["seq"] + 1)
            assert not first.retain and first.qos == delivered_qos(site, 0)
            assert second.body["ts"] > first.body["ts"]
            assert abs(second.body["ts"] - time.time() * 1000) < 5000
        assert "uptime_s" in w.on(leaf("gw1", "heartbeat"))[0].body
    # a late subscriber sees retained statuses and the relay state straight away
    async with site.watch() as late:
        await late.wait_topic(status("light1"), state="online")
        state = await late.wait_topic(leaf("light1", "state"), on=False)
        assert state.retain
    # telemetry: sent on connect, then every 10 heartbeats
    async with site.watch(f"{SITE}/+/+/telemetry") as tw:
        chg = await tw.wait_topic(leaf("chg1", "telemetry"), load_pct=0.0, power_w=0)
        smoke = await tw.wait_topic(leaf("smoke1", "telemetry"), alarm=False)
        gas = await tw.wait_topic(leaf("gas1", "telemetry"), alarm=False, lel_pct=0)
        await tw.wait_topic(leaf("light1", "telemetry"), on=False)
        assert 0 < smoke.body["battery_pct"] <= 100 and 0 < gas.body["battery_pct"] <= 100
        assert not chg.retain
        assert not tw.on(leaf("door1", "telemetry")), "an intercom reports no telemetry"


async def test_anonymous_and_wrong_password_refused(site: Site) -> None:
    await site.up(gateway(children=[]))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(HOST, site.port):
            pass
    for creds in (
        Credentials(username="gw1", password="wrong"),
        Credentials(username="nobody", password="x"),
    ):
        with pytest.raises(aiomqtt.MqttError):
            async with site.client(creds):
                pass
    async with site.client(Credentials(username="gw1", password="gw1-secret")):
        pass


async def test_inspector_reads_everything_and_writes_nothing(site: Site) -> None:
    await site.up(gateway())
    queue = site.bus.subscribe()
    async with site.watch(creds=INSPECTOR) as audit, site.watch() as platform:
        await audit.wait_topic(status("light1"), state="online")
        async with site.client(INSPECTOR) as inspector:
            cmd = json.dumps({"id": "x1", "action": "switch", "on": True})
            await inspector.publish(leaf("light1", "cmd"), cmd, qos=1)
            await inspector.publish(status("smoke1"), json.dumps({"state": "offline"}), qos=1, retain=True)
        await asyncio.sleep(0.5)
        assert not platform.on(leaf("light1", "ack")) and not platform.on(leaf("light1", "cmd"))
        assert all(m.body.get("state") != "offline" for m in platform.on(status("smoke1")))
    assert [e for e in events(queue) if e.type == "lighting"] == []


async def test_gateway_cannot_write_outside_its_subtree(site: Site) -> None:
    await site.up(gateway(), gateway("gw2", children=[]))
    async with site.watch() as w, site.client(Credentials(username="gw1", password="gw1-secret")) as gw1:
        await gw1.publish(status("gw2", gw="gw2"), json.dumps({"state": "offline"}), qos=1, retain=True)
        await asyncio.sleep(0.3)
        assert all(m.body["state"] == "online" for m in w.on(status("gw2", gw="gw2")))


# --- the Will and its timing --------------------------------------------------------------------


async def test_unplug_fires_the_will_at_once_and_children_stay_online(site: Site) -> None:
    [gw] = await site.up(gateway())
    async with site.watch() as w:
        await w.wait_topic(status("gw1"), state="online")
        t0 = time.monotonic()
        await gw.unplug()
        will = await w.wait_topic(status("gw1"), state="offline", reason="lwt")
        # at once: well before the 7.5 s (1.5 keepalives) after which a silent client's Will fires;
        # the slack is for a loaded machine
        assert will.at - t0 < 5.0
    async with site.watch() as late:
        assert (await late.wait_topic(status("gw1"), state="offline")).retain
        # the stale-retained case: the dead gateway's children still read "online"
        for child in CHILDREN:
            await late.wait_topic(status(child["id"]), state="online")
        await asyncio.sleep(0.5)
        assert not [m for m in late.messages if m.topic.endswith("/heartbeat")]  # none, however long
        await gw.replug()
        await late.wait_topic(status("gw1"), state="online")
        await late.wait_topic(leaf("smoke1", "heartbeat"))
        await gw.stop()
        await late.wait_topic(status("gw1"), state="offline", reason="shutdown")


async def test_hung_gateway_will_only_after_one_and_a_half_keepalives(site: Site) -> None:
    keepalive = 1
    spec = gateway(faults=[{"type": "hung"}], keepalive_s=keepalive, heartbeat_s=0.1)
    contexts = site.contexts(spec)
    await site.start_broker(contexts)
    gw = MqttGateway(contexts[0])
    site.gateways.append(gw)
    async with site.watch() as w:
        await gw.start()  # returns once its statuses are acknowledged; then it goes quiet
        t0 = time.monotonic()
        await w.wait_topic(status("gw1"), state="online")
        will = await w.wait_topic(status("gw1"), within=20.0, state="offline", reason="lwt")
        waited = will.at - t0
        # the broker waits 1.5 x keepalive from the last packet (mosquitto 2.0 checks every few seconds);
        # t0 and the Will's arrival are both seen late by a loaded machine, so 0.5 s of slack below
        assert waited > 1.5 * keepalive - 0.5, waited
        assert waited < 1.5 * keepalive + 12.0, waited
        assert not [m for m in w.messages if m.topic.endswith("/heartbeat") and m.at > t0 + 0.3]
    async with site.watch() as late:
        await late.wait_topic(status("smoke1"), state="online")


# --- child faults -----------------------------------------------------------------------------


async def test_heartbeat_missing_and_offline_children(site: Site) -> None:
    children: list[dict[str, Any]] = [
        {"id": "ok1", "type": "smoke_detector", "area": "b1"},
        {"id": "mute1", "type": "smoke_detector", "area": "b1", "faults": [{"type": "heartbeat_missing"}]},
        {"id": "dead1", "type": "gas_detector", "area": "garage", "faults": [{"type": "offline"}]},
    ]
    await site.up(gateway(children=children, heartbeat_s=0.1))
    async with site.watch() as w:
        await w.wait_topic(status("mute1"), state="online")
        dead = await w.wait_topic(status("dead1"), state="offline", reason="no_response")
        assert dead.retain
        await w.wait_count(leaf("ok1", "heartbeat"), 3)  # three rounds in which the others stayed mute
        assert w.on(leaf("mute1", "heartbeat")) == [] and w.on(leaf("dead1", "heartbeat")) == []
        assert w.on(leaf("mute1", "telemetry")) == [] and w.on(leaf("dead1", "telemetry")) == []


async def test_gateway_heartbeat_missing_keeps_children_beating(site: Site) -> None:
    await site.up(gateway(faults=[{"type": "heartbeat_missing"}], heartbeat_s=0.1))
    async with site.watch() as w:
        await w.wait_topic(status("gw1"), state="online")
        await w.wait_count(leaf("smoke1", "heartbeat"), 2)  # two rounds in which the gateway stayed mute
        assert w.on(leaf("gw1", "heartbeat")) == []


async def test_clock_skew_shows_in_timestamps(site: Site) -> None:
    children: list[dict[str, Any]] = [
        {
            "id": "smoke1",
            "type": "smoke_detector",
            "area": "b1",
            "faults": [{"type": "clock_skew", "seconds": -120}],
        }
    ]
    await site.up(gateway(children=children, faults=[{"type": "clock_skew", "seconds": 3600}]))
    async with site.watch() as w:
        gw_beat = await w.wait_topic(leaf("gw1", "heartbeat"))
        child_beat = await w.wait_topic(leaf("smoke1", "heartbeat"))
        now_ms = time.time() * 1000
        assert abs(gw_beat.body["ts"] - now_ms - 3_600_000) < 3000
        assert (
            abs(child_beat.body["ts"] - now_ms - 3_480_000) < 3000
        )  # set from the gateway, then its own skew


async def test_offline_gateway_never_connects(site: Site) -> None:
    await site.up(gateway(faults=[{"type": "offline"}]))
    queue = site.bus.subscribe()
    async with site.watch() as w:
        await site.bus.command("gw1", "press", device="sos1")
        await asyncio.sleep(0.4)
        assert w.messages == []
    assert events(queue) == []


# --- accounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", [True, False])
async def test_weak_credentials_open_only_with_the_fault(site: Site, weak: bool) -> None:
    faults = [{"type": "weak_credentials", "username": "admin", "password": "12345"}] if weak else []
    await site.up(gateway(faults=faults, children=[]))
    admin = Credentials(username="admin", password="12345")
    if weak:
        async with site.watch(creds=admin) as w:  # a factory default account reads everything
            await w.wait_topic(status("gw1"), state="online")
    else:
        with pytest.raises(aiomqtt.MqttError):
            async with site.client(admin):
                pass


# --- bus actions --------------------------------------------------------------------------------


async def test_bus_actions_publish_alarms_telemetry_and_events(site: Site) -> None:
    await site.up(gateway())
    queue = site.bus.subscribe()
    async with site.watch() as w:
        await w.wait_topic(status("gw1"), state="online")

        await site.bus.command("gw1", "press", device="sos1")
        sos = await w.wait_topic(leaf("sos1", "alarm"), alarm="sos", active=True)
        assert sos.qos == 1 and not sos.retain

        await site.bus.command("gw1", "smoke", device="smoke1")
        await w.wait_topic(leaf("smoke1", "alarm"), alarm="smoke", active=True)
        await w.wait_topic(leaf("smoke1", "telemetry"), alarm=True)

        await site.bus.command("gas1", "gas")  # a child's own id takes commands too
        await w.wait_topic(leaf("gas1", "alarm"), alarm="gas", active=True)
        await w.wait_topic(leaf("gas1", "telemetry"), alarm=True, lel_pct=25)

        await site.bus.command("gw1", "charger_load", device="chg1", percent=50)
        await w.wait_topic(leaf("chg1", "telemetry"), load_pct=50.0, power_w=1000)
        await site.bus.command("gw1", "charger_load", device="chg1", percent=130)
        await w.wait_topic(leaf("chg1", "telemetry"), load_pct=130.0, power_w=2600)
        await w.wait_topic(leaf("chg1", "alarm"), alarm="overload", active=True, load_pct=130.0)

        await site.bus.command("gw1", "switch", device="light1", on=True)
        state = await w.wait_topic(leaf("light1", "state"), on=True)
        await w.wait_topic(leaf("light1", "telemetry"), on=True)

        await site.bus.command("gw1", "child_offline", device="smoke1")
        gone = await w.wait_topic(status("smoke1"), state="offline", reason="no_response")
        await asyncio.sleep(0.5)
        # none sent after it (the gateway's own timestamps: a loaded broker may deliver one late)
        assert not [m for m in w.on(leaf("smoke1", "heartbeat")) if m.body["ts"] > gone.body["ts"]]
        await site.bus.command("gw1", "child_online", device="smoke1")
        back = await w.wait_topic(status("smoke1"), state="online")
        await w.wait(lambda m: m.topic == leaf("smoke1", "heartbeat") and m.at > back.at)
    async with site.watch() as late:
        assert (await late.wait_topic(leaf("light1", "state"), on=True)).retain
    assert state.body["on"] is True

    got = [(e.type, e.source, e.area, e.data.get("alarm"), e.data.get("on")) for e in events(queue)]
    assert got == [
        ("mqtt_alarm", "sos1", "garage", "sos", None),
        ("mqtt_alarm", "smoke1", "b1", "smoke", None),
        ("mqtt_alarm", "gas1", "garage", "gas", None),
        ("mqtt_alarm", "chg1", "ev", "overload", None),
        ("lighting", "light1", "garage", None, True),
        ("device_offline", "smoke1", "b1", None, None),
        ("device_online", "smoke1", "b1", None, None),
    ]


async def test_bus_action_errors_and_unreachable_children(site: Site) -> None:
    children: list[dict[str, Any]] = [
        {
            "id": "sos1",
            "type": "emergency_button",
            "area": "garage",
            "faults": [{"type": "heartbeat_missing"}],
        },
        {"id": "light1", "type": "lighting_relay", "area": "garage", "faults": [{"type": "offline"}]},
    ]
    await site.up(gateway(children=children))
    queue = site.bus.subscribe()
    with pytest.raises(KeyError):
        await site.bus.command("gw1", "press", device="nope")
    with pytest.raises(ValueError, match="no action"):
        await site.bus.command("gw1", "smoke", device="sos1")
    async with site.watch() as w:
        await w.wait_topic(status("light1"), state="offline")
        await site.bus.command("sos1", "press")  # a dead button's press never arrives
        await site.bus.command("light1", "switch", on=True)  # an unreachable relay does not switch
        await asyncio.sleep(0.3)
        assert not [m for m in w.messages if m.topic.endswith(("/alarm", "/state"))]
    assert events(queue) == []


async def test_commands_over_mqtt(site: Site) -> None:
    children: list[dict[str, Any]] = [
        {"id": "light1", "type": "lighting_relay", "area": "garage"},
        {"id": "light2", "type": "lighting_relay", "area": "garage", "faults": [{"type": "offline"}]},
        {
            "id": "light3",
            "type": "lighting_relay",
            "area": "garage",
            "faults": [{"type": "heartbeat_missing"}],
        },
        {"id": "smoke1", "type": "smoke_detector", "area": "b1"},
    ]
    await site.up(gateway(children=children))
    queue = site.bus.subscribe()
    async with site.watch() as w, site.client() as platform:
        await w.wait_topic(status("light1"), state="online")

        async def send(device: str, body: dict[str, Any]) -> None:
            await platform.publish(leaf(device, "cmd"), json.dumps(body), qos=1)

        await send("light1", {"id": "c1", "action": "switch", "on": True})
        ack = await w.wait_topic(leaf("light1", "ack"), id="c1", ok=True)
        assert ack.qos == 1
        await w.wait_topic(leaf("light1", "state"), on=True)
        await send("light2", {"id": "c2", "action": "switch", "on": True})
        await w.wait_topic(leaf("light2", "ack"), id="c2", ok=False, error="offline")
        await send("smoke1", {"id": "c3", "action": "switch", "on": True})
        await w.wait_topic(leaf("smoke1", "ack"), id="c3", ok=False, error="unsupported")
        await send("ghost", {"id": "c4", "action": "switch", "on": True})
        await w.wait_topic(leaf("ghost", "ack"), id="c4", ok=False, error="unknown_device")
        await platform.publish(leaf("light1", "cmd"), b"not json", qos=1)
        await w.wait_topic(leaf("light1", "ack"), ok=False, error="bad_json")
        await send("light3", {"id": "c5", "action": "switch", "on": True})
        await asyncio.sleep(0.3)
        assert w.on(leaf("light3", "ack")) == [] and w.on(leaf("light3", "state")) == []
    assert [(e.type, e.source, e.data["on"]) for e in events(queue)] == [("lighting", "light1", True)]


# --- transport ----------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext_listener", [False, True])
async def test_tls_listener_and_optional_plain_listener(site: Site, plaintext_listener: bool) -> None:
    contexts = site.contexts(gateway(children=[CHILDREN[0]]), tls=True)
    broker = await site.start_broker(contexts, plaintext_listener=plaintext_listener)
    endpoint = contexts[0].directory["broker"]
    assert endpoint.tls and endpoint.port == site.tls_port
    assert endpoint.extra.get("plain_port") == (site.port if plaintext_listener else None)
    gw = MqttGateway(contexts[0])
    site.gateways.append(gw)
    await gw.start()  # over TLS, trusting the site CA
    async with site.watch(tls=True) as w:
        await w.wait_topic(status("smoke1"), state="online")
    if plaintext_listener:
        async with site.client():
            pass
    else:
        with pytest.raises(aiomqtt.MqttError):
            async with site.client():
                pass
    assert broker.listeners == (((site.port, False),) if plaintext_listener else ()) + (
        (site.tls_port, True),
    )


async def test_gateway_reconnects_after_a_broker_restart(site: Site) -> None:
    await site.up(gateway(children=[CHILDREN[0]]))
    broker = site.broker
    assert broker is not None
    await broker.stop()
    await broker.start()  # persistence off: every retained status is gone until gateways say it again
    async with site.watch() as w:
        await w.wait_topic(status("gw1"), within=20.0, state="online")
        await w.wait_topic(status("smoke1"), state="online")


async def test_broker_refuses_a_busy_port(site: Site) -> None:
    await site.up(gateway(children=[]))
    twin = Broker(HOST, accounts={"u": "p"}, port=site.port, impl=site.impl, run_dir=site.tmp / "twin")
    with pytest.raises(BrokerError, match="cannot listen"):
        await twin.start()


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


async def test_cancelled_broker_leaves_nothing_behind(site: Site) -> None:
    broker = Broker(HOST, accounts={"u": "p"}, port=site.port, impl=site.impl, run_dir=site.run_dir)
    for delay in (0.0, 0.005, 0.02):  # cancelled while setting up, spawning or waiting to listen
        task = asyncio.create_task(broker.start())
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.stop()
        assert leftover_processes(site.run_dir) == [] and port_is_free(site.port)

    listening = asyncio.Event()

    async def serve() -> None:
        async with broker:
            listening.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(serve())
    async with asyncio.timeout(20):
        await listening.wait()
    assert not port_is_free(site.port)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert leftover_processes(site.run_dir) == [] and port_is_free(site.port)


def test_faults_that_do_not_apply_are_refused() -> None:
    site = Site("amqtt", Path("/nonexistent"))
    [ctx] = site.contexts(gateway(faults=[{"type": "plain_http"}]))
    with pytest.raises(ValueError, match="plain_http"):
        MqttGateway(ctx)
    [ctx] = site.contexts(gateway(children=[{**CHILDREN[0], "faults": [{"type": "hung"}]}]))
    with pytest.raises(ValueError, match="hung"):
        MqttGateway(ctx)

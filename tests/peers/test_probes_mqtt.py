"""The MQTT probes (heartbeat, gateway_status, broker_auth) against whole simulated communities, and
broker_auth against a mosquitto that lets anonymous clients in. Windows are 3 s with heartbeats
every 0.5 s (conftest.FAST), so 3 missed heartbeats fit in a window."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml
from conftest import COMMUNITIES, SiteFactory
from exchange_sink import Ledger
from site_probe import site_view

from collectors.exchange import Exchange
from collectors.mqtt.client import MqttClient
from probes import broker_auth, gateway_status, heartbeat
from probes.base import ProbeContext
from probes.finding import Finding
from probes.targets import Secret, SiteView, Target
from simulator.site import Site

pytestmark = pytest.mark.peers

# The simulated gateways beat every 0.5 s (conftest), in the test's own process: on a loaded machine
# a beat can slip by seconds, so an outage is judged over 6 missed beats (3 s), in a 4 s window.
OBSERVE_S = 4.0
MISSES = 6
HOST = "127.0.0.1"


def context(site: Site, ledger: Ledger) -> ProbeContext:
    trust = site.tls.client_context() if site.tls else None
    return ProbeContext(site=site_view(site), sink=ledger, trust=trust, call_timeout_s=5.0)


async def run_all(ctx: ProbeContext) -> dict[str, Finding]:
    """Every MQTT probe on every target it applies to, concurrently, as a run would."""
    hb = heartbeat.Params(observe_s=OBSERVE_S, heartbeat_misses=MISSES)
    gs = gateway_status.Params(observe_s=OBSERVE_S, heartbeat_misses=MISSES)
    jobs: list[Any] = []
    for t in ctx.site.targets:
        if t.kind == "mqtt_device":
            jobs.append(heartbeat.SPEC.run(ctx, t, hb))
        elif t.kind == "gateway":
            jobs.append(gateway_status.SPEC.run(ctx, t, gs))
        elif t.kind == "broker":
            jobs.append(broker_auth.SPEC.run(ctx, t, broker_auth.Params()))
    try:
        findings = await asyncio.wait_for(asyncio.gather(*jobs), 60)
    finally:
        await ctx.close()
    return {f"{f.probe}:{f.device}": f for f in findings}


def secrets_of(site: Site) -> Iterable[str]:
    return (e.password for e in site.directory.values() if e.password)


def observations(ledger: Ledger) -> list[Exchange]:
    return [e for e in ledger if e.operation.startswith("observe(")]


async def retained_until(site: Site, path: str, state: str) -> None:
    """Wait until the broker holds `state` as the retained status under {root}/{site}/`path`."""
    gw = site.directory["gw-01"].extra
    topic = f"{gw['topic_root']}/{gw['site']}/{path}"
    ctx = context(site, Ledger())
    async with asyncio.timeout(30):
        while True:
            async with MqttClient(ctx.connection(ctx.site.get("broker"))) as client:
                seen = (await client.observe([topic], 0.2)).topic(topic)
            if seen is not None and seen.retained and json.loads(seen.retained.payload)["state"] == state:
                return


async def reported(site: Site, device: str, reason: str) -> None:
    """Wait until the heartbeat probe reads `reason` for `device` (its gateway's status, through any
    MQTT profile, has reached the broker)."""
    ctx = context(site, Ledger())
    params = heartbeat.Params(observe_s=0.3)
    try:
        async with asyncio.timeout(30):
            while (await heartbeat.SPEC.run(ctx, ctx.site.get(device), params)).reason != reason:
                pass
    finally:
        await ctx.close()


# -- whole communities ----------------------------------------------------------------------------
@pytest.mark.slow
async def test_small_site_passes_then_a_child_and_the_gateway_go_down(community_site: SiteFactory) -> None:
    async with community_site("small") as site:
        ledger = Ledger()
        found = await run_all(context(site, ledger))
        assert len(found) == 22  # 20 devices, the gateway, the broker
        assert {k: (f.status, f.reason) for k, f in found.items() if f.status != "pass"} == {}
        [window] = observations(ledger)  # one subscription served all 21 device probes
        assert all(f.evidence == (window.id,) for k, f in found.items() if not k.startswith("broker_auth"))
        smoke = found["heartbeat:smoke-b1-0101"].facts
        assert smoke["status"] == "online" and smoke["heartbeat_count"] >= 4
        assert smoke["interval_from"] == "inventory" and smoke["heartbeat_interval_s"] == 0.5
        assert abs(smoke["clock_skew_s"]) < 5  # the same clock, read after a delivery a loaded machine slows
        gw = found["gateway_status:gw-01"].facts
        assert gw["children"] == 20 and gw["children_by_reason"] == {"alive": 20}
        auth = found["broker_auth:broker"]
        assert auth.reason == "auth_enforced" and auth.facts["anonymous_accepted"] is False
        assert auth.facts["tls_offered"] is True and auth.facts["plain_listener_open"] is False
        assert auth.facts["failed_logins_made"] == 2  # one anonymous, one wrong password, never more
        assert len(auth.evidence) == 4  # control, anonymous, wrong password, the (closed) plain port
        dumped = ledger.dumped()
        assert not [s for s in secrets_of(site) if s in dumped]
        assert "zhian-wrong-" not in dumped

        await site.operator("gw-01", "child_offline", device="smoke-b1-0101")
        await retained_until(site, "gw-01/smoke-b1-0101/status", "offline")  # before the cable goes
        await site.operator("gw-01", "unplug")
        ledger = Ledger()
        found = await run_all(context(site, ledger))
        child = found["heartbeat:smoke-b1-0101"]
        assert (child.status, child.reason) == ("fail", "offline")
        assert child.facts["status_reason"] == "no_response"
        gateway = found["gateway_status:gw-01"]
        assert (gateway.status, gateway.reason) == ("fail", "offline")
        assert gateway.facts["status_reason"] == "lwt" and "Last Will" in gateway.detail
        # the Will covers the gateway only: its children stay retained online, and silent
        assert gateway.facts["children_by_reason"] == {"offline": 1, "stale_online": 19}
        assert gateway.facts["children_not_alive"]["offline"] == ["smoke-b1-0101"]
        stale = found["heartbeat:gas-b1-0101"]
        assert (stale.status, stale.reason) == ("fail", "stale_online")
        assert stale.facts["heartbeat_count"] == 0 and stale.facts["status_retained"] is True


@pytest.mark.parametrize("profile", ["zigbee2mqtt", "homeassistant"])
@pytest.mark.slow
async def test_a_gateway_speaking_another_profile(
    community_site: SiteFactory, tmp_path: Path, profile: str
) -> None:
    """The small site with its gateway speaking zigbee2mqtt or Home Assistant discovery: the written
    config names the profile, every device is judged alive through it, and a child the gateway
    loses is found offline by its availability; then the gateway's Last Will."""
    doc = yaml.safe_load((COMMUNITIES / "small.yaml").read_text(encoding="utf-8"))
    for device in doc["devices"]:
        if device["id"] == "gw-01":
            device["gateway"]["mqtt_profile"] = profile
    community = tmp_path / f"small-{profile}.yaml"
    community.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    async with community_site(str(community.with_suffix(""))) as site:
        ctx = context(site, Ledger())
        assert ctx.site.get("gw-01").params["profile"] == profile
        found = await run_all(ctx)
        assert {k: (f.status, f.reason) for k, f in found.items() if f.status != "pass"} == {}
        gw = found["gateway_status:gw-01"].facts
        assert gw["profile"] == profile and gw["children_by_reason"] == {"alive": 20}
        await site.operator("gw-01", "child_offline", device="smoke-b1-0101")
        await reported(site, "smoke-b1-0101", "offline")  # before the cable goes
        await site.operator("gw-01", "unplug")
        found = await run_all(context(site, Ledger()))
        assert (found["heartbeat:smoke-b1-0101"].reason, found["gateway_status:gw-01"].reason) == (
            "offline",
            "offline",
        )
        assert found["heartbeat:gas-b1-0101"].reason == "stale_online"


@pytest.mark.parametrize("impl", ["auto", "amqtt"])
async def test_faulty_site_shows_exactly_the_silent_detector(community_site: SiteFactory, impl: str) -> None:
    async with community_site("faulty", broker=impl) as site:
        ledger = Ledger()
        found = await run_all(context(site, ledger))
        failing = {k: (f.status, f.reason) for k, f in found.items() if f.status != "pass"}
        assert failing == {"heartbeat:smoke-b1-0102": ("fail", "stale_online")}
        stale = found["heartbeat:smoke-b1-0102"].facts
        assert stale["status"] == "online" and stale["heartbeat_count"] == 0
        assert stale["missed_in_a_row"] >= 3 and stale["last_seen"] is None
        gw = found["gateway_status:gw-01"].facts
        assert gw["children_by_reason"] == {"alive": 19, "stale_online": 1}
        assert not [s for s in secrets_of(site) if s in ledger.dumped()]


async def test_window_too_short_to_judge_a_silent_device(community_site: SiteFactory) -> None:
    async with community_site("faulty") as site:
        ctx = context(site, Ledger())
        target = ctx.site.get("smoke-b1-0102")
        try:
            short = await heartbeat.SPEC.run(ctx, target, heartbeat.Params(observe_s=1.0))
            alive = await heartbeat.SPEC.run(
                ctx, ctx.site.get("smoke-b1-0101"), heartbeat.Params(observe_s=1.0)
            )
        finally:
            await ctx.close()
    assert (short.status, short.reason) == ("not_assessed", "window_too_short")
    assert short.facts["window_needed_s"] == 1.5 and short.evidence
    assert alive.status == "pass"  # heartbeats seen: a short window is enough to show life


# -- broker failures ------------------------------------------------------------------------------
async def test_unreachable_broker_is_an_error_with_evidence() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    broker = Target("broker", "broker", "mqtt", HOST, port, "mc", username="u", password=Secret("p-1234"))
    common = {"broker": "broker", "topic_root": "r", "site": "s", "heartbeat_s": 0.5}
    device = Target("d1", "mqtt_device", "mqtt", HOST, port, "mc", params=common | {"gateway": "gw"})
    ledger = Ledger()
    ctx = ProbeContext(site=SiteView("t", (broker, device)), sink=ledger, call_timeout_s=2.0)
    found = await run_all(ctx)
    hb, auth = found["heartbeat:d1"], found["broker_auth:broker"]
    [window] = observations(ledger)
    assert (hb.status, hb.reason) == ("error", "unreachable") and hb.evidence == (window.id,)
    assert (auth.status, auth.reason) == ("error", "unreachable") and auth.evidence


# -- broker_auth against a broker that lets anyone in ---------------------------------------------
@asynccontextmanager
async def open_mosquitto(tmp: Path, *, passwords: dict[str, str] | None) -> AsyncIterator[int]:
    """mosquitto with allow_anonymous true on a free loopback port (a password file if given)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    lines = [
        # as root, mosquitto would drop to a user that cannot read tmp_path
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
        f"listener {port} {HOST}",
        "allow_anonymous true",
        "persistence false",
        "log_dest none",
    ]
    if passwords is not None:
        pw = tmp / "passwd"
        pw.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
        hashing = await asyncio.create_subprocess_exec("mosquitto_passwd", "-U", str(pw))
        assert await hashing.wait() == 0
        lines.append(f"password_file {pw}")
    conf = tmp / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = await asyncio.create_subprocess_exec(
        "mosquitto", "-c", str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    _, writer = await asyncio.open_connection(HOST, port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield port
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="no mosquitto")
@pytest.mark.parametrize("password_file", [True, False])
async def test_broker_auth_fails_a_broker_open_to_anonymous(tmp_path: Path, password_file: bool) -> None:
    account = {"inspector": "inspector-pass-3310"}
    async with open_mosquitto(tmp_path, passwords=account if password_file else None) as port:
        broker = Target(
            "broker",
            "broker",
            "mqtt",
            HOST,
            port,
            "mc",
            username="inspector",
            password=Secret(account["inspector"]),
        )
        ledger = Ledger()
        ctx = ProbeContext(site=SiteView("t", (broker,)), sink=ledger, call_timeout_s=3.0)
        found = await run_all(ctx)
    auth = found["broker_auth:broker"]
    assert (auth.status, auth.reason) == ("fail", "anonymous_allowed")
    assert auth.facts["anonymous_accepted"] is True and auth.facts["control_accepted"] is True
    # without a password file mosquitto takes any password as well
    assert auth.facts["wrong_password_accepted"] is (not password_file)
    assert auth.facts["tls_offered"] is False and auth.facts["plain_listener_open"] is True
    assert len(auth.evidence) == 3 and account["inspector"] not in ledger.dumped()


# -- other gateway profiles on a real broker -------------------------------------------------------
async def publish_like(
    port: int, retained: dict[str, bytes], beats: dict[str, bytes], ready: asyncio.Event
) -> None:
    """A gateway of another shape: its retained statuses once (then `ready`), then its devices'
    states every 0.3 s until cancelled."""
    async with aiomqtt.Client(HOST, port) as client:
        for topic, payload in retained.items():
            await client.publish(topic, payload, qos=1, retain=True)
        ready.set()
        while True:
            for topic, payload in beats.items():
                await client.publish(topic, payload, qos=0)
            await asyncio.sleep(0.3)


def profiled(gateway: str, profile: str, root: str, children: list[str], port: int) -> list[Target]:
    common = {"broker": "broker", "profile": profile, "topic_root": root, "heartbeat_s": 0.3}
    gw = Target(gateway, "gateway", "mqtt", HOST, port, "mc", params=common | {"children": children})
    kids = [
        Target(c, "mqtt_device", "mqtt", HOST, port, "mc", params=common | {"gateway": gateway})
        for c in children
    ]
    return [gw, *kids]


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="no mosquitto")
async def test_zigbee2mqtt_and_home_assistant_gateways_on_one_broker(tmp_path: Path) -> None:
    """Two gateways of other shapes side by side: a zigbee2mqtt bridge and a Home Assistant
    discovery hub; a live device passes, a retained "online" with no state fails as stale, an
    "offline" availability fails as offline."""
    async with open_mosquitto(tmp_path, passwords=None) as port:
        broker = Target(
            "broker", "broker", "mqtt", HOST, port, "mc", username="inspector", password=Secret("x")
        )
        targets = [
            broker,
            *profiled("z2m", "zigbee2mqtt", "zigbee2mqtt", ["smoke-1", "smoke-2", "gas-1"], port),
            *profiled("hub", "homeassistant", "homeassistant", ["sos-1", "sos-2"], port),
        ]
        online = b'{"state":"online"}'
        z2m_retained = {
            "zigbee2mqtt/bridge/state": online,
            "zigbee2mqtt/smoke-1/availability": online,
            "zigbee2mqtt/smoke-2/availability": online,
            "zigbee2mqtt/gas-1/availability": b'{"state":"offline"}',
        }
        z2m_beats = {
            "zigbee2mqtt/smoke-1": b'{"smoke":false,"battery":97,"last_seen":"2026-12-07T10:00:00Z"}'
        }

        def config(node: str) -> bytes:
            return json.dumps({"~": f"site/{node}", "stat_t": "~/state", "avty_t": "~/availability"}).encode()

        ha_retained = {
            "homeassistant/binary_sensor/sos-1/button/config": config("sos-1"),
            "homeassistant/binary_sensor/sos-2/button/config": config("sos-2"),
            "site/sos-1/availability": b"online",
            "site/sos-2/availability": b"online",
        }
        ha_beats = {"site/sos-1/state": b"OFF"}
        ledger = Ledger()
        ctx = ProbeContext(site=SiteView("t", tuple(targets)), sink=ledger, call_timeout_s=3.0)
        ready = [asyncio.Event(), asyncio.Event()]
        gateways = asyncio.gather(
            publish_like(port, z2m_retained, z2m_beats, ready[0]),
            publish_like(port, ha_retained, ha_beats, ready[1]),
        )
        try:
            async with asyncio.timeout(30):  # the retained statuses are in before the window opens
                await asyncio.gather(*(r.wait() for r in ready))
            found = await run_all(ctx)  # the states go on beating until every window has closed
        finally:
            gateways.cancel()
            await asyncio.gather(gateways, return_exceptions=True)
    reasons = {k: f.reason for k, f in found.items() if not k.startswith("broker_auth")}
    assert reasons == {
        "gateway_status:z2m": "alive",
        "heartbeat:smoke-1": "alive",
        "heartbeat:smoke-2": "stale_online",
        "heartbeat:gas-1": "offline",
        "gateway_status:hub": "silent",  # the hub announces no entity of its own (node_id hub)
        "heartbeat:sos-1": "alive",
        "heartbeat:sos-2": "stale_online",
    }
    z2m = found["gateway_status:z2m"]
    assert z2m.facts["profile"] == "zigbee2mqtt" and z2m.facts["children_by_reason"] == {
        "alive": 1,
        "offline": 1,
        "stale_online": 1,
    }
    assert len(observations(ledger)) == 2  # zigbee2mqtt/# and #: one subscription each, shared by all

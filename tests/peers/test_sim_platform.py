"""The simulated management platform: its HTTP API, linkages, alerts on MQTT, offline detection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from simulator.bus import CommandHandler, SiteBus, SiteEvent
from simulator.isapi import IsapiDoorController
from simulator.latency import Latency
from simulator.model import Community, Credentials
from simulator.platform import Platform
from simulator.runtime import DeviceContext, Endpoint
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers

USER, PASSWORD = "operator", "Plat-Pass!9"
SITE = "plat-test"
ALERTS = f"zhian-sim/{SITE}/platform/alerts/#"
LINKAGE = {
    "fire_camera_alarm_s": 0.1,
    "fire_unlock_doors_s": 0.3,
    "fire_emergency_lighting_s": 0.2,
    "fire_broadcast_s": 0.35,
    "fire_platform_alert_s": 0.15,
    "intrusion_camera_alarm_s": 0.1,
    "intrusion_lighting_s": 0.2,
    "intrusion_platform_alert_s": 0.1,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real mosquitto on loopback; anonymous access is fine for this test broker only."""
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def community(platform_faults: list[dict[str, Any]] | None = None) -> Community:
    return Community.model_validate(
        {
            "name": SITE,
            "linkage": LINKAGE,
            "areas": [
                {"id": "u1", "kind": "unit_entrance"},
                {"id": "per", "kind": "perimeter"},
                {"id": "mc", "kind": "monitoring_center"},
            ],
            "devices": [
                {
                    "id": "panel1",
                    "kind": "panel",
                    "protocol": "modbus",
                    "area": "mc",
                    "panel": {"zones": [{"id": 1, "area": "u1"}]},
                },
                {"id": "door1", "kind": "door", "protocol": "isapi", "area": "u1"},
                {
                    "id": "door2",
                    "kind": "door",
                    "protocol": "isapi",
                    "area": "mc",
                    "door": {"fire_zone": "u1"},
                },
                {"id": "door3", "kind": "door", "protocol": "isapi", "area": "mc"},
                {"id": "cam1", "kind": "camera", "protocol": "onvif", "area": "u1"},
                {"id": "camp", "kind": "camera", "protocol": "onvif", "area": "per"},
                {
                    "id": "gw1",
                    "kind": "gateway",
                    "protocol": "mqtt",
                    "area": "u1",
                    "gateway": {
                        "devices": [
                            {"id": "relay1", "type": "lighting_relay", "area": "u1"},
                            {"id": "smoke1", "type": "smoke_detector", "area": "u1"},
                            {"id": "relayp", "type": "lighting_relay", "area": "per"},
                        ]
                    },
                },
                {
                    "id": "plat",
                    "kind": "platform",
                    "protocol": "http",
                    "area": "mc",
                    "faults": platform_faults or [],
                    "platform": {"offline_after_s": 0.6, "poll_interval_s": 0.2},
                },
            ],
        }
    )


def endpoint(id_: str, kind: str, protocol: str, port: int, path: str = "") -> Endpoint:
    return Endpoint(id_, kind, protocol, "127.0.0.1", port, path, USER, PASSWORD, "u1", {}, [])


def context(
    comm: Community, device: str, bus: SiteBus, directory: dict[str, Endpoint], **kw: Any
) -> DeviceContext:
    return DeviceContext(
        spec=next(d for d in comm.devices if d.id == device),
        community=comm,
        host="127.0.0.1",
        port=0,
        credentials=Credentials(username=USER, password=PASSWORD),
        bus=bus,
        latency=Latency({}, scale=0),
        server_tls=kw.get("server_tls"),
        client_tls=kw.get("client_tls"),
        directory=directory,
    )


class Site:
    """A platform, a real ISAPI door (door1) and fake actuators that log when commands land."""

    def __init__(self, platform: Platform, door: IsapiDoorController, bus: SiteBus) -> None:
        self.platform, self.door, self.bus = platform, door, bus
        self.calls: list[tuple[str, str, dict[str, Any], float]] = []
        self.t0 = time.monotonic()

    def actuator(self, device_id: str) -> CommandHandler:
        async def handle(action: str, params: dict[str, Any]) -> None:
            self.calls.append((device_id, action, params, time.monotonic() - self.t0))

        return handle

    def url(self, path: str) -> str:
        scheme = "https" if self.platform.ctx.server_tls else "http"
        return f"{scheme}://127.0.0.1:{self.platform.port}{path}"


@pytest.fixture
async def make_site(broker: int) -> AsyncIterator[Callable[..., Any]]:
    running: list[Platform | IsapiDoorController] = []
    # cam1's address: a port bound but not listening refuses connections and stays ours meanwhile.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))

    async def _make(platform_faults: list[dict[str, Any]] | None = None, tls_dir: Path | None = None) -> Site:
        comm = community(platform_faults)
        bus = SiteBus()
        directory = {"broker": endpoint("broker", "broker", "mqtt", broker)}
        door = IsapiDoorController(context(comm, "door1", bus, directory))
        await door.start()
        running.append(door)
        directory["door1"] = endpoint("door1", "door", "isapi", door.port, "/ISAPI")
        directory["cam1"] = endpoint(
            "cam1", "camera", "onvif", dead.getsockname()[1], "/onvif/device_service"
        )
        tls: dict[str, Any] = {}
        if tls_dir is not None:
            site_tls = make_site_tls(tls_dir, SITE, ["127.0.0.1"])
            tls = {"server_tls": site_tls.server_context(), "client_tls": site_tls.client_context()}
        platform = Platform(context(comm, "plat", bus, directory, **tls))
        await platform.start()
        running.append(platform)
        await asyncio.wait_for(platform.mqtt.connected.wait(), 20)
        site = Site(platform, door, bus)
        for dev in ("door2", "cam1", "camp", "panel1", "relay1", "relayp"):
            bus.register(dev, site.actuator(dev))
        return site

    yield _make
    for device in reversed(running):
        await device.stop()
    dead.close()


async def login(s: aiohttp.ClientSession, site: Site, user: str = USER, password: str = PASSWORD) -> str:
    async with s.post(site.url("/api/v1/login"), json={"username": user, "password": password}) as r:
        assert r.status == 200, await r.text()
        token: str = (await r.json())["token"]
        return token


async def get(s: aiohttp.ClientSession, site: Site, path: str, token: str) -> Any:
    async with s.get(site.url(path), headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def until(predicate: Callable[[], bool], within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def mqtt_listener(broker: int) -> AsyncIterator[list[tuple[str, dict[str, Any], float]]]:
    """The platform's alerts and commands as a subscriber sees them, with their arrival times."""
    got: list[tuple[str, dict[str, Any], float]] = []
    async with aiomqtt.Client("127.0.0.1", broker, identifier="test-listener") as client:
        await client.subscribe(ALERTS, qos=1)
        await client.subscribe(f"zhian-sim/{SITE}/+/+/cmd", qos=1)

        async def collect() -> None:
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                got.append((m.topic.value, json.loads(m.payload), time.monotonic()))

        task = asyncio.get_running_loop().create_task(collect())
        try:
            yield got
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_api_requires_login_and_serves_its_views(make_site: Callable[..., Any], tmp_path: Path) -> None:
    site: Site = await make_site(tls_dir=tmp_path)
    tls = site.platform.ctx.client_tls
    assert tls is not None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as s:
        for path in (
            "/api/v1/alerts",
            "/api/v1/events",
            "/api/v1/devices",
            "/api/v1/linkages",
            "/api/v1/time",
        ):
            async with s.get(site.url(path)) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        async with s.get(site.url("/api/v1/residents"), headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        async with s.get(site.url("/api/v1/health")) as r:
            assert r.status == 200
        async with s.post(site.url("/api/v1/login"), json={"username": USER, "password": "x"}) as r:
            assert r.status == 401
            assert (await r.json())["remaining_attempts"] == 3  # the bad token counted too
        token = await login(s, site)
        devices = {d["id"]: d for d in (await get(s, site, "/api/v1/devices", token))["devices"]}
        assert set(devices) >= {"door1", "cam1", "gw1", "smoke1", "panel1"}
        linkages = (await get(s, site, "/api/v1/linkages", token))["linkages"]
        fire = next(r for r in linkages if r["id"] == "fire:panel1:1")
        unlocks = {e["target"] for e in fire["effects"] if e["action"] == "unlock"}
        assert unlocks == {"door1", "door2"}
        assert {r["id"] for r in linkages} == {"fire:panel1:1", "intrusion:per"}
        clock = await get(s, site, "/api/v1/time", token)
        assert clock["time"].endswith("+08:00") and abs(clock["epoch"] - time.time()) < 5
        people = (await get(s, site, "/api/v1/residents", token))["residents"]
        assert all(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", p["id_number"]) for p in people)
        assert all(re.fullmatch(r"1\d\d\*{4}\d{4}", p["mobile"]) for p in people)

        # The site's real door answers the platform's polls.
        await until(lambda: site.platform.state.devices["door1"].status == "online")

        await site.platform.unplug()
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(site.url("/api/v1/health"))
        await site.platform.replug()
        async with s.get(site.url("/api/v1/health")) as r:
            assert r.status == 200

        statuses = []
        for _ in range(5):  # the good login above cleared the count
            async with s.post(site.url("/api/v1/login"), json={"username": USER, "password": "x"}) as r:
                statuses.append(r.status)
        assert statuses == [401, 401, 401, 401, 429]
        async with s.post(site.url("/api/v1/login"), json={"username": USER, "password": PASSWORD}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0


# Never before its configured delay; after it by as much as a loaded machine runs a timer late.
LATE_S = 2.0


async def test_fire_alarm_drives_linkages_alerts_and_reset(
    make_site: Callable[..., Any], broker: int
) -> None:
    site: Site = await make_site()
    async with mqtt_listener(broker) as published, aiohttp.ClientSession() as s:
        token = await login(s, site)
        site.t0 = time.monotonic()
        site.bus.publish(
            SiteEvent("fire_alarm", "panel1", "u1", {"zone": 1, "area": "u1", "test_mode": False})
        )
        await until(lambda: any(c[1] == "broadcast" for c in site.calls) and site.door.unlocked)
        await until(lambda: any(t.endswith("/fire_alarm") for t, _, _ in published))
        relay_cmd = f"zhian-sim/{SITE}/gw1/relay1/cmd"
        await until(lambda: any(t == relay_cmd for t, _, _ in published))

        landed = {(c[0], c[1]): (c[2], c[3]) for c in site.calls}
        for key, delay in {
            ("cam1", "alarm"): 0.1,
            ("door2", "unlock"): 0.3,
            ("panel1", "lighting"): 0.2,
            ("panel1", "broadcast"): 0.35,
        }.items():
            assert delay <= landed[key][1] < delay + LATE_S, (key, landed[key])
        assert landed[("door2", "unlock")][0] == {"reason": "fire"}
        # The relay is switched the way a platform does it: an MQTT cmd to its gateway.
        _, cmd, arrived = next(p for p in published if p[0] == relay_cmd)
        assert cmd["action"] == "switch" and cmd["on"] is True
        assert 0.2 <= arrived - site.t0 < 0.2 + LATE_S
        assert ("relay1", "switch") not in landed
        assert ("camp", "alarm") not in landed and ("door3", "unlock") not in landed
        assert site.door.mode == "alwaysOpen"  # the real ISAPI door took the fire release

        alerts = (await get(s, site, "/api/v1/alerts?type=fire_alarm", token))["alerts"]
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert["area"] == "u1" and alert["severity"] == "critical" and alert["acknowledged"] is False
        assert alert["device"] == "panel1" and alert["source_time"] < alert["raised_at"]
        topic, body, _ = next(p for p in published if p[0].endswith("/fire_alarm"))
        assert topic == f"zhian-sim/{SITE}/platform/alerts/fire_alarm" and body["id"] == alert["id"]

        log = (await get(s, site, "/api/v1/events?limit=5000", token))["events"]
        steps = [e for e in log if e["kind"] == "linkage"]
        door_step = next(e for e in steps if e["target"] == "door2")
        assert door_step["configured_delay_s"] == 0.3 and door_step["delay_s"] >= 0.3
        assert {"trigger_time", "received_at", "effect_at"} <= set(door_step)
        assert any(e["target"] == "platform" and e["action"] == "platform_alert" for e in steps)
        assert any(e["kind"] == "site_event" and e["type"] == "fire_alarm" for e in log)

        async with s.post(
            site.url(f"/api/v1/alerts/{alert['id']}/ack"), headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert (await r.json())["acknowledged"] is True

        site.calls.clear()
        site.bus.publish(SiteEvent("fire_reset", "panel1", None, {"zones": [1]}))
        await until(lambda: not site.door.unlocked and len(site.calls) >= 3)
        await until(lambda: [c["on"] for t, c, _ in published if t == relay_cmd] == [True, False])
        resets = {(c[0], c[1]): c[2] for c in site.calls}
        assert resets[("door2", "lock")] == {"reason": "fire_reset"}
        assert resets[("panel1", "lighting")]["on"] is False
        assert resets[("panel1", "broadcast")]["on"] is False


async def test_intrusion_on_perimeter(make_site: Callable[..., Any], broker: int) -> None:
    site: Site = await make_site()
    relay_cmd = f"zhian-sim/{SITE}/gw1/relayp/cmd"
    async with mqtt_listener(broker) as published:
        site.t0 = time.monotonic()
        site.bus.publish(SiteEvent("intrusion", "camp", "per", {"rule": "line_crossing"}))
        await until(lambda: any(t == relay_cmd for t, _, _ in published))
    landed = {(c[0], c[1]): c[3] for c in site.calls}
    assert 0.1 <= landed[("camp", "alarm")] < 0.1 + LATE_S
    arrived = next(at for t, _, at in published if t == relay_cmd)
    assert 0.2 <= arrived - site.t0 < 0.2 + LATE_S
    await until(lambda: any(a.type == "intrusion" for a in site.platform.state.alerts))
    site.bus.publish(SiteEvent("door_forced", "door3", "mc", {"door_no": 1}))
    site.bus.publish(SiteEvent("video_loss", "cam1", "u1", {}))
    await until(lambda: {"door_forced", "video_loss"} <= {a.type for a in site.platform.state.alerts})


async def _beat(client: aiomqtt.Client, devices: list[str], stop: asyncio.Event) -> float:
    """Heartbeats every 0.1 s until `stop`; returns when the last one began to leave (monotonic): the
    platform cannot have heard it earlier, so its silence is measured from no earlier moment."""
    last = time.monotonic()
    while not stop.is_set():
        last = time.monotonic()
        for dev in devices:
            await client.publish(f"zhian-sim/{SITE}/gw1/{dev}/heartbeat", json.dumps({"ts": time.time()}))
        await asyncio.sleep(0.1)
    return last


async def test_offline_detection(make_site: Callable[..., Any], broker: int) -> None:
    site: Site = await make_site()
    state = site.platform.state
    async with aiomqtt.Client("127.0.0.1", broker, identifier="fake-gw1") as gw:
        quiet = asyncio.Event()
        loop = asyncio.get_running_loop()
        beaters = [
            loop.create_task(_beat(gw, ["gw1", "relay1", "relayp"], asyncio.Event())),
            loop.create_task(_beat(gw, ["smoke1"], quiet)),
        ]

        def count(kind: str, device: str) -> int:
            return sum(1 for a in state.alerts if a.type == kind and a.device == device)

        try:
            await until(lambda: state.devices["smoke1"].status == "online")
            offline_before = count("device_offline", "smoke1")  # a slow start may have raised one
            quiet.set()
            await until(lambda: count("device_offline", "smoke1") > offline_before)
            # from its last heartbeat, not from `quiet`: that one may have left up to a beat before
            assert time.monotonic() - await beaters[1] >= 0.6
            assert state.devices["gw1"].status == "online"

            await gw.publish(
                f"zhian-sim/{SITE}/gw1/smoke1/alarm", json.dumps({"alarm": "smoke", "active": True})
            )
            await until(lambda: any(a.type == "smoke_alarm" for a in state.alerts))
            online_before = count("device_online", "smoke1")
            beaters.append(loop.create_task(_beat(gw, ["smoke1"], asyncio.Event())))
            await until(lambda: count("device_online", "smoke1") > online_before)

            relay_before = count("device_offline", "relay1")
            await gw.publish(
                f"zhian-sim/{SITE}/gw1/relay1/status",
                json.dumps({"state": "offline", "reason": "no_response"}),
                retain=True,
            )
            # relay1 keeps beating, so only the alert stays; its reason names the status message.
            await until(lambda: count("device_offline", "relay1") > relay_before)
            relay = [a for a in state.alerts if a.type == "device_offline" and a.device == "relay1"][-1]
            assert "status" in relay.data["reason"]
            clear = f"zhian-sim/{SITE}/gw1/relay1/status"
            await gw.publish(clear, b"", retain=True)  # leave no retained offline behind
        finally:
            for beater in beaters:
                beater.cancel()

    # A camera whose port refuses: two failed polls, then offline.
    await until(lambda: any(a.type == "device_offline" and a.device == "cam1" for a in state.alerts))
    cam = next(a for a in state.alerts if a.device == "cam1")
    assert cam.data["via"] == "poll"


async def test_platform_without_offline_alert(make_site: Callable[..., Any]) -> None:
    site: Site = await make_site([{"type": "platform_no_offline_alert"}])
    state = site.platform.state
    await until(
        lambda: state.devices["cam1"].status == "offline" and state.devices["smoke1"].status == "offline"
    )
    async with aiohttp.ClientSession() as s:
        token = await login(s, site)
        devices = {d["id"]: d for d in (await get(s, site, "/api/v1/devices", token))["devices"]}
        alerts = (await get(s, site, "/api/v1/alerts", token))["alerts"]
    assert devices["cam1"]["status"] == "offline" and devices["smoke1"]["status"] == "offline"
    assert not [a for a in alerts if a["type"] == "device_offline"]

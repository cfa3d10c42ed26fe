"""The simulated Hikvision ISAPI door controller and NVR, read by a plain aiohttp Digest client."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import ssl
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from security_helpers import PASSWORD, USER, Starter, isapi

from simulator.bus import SiteBus
from simulator.isapi import IsapiDoorController, IsapiNvr
from simulator.isapi.common import IsapiDevice
from simulator.model import Community
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
__all__ = ["isapi"]  # the fixture, imported for pytest


def community(door: dict[str, Any] | None = None, nvr: dict[str, Any] | None = None) -> Community:
    return Community.model_validate(
        {
            "name": "isapi-test",
            "areas": [{"id": "u1", "kind": "unit_entrance"}, {"id": "mc", "kind": "monitoring_center"}],
            "devices": [
                {"id": "door1", "kind": "door", "protocol": "isapi", "area": "u1", **(door or {})},
                {"id": "nvr1", "kind": "nvr", "protocol": "isapi", "area": "mc", **(nvr or {})},
                {
                    "id": "cam1",
                    "kind": "camera",
                    "protocol": "onvif",
                    "area": "u1",
                    "camera": {"recorded_by": "nvr1", "channel": 1},
                },
                {
                    "id": "cam2",
                    "kind": "camera",
                    "protocol": "onvif",
                    "area": "u1",
                    "camera": {"recorded_by": "nvr1", "channel": 2},
                    "faults": [{"type": "recording_gap", "days_ago": 1.0, "hours": 3}],
                },
                {"id": "plat", "kind": "platform", "protocol": "http", "area": "mc"},
            ],
        }
    )


@pytest.fixture
def start(isapi: Starter) -> Starter:
    """Starts a door or NVR of a one-off community (doors/NVR settings given); stops all at the end."""

    async def _start(
        cls: type[IsapiDoorController] | type[IsapiNvr],
        *,
        door: dict[str, Any] | None = None,
        nvr: dict[str, Any] | None = None,
        tls: ssl.SSLContext | None = None,
        bus: SiteBus | None = None,
    ) -> Any:
        return await isapi(cls, community(door, nvr), tls=tls, bus=bus)

    return _start


def client(user: str = USER, password: str = PASSWORD, **kw: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        middlewares=(aiohttp.DigestAuthMiddleware(user, password),),
        timeout=aiohttp.ClientTimeout(total=5),
        **kw,
    )


def url(device: IsapiDevice, path: str, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{device.port}{path}"


async def get_xml(session: aiohttp.ClientSession, address: str) -> ET.Element:
    async with session.get(address) as r:
        assert r.status == 200, await r.text()
        return ET.fromstring(await r.read())


async def acs_search(session: aiohttp.ClientSession, door: IsapiDevice, **cond: Any) -> dict[str, Any]:
    body = {"AcsEventCond": {"searchID": "t1", "searchResultPosition": 0, "maxResults": 100, **cond}}
    async with session.post(url(door, "/ISAPI/AccessControl/AcsEvent?format=json"), json=body) as r:
        assert r.status == 200, await r.text()
        result: dict[str, Any] = (await r.json())["AcsEvent"]
        return result


async def test_door_endpoints_read_with_digest(start: Starter) -> None:
    door = await start(IsapiDoorController)
    async with client() as s:
        info = await get_xml(s, url(door, "/ISAPI/System/deviceInfo"))
        assert info.tag == f"{NS}DeviceInfo"
        assert info.findtext(f"{NS}model") == "DS-K1T671M"
        assert info.findtext(f"{NS}deviceType") == "ACS"
        clock = await get_xml(s, url(door, "/ISAPI/System/time"))
        local = datetime.fromisoformat(clock.findtext(f"{NS}localTime") or "")
        assert local.utcoffset() == timedelta(hours=8)
        assert abs((local - datetime.now(UTC)).total_seconds()) < 5
        assert clock.findtext(f"{NS}timeMode") == "NTP"
        lock = await get_xml(s, url(door, "/ISAPI/Security/illegalLoginLock"))
        assert lock.findtext(f"{NS}enabled") == "true"
        assert lock.findtext(f"{NS}maxIllegalLoginTimes") == "5"
        check = await get_xml(s, url(door, "/ISAPI/Security/userCheck"))
        assert check.findtext(f"{NS}isRiskPassword") == "false"
        param = await get_xml(s, url(door, "/ISAPI/AccessControl/Door/param/1"))
        assert param.findtext(f"{NS}magneticAlarmTimeout") == "30"
        async with s.get(url(door, "/ISAPI/AccessControl/AcsWorkStatus?format=json")) as r:
            status = (await r.json())["AcsWorkStatus"]
        assert status["doorStatus"] == [4] and status["doorLockStatus"] == [0]
        async with s.get(url(door, "/ISAPI/Nothing/here")) as r:
            assert r.status == 404
            err = ET.fromstring(await r.read())
        assert err.tag == f"{NS}ResponseStatus"
        assert err.findtext(f"{NS}requestURL") == "/ISAPI/Nothing/here"
        assert err.findtext(f"{NS}statusCode") == "4"
        assert err.findtext(f"{NS}subStatusCode") == "notSupport"

        # The seeded log pages 30 at a time whatever maxResults asks, oldest first.
        first = await acs_search(s, door)
        assert first["responseStatusStrg"] == "MORE"
        assert first["numOfMatches"] == 30 and first["totalMatches"] == 60
        second = await acs_search(s, door, searchResultPosition=30)
        assert second["responseStatusStrg"] == "OK" and second["numOfMatches"] == 30
        times = [datetime.fromisoformat(i["time"]) for i in first["InfoList"] + second["InfoList"]]
        assert times == sorted(times)
        faces = await acs_search(s, door, major=5, minor=0x4B)
        assert faces["totalMatches"] == 20
        none = await acs_search(s, door, startTime="2000-01-01T00:00:00+08:00", endTime="2000-01-02T00:00:00")
        assert none["responseStatusStrg"] == "NO MATCH" and "InfoList" not in none


async def test_challenge_shape_and_tls(start: Starter, tmp_path: Path) -> None:
    tls = make_site_tls(tmp_path, "isapi-test", ["127.0.0.1"])
    door = await start(IsapiDoorController, tls=tls.server_context())
    address = url(door, "/ISAPI/System/deviceInfo", "https")
    async with aiohttp.ClientSession() as bare, bare.get(address, ssl=tls.client_context()) as r:
        assert r.status == 401
        challenge = r.headers["WWW-Authenticate"]
        body = ET.fromstring(await r.read())
    assert challenge.startswith('Digest realm="DS-K1T671M"') and 'qop="auth"' in challenge
    assert 'algorithm="MD5"' in challenge
    assert body.tag == "userCheck" and body.findtext("lockStatus") == "unlock"
    assert body.findtext("retryLoginTime") == "5"
    async with client() as s, s.get(address, ssl=tls.client_context()) as r:
        assert r.status == 200
        assert r.headers["Server"] == "webs"


async def test_failed_logins_lock_the_peer(start: Starter) -> None:
    door = await start(IsapiDoorController)
    async with client(password="wrong") as bad:
        for left in (4, 3, 2, 1):
            async with bad.get(url(door, "/ISAPI/System/deviceInfo")) as r:
                assert r.status == 401
                assert ET.fromstring(await r.read()).findtext("retryLoginTime") == str(left)
        async with bad.get(url(door, "/ISAPI/System/deviceInfo")) as r:
            assert r.status == 401
    async with client() as good, good.get(url(door, "/ISAPI/System/deviceInfo")) as r:
        assert r.status == 401
        locked = ET.fromstring(await r.read())
    assert locked.findtext("lockStatus") == "lock"
    assert 55 <= int(locked.findtext("unlockTime") or "0") <= 60
    assert locked.findtext("retryLoginTime") == "0"


async def test_no_lockout_never_locks(start: Starter) -> None:
    door = await start(IsapiDoorController, door={"faults": [{"type": "no_lockout"}]})
    async with client(password="wrong") as bad:
        for _ in range(12):
            async with bad.get(url(door, "/ISAPI/System/deviceInfo")) as r:
                assert r.status == 401
                assert ET.fromstring(await r.read()).findtext("lockStatus") is None
    async with client() as good:
        lock = await get_xml(good, url(door, "/ISAPI/Security/illegalLoginLock"))
    assert lock.findtext(f"{NS}enabled") == "false"
    assert door.ctx.guard.failures_total == 12


async def test_login_lock_is_configurable(start: Starter) -> None:
    door = await start(IsapiDoorController)
    body = (
        "<IllegalLoginLock><enabled>true</enabled>"
        "<maxIllegalLoginTimes>3</maxIllegalLoginTimes></IllegalLoginLock>"
    )
    async with client() as s:
        async with s.put(url(door, "/ISAPI/Security/illegalLoginLock"), data=body) as r:
            assert ET.fromstring(await r.read()).findtext(f"{NS}statusCode") == "1"
        lock = await get_xml(s, url(door, "/ISAPI/Security/illegalLoginLock"))
        assert lock.findtext(f"{NS}maxIllegalLoginTimes") == "3"
        async with s.put(url(door, "/ISAPI/Security/illegalLoginLock"), data="<IllegalLoginLock") as r:
            assert r.status == 400
    async with client(password="wrong") as bad:
        for _ in range(3):
            async with bad.get(url(door, "/ISAPI/System/time")) as r:
                assert r.status == 401
                last = ET.fromstring(await r.read())
    assert last.findtext("lockStatus") == "lock"


async def test_weak_credentials_and_clock_skew(start: Starter) -> None:
    door = await start(
        IsapiDoorController,
        door={"faults": [{"type": "weak_credentials"}, {"type": "clock_skew", "seconds": -3600}]},
    )
    async with client("admin", "12345") as weak:
        check = await get_xml(weak, url(door, "/ISAPI/Security/userCheck"))
        clock = await get_xml(weak, url(door, "/ISAPI/System/time"))
    assert check.findtext(f"{NS}isRiskPassword") == "true"
    local = datetime.fromisoformat(clock.findtext(f"{NS}localTime") or "")
    assert abs((local - datetime.now(UTC)).total_seconds() + 3600) < 5
    assert clock.findtext(f"{NS}timeMode") == "manual"


def _digest(challenge: str, method: str, uri: str, user: str, password: str, nc: str = "00000001") -> str:
    fields = dict(p.strip().split("=", 1) for p in challenge[len("Digest ") :].split(","))
    realm, nonce = fields["realm"].strip('"'), fields["nonce"].strip('"')

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    response = md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{nc}:abc:auth:{md5(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", qop=auth, nc={nc}, cnonce="abc", algorithm=MD5'
    )


async def test_expired_nonce_is_stale_and_replay_refused(start: Starter) -> None:
    door = await start(IsapiDoorController)
    door.auth.nonce_ttl_s = 0.2
    uri = "/ISAPI/System/time"
    async with aiohttp.ClientSession() as s:
        async with s.get(url(door, uri)) as r:
            challenge = r.headers["WWW-Authenticate"]
        header = _digest(challenge, "GET", uri, USER, PASSWORD)
        async with s.get(url(door, uri), headers={"Authorization": header}) as r:
            assert r.status == 200
        async with s.get(url(door, uri), headers={"Authorization": header}) as r:
            assert r.status == 401  # the same nc again: a replay
        await asyncio.sleep(0.3)
        later = _digest(challenge, "GET", uri, USER, PASSWORD, nc="00000002")
        async with s.get(url(door, uri), headers={"Authorization": later}) as r:
            assert r.status == 401
            assert 'stale="TRUE"' in r.headers["WWW-Authenticate"]
    assert door.ctx.guard.failures_total == 0


async def _next_part(reader: aiohttp.MultipartReader) -> tuple[str, bytes]:
    part = await reader.next()
    assert isinstance(part, aiohttp.BodyPartReader)
    return part.headers["Content-Type"], await part.read()


async def _next_event(reader: aiohttp.MultipartReader) -> dict[str, Any]:
    """The next access-control event, past any heartbeats."""
    while True:
        ctype, body = await _next_part(reader)
        if ctype.startswith("application/json"):
            event: dict[str, Any] = json.loads(body)
            return event


async def test_door_bus_rest_and_alert_stream(start: Starter) -> None:
    bus = SiteBus()
    door = await start(IsapiDoorController, bus=bus, door={"door": {"held_open_alarm_s": 0.3}})
    door.alerts.heartbeat_s = 0.2
    async with client() as s, s.get(url(door, "/ISAPI/Event/notification/alertStream")) as stream:
        assert stream.headers["Content-Type"].startswith("multipart/mixed")
        reader = aiohttp.MultipartReader(stream.headers, stream.content)
        ctype, heartbeat = await _next_part(reader)
        beat = ET.fromstring(heartbeat)
        assert ctype.startswith("application/xml")
        assert beat.findtext(f"{NS}eventType") == "videoloss"
        assert beat.findtext(f"{NS}eventState") == "inactive"

        await bus.command("door1", "force_open")
        forced = await _next_event(reader)
        assert forced["eventType"] == "AccessControllerEvent"
        assert forced["AccessControllerEvent"]["majorEventType"] == 5
        assert forced["AccessControllerEvent"]["subEventType"] == 0x1B
        held = await _next_event(reader)
        assert held["AccessControllerEvent"]["subEventType"] == 0x1C
        assert [e.type for e in bus.history if e.type in ("door_forced", "door_held")] == [
            "door_forced",
            "door_held",
        ]

        async with s.put(
            url(door, "/ISAPI/AccessControl/RemoteControl/door/1"),
            data="<RemoteControlDoor><cmd>alwaysOpen</cmd></RemoteControlDoor>",
        ) as r:
            ok = ET.fromstring(await r.read())
        assert ok.findtext(f"{NS}statusCode") == "1" and ok.findtext(f"{NS}subStatusCode") == "ok"
        async with s.get(url(door, "/ISAPI/AccessControl/AcsWorkStatus?format=json")) as r:
            status = (await r.json())["AcsWorkStatus"]
        assert status["doorStatus"] == [2] and status["doorLockStatus"] == [1]
        remote = await acs_search(s, door, major=3, minor=0x402)
        assert remote["numOfMatches"] == 1
        assert remote["InfoList"][0]["netUser"] == USER
        async with s.put(
            url(door, "/ISAPI/AccessControl/RemoteControl/door/1?format=json"),
            json={"RemoteControlDoor": {"cmd": "close"}},
        ) as r:
            assert (await r.json())["statusCode"] == 1
        async with s.put(url(door, "/ISAPI/AccessControl/RemoteControl/door/2"), data="<x/>") as r:
            assert r.status == 400
    assert door.mode == "normal" and not door.unlocked


async def test_fire_unlock_honours_door_faults(start: Starter) -> None:
    bus = SiteBus()
    stubborn = await start(
        IsapiDoorController, bus=bus, door={"faults": [{"type": "door_no_unlock_on_fire"}]}
    )
    await bus.command("door1", "unlock", reason="fire")
    assert not stubborn.unlocked
    await bus.command("door1", "unlock", reason="operator")
    assert stubborn.unlocked

    slow_bus = SiteBus()
    slow = await start(
        IsapiDoorController, bus=slow_bus, door={"faults": [{"type": "linkage_slow", "delay_s": 0.3}]}
    )
    events = slow_bus.subscribe()
    began = time.monotonic()
    await slow_bus.command("door1", "unlock", reason="fire")
    assert not slow.unlocked
    state = await asyncio.wait_for(events.get(), 10)
    assert time.monotonic() - began >= 0.3 and slow.unlocked
    assert state.type == "door_state"
    assert state.data["mode"] == "alwaysOpen" and state.data["reason"] == "fire"
    async with client() as s:
        opened = await acs_search(s, slow, major=5, minor=0x13)
    assert opened["numOfMatches"] == 1


async def _search(
    s: aiohttp.ClientSession,
    nvr: IsapiDevice,
    track: int | tuple[int, ...],
    start: datetime,
    end: datetime,
    pos: int = 0,
) -> ET.Element:
    ids = "".join(f"<trackID>{t}</trackID>" for t in (track if isinstance(track, tuple) else (track,)))
    body = (
        f"<CMSearchDescription><searchID>A1B2</searchID>"
        f"<trackIDList>{ids}</trackIDList>"
        f"<timeSpanList><timeSpan><startTime>{start:%Y-%m-%dT%H:%M:%SZ}</startTime>"
        f"<endTime>{end:%Y-%m-%dT%H:%M:%SZ}</endTime></timeSpan></timeSpanList>"
        f"<maxResults>100</maxResults><searchResultPostion>{pos}</searchResultPostion>"
        "<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor></metadataList>"
        "</CMSearchDescription>"
    )
    async with s.post(url(nvr, "/ISAPI/ContentMgmt/search"), data=body) as r:
        assert r.status == 200, await r.text()
        return ET.fromstring(await r.read())


def _spans(result: ET.Element) -> list[tuple[datetime, datetime]]:
    return [
        (
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}startTime") or ""),
            datetime.fromisoformat(item.findtext(f"{NS}timeSpan/{NS}endTime") or ""),
        )
        for item in result.iter(f"{NS}searchMatchItem")
    ]


async def test_a_search_s_pages_agree_while_the_clock_moves(
    start: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files of one search are fixed at its first page: a clock two hours on by the second page
    (a slow client on a long search) neither repeats nor skips a file at the page boundary."""
    nvr = await start(IsapiNvr, nvr={"nvr": {"retention_days": 3}})
    now = datetime.now(UTC)
    span = (now - timedelta(days=30), now + timedelta(hours=4))
    async with client() as s:
        first = _spans(await _search(s, nvr, 101, *span))
        later = now + timedelta(hours=2)
        monkeypatch.setattr(nvr.ctx, "now", lambda: later)
        second = _spans(await _search(s, nvr, 101, *span, pos=len(first)))
    assert len(first) == 40 and second
    assert first[-1][1] == second[0][0]  # continuous across the page boundary
    assert second[-1][1] < later - timedelta(hours=1)  # read on the search's own clock


async def test_nvr_search_pages_and_shows_retention_and_gaps(start: Starter) -> None:
    nvr = await start(IsapiNvr, nvr={"nvr": {"retention_days": 3}})
    now = datetime.now(UTC)
    async with client() as s:
        channels = await get_xml(s, url(nvr, "/ISAPI/ContentMgmt/InputProxy/channels"))
        assert [c.findtext(f"{NS}name") for c in channels] == ["cam1", "cam2"]
        status = await get_xml(s, url(nvr, "/ISAPI/ContentMgmt/InputProxy/channels/status"))
        assert [c.findtext(f"{NS}online") for c in status] == ["true", "true"]
        storage = await get_xml(s, url(nvr, "/ISAPI/ContentMgmt/Storage"))
        assert storage.findtext(f"{NS}hddList/{NS}hdd/{NS}status") == "ok"
        assert storage.findtext(f"{NS}hddList/{NS}hdd/{NS}capacity") == "3815447"

        spans: list[tuple[datetime, datetime]] = []
        pos, statuses = 0, []
        while True:
            page = await _search(s, nvr, 101, now - timedelta(days=30), now + timedelta(hours=1), pos)
            statuses.append(page.findtext(f"{NS}responseStatusStrg"))
            assert page.findtext(f"{NS}responseStatus") == "true"
            found = _spans(page)
            assert int(page.findtext(f"{NS}numOfMatches") or "-1") == len(found) <= 40
            spans += found
            pos += len(found)
            if statuses[-1] != "MORE":
                break
        assert statuses[:-1] == ["MORE"] * (len(statuses) - 1) and statuses[-1] == "OK"
        assert len(statuses) >= 2
        assert abs((spans[0][0] - (now - timedelta(days=3))).total_seconds()) < 5
        assert abs((spans[-1][1] - now).total_seconds()) < 5
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # continuous
        item = next(page.iter(f"{NS}playbackURI")).text or ""
        assert item.startswith("rtsp://127.0.0.1/Streaming/tracks/101/?starttime=")

        gap_day = now - timedelta(days=1)
        around = _spans(
            await _search(s, nvr, 201, gap_day - timedelta(hours=2), gap_day + timedelta(hours=5))
        )
        holes = [(a[1], b[0]) for a, b in itertools.pairwise(around) if a[1] != b[0]]
        assert len(holes) == 1
        assert abs((holes[0][1] - holes[0][0]).total_seconds() - 3 * 3600) < 5

        both = await _search(s, nvr, (101, 201), gap_day - timedelta(hours=2), gap_day + timedelta(hours=5))
        tracks = [item.findtext(f"{NS}trackID") for item in both.iter(f"{NS}searchMatchItem")]
        assert tracks.count("201") == len(around) and tracks.count("101") == 8  # 7 h over hour edges

        empty = await _search(s, nvr, 301, now - timedelta(days=1), now)
        assert empty.findtext(f"{NS}responseStatusStrg") == "NO MATCHES"
        async with s.post(url(nvr, "/ISAPI/ContentMgmt/search"), data="<CMSearch") as r:
            assert r.status == 400
            assert ET.fromstring(await r.read()).findtext(f"{NS}subStatusCode") == "badXmlFormat"


async def test_nvr_retention_short(start: Starter) -> None:
    nvr = await start(IsapiNvr, nvr={"faults": [{"type": "retention_short", "days": 0.5}]})
    now = datetime.now(UTC)
    async with client() as s:
        first = _spans(await _search(s, nvr, 101, now - timedelta(days=40), now))
    assert abs((first[0][0] - (now - timedelta(hours=12))).total_seconds()) < 5


async def test_offline_hung_slow_malformed(start: Starter) -> None:
    offline = await start(IsapiNvr, nvr={"faults": [{"type": "offline"}]})
    assert offline.port == 0

    hung = await start(IsapiNvr, nvr={"faults": [{"type": "hung"}]})
    async with client() as s:
        with pytest.raises(asyncio.TimeoutError):
            await s.get(url(hung, "/ISAPI/System/deviceInfo"), timeout=aiohttp.ClientTimeout(total=0.5))
    began = time.monotonic()
    await hung.stop()
    assert time.monotonic() - began < 3.5  # at once: held connections do not hold the stop back

    slow = await start(IsapiNvr, nvr={"faults": [{"type": "slow", "bytes_per_second": 2000}]})
    async with client() as s:
        began = time.monotonic()
        info = await get_xml(s, url(slow, "/ISAPI/System/deviceInfo"))
    assert info.findtext(f"{NS}deviceType") == "NVR"
    assert time.monotonic() - began > 0.2  # ~500 bytes at 2000 B/s, plus the 401 round

    broken = await start(IsapiNvr, nvr={"faults": [{"type": "malformed_xml"}]})
    async with client() as s, s.get(url(broken, "/ISAPI/System/deviceInfo")) as r:
        assert r.status == 200
        with pytest.raises(ET.ParseError):
            ET.fromstring(await r.read())


async def test_unplug_and_replug(start: Starter) -> None:
    door = await start(IsapiDoorController)
    async with client() as s:
        await get_xml(s, url(door, "/ISAPI/System/time"))
        await door.unplug()
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(url(door, "/ISAPI/System/time"))
        await door.replug()
        await get_xml(s, url(door, "/ISAPI/System/time"))

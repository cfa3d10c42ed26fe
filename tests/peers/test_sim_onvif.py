"""The simulated ONVIF camera, NVR and door controller, read by the plain onvif-zeep-async client.

Every fault these devices own is checked from the client side, as a collector would meet it.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zeep.exceptions
from lxml import etree
from onvif import ONVIFCamera, ONVIFService
from onvif_helpers import (
    ACCESSCONTROL_NS,
    DOORCONTROL_NS,
    Starter,
    camera,
    client,
    door,
    free_port,
    nvr,
    profile_c_service,
    soap_request,
    start,
)

from simulator.bus import SiteBus, SiteEvent
from simulator.onvif import OnvifCamera, OnvifDoorController, OnvifNvr
from simulator.runtime import Endpoint
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers
__all__ = ["start"]  # the fixture, imported for pytest

PULLPOINT_NS = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
RECORDING_NS = "http://www.onvif.org/ver10/recording/wsdl"
SEARCH_NS = "http://www.onvif.org/ver10/search/wsdl"
TOPIC_FILTER = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"


@pytest.fixture
async def clients() -> AsyncIterator[list[ONVIFCamera | ONVIFService]]:
    """Clients to close at the end (their aiohttp sessions)."""
    opened: list[ONVIFCamera | ONVIFService] = []
    yield opened
    for c in opened:
        await c.close()


async def connect(device: Any, opened: list[Any], **kw: Any) -> ONVIFCamera:
    cam = client(device, **kw)
    opened.append(cam)
    await cam.update_xaddrs()
    return cam


def message(m: Any) -> tuple[str, str | None, dict[str, str], dict[str, str]]:
    """(topic, PropertyOperation, source items, data items) of a NotificationMessage."""
    msg = m.Message._value_1
    source = {i.Name: i.Value for i in msg.Source.SimpleItem} if msg.Source else {}
    data = {i.Name: i.Value for i in msg.Data.SimpleItem} if msg.Data else {}
    return m.Topic._value_1, msg.PropertyOperation, source, data


async def pull_point(cam: ONVIFCamera, **params: Any) -> tuple[ONVIFService, ONVIFService]:
    """A new pull point: (PullMessages service, subscription manager), both at its address."""
    events = await cam.create_events_service()
    sub = await events.CreatePullPointSubscription(params)
    cam.xaddrs[PULLPOINT_NS] = sub.SubscriptionReference.Address._value_1
    return await cam.create_pullpoint_service(), await cam.create_subscription_service(
        "PullPointSubscription"
    )


async def pull(
    service: ONVIFService, wait: str = "PT0S"
) -> list[tuple[str, str | None, dict[str, str], dict[str, str]]]:
    reply = await service.PullMessages({"Timeout": wait, "MessageLimit": 100})
    return [message(m) for m in reply.NotificationMessage]


def fault_codes(exc: zeep.exceptions.Fault) -> list[str]:
    return [str(exc.code).split(":")[-1], *(etree.QName(s).localname for s in exc.subcodes or [])]


# -- device management, media ------------------------------------------------------------------


async def test_camera_device_and_media(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera(camera={"manufacturer": "Dahua", "model": "IPC-HFW2431S"})])
    cam = await connect(device, clients)
    base = f"http://127.0.0.1:{device.port}"
    assert cam.xaddrs["http://www.onvif.org/ver10/media/wsdl"] == base + "/onvif/media_service"
    assert cam.xaddrs[RECORDING_NS] == base + "/onvif/recording_service"
    assert cam.xaddrs[SEARCH_NS] == base + "/onvif/search_service"
    dm = await cam.create_devicemgmt_service()
    info = await dm.GetDeviceInformation()
    assert (info.Manufacturer, info.Model) == ("Dahua", "IPC-HFW2431S")
    caps = await cam.get_capabilities()
    assert caps is not None and caps["Events"]["WSPullPointSupport"] is True
    scopes = [s.ScopeItem for s in await dm.GetScopes()]
    assert "onvif://www.onvif.org/Profile/G" in scopes
    media = await cam.create_media_service()
    profiles = await media.GetProfiles()
    assert [p.token for p in profiles] == ["Profile_101", "Profile_102"]
    assert profiles[0].VideoEncoderConfiguration.Resolution.Width == 2560
    uri = await media.GetStreamUri(
        {
            "ProfileToken": "Profile_101",
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
        }
    )
    assert uri.Uri == "rtsp://127.0.0.1:554/Streaming/Channels/101"
    with pytest.raises(zeep.exceptions.Fault) as bad:
        await media.GetProfile({"ProfileToken": "Profile_999"})
    assert fault_codes(bad.value) == ["Sender", "InvalidArgVal", "NoProfile"]


async def test_tls_xaddrs_and_plain_http(start: Starter, clients: list[Any], tmp_path: Path) -> None:
    tls = make_site_tls(tmp_path, "t", ["127.0.0.1"])
    secure = await start(OnvifCamera, [camera()], tls=tls.server_context())
    cam = await connect(secure, clients)
    assert cam.xaddrs["http://www.onvif.org/ver10/device/wsdl"].startswith(
        f"https://127.0.0.1:{secure.port}/"
    )
    assert (await (await cam.create_devicemgmt_service()).GetHostname()).Name == "cam1"
    # plain_http: the site hands the device no TLS context; the XAddrs say http, as served
    plain = await start(OnvifCamera, [camera(faults=[{"type": "plain_http"}])])
    cam = await connect(plain, clients)
    assert all(x.startswith(f"http://127.0.0.1:{plain.port}/") for x in cam.xaddrs.values())


async def test_clock_skew_visible_without_credentials(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera(faults=[{"type": "clock_skew", "seconds": -7200}])])
    cam = client(device, password="not-the-password")
    clients.append(cam)
    dm = await cam.create_devicemgmt_service()
    reply = await dm.authless_GetSystemDateAndTime()  # PRE_AUTH: no token at all
    d, t = reply.UTCDateTime.Date, reply.UTCDateTime.Time
    device_now = datetime(d.Year, d.Month, d.Day, t.Hour, t.Minute, t.Second, tzinfo=UTC)
    assert abs((device_now - datetime.now(UTC)).total_seconds() + 7200) < 5


# -- authentication ------------------------------------------------------------------------------


async def test_auth_digest_text_and_refusals(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera()])
    assert (
        await (await (await connect(device, clients)).create_devicemgmt_service()).GetDeviceInformation()
    ).Model
    text = await connect(device, clients, encrypt=False)  # PasswordText
    assert (await (await text.create_devicemgmt_service()).GetDeviceInformation()).Model
    anonymous = client(device)
    clients.append(anonymous)
    dm = await anonymous.create_devicemgmt_service()
    with pytest.raises(zeep.exceptions.Fault) as refused:
        await dm.authless_GetDeviceInformation()
    assert fault_codes(refused.value) == ["Sender", "NotAuthorized"]
    weak = await connect(device, clients, user="admin", password="12345")
    with pytest.raises(zeep.exceptions.Fault):
        await (await weak.create_devicemgmt_service()).GetDeviceInformation()


async def test_lockout_after_five_failures(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera()])
    bad = await connect(device, clients, password="guess")
    dm = await bad.create_devicemgmt_service()
    for _ in range(5):
        with pytest.raises(zeep.exceptions.Fault) as refused:
            await dm.GetDeviceInformation()
        assert fault_codes(refused.value) == ["Sender", "NotAuthorized"]
    good = await connect(device, clients)
    with pytest.raises(zeep.exceptions.Fault) as locked:
        await (await good.create_devicemgmt_service()).GetDeviceInformation()
    assert fault_codes(locked.value) == ["Sender", "NotAuthorized"]


async def test_no_lockout_and_weak_credentials(start: Starter, clients: list[Any]) -> None:
    faults = [{"type": "no_lockout"}, {"type": "weak_credentials"}]
    device = await start(OnvifCamera, [camera(faults=faults)])
    dm = await (await connect(device, clients, password="guess")).create_devicemgmt_service()
    for _ in range(8):
        with pytest.raises(zeep.exceptions.Fault):
            await dm.GetDeviceInformation()
    assert (
        await (await (await connect(device, clients)).create_devicemgmt_service()).GetDeviceInformation()
    ).Model
    weak = await connect(device, clients, user="admin", password="12345")
    assert (await (await weak.create_devicemgmt_service()).GetDeviceInformation()).Model


# -- events ---------------------------------------------------------------------------------------


async def test_event_properties_advertise_topics(start: Starter, clients: list[Any]) -> None:
    cam_dev = await start(OnvifCamera, [camera()])
    door_dev = await start(OnvifDoorController, [door()])
    nvr_dev = await start(OnvifNvr, [nvr(), camera(id="c", camera={"recorded_by": "nvr1"})])

    async def topics(device: Any) -> set[str]:
        events = await (await connect(device, clients)).create_events_service()
        props = await events.GetEventProperties()
        out = set()
        for root in props.TopicSet._value_1:
            for el in root.iter():
                if el.get("{http://docs.oasis-open.org/wsn/t-1}topic") == "true":
                    path = [etree.QName(a).localname for a in [*reversed(list(el.iterancestors())), el]]
                    out.add("tns1:" + "/".join(path[path.index(etree.QName(root).localname) :]))
        return out

    assert await topics(cam_dev) >= {
        "tns1:VideoSource/SignalLoss",
        "tns1:VideoSource/GlobalSceneChange/ImagingService",
        "tns1:RuleEngine/FieldDetector/ObjectsInside",
        "tns1:RuleEngine/LineDetector/Crossed",
        "tns1:Device/Trigger/DigitalInput",
        "tns1:RecordingHistory/Track/State",
    }
    assert await topics(door_dev) == {
        "tns1:Door/State/DoorMode",
        "tns1:Door/State/DoorPhysicalState",
        "tns1:Door/State/DoorAlarm",
        "tns1:AccessControl/AccessGranted/Credential",
        "tns1:AccessControl/Denied/Credential",
    }
    assert await topics(nvr_dev) >= {
        "tns1:Device/HardwareFailure/StorageFailure",
        "tns1:RecordingHistory/Recording/State",
        "tns1:RecordingHistory/Track/State",
    }


async def test_pull_point_bus_events_and_long_poll(start: Starter, clients: list[Any]) -> None:
    bus = SiteBus()
    seen = bus.subscribe()
    device = await start(OnvifCamera, [camera()], bus=bus)
    cam = await connect(device, clients)
    pp, manager = await pull_point(cam, InitialTerminationTime="PT60S")
    initial = await pull(pp)
    assert {(t, op) for t, op, _, _ in initial} >= {
        ("tns1:VideoSource/SignalLoss", "Initialized"),
        ("tns1:Device/Trigger/DigitalInput", "Initialized"),
        ("tns1:RuleEngine/FieldDetector/ObjectsInside", "Initialized"),
    }
    assert all(d.get("State", d.get("LogicalState", d.get("IsInside"))) == "false" for _, _, _, d in initial)
    # a long poll returns as soon as the bus makes the camera raise something
    waiting = asyncio.create_task(pull(pp, "PT10S"))
    await asyncio.sleep(0.1)
    began = time.monotonic()
    await bus.command("cam1", "alarm", reason="fire")
    got = await asyncio.wait_for(waiting, 15)
    assert time.monotonic() - began < 8  # well before the poll's 10 s (the slack: a loaded machine)
    assert got == [
        (
            "tns1:Device/Trigger/DigitalInput",
            "Changed",
            {"InputToken": "DigitalInput_1"},
            {"LogicalState": "true"},
        )
    ]
    await bus.command("cam1", "intrusion")
    got = await pull(pp)
    assert [(t, d) for t, _, _, d in got] == [
        ("tns1:RuleEngine/FieldDetector/ObjectsInside", {"IsInside": "true"}),
        ("tns1:RuleEngine/LineDetector/Crossed", {"ObjectId": "1"}),
    ]
    assert got[1][1] is None  # a pulse, not a property
    assert any(e.type == "intrusion" and e.source == "cam1" and e.area == "gate" for e in _drain(seen))
    # SetSynchronizationPoint re-sends the current states
    await pp.SetSynchronizationPoint()
    synced = {t: d for t, op, _, d in await pull(pp) if op == "Initialized"}
    assert synced["tns1:Device/Trigger/DigitalInput"] == {"LogicalState": "true"}
    renewed = await manager.Renew({"TerminationTime": "PT120S"})
    assert renewed.TerminationTime - renewed.CurrentTime >= timedelta(seconds=119)
    await manager.Unsubscribe()
    with pytest.raises(zeep.exceptions.Fault) as gone:
        await pull(pp)
    assert fault_codes(gone.value) == ["Sender", "ResourceUnknownFault"]


async def test_pull_point_expires_and_filters(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera()])
    cam = await connect(device, clients)
    expression = etree.Element(
        "{http://docs.oasis-open.org/wsn/b-2}TopicExpression",
        Dialect=TOPIC_FILTER,
        nsmap={"tns1": "http://www.onvif.org/ver10/topics"},
    )
    expression.text = "tns1:RuleEngine//."
    flt = {"_value_1": [expression]}
    pp, _ = await pull_point(cam, InitialTerminationTime="PT1S", Filter=flt)
    assert {t for t, *_ in await pull(pp)} == {"tns1:RuleEngine/FieldDetector/ObjectsInside"}
    await asyncio.sleep(1.2)  # past its termination time, never renewed
    with pytest.raises(zeep.exceptions.Fault) as dead:
        await pull(pp)
    assert fault_codes(dead.value) == ["Sender", "ResourceUnknownFault"]


async def test_video_loss(start: Starter, clients: list[Any]) -> None:
    bus = SiteBus()
    device = await start(OnvifCamera, [camera(faults=[{"type": "video_loss"}])], bus=bus)
    assert [(e.type, e.source) for e in bus.history] == [("video_loss", "cam1")]
    pp, _ = await pull_point(await connect(device, clients))
    states = {t: d for t, _, _, d in await pull(pp)}
    assert states["tns1:VideoSource/SignalLoss"] == {"State": "true"}


# -- Profile G ----------------------------------------------------------------------------------


async def find_events(search: ONVIFService, start_point: datetime, **extra: Any) -> list[Any]:
    token = await search.FindEvents(
        {
            "StartPoint": start_point,
            "Scope": {},
            "SearchFilter": {},
            "IncludeStartState": False,
            "KeepAliveTime": "PT10S",
            **extra,
        }
    )
    results = await search.GetEventSearchResults({"SearchToken": token, "WaitTime": "PT1S"})
    assert results.SearchState == "Completed"
    return list(results.Result)


async def test_edge_recording_retention_gap_and_deletion(start: Starter, clients: list[Any]) -> None:
    faults = [
        {"type": "recording_gap", "days_ago": 3, "hours": 6},
        {"type": "deleted_span", "days_ago": 10, "hours": 24},
    ]
    device = await start(OnvifCamera, [camera(camera={"configured_retention_days": 90}, faults=faults)])
    cam = await connect(device, clients)
    now = datetime.now(UTC)
    rec = await cam.create_recording_service()
    items = await rec.GetRecordings()
    assert [i.RecordingToken for i in items] == ["REC_cam1"]
    assert items[0].Configuration.MaximumRetentionTime == timedelta(days=90)
    jobs = await rec.GetRecordingJobs()
    assert jobs[0].JobConfiguration.RecordingToken == "REC_cam1"
    search = await cam.create_search_service()
    summary = await search.GetRecordingSummary()
    assert abs((summary.DataFrom - (now - timedelta(days=35))).total_seconds()) < 60
    assert abs((summary.DataUntil - now).total_seconds()) < 60
    assert summary.NumberRecordings == 1
    token = await search.FindRecordings({"Scope": {}, "KeepAliveTime": "PT10S"})
    found = await search.GetRecordingSearchResults({"SearchToken": token, "WaitTime": "PT1S"})
    assert found.SearchState == "Completed"
    assert found.RecordingInformation[0].RecordingStatus == "Recording"
    assert found.RecordingInformation[0].EarliestRecording == summary.DataFrom

    events = await find_events(search, now - timedelta(days=40))
    changes = [(e.Time, message(e.Event)[0].split("/")[1], message(e.Event)[3]) for e in events]
    gap_start, gap_end = now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=6)
    deleted_start = now - timedelta(days=10)

    def at(t: datetime) -> list[tuple[str, dict[str, str]]]:
        return [(kind, data) for when, kind, data in changes if abs((when - t).total_seconds()) < 60]

    # the gap: the recorder stopped (Recording/State) and the track has no data, then both resume
    assert at(gap_start) == [("Recording", {"IsRecording": "false"}), ("Track", {"IsDataPresent": "false"})]
    assert at(gap_end) == [("Recording", {"IsRecording": "true"}), ("Track", {"IsDataPresent": "true"})]
    # the deletion: no data although recording never stopped
    assert at(deleted_start) == [("Track", {"IsDataPresent": "false"})]
    assert at(deleted_start + timedelta(days=1)) == [("Track", {"IsDataPresent": "true"})]
    assert len(changes) == 6
    # the start state at a point inside the gap says so
    inside = await find_events(
        search, gap_start + timedelta(hours=1), IncludeStartState=True, EndPoint=gap_end
    )
    start_states = {message(e.Event)[0]: message(e.Event)[3] for e in inside if e.StartStateEvent}
    assert start_states == {
        "tns1:RecordingHistory/Recording/State": {"IsRecording": "false"},
        "tns1:RecordingHistory/Track/State": {"IsDataPresent": "false"},
    }


async def test_retention_short_and_unconfigured_retention(start: Starter, clients: list[Any]) -> None:
    device = await start(OnvifCamera, [camera(faults=[{"type": "retention_short", "days": 7}])])
    cam = await connect(device, clients)
    summary = await (await cam.create_search_service()).GetRecordingSummary()
    assert summary.DataFrom > datetime.now(UTC) - timedelta(days=30)
    assert abs((summary.DataFrom - (datetime.now(UTC) - timedelta(days=7))).total_seconds()) < 60
    item = (await (await cam.create_recording_service()).GetRecordings())[0]
    assert item.Configuration.MaximumRetentionTime == timedelta(0)


async def test_nvr_recordings_per_camera(start: Starter, clients: list[Any]) -> None:
    devices = [
        nvr(nvr={"retention_days": 60}),
        camera(id="camA", camera={"recorded_by": "nvr1", "channel": 1}),
        camera(
            id="camB",
            camera={"recorded_by": "nvr1", "channel": 2},
            faults=[{"type": "recording_gap", "days_ago": 1, "hours": 2}],
        ),
        camera(id="camC"),  # edge recording, not on this NVR
    ]
    directory = {
        "camA": Endpoint(
            "camA", "camera", "onvif", "127.20.0.9", 8000, "/onvif/device_service", "", "", "gate", {}, []
        )
    }
    device = await start(OnvifNvr, devices, directory=directory)
    cam = await connect(device, clients)
    rec = await cam.create_recording_service()
    items = {i.RecordingToken: i for i in await rec.GetRecordings()}
    assert set(items) == {"REC_camA", "REC_camB"}
    assert items["REC_camA"].Configuration.Source.SourceId == "http://127.20.0.9:8000/onvif/device_service"
    search = await cam.create_search_service()
    summary = await search.GetRecordingSummary()
    assert summary.NumberRecordings == 2
    assert abs((summary.DataFrom - (datetime.now(UTC) - timedelta(days=60))).total_seconds()) < 60
    events = await find_events(search, datetime.now(UTC) - timedelta(days=70))
    assert {e.RecordingToken for e in events} == {"REC_camB"}
    media = await cam.create_media_service()
    assert [p.token for p in await media.GetProfiles()] == [
        "Profile_101",
        "Profile_102",
        "Profile_201",
        "Profile_202",
    ]
    # Profile S only: no recording or search service to find
    s_only = await start(OnvifNvr, [nvr(nvr={"profile_g": False}), camera(camera={"recorded_by": "nvr1"})])
    cam = await connect(s_only, clients)
    assert RECORDING_NS not in cam.xaddrs and SEARCH_NS not in cam.xaddrs


# -- transport faults ---------------------------------------------------------------------------


async def raw_post(device: Any, total_s: float = 20.0) -> tuple[int, bytes]:
    """A bare SOAP POST; the default total leaves the slow camera's drip room on a loaded machine."""
    url = device.base_url() + "/onvif/device_service"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total_s)) as session,
        session.post(url, data=soap_request("<tds:GetDeviceInformation/>")) as resp,
    ):
        return resp.status, await resp.read()


async def test_offline_hung_and_unplug(start: Starter) -> None:
    offline = await start(OnvifCamera, [camera(faults=[{"type": "offline"}])], port=free_port())
    with pytest.raises(aiohttp.ClientConnectorError):  # connection refused: nothing listens
        await raw_post(offline)
    hung = await start(OnvifCamera, [camera(faults=[{"type": "hung"}])])
    with pytest.raises(TimeoutError):
        await raw_post(hung, total_s=0.5)
    held = await asyncio.open_connection("127.0.0.1", hung.port)
    await hung.stop()  # closes the held sockets too
    assert await asyncio.wait_for(held[0].read(), 10) == b""
    held[1].close()
    with pytest.raises(aiohttp.ClientConnectionError):
        await raw_post(hung)
    live = await start(OnvifCamera, [camera()])
    await live.unplug()
    with pytest.raises(aiohttp.ClientConnectionError):
        await raw_post(live)
    await live.replug()
    assert (await raw_post(live))[0] == 200


async def test_slow_malformed_and_soap_fault(start: Starter, clients: list[Any]) -> None:
    normal = await start(OnvifCamera, [camera()])
    status, body = await raw_post(normal)
    slow = await start(OnvifCamera, [camera(faults=[{"type": "slow", "bytes_per_second": 2000}])])
    began = time.monotonic()
    slow_status, slow_body = await raw_post(slow)
    assert time.monotonic() - began >= 0.8 * len(body) / 2000
    assert (slow_status, len(slow_body)) == (status, len(body))
    with pytest.raises(TimeoutError):
        await raw_post(slow, total_s=0.3)

    broken = await start(OnvifCamera, [camera(faults=[{"type": "malformed_xml"}])])
    cut_status, cut = await raw_post(broken)
    assert cut_status == 200 and body.startswith(cut) and len(cut) < len(body)
    with pytest.raises(ET.ParseError):
        ET.fromstring(cut)
    broken_client = client(broken)  # no update_xaddrs: its replies are cut too
    clients.append(broken_client)
    dm = await broken_client.create_devicemgmt_service()
    # onvif-zeep-async parses leniently (recover=True) and then fails on the missing body
    with pytest.raises((TypeError, zeep.exceptions.Error)):
        await dm.GetDeviceInformation()

    faulty = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["GetProfiles"]}])]
    )
    cam = await connect(faulty, clients)
    assert (await (await cam.create_devicemgmt_service()).GetDeviceInformation()).Model
    with pytest.raises(zeep.exceptions.Fault) as failed:
        await (await cam.create_media_service()).GetProfiles()
    assert fault_codes(failed.value)[0] == "Receiver"


# -- doors (Profile C) --------------------------------------------------------------------------


def _drain(q: asyncio.Queue[SiteEvent]) -> list[SiteEvent]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def door_client(device: Any, opened: list[Any]) -> tuple[ONVIFCamera, ONVIFService]:
    cam = await connect(device, opened)
    dc = await profile_c_service(cam, DOORCONTROL_NS)
    opened.append(dc)
    return cam, dc


async def test_door_control_and_bus_linkage(start: Starter, clients: list[Any]) -> None:
    bus = SiteBus()
    seen = bus.subscribe()
    device = await start(OnvifDoorController, [door()], bus=bus)
    cam, dc = await door_client(device, clients)
    assert [d.token for d in (await dc.GetDoorInfoList({})).DoorInfo] == ["Door_1"]
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Locked"
    pp, _ = await pull_point(cam)
    await pull(pp)
    await bus.command("door1", "unlock", reason="fire")
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Unlocked"
    assert await pull(pp) == [
        ("tns1:Door/State/DoorMode", "Changed", {"DoorToken": "Door_1"}, {"State": "Unlocked"})
    ]
    assert [(e.type, e.data["mode"], e.data.get("reason")) for e in _drain(seen)] == [
        ("door_state", "Unlocked", "fire")
    ]
    await dc.LockDoor({"Token": "Door_1"})
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Locked"
    # 2 s: long enough to read the door inside it on a loaded machine
    await dc.AccessDoor({"Token": "Door_1", "AccessTime": "PT2S"})
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Accessed"
    await until_door(dc, lambda state: state.DoorMode == "Locked")
    # the operator's hand forces the door, then holds it open
    _drain(seen)
    await bus.command("door1", "force_open")
    state = await dc.GetDoorState({"Token": "Door_1"})
    assert (state.DoorPhysicalState, state.Alarm) == ("Open", "DoorForcedOpen")
    assert "door_forced" in [e.type for e in _drain(seen)]
    assert ("tns1:Door/State/DoorAlarm", {"State": "DoorForcedOpen"}) in [
        (t, d) for t, _, _, d in await pull(pp)
    ]
    await bus.command("door1", "close")
    await bus.command("door1", "hold_open", after_s=2.0)
    assert (await dc.GetDoorState({"Token": "Door_1"})).Alarm == "Normal"
    await until_door(dc, lambda state: state.Alarm == "DoorOpenTooLong")
    assert "door_held" in [e.type for e in _drain(seen)]
    await bus.command("door1", "swipe", credential="Card_7", granted=False)
    denied = [m for m in await pull(pp) if m[0] == "tns1:AccessControl/Denied/Credential"]
    assert denied[0][3]["CredentialToken"] == "Card_7"
    ac = await profile_c_service(cam, ACCESSCONTROL_NS)
    clients.append(ac)
    assert [a.Entity for a in (await ac.GetAccessPointInfoList({})).AccessPointInfo] == ["Door_1"]


async def test_door_no_unlock_on_fire_and_linkage_slow(start: Starter, clients: list[Any]) -> None:
    deaf = await start(OnvifDoorController, [door(faults=[{"type": "door_no_unlock_on_fire"}])])
    _, dc = await door_client(deaf, clients)
    await deaf.ctx.bus.command("door1", "unlock", reason="fire")
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Locked"
    await deaf.ctx.bus.command("door1", "unlock", reason="operator")
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Unlocked"

    delay = 2.0  # long enough to read the door inside it on a loaded machine
    slow = await start(OnvifDoorController, [door(faults=[{"type": "linkage_slow", "delay_s": delay}])])
    _, dc = await door_client(slow, clients)
    began = time.monotonic()
    await slow.ctx.bus.command("door1", "unlock", reason="fire")
    assert time.monotonic() - began < delay  # the command returns; the door acts later
    assert (await dc.GetDoorState({"Token": "Door_1"})).DoorMode == "Locked"
    await until_door(dc, lambda state: state.DoorMode == "Unlocked")
    assert time.monotonic() - began >= delay


async def until_door(dc: Any, check: Callable[[Any], bool]) -> None:
    """Poll GetDoorState until `check` holds (the door changes on a timer of the simulator's)."""
    async with asyncio.timeout(15):
        while not check(await dc.GetDoorState({"Token": "Door_1"})):  # noqa: ASYNC110 - over SOAP
            await asyncio.sleep(0.1)


async def test_unknown_bus_action_is_an_error(start: Starter) -> None:
    device = await start(OnvifDoorController, [door()])
    with pytest.raises(ValueError, match="does not take"):
        await device.ctx.bus.command("door1", "explode")

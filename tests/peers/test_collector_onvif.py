"""OnvifClient against the simulated camera, NVR and door controller, faults included."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from onvif_collector_helpers import Ledger, assert_redacted, connection
from onvif_helpers import PASSWORD, Starter, camera, door, free_port, nvr, start

from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation, Unreachable, Unsupported
from collectors.onvif import OnvifClient
from collectors.onvif_events import SubscriptionLost
from simulator.bus import SiteBus
from simulator.onvif import OnvifCamera, OnvifDoorController, OnvifNvr
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers
__all__ = ["start"]  # the fixture, imported for pytest


def near(a: datetime | None, b: datetime, seconds: float = 60) -> bool:
    return a is not None and abs((a - b).total_seconds()) < seconds


async def test_identity_clock_and_services_one_exchange_per_call(start: Starter) -> None:
    device = await start(OnvifCamera, [camera(faults=[{"type": "clock_skew", "seconds": -7200}])])
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        when, clock_id = await c.device_time()
        assert near(when, datetime.now(UTC) - timedelta(hours=2), 5)
        assert ledger.get(clock_id).device_time == when
        info = await c.device_info()  # signed on the device's clock from now on
        services = await c.services()
        assert await c.services() is services  # discovered once
    assert (info.manufacturer, info.model) == ("Hikvision", "DS-2CD2T47G2-L")
    assert services.source == "GetServices"
    assert services.names == {"devicemgmt", "media", "events", "recording", "search"}
    assert ledger.operations() == ["GetSystemDateAndTime", "GetDeviceInformation", "GetServices"]
    assert all(e.ok and e.protocol == "onvif" and e.device == "cam1" for e in ledger)
    assert ledger.get(info.evidence[0]).address == f"http://127.0.0.1:{device.port}/onvif/device_service"
    assert ledger[0].library.startswith("onvif-zeep-async ")
    # after reading the clock, WS-Security timestamps are signed on the device's time
    created = re.search(r"<wsu:Created[^>]*>([^<]+)<", ledger.get(info.evidence[0]).request)
    assert created is not None and near(datetime.fromisoformat(created.group(1)), when, 5)


async def test_tls_is_verified_against_the_site_ca(start: Starter, tmp_path: Path) -> None:
    site = make_site_tls(tmp_path / "site", "site", ["127.0.0.1"])
    other = make_site_tls(tmp_path / "other", "other", ["127.0.0.1"])
    device = await start(OnvifCamera, [camera()], tls=site.server_context())
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger, tls=site.client_context())) as c:
        summary = await c.recording_summary()
    assert summary.number_recordings == 1
    assert all(e.address.startswith("https://") and e.facts["tls"] for e in ledger)
    async with OnvifClient(connection(device, ledger, tls=other.client_context())) as c:
        with pytest.raises(ProtocolViolation, match="TLS") as untrusted:
            await c.device_info()
    assert not ledger.get(untrusted.value.exchange_id).ok
    plain = await start(OnvifCamera, [camera(faults=[{"type": "plain_http"}])])
    async with OnvifClient(connection(plain, ledger, tls=site.client_context())) as c:
        with pytest.raises(ProtocolViolation, match="TLS"):
            await c.services()


async def test_recordings_retention_and_history_tell_gaps_from_deletions(start: Starter) -> None:
    faults = [
        {"type": "recording_gap", "days_ago": 3, "hours": 6},
        {"type": "deleted_span", "days_ago": 10, "hours": 24},
    ]
    device = await start(OnvifCamera, [camera(camera={"configured_retention_days": 90}, faults=faults)])
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        now, _ = await c.device_time()
        summary = await c.recording_summary()
        recordings = await c.recordings()
        config = await c.retention_config()
        history = await c.recording_history(now - timedelta(days=30), now, ["REC_cam1"])
    assert near(summary.data_from, now - timedelta(days=35)) and summary.number_recordings == 1
    (rec,) = recordings.items
    assert (rec.token, rec.source_name, rec.status) == ("REC_cam1", "cam1", "Recording")
    assert near(rec.earliest, now - timedelta(days=35)) and near(rec.latest, now)
    assert recordings.complete and config.max_retention == {"REC_cam1": timedelta(days=90)}
    kinds = [(s.kind, round(s.seconds / 3600)) for s in history.spans]
    assert kinds == [("deleted", 24), ("gap", 6)]
    assert near(history.spans[0].start, now - timedelta(days=10))
    assert near(history.spans[1].start, now - timedelta(days=3))
    assert history.complete and any(e.start_state for e in history.events)
    assert "FindEvents" in ledger.operations() and "GetEventSearchResults" in ledger.operations()


async def test_nvr_recordings_and_profile_s(start: Starter) -> None:
    devices = [
        nvr(nvr={"retention_days": 60}),
        camera(id="camA", camera={"recorded_by": "nvr1", "channel": 1}),
        camera(id="camB", camera={"recorded_by": "nvr1", "channel": 2}),
    ]
    device = await start(OnvifNvr, devices)
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        recordings = await c.recordings()
    assert sorted(r.source_name for r in recordings.items) == ["camA", "camB"]
    s_only = await start(OnvifNvr, [nvr(nvr={"profile_g": False}), camera(camera={"recorded_by": "nvr1"})])
    async with OnvifClient(connection(s_only, ledger)) as c:
        assert not (await c.services()).has("search")
        with pytest.raises(Unsupported, match="search") as missing:
            await c.recording_summary()
    assert ledger.get(missing.value.exchange_id).operation == "GetServices"


async def test_services_fall_back_to_get_capabilities(start: Starter) -> None:
    device = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["GetServices"]}])]
    )
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        services = await c.services()
        summary = await c.recording_summary()
    assert services.source == "GetCapabilities"
    assert {"search", "recording", "events", "media"} <= services.names
    assert summary.number_recordings == 1
    assert ledger.operations()[:2] == ["GetServices", "GetCapabilities"] and not ledger[0].ok


async def test_refused_login_is_one_login(start: Starter) -> None:
    device = await start(OnvifCamera, [camera()])
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger, password="not-it")) as c:
        with pytest.raises(AuthFailed) as refused:
            await c.device_info()
    assert device.ctx.guard.failures_total == 1  # one call, one login: nothing retried
    assert ledger.operations() == ["GetDeviceInformation"]
    assert ledger.get(refused.value.exchange_id).error is not None
    assert "NotAuthorized" in str(refused.value)


async def test_transport_faults_become_collector_errors(start: Starter) -> None:
    ledger = Ledger()
    offline = await start(OnvifCamera, [camera(faults=[{"type": "offline"}])], port=free_port())
    async with OnvifClient(connection(offline, ledger)) as c:
        with pytest.raises(Unreachable) as refused:
            await c.device_time()
    assert not refused.value.timed_out
    hung = await start(OnvifCamera, [camera(faults=[{"type": "hung"}])])
    began = time.monotonic()
    async with OnvifClient(connection(hung, ledger, timeout_s=0.3)) as c:
        with pytest.raises(Unreachable) as silent:
            await c.device_info()
    # its timeout, not more (3 s of slack for a loaded machine)
    assert silent.value.timed_out and time.monotonic() - began < 3.5
    broken = await start(OnvifCamera, [camera(faults=[{"type": "malformed_xml"}])])
    async with OnvifClient(connection(broken, ledger)) as c:
        with pytest.raises(ProtocolViolation) as cut:
            await c.device_info()
    faulty = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["FindRecordings"]}])]
    )
    async with OnvifClient(connection(faulty, ledger)) as c:
        assert (await c.recording_summary()).number_recordings == 1
        with pytest.raises(DeviceRejected) as rejected:
            await c.recordings()
        with pytest.raises(Unsupported):
            await c.doors()  # a camera has no door control
    assert rejected.value.code == "ter:Action"
    for exc in (refused.value, silent.value, cut.value, rejected.value):
        assert exc.exchange_id is not None and not ledger.get(exc.exchange_id).ok


async def test_cancellation_closes_the_session(start: Starter) -> None:
    hung = await start(OnvifCamera, [camera(faults=[{"type": "hung"}])])
    ledger = Ledger()
    client = OnvifClient(connection(hung, ledger, timeout_s=30))

    async def call() -> None:
        async with client:
            await client.device_info()

    task = asyncio.create_task(call())
    async with asyncio.timeout(15):  # cancelled once the call holds a connection to the camera
        while not hung._held:  # noqa: ASYNC110 - the simulator's plain attribute
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.session._http is None
    assert [(e.operation, e.error) for e in ledger] == [("GetDeviceInformation", "cancelled")]


async def test_pull_point_lifecycle_and_lost_subscriptions(start: Starter) -> None:
    bus = SiteBus()
    device = await start(OnvifCamera, [camera()], bus=bus)
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        topics = (await c.event_properties()).topics
        async with await c.pull_point(30) as pp:
            initial = await pp.pull(0)
            await bus.command("cam1", "intrusion")
            changed = await pp.pull(2)
            renewal = await pp.renew(60)
            await pp.unsubscribe()
            with pytest.raises(SubscriptionLost) as gone:
                await pp.pull(0)
        async with await c.pull_point(0.5) as short:
            await asyncio.sleep(0.7)
            with pytest.raises(SubscriptionLost):
                await short.renew(60)
            assert not short.open  # leaving without unsubscribing: the device ended it
    assert {"RuleEngine/FieldDetector/ObjectsInside", "VideoSource/SignalLoss"} <= topics
    assert {m.operation for m in initial.messages} == {"Initialized"}
    assert (changed.messages[0].topic, changed.messages[0].data) == (
        "RuleEngine/FieldDetector/ObjectsInside",
        {"IsInside": "true"},
    )
    assert renewal.remaining_s is not None and renewal.remaining_s >= 59
    assert gone.value.code == "wsrf-r:ResourceUnknownFault"


async def test_doors_and_their_state(start: Starter) -> None:
    bus = SiteBus()
    device = await start(OnvifDoorController, [door()], bus=bus)
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger)) as c:
        doors = await c.doors()
        (info,) = doors.doors
        before = await c.door_state(info.token)
        await bus.command("door1", "force_open")
        after = await c.door_state(info.token)
        services = await c.services()
    assert {"doorcontrol", "accesscontrol", "events"} <= services.names
    assert info.capabilities.door_monitor and info.capabilities.alarm and not info.capabilities.tamper
    assert (before.mode, before.physical, before.alarm) == ("Locked", "Closed", "Normal")
    assert (after.physical, after.alarm) == ("Open", "DoorForcedOpen")


async def test_evidence_never_holds_credentials(start: Starter, tmp_path: Path) -> None:
    site = make_site_tls(tmp_path, "site", ["127.0.0.1"])
    device = await start(OnvifCamera, [camera()], tls=site.server_context())
    ledger = Ledger()
    async with OnvifClient(connection(device, ledger, tls=site.client_context())) as c:
        await c.device_info()
        await c.recordings()
        async with await c.pull_point(10) as pp:
            await pp.pull(0)
    async with OnvifClient(connection(device, ledger, tls=site.client_context(), password="wrong-pass")) as c:
        with pytest.raises(AuthFailed):
            await c.device_info()
    assert_redacted(ledger)
    assert all("wrong-pass" not in e.request for e in ledger)
    assert PASSWORD not in repr(ledger)

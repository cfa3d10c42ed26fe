"""The ONVIF probes (retention, recording_alive, event_service, door_alarms) on simulated devices."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SiteFactory
from onvif_collector_helpers import Ledger, assert_redacted, connection, context, site_targets, target
from onvif_helpers import Starter, camera, door, free_port, nvr, start

from collectors.onvif import OnvifClient
from probes import (
    door_alarms,
    event_service,
    recording_alive,
    retention,
    transport_security,
    video_loss_alert,
    video_signal,
)
from probes.finding import Finding
from probes.targets import Target
from probes.transport_common import settle_transports
from simulator.onvif import OnvifCamera, OnvifDoorController, OnvifNvr
from simulator.onvif.events import DOOR_MODE, DOOR_PHYSICAL, Topic
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers
__all__ = ["start"]  # the fixture, imported for pytest


async def run_retention(t: Target, ledger: Ledger, *others: Target, **kw: Any) -> Finding:
    return await retention.run(context([t, *others], ledger, **kw), t, retention.Params())


def cited(finding: Finding, ledger: Ledger) -> set[str]:
    """The operations a finding cites; every cited id must be in the ledger."""
    return {ledger.get(e).operation for e in finding.evidence}


# -- retention ------------------------------------------------------------------------------------


async def test_retention_pass_and_key_location(start: Starter) -> None:
    device = await start(OnvifCamera, [camera(camera={"configured_retention_days": 40})])
    ledger = Ledger()
    ok = await run_retention(target(device, "camera"), ledger)
    assert (ok.status, ok.reason) == ("pass", "retained")
    assert 34.9 < ok.facts["observed_days"] < 35.1
    assert (ok.facts["configured_days"], ok.facts["required_days"]) == (40.0, 30)
    assert ok.facts["gaps"] == ok.facts["deletions"] == []
    assert {"GetSystemDateAndTime", "FindRecordings", "GetRecordings", "FindEvents"} <= cited(ok, ledger)
    key = await run_retention(target(device, "camera", tags={"key_location": True}), Ledger())
    assert (key.status, key.reason, key.facts["required_days"]) == ("fail", "retention_short", 90)


async def test_retention_short_gap_and_deletion_are_told_apart(start: Starter) -> None:
    short = await start(OnvifCamera, [camera(faults=[{"type": "retention_short", "days": 7}])])
    gap = await start(OnvifCamera, [camera(faults=[{"type": "recording_gap", "days_ago": 3, "hours": 6}])])
    deleted = await start(
        OnvifCamera,
        [camera(faults=[{"type": "deleted_span", "days_ago": 10, "hours": 24}])],
    )
    old_gap = await start(
        OnvifCamera, [camera(faults=[{"type": "recording_gap", "days_ago": 33, "hours": 6}])]
    )
    ledger = Ledger()
    devices = {"short": short, "gap": gap, "deleted": deleted, "old_gap": old_gap}
    findings = {name: await run_retention(target(d, "camera"), ledger) for name, d in devices.items()}
    assert (findings["short"].status, findings["short"].reason) == ("fail", "retention_short")
    assert 6.9 < findings["short"].facts["observed_days"] < 7.1
    assert findings["short"].facts["configured_days"] == "disk_bound"
    assert findings["short"].facts["deletions"] == []  # the history before the first frame is no hole
    assert (findings["gap"].reason, findings["gap"].facts["deletions"]) == ("recording_gap", [])
    assert [g["hours"] for g in findings["gap"].facts["gaps"]] == [6.0]
    assert (findings["deleted"].reason, findings["deleted"].facts["gaps"]) == ("data_deleted", [])
    assert [d["hours"] for d in findings["deleted"].facts["deletions"]] == [24.0]
    assert findings["old_gap"].status == "pass"  # outside the 30-day window
    assert all(f.evidence for f in findings.values())


async def test_retention_on_an_nvr_per_camera_and_whole(start: Starter) -> None:
    devices = [
        nvr(nvr={"configured_retention_days": 60}),
        camera(id="camA", camera={"recorded_by": "nvr1", "channel": 1}),
        camera(
            id="camB",
            camera={"recorded_by": "nvr1", "channel": 2},
            faults=[{"type": "deleted_span", "days_ago": 2, "hours": 3}],
        ),
    ]
    device = await start(OnvifNvr, devices)
    recorder = target(device, "nvr")
    cam_a = target(None, "camera", id="camA", recorded_by="nvr1", channel=1)
    cam_b = target(None, "camera", id="camB", recorded_by="nvr1", channel=2)
    ghost = target(None, "camera", id="camZ", recorded_by="nvr1", channel=9)
    ledger = Ledger()
    ctx = context([recorder, cam_a, cam_b, ghost], ledger)
    a = await retention.run(ctx, cam_a, retention.Params())
    b = await retention.run(ctx, cam_b, retention.Params())
    z = await retention.run(ctx, ghost, retention.Params())
    whole = await retention.run(ctx, recorder, retention.Params())
    assert (a.status, a.facts["recording"], a.facts["recorder"]) == ("pass", "REC_camA", "nvr1")
    assert (b.status, b.reason) == ("fail", "data_deleted")
    assert (z.status, z.reason) == ("fail", "no_recording")
    assert (whole.status, whole.ratio, whole.reason, whole.facts["failing"]) == (
        "partial",
        0.5,
        "data_deleted",
        ["REC_camB"],
    )
    assert ledger.operations().count("FindRecordings") == 1  # the NVR read once for all of them


async def test_retention_not_assessed_without_profile_g(start: Starter) -> None:
    device = await start(OnvifNvr, [nvr(nvr={"profile_g": False}), camera(camera={"recorded_by": "nvr1"})])
    ledger = Ledger()
    cam = target(None, "camera", id="cam1", recorded_by="nvr1")
    finding = await run_retention(cam, ledger, target(device, "nvr"))
    assert (finding.status, finding.reason) == ("not_assessed", "no_profile_g")
    assert cited(finding, ledger) == {"GetSystemDateAndTime", "GetServices"}
    isapi = target(None, "nvr", id="nvr2", protocol="isapi")
    elsewhere = target(None, "camera", id="cam2", recorded_by="nvr2")
    other = await run_retention(elsewhere, ledger, isapi)
    assert (other.status, other.reason) == ("not_assessed", "not_onvif")
    lost = await run_retention(target(None, "camera", id="cam3", recorded_by="nvr9"), ledger)
    assert (lost.status, lost.reason) == ("error", "inventory_invalid")


async def test_retention_over_verified_tls_and_plain_http(start: Starter, tmp_path: Path) -> None:
    site = make_site_tls(tmp_path, "site", ["127.0.0.1"])
    secure = await start(OnvifCamera, [camera()], tls=site.server_context())
    plain = await start(OnvifCamera, [camera(faults=[{"type": "plain_http"}])])
    ledger = Ledger()
    ok = await run_retention(target(secure, "camera", tls=True), ledger, trust=site.client_context())
    assert ok.status == "pass" and all(ledger.get(e).address.startswith("https://") for e in ok.evidence)
    downgraded = await run_retention(target(plain, "camera", tls=True), ledger, trust=site.client_context())
    assert (downgraded.status, downgraded.reason) == ("error", "protocol_violation")
    assert "TLS" in downgraded.facts["error"] and downgraded.evidence
    assert_redacted(ledger)


async def test_tls_auto_speaks_what_each_device_answers(start: Starter, tmp_path: Path) -> None:
    """tls: auto: TLS where the handshake completes, plain HTTP where only plain HTTP answers, TLS
    kept where nothing answers; decided once, then every probe of the device uses it."""
    site = make_site_tls(tmp_path, "site", ["127.0.0.1"])
    secure = await start(OnvifCamera, [camera()], tls=site.server_context())
    plain = await start(OnvifCamera, [camera(id="cam2", faults=[{"type": "plain_http"}])])
    targets = [
        dataclasses.replace(target(secure, "camera", tls=True), tls_auto=True),
        dataclasses.replace(target(plain, "camera", tls=True), tls_auto=True),
        dataclasses.replace(target(None, "camera", id="cam3", port=free_port(), tls=True), tls_auto=True),
    ]
    ledger = Ledger()
    ctx = context(targets, ledger, trust=site.client_context())
    ctx.site = await settle_transports(ctx, asyncio.Semaphore(4))
    chosen = {t.id: (t.tls, t.params["transport"]["chosen"]) for t in ctx.site.targets}
    assert chosen == {"cam1": (True, "tls"), "cam2": (False, "plain_http"), "cam3": (True, "tls")}
    why = ctx.site.get("cam2").params["transport"]
    assert why["reason"].startswith("no TLS (") and "plain HTTP answered" in why["reason"]
    assert [ledger.get(e).operation for e in why["evidence"]] == [
        "TLS handshake (verify)",
        "TLS handshake (observe)",
        "plain HTTP GET",
    ]
    assert "no answer" in ctx.site.get("cam3").params["transport"]["reason"]
    for t in ctx.site.targets[:2]:
        found = await retention.run(ctx, t, retention.Params())
        assert found.status == "pass", found.detail
    # transport_security judges on the look that decided: no handshake or knock of its own
    made = len(ledger)
    looked = ctx.site.targets[0].params["transport"]["evidence"]
    secure_ok = await transport_security.run(ctx, ctx.site.targets[0], transport_security.Params())
    downgraded = await transport_security.run(ctx, ctx.site.targets[1], transport_security.Params())
    assert (secure_ok.status, secure_ok.reason) == ("pass", "tls_ok")
    assert set(looked) <= set(secure_ok.evidence) and [ledger.get(e).operation for e in looked] == [
        "TLS handshake (verify)"
    ]
    assert (downgraded.status, downgraded.reason) == ("fail", "plaintext")
    assert downgraded.evidence == tuple(why["evidence"])
    assert len(ledger) == made + 1  # the secure camera's plain knock, which tls: auto had no need of
    await ctx.close()
    assert await settle_transports(ctx, asyncio.Semaphore(4)) == ctx.site  # decided once per run


async def test_retention_device_faults_are_errors(start: Starter) -> None:
    offline = await start(OnvifCamera, [camera(faults=[{"type": "offline"}])], port=free_port())
    hung = await start(OnvifCamera, [camera(faults=[{"type": "hung"}])])
    broken = await start(OnvifCamera, [camera(faults=[{"type": "malformed_xml"}])])
    refusing = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["FindEvents"]}])]
    )
    ledger = Ledger()
    down = await run_retention(target(offline, "camera"), ledger)
    assert (down.status, down.reason, down.facts["timed_out"]) == ("error", "unreachable", False)
    began = time.monotonic()
    silent = await run_retention(target(hung, "camera"), ledger, call_timeout_s=0.5)
    assert (silent.status, silent.reason, silent.facts["timed_out"]) == ("error", "unreachable", True)
    assert time.monotonic() - began < 3.5  # its timeout, not more (3 s of slack for a loaded machine)
    cut = await run_retention(target(broken, "camera"), ledger)
    assert (cut.status, cut.reason) == ("error", "protocol_violation")
    rejected = await run_retention(target(refusing, "camera"), ledger)
    assert (rejected.status, rejected.reason, rejected.facts["code"]) == (
        "error",
        "device_rejected",
        "ter:Action",
    )
    assert "FindEvents" in cited(rejected, ledger)  # the refusal is cited beside what was read before it
    for finding in (down, silent, cut, rejected):
        assert not ledger.get(finding.evidence[-1]).ok


async def test_retention_without_find_events_is_judged_on_the_span(start: Starter) -> None:
    """FindEvents answered ActionNotSupported: the span decides, the finding says gaps went unchecked;
    without the recording search too, nothing can be judged and the finding says why."""

    def unsupported(*operations: str, **kw: Any) -> dict[str, Any]:
        return camera(
            faults=[{"type": "soap_fault", "operations": list(operations), "not_supported": True}], **kw
        )

    spans = await start(OnvifCamera, [unsupported("FindEvents")])
    short = await start(OnvifCamera, [unsupported("FindEvents", camera={"retention_days": 12})])
    blind = await start(OnvifCamera, [unsupported("FindEvents", "FindRecordings")])
    ledger = Ledger()
    held = await run_retention(target(spans, "camera"), ledger)
    assert (held.status, held.reason, held.facts["gaps_checked"]) == ("pass", "retained_span_only", False)
    assert "gaps and deletions were not checked" in held.detail
    assert "FindEvents" in cited(held, ledger)
    few = await run_retention(target(short, "camera"), ledger)
    assert (few.status, few.reason, few.facts["observed_days"]) == ("fail", "retention_short", 12.0)
    none = await run_retention(target(blind, "camera"), ledger)
    assert (none.status, none.reason) == ("not_assessed", "search_unsupported")
    assert "FindRecordings" in cited(none, ledger) and "ActionNotSupported" in none.detail


async def test_retention_judged_when_configuration_is_refused(start: Starter) -> None:
    device = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["GetRecordings"]}])]
    )
    ledger = Ledger()
    finding = await run_retention(target(device, "camera"), ledger)
    assert (finding.status, finding.facts["configured_days"], finding.facts["configured_refused"]) == (
        "pass",
        None,
        True,
    )
    assert "GetRecordings" in cited(finding, ledger)


# -- recording alive ------------------------------------------------------------------------------


async def test_recording_alive_fresh_stale_and_skewed(start: Starter) -> None:
    fresh = await start(OnvifCamera, [camera()])
    stopped = await start(
        OnvifCamera, [camera(faults=[{"type": "recording_gap", "days_ago": 0.01, "hours": 2}])]
    )
    skewed = await start(OnvifCamera, [camera(faults=[{"type": "clock_skew", "seconds": -7200}])])
    ledger = Ledger()
    params = recording_alive.Params()
    found = {}
    for name, device in (("fresh", fresh), ("stopped", stopped), ("skewed", skewed)):
        t = target(device, "camera")
        found[name] = await recording_alive.run(context([t], ledger), t, params)
    assert (found["fresh"].status, found["fresh"].reason) == ("pass", "recording")
    assert found["fresh"].facts["age_s"] < 5 and "FindRecordings" in cited(found["fresh"], ledger)
    assert (found["stopped"].status, found["stopped"].reason) == ("fail", "recording_stale")
    assert 13 * 60 < found["stopped"].facts["age_s"] < 16 * 60
    assert found["skewed"].status == "pass"  # two hours behind, but recording now by its own clock
    assert -7210 < found["skewed"].facts["clock_skew_s"] < -7190


# -- event service --------------------------------------------------------------------------------


async def test_event_service_live_and_analytics_topics(start: Starter) -> None:
    smart = await start(OnvifCamera, [camera()])
    plain = await start(OnvifCamera, [camera(camera={"analytics": False})])
    ledger = Ledger()
    params = event_service.Params(pull_wait_s=0.2)
    t = target(smart, "camera")
    live = await event_service.run(context([t], ledger), t, params)
    assert (live.status, live.reason, live.facts["subscription_step"]) == ("pass", "events_live", "done")
    assert live.facts["analytics_topics"] == [
        "RuleEngine/FieldDetector/ObjectsInside",
        "RuleEngine/LineDetector/Crossed",
    ]
    assert live.facts["video_loss"] and live.facts["tamper"] and live.facts["digital_input"]
    assert live.facts["initial_messages"] >= 3 and live.facts["renewed_for_s"] >= 59
    assert {
        "GetEventProperties",
        "CreatePullPointSubscription",
        "PullMessages",
        "Renew",
        "SetSynchronizationPoint",
        "Unsubscribe",
    } <= cited(live, ledger)
    assert live.facts["sync_heard"] is True
    t = target(plain, "camera")
    no_analytics = await event_service.run(context([t], ledger), t, params)
    assert no_analytics.status == "pass" and no_analytics.facts["analytics_topics"] == []


async def test_event_subscription_dead_and_refused(start: Starter) -> None:
    device = await start(OnvifCamera, [camera()])
    refusing = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["CreatePullPointSubscription"]}])]
    )
    mute = await start(
        OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["GetEventProperties"]}])]
    )
    ledger = Ledger()
    t = target(device, "camera")
    # the device drops the subscription at its termination time, before the probe checks it
    dead = await event_service.run(
        context([t], ledger), t, event_service.Params(subscription_s=0.5, pull_wait_s=0.8)
    )
    assert (dead.status, dead.reason, dead.facts["subscription_step"]) == (
        "error",
        "subscription_dead",
        "sync",
    )
    assert dead.facts["code"] == "wsrf-r:ResourceUnknownFault"
    t = target(refusing, "camera")
    refused = await event_service.run(context([t], ledger), t, event_service.Params())
    assert (refused.status, refused.reason, refused.facts["subscription_step"]) == (
        "fail",
        "subscription_dead",
        "create",
    )
    t = target(mute, "camera")
    none = await event_service.run(context([t], ledger), t, event_service.Params())
    assert (none.status, none.reason) == ("fail", "no_event_service")
    stuck = await start(OnvifCamera, [camera(faults=[{"type": "soap_fault", "operations": ["Renew"]}])])
    t = target(stuck, "camera")
    unrenewed = await event_service.run(context([t], ledger), t, event_service.Params(pull_wait_s=0))
    assert (unrenewed.status, unrenewed.reason, unrenewed.facts["subscription_step"]) == (
        "error",
        "subscription_dead",
        "renew",
    )
    assert ledger.operations()[-2:] == ["Renew", "Unsubscribe"]  # the device's pull point is freed


async def test_one_subscription_serves_the_event_service_and_the_video_signal(start: Starter) -> None:
    device = await start(OnvifCamera, [camera()])
    t = target(device, "camera")
    ledger = Ledger()
    ctx = context([t], ledger)
    signal, live, offered = await asyncio.gather(
        video_signal.run(ctx, t, video_signal.Params()),
        event_service.run(ctx, t, event_service.Params(pull_wait_s=0.2)),
        video_loss_alert.run(ctx, t, video_loss_alert.Params()),
    )
    await ctx.close()
    assert (signal.status, live.status, offered.status) == ("pass", "pass", "pass")
    ops = ledger.operations()
    assert [ops.count(o) for o in ("CreatePullPointSubscription", "PullMessages", "Unsubscribe")] == [1, 2, 1]
    # the signal's state is the first pull of the subscription whose life event_service checked
    opened = [e for e in signal.evidence if ledger.get(e).operation != "GetEventProperties"]
    assert [ledger.get(e).operation for e in opened] == ["CreatePullPointSubscription", "PullMessages"]
    assert set(opened) <= set(live.evidence) and set(offered.evidence) == set(signal.evidence)


async def test_a_shared_subscription_too_old_to_check_is_left_for_a_fresh_one(start: Starter) -> None:
    device = await start(OnvifCamera, [camera()])
    t = target(device, "camera")
    ledger = Ledger()
    ctx = context([t], ledger)
    signal = await video_signal.run(ctx, t, video_signal.Params())
    # its 60 s cannot hold the 70 s this check may take: event_service opens its own
    params = event_service.Params(pull_wait_s=0.2, sync_wait_s=60)
    live = await event_service.run(ctx, t, params)
    assert (live.status, live.facts["sync_heard"]) == ("pass", True)
    creates = [e for e in live.evidence if ledger.get(e).operation == "CreatePullPointSubscription"]
    assert len(creates) == 1 and creates[0] not in signal.evidence
    assert ledger.operations().count("Unsubscribe") == 1
    await ctx.close_shared()  # the run (or round) ends: the subscription nobody ended is ended
    ended = [e for e in ledger if e.operation == "Unsubscribe"]
    assert len(ended) == 2 and all(e.ok for e in ended)
    signal_pull = next(ledger.get(e) for e in signal.evidence if ledger.get(e).operation == "PullMessages")
    assert ended[-1].address == signal_pull.address
    await ctx.close()
    assert ledger.operations().count("Unsubscribe") == 2  # nothing was left to end
    # a device's client that closes before the run ends ends it itself
    async with OnvifClient(connection(device, ledger)) as client:
        opening = await client.opening(60)
    assert ledger.operations()[-2:] == ["PullMessages", "Unsubscribe"] and not opening.pull_point.open


# -- a whole community -----------------------------------------------------------------------------

FAULTY_EXPECTED = {
    ("retention", "nvr-01"): ("pass", "retained"),
    ("retention", "cam-gate-01"): ("pass", "retained"),  # on the NVR, key location: 90 days
    ("retention", "cam-garage-01"): ("fail", "retention_short"),
    ("retention", "cam-charging-01"): ("fail", "recording_gap"),
    ("retention", "cam-pump-01"): ("fail", "data_deleted"),
    ("retention", "cam-roof-b1"): ("error", "unreachable"),
    ("retention", "cam-garage-02"): ("error", "unreachable"),
    ("recording_alive", "cam-b1-lobby"): ("pass", "recording"),  # its NVR answers for it
    ("event_service", "cam-b1-lobby"): ("error", "protocol_violation"),
    ("event_service", "cam-gate-01"): ("pass", "events_live"),
    ("event_service", "door-gate-01"): ("error", "subscription_silent"),  # deaf after 1 s
    ("event_service", "door-b1-unit1"): ("pass", "events_live"),
    ("door_alarms", "door-gate-01"): ("pass", "door_alarms_supported"),
    ("door_alarms", "door-roof-b1"): ("error", "device_rejected"),
    ("door_alarms", "door-b2-unit1"): ("not_assessed", "not_onvif"),
}


@pytest.mark.slow
async def test_faulty_community_over_tls(community_site: SiteFactory) -> None:
    probes = {m.SPEC.id: m for m in (retention, recording_alive, event_service, door_alarms)}
    async with community_site("faulty") as site:
        assert site.tls is not None
        targets = {t.id: t for t in site_targets(site)}
        ledger = Ledger()
        # room for every camera at once on a loaded machine; the hung one costs it
        ctx = context(targets.values(), ledger, trust=site.tls.client_context(), call_timeout_s=5)
        jobs = [probes[p].run(ctx, targets[d], probes[p].Params()) for p, d in FAULTY_EXPECTED]
        findings = await asyncio.gather(*jobs)
    assert {
        key: (f.status, f.reason) for key, f in zip(FAULTY_EXPECTED, findings, strict=True)
    } == FAULTY_EXPECTED
    assert all(e.address.startswith("https://") for e in ledger)
    assert_redacted(ledger)


# -- door alarms ----------------------------------------------------------------------------------


class DoorWithoutAlarmEvent(OnvifDoorController):
    """A controller that keeps its alarm to itself: no tns1:Door/State/DoorAlarm topic."""

    def topics(self) -> list[Topic]:
        return [DOOR_MODE, DOOR_PHYSICAL]


async def test_door_alarms(start: Starter) -> None:
    good = await start(OnvifDoorController, [door()])
    quiet = await start(DoorWithoutAlarmEvent, [door()])
    cam = await start(OnvifCamera, [camera()])
    faulty = await start(
        OnvifDoorController, [door(faults=[{"type": "soap_fault", "operations": ["GetDoorState"]}])]
    )
    ledger = Ledger()
    found = {}
    for name, device in (("good", good), ("quiet", quiet), ("camera", cam), ("faulty", faulty)):
        t = target(device, "door")
        found[name] = await door_alarms.run(context([t], ledger), t, door_alarms.Params())
    ok = found["good"]
    assert (ok.status, ok.reason) == ("pass", "door_alarms_supported")
    assert ok.facts["forced_open_supported"] and ok.facts["held_open_supported"]
    assert ok.facts["doors"][0]["alarm"] == "Normal"
    assert {"GetEventProperties", "GetDoorInfoList", "GetDoorState"} <= cited(ok, ledger)
    assert (found["quiet"].status, found["quiet"].reason) == ("fail", "no_forced_open_alarm")
    assert found["quiet"].facts["missing"] == ["event topic tns1:Door/State/DoorAlarm"]
    assert (found["camera"].status, found["camera"].reason) == ("not_assessed", "no_profile_c")
    assert (found["faulty"].status, found["faulty"].reason) == ("error", "device_rejected")
    assert_redacted(ledger)

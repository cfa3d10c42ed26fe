"""`zhian monitor`'s observers against the simulated community, as its own process: ONVIF event
subscriptions kept alive (renewed; a forgotten or deaf one re-created and recorded); the platform's
alert for each outage, or its absence; a real fire alarm's linkage timed, nothing set off."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from simulator.faults import Fault, PlatformNoOfflineAlert, SubscriptionDiesSilently
from simulator.modbus import FirePanel
from simulator.model import load_community
from simulator.site import Site
from tests.peers.conftest import _NETS, COMMUNITIES, fast
from tests.peers.linkage_helpers import pull_points
from tests.peers.monitor_helpers import Service, kill_started, ledger_records, records_now, write_config
from zhian.monitor.period import period_report
from zhian.monitor.service import STOP_GRACE_S

pytestmark = pytest.mark.peers
# the simulated linkage acts within 0.3 s; a loaded machine may hold the monitor's loop for seconds
DEADLINE_S = 20.0
TERMINATION_S = 8  # renewed at half of it: room for a loop held up a few seconds on a loaded machine


@pytest.fixture(autouse=True)
def no_service_left() -> Iterator[None]:
    yield
    kill_started()


@asynccontextmanager
async def small_site(
    tmp: Path, faults: Mapping[str, Sequence[Fault]], tls: bool = True
) -> AsyncIterator[Site]:
    """The small community with test timings, mosquitto, and these faults added (`tls`: its devices
    serve TLS, else plain HTTP and MQTT)."""
    community = load_community(COMMUNITIES / "small.yaml").model_copy(update={"tls": tls})
    devices = [d.model_copy(update={"faults": [*d.faults, *faults.get(d.id, ())]}) for d in community.devices]
    community = fast(community.model_copy(update={"devices": devices}), next(_NETS))
    async with Site(community, tmp / "site", latency_scale=0, broker_impl="mosquitto") as site:
        yield site


def lost(samples: list[tuple[dict[str, str], float]], device: str, reason: str) -> float:
    return sum(v for labels, v in samples if labels["device"] == device and labels["reason"] == reason)


@pytest.mark.slow
async def test_dead_event_subscriptions_are_noticed_created_again_and_recorded(tmp_path: Path) -> None:
    deaf = {"cam-gate-01": [SubscriptionDiesSilently(after_s=2)]}
    watched = ("cam-gate-01", "cam-perimeter-01", "door-gate-01")
    timings = {"event_pull_s": 0.5, "event_termination_s": TERMINATION_S, "event_check_s": 1}
    async with small_site(tmp_path, deaf) as site:
        config, env = write_config(site, tmp_path, (*watched, "nvr-01"), timings)
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()

        async def up() -> dict[str, float]:
            return {labels["device"]: v for labels, v in await service.samples("zhian_event_subscription_up")}

        async def lost_total() -> list[tuple[dict[str, str], float]]:
            return await service.samples("zhian_event_subscription_lost_total")

        await service.until(lambda m: all(m.get(d) == 1 for d in watched), read=up)
        subscribed = time.monotonic()
        # a reboot: the camera forgets its pull point, the monitor notices and subscribes again
        await site.operator("cam-perimeter-01", "forget_subscriptions")
        await service.until(lambda s: lost(s, "cam-perimeter-01", "lost") >= 1, read=lost_total)
        await service.until(lambda m: m.get("cam-perimeter-01") == 1, read=up)
        # the deaf camera's subscriptions answer but hear nothing: found silent, twice
        await service.until(lambda s: lost(s, "cam-gate-01", "silent") >= 2, read=lost_total)
        # and the door's subscription lives on past its termination, renewed
        await service.until(lambda _: time.monotonic() - subscribed > 2.5 * TERMINATION_S, read=up)
        assert await service.stop(signal.SIGTERM) == 0

    records = ledger_records(state)
    gaps = [r for r in records if r["kind"] == "event_gap"]
    ends = [r for r in records if r["kind"] == "event_gap_end"]
    by_device = {(g["device"], g["reason"]) for g in gaps}
    assert ("cam-perimeter-01", "lost") in by_device and ("cam-gate-01", "silent") in by_device
    assert {e["device"] for e in ends} >= {"cam-perimeter-01", "cam-gate-01"}
    # every gap cites an exchange the ledger holds: the fault, or the synchronization point unanswered
    exchanges = {r["id"]: r for r in records if r["kind"] == "exchange"}
    for gap in gaps:
        assert gap["evidence"] and all(e in exchanges for e in gap["evidence"]), gap
    silent = next(g for g in gaps if g["reason"] == "silent")
    assert exchanges[silent["evidence"][0]]["method"]["operation"] == "SetSynchronizationPoint"
    # the door's subscription outlived its termination: renewed, never lost
    assert not [g for g in gaps if g["device"] == "door-gate-01"]
    creations = [  # the scheduled event_service check takes a subscription of its own through its life
        e for e in exchanges.values()
        if e["device"] == "door-gate-01" and e["method"]["operation"] == "CreatePullPointSubscription"
        and e["probe"] != "event_service"
    ]  # fmt: skip
    assert len(creations) == 1


@pytest.mark.slow
async def test_a_clean_stop_ends_every_event_subscription_a_frozen_device_only_costs_its_own(
    tmp_path: Path,
) -> None:
    """SIGTERM: every live pull point is unsubscribed (the device holds none after the stop) and the
    Unsubscribe exchanges are evidence; a device frozen mid-service leaves its own to expire and does
    not hold the stop past the phase's budget."""
    watched = ("cam-b1-lobby", "door-b1-unit1", "cam-roof-b1")
    timings = {"event_pull_s": 0.5, "event_termination_s": 600}  # nothing expires during the test
    async with small_site(tmp_path, {}) as site:
        config, env = write_config(site, tmp_path, (*watched, "nvr-01"), timings)
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()

        await service.subscribed(watched)
        await service.first_round()  # the checks' own pull points ended: only the monitor's are left
        assert all(pull_points(site, d) == 1 for d in watched), {d: pull_points(site, d) for d in watched}
        await site.operator("cam-roof-b1", "freeze")
        assert await service.stop(signal.SIGTERM) == 0
        assert pull_points(site, "cam-b1-lobby") == pull_points(site, "door-b1-unit1") == 0
        assert pull_points(site, "cam-roof-b1") == 1  # left to expire at its termination time

    records = ledger_records(state)
    (stop,) = [r for r in records if r["kind"] == "monitor_stop"]
    done = stop["unsubscribed"]
    exchanges = {r["id"]: r for r in records if r["kind"] == "exchange"}
    for device in ("cam-b1-lobby", "door-b1-unit1"):
        assert done[device]["ok"], done
        (evidence,) = done[device]["evidence"]
        assert exchanges[evidence]["device"] == device
        assert exchanges[evidence]["method"]["operation"] == "Unsubscribe"
    assert done["cam-roof-b1"]["ok"] is False, done
    (stopped,) = [json.loads(line) for line in service.stderr.splitlines() if '"event": "stopped"' in line]
    assert stopped["seconds"]["unsubscribe"] <= STOP_GRACE_S + 2, stopped


@pytest.mark.parametrize("alerting", [True, False], ids=["platform_alerts", "platform_silent"])
@pytest.mark.slow
async def test_each_outage_says_whether_the_platform_alerted(tmp_path: Path, alerting: bool) -> None:
    """A child gone quiet: an outage, and the platform's device_offline alert for it within the
    window (then how long after), or none when the platform never raises one. The alerting
    platform serves plain HTTP: `tls: auto` is decided at start, as `zhian run` does, so the
    monitor reaches it (asked over TLS, every poll failed and no alert was ever found)."""
    faults = {} if alerting else {"platform": [PlatformNoOfflineAlert()]}
    window_s = 60 if alerting else 6  # the silent platform: the window must end for the verdict
    async with small_site(tmp_path, faults, tls=not alerting) as site:
        config, env = write_config(
            site, tmp_path, monitor={"alert_poll_s": 0.3}, thresholds={"offline_alert_window_s": window_s}
        )
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()
        await service.until(lambda m: m.get("intercom-b1-01") == 1)
        await site.operator("intercom-b1-01", "child_quiet")

        def verdict(records: list[dict[str, Any]]) -> bool:
            return any(r["kind"] == "outage_alert" and r["device"] == "intercom-b1-01" for r in records)

        await service.until(verdict, read=lambda: records_now(state), timeout_s=120)
        assert await service.stop(signal.SIGTERM) == 0

    records = ledger_records(state)
    row = next(r for r in records if r["kind"] == "outage_alert" and r["device"] == "intercom-b1-01")
    outage = next(
        r for r in records
        if r["kind"] == "finding" and r["device"] == "intercom-b1-01" and r["status"] == "fail"
    )  # fmt: skip
    assert row["outage_started_at"] == outage["finished_at"] and row["alert"] is alerting
    exchanges = {r["id"]: r for r in records if r["kind"] == "exchange"}
    assert row["evidence"] and all(e in exchanges for e in row["evidence"])
    assert {exchanges[e]["method"]["operation"] for e in row["evidence"]} == {"alerts"}, row
    if alerting:
        assert row["alert_id"] and 0 <= row["after_s"] <= window_s
        # raised for this outage: after the device's last heartbeat (same clock on this machine)
        assert datetime.fromisoformat(row["raised_at"]) >= datetime.fromisoformat(
            outage["facts"]["last_seen"]
        )
    else:
        assert "alert_id" not in row and row["window_s"] == window_s
    # the period report's outage says so
    today = datetime.fromisoformat(row["outage_started_at"]).date()
    outages = period_report(state, today, today, None)["outages"]
    said = [o["platform_alert"] for o in outages if o["device"] == "intercom-b1-01"]
    assert said and said[0] is not None and said[0]["alert"] is alerting


@pytest.mark.slow
async def test_a_real_fire_alarm_gives_a_passive_linkage_finding_with_its_timeline(tmp_path: Path) -> None:
    """A smoke detector in zone 1 of panel-b1 (b1-entrance) while the monitor runs: the doors, the
    camera, the relay, the panel's outputs and the platform alert are timed from the trigger, and
    each fire_linkage probe's verdict is recorded; the monitor sets nothing off and resets nothing."""
    watched = ("panel-b1", "cam-b1-lobby", "door-b1-unit1", "nvr-01")
    deadlines = {k: DEADLINE_S for k in ("doors_unlock_s", "camera_alarm_s", "emergency_lighting_s",
                                  "broadcast_s", "platform_alert_s")}  # fmt: skip
    async with small_site(tmp_path, {}) as site:
        config, env = write_config(
            site, tmp_path, watched, {"linkage_poll_s": 0.3, "event_pull_s": 0.5}, {"linkage": deadlines}
        )
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()

        await service.subscribed(("cam-b1-lobby", "door-b1-unit1"))
        await service.until(lambda h: h["panels"].get("panel-b1") == "read", read=service.health)

        # the first round of checks done (ONVIF clients built: seconds of a busy loop on a loaded
        # machine), so that the alarm is heard as it comes rather than when the loop is free again
        await service.first_round()
        await site.operator("panel-b1", "smoke", zone=1)

        def observed(records: list[dict[str, Any]]) -> bool:
            return any(r["kind"] == "linkage" for r in records)

        await service.until(observed, read=lambda: records_now(state), timeout_s=120)
        assert panel_in_alarm(site, "panel-b1")  # the monitor reset nothing
        assert await service.stop(signal.SIGTERM) == 0

    records = ledger_records(state)
    (linkage,) = [r for r in records if r["kind"] == "linkage"]
    facts = linkage["facts"]
    what = (linkage["device"], facts["zone"], facts["area"], facts["trigger"])
    assert what == ("panel-b1", 1, "b1-entrance", "real")
    timeline = {(row["effect"], row["target"]): row for row in facts["timeline"]}
    expected = {
        ("video", "cam-b1-lobby"), ("doors", "door-b1-unit1"), ("lighting", "light-b1-entrance"),
        ("lighting", "panel-b1"), ("broadcast", "panel-b1"), ("alert", "platform"),
    }  # fmt: skip
    assert set(timeline) == expected
    for row in timeline.values():
        assert row["status"] == "on_time", facts["timeline"]
        assert 0 <= row["delay_s"] <= row["deadline_s"] == DEADLINE_S
    assert {v["status"] for v in linkage["verdicts"].values()} == {"pass"}, linkage["verdicts"]
    exchanges = {r["id"] for r in records if r["kind"] == "exchange"}
    assert linkage["evidence"] and set(linkage["evidence"]) <= exchanges
    # the period report lists the event with its timings
    today = datetime.fromisoformat(linkage["at"]).date()
    (event,) = period_report(state, today, today, None)["linkage_events"]
    assert (event["subject"], event["trigger"]) == ("panel-b1", "real")
    assert {(e["effect"], e["target"]) for e in event["effects"]} == expected
    # the findings reached the board: each fire_linkage probe's first status, recorded as a change
    changed = {r["probe"] for r in records if r["kind"] == "finding" and r["device"] == "panel-b1"}
    assert {p for p in changed if p.startswith("fire_linkage_")} == {
        "fire_linkage_doors", "fire_linkage_video", "fire_linkage_lighting",
        "fire_linkage_broadcast", "fire_linkage_alert",
    }  # fmt: skip


def panel_in_alarm(site: Site, panel_id: str) -> bool:
    device = site.devices[panel_id]
    assert isinstance(device, FirePanel)
    return bool(device.state.alarm)


@pytest.mark.slow
async def test_a_real_intrusion_gives_a_passive_linkage_finding_with_its_timeline(tmp_path: Path) -> None:
    """An intruder before cam-perimeter-01 while the monitor runs (the camera's own analytics event,
    raised through the simulator's operator hook): the area's cameras, its lighting relay and the
    platform's intrusion alert are timed from the trigger, each intrusion_linkage probe's verdict is
    recorded and reaches the board, and the period report lists the event."""
    watched = ("cam-perimeter-01", "cam-perimeter-02")
    deadlines = {k: DEADLINE_S for k in ("camera_alarm_s", "lighting_s", "platform_alert_s")}
    async with small_site(tmp_path, {}) as site:
        keep = (*watched, "nvr-01")
        config, env = write_config(site, tmp_path, keep, {"event_pull_s": 0.5}, {"linkage": deadlines})
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()

        await service.subscribed(watched)
        await service.first_round()
        await site.operator("cam-perimeter-01", "intrusion")

        def observed(records: list[dict[str, Any]]) -> bool:
            return any(r["kind"] == "linkage" for r in records)

        await service.until(observed, read=lambda: records_now(state), timeout_s=120)
        assert await service.stop(signal.SIGTERM) == 0

    records = ledger_records(state)
    (linkage,) = [r for r in records if r["kind"] == "linkage"]
    facts = linkage["facts"]
    what = (linkage["device"], facts["test"], facts["area"], facts["trigger"], facts["camera"])
    assert what == ("cam-perimeter-01", "intrusion_linkage", "perimeter", "real", "cam-perimeter-01")
    assert facts["trigger_event"].startswith("RuleEngine/")
    assert facts["trigger_at"] <= facts["alarm_seen_at"]
    timeline = {(row["effect"], row["target"]): row for row in facts["timeline"]}
    expected = {
        ("video", "cam-perimeter-01"), ("video", "cam-perimeter-02"), ("lighting", "light-perimeter"),
        ("alert", "platform"),
    }  # fmt: skip
    assert set(timeline) == expected
    for row in timeline.values():
        assert row["status"] == "on_time", facts["timeline"]
        assert 0 <= row["delay_s"] <= row["deadline_s"] == DEADLINE_S
    probes = {"intrusion_linkage_video", "intrusion_linkage_lighting", "intrusion_linkage_alert"}
    assert set(linkage["verdicts"]) == probes
    assert {v["status"] for v in linkage["verdicts"].values()} == {"pass"}, linkage["verdicts"]
    exchanges = {r["id"]: r for r in records if r["kind"] == "exchange"}
    assert linkage["evidence"] and set(linkage["evidence"]) <= set(exchanges)
    operations = {exchanges[e]["method"]["operation"] for e in linkage["evidence"]}
    assert {"PullMessages", "alerts"} <= operations, operations
    # the period report lists the event with its timings
    today = datetime.fromisoformat(linkage["at"]).date()
    (event,) = period_report(state, today, today, None)["linkage_events"]
    assert (event["subject"], event["trigger"]) == ("cam-perimeter-01", "real")
    assert {(e["effect"], e["target"]) for e in event["effects"]} == expected
    # the findings reached the board: each intrusion_linkage probe's first status, recorded as a change
    changed = {r["probe"] for r in records if r["kind"] == "finding" and r["device"] == "cam-perimeter-01"}
    assert {p for p in changed if p.startswith("intrusion_linkage_")} == probes

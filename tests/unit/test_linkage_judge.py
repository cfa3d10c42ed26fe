"""The linkage probes' judging and reading of the site's answers, without any I/O."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from collectors.exchange import Exchange
from collectors.isapi import DoorStatus
from collectors.mqtt.messages import Received, TopicSummary
from collectors.onvif_events import PulledMessage
from collectors.platform import PlatformAlert
from probes.base import ProbeContext, Sample, to_the_end
from probes.linkage.fire import fire_finding
from probes.linkage.intrusion import intrusion_finding
from probes.linkage.judge import judge_effect, judge_zones
from probes.linkage.params import FIRE, INTRUSION, FireParams, IntrusionParams
from probes.linkage.reading import (
    Heard,
    alarm_onset,
    alert_matches,
    current_state,
    intrusion_onset,
    isapi_released,
    relay_on,
)
from probes.linkage.site import (
    chosen_zones,
    doors_of,
    expected_effects,
    fire_zones,
    relay_topics,
    zone_areas,
    zone_members,
)
from probes.linkage.watches import LinkageRun, Observed, PanelRun, Problem, RestoreStep
from probes.panel_common import PanelSite, panel_site
from probes.targets import SiteView, Target

T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
FIRE_PROBES = ["fire_linkage_doors", "fire_linkage_video", "fire_linkage_lighting", "fire_linkage_broadcast"]
FIRE_PROBES += ["fire_linkage_alert"]
INTRUSION_PROBES = ["intrusion_linkage_video", "intrusion_linkage_lighting", "intrusion_linkage_alert"]


def seen(target: str, delay_s: float | None, deadline_s: float = 10.0, **more: Any) -> Observed:
    fields: dict[str, Any] = {
        "effect": "doors",
        "target": target,
        "deadline_s": deadline_s,
        "delay_s": delay_s,
        "baseline_active": False,
        "error": None,
        "error_detail": None,
        "evidence": (f"x-{target}",) if delay_s is not None else (),
        "facts": {},
    }
    return Observed(**(fields | more))


def fire_run(*watches: Observed, outcome: str = "triggered", **more: Any) -> LinkageRun:
    fields: dict[str, Any] = {
        "test": FIRE,
        "subject": "panel-b1",
        "trigger_kind": "remote",
        "area": "b1-entrance",
        "zone": 1,
        "outcome": outcome,
        "started_at": T0,
        "trigger_at": T0 + timedelta(seconds=1) if outcome == "triggered" else None,
        "trigger_evidence": ("x-trigger",),
        "observed_until": T0 + timedelta(seconds=13),
        "watches": watches,
        "restore": (RestoreStep("panel_reset", "panel-b1", True, "reset sent", ("x-reset",)),),
    }
    return LinkageRun(**(fields | more))


def judge(run: LinkageRun, effect: str = "doors") -> Any:
    return judge_effect("fire_linkage_doors", "panel-b1", run, effect, T0, T0)  # type: ignore[arg-type]


def judge_panel(*runs: LinkageRun, effect: str = "doors") -> Any:
    run = PanelRun("panel-b1", runs, {"mode": "every"})
    return judge_zones("fire_linkage_doors", "panel-b1", run, effect, T0, T0)  # type: ignore[arg-type]


# -- judging ----------------------------------------------------------------------------------------------
def test_every_target_in_time_passes_with_the_evidence_and_the_timeline() -> None:
    run = fire_run(seen("door-a", 2.0), seen("door-b", 10.0), seen("cam", 0.5, effect="video"))
    f = judge(run)
    assert (f.status, f.reason) == ("pass", "effect_in_time")
    assert f.evidence == ("x-trigger", "x-door-a", "x-door-b")
    assert set(f.facts["targets"]) == {"door-a", "door-b"}  # its own effect
    assert [row["target"] for row in f.facts["timeline"]] == ["door-a", "door-b", "cam"]  # the whole test
    assert f.facts["timeline"][1] == {
        "effect": "doors", "target": "door-b", "status": "on_time", "delay_s": 10.0, "deadline_s": 10.0
    }  # fmt: skip
    assert f.facts["trigger_at"] == (T0 + timedelta(seconds=1)).isoformat()
    assert f.facts["restore"] == {
        "complete": True,
        "steps": [
            {
                "step": "panel_reset",
                "target": "panel-b1",
                "ok": True,
                "detail": "reset sent",
                "operator_told": False,
            }
        ],
    }
    json.dumps(f.facts)  # the report stores facts as JSON


def test_a_missing_effect_fails_naming_the_target_even_beside_late_and_broken_ones() -> None:
    broken = seen("door-c", None, error="unreachable", error_detail="no reply")
    f = judge(fire_run(seen("door-a", 2.0), seen("door-b", None), seen("door-d", 12.5), broken))
    assert (f.status, f.reason) == ("fail", "effect_missing")
    assert f.facts["missing"] == ["door-b"] and "door-b" in f.detail
    assert f.facts["late"] == {"door-d": {"delay_s": 12.5, "deadline_s": 10.0}}
    assert f.facts["targets"]["door-c"]["error"] == "unreachable"


def test_a_late_effect_fails_with_its_delay_and_deadline() -> None:
    f = judge(fire_run(seen("door-a", 2.0), seen("door-garage", 4.2, deadline_s=2.0)))
    assert (f.status, f.reason) == ("fail", "effect_late")
    assert "door-garage" in f.detail and "4.2" in f.detail and "2 s" in f.detail
    assert f.facts["late"] == {"door-garage": {"delay_s": 4.2, "deadline_s": 2.0}}


def test_an_unobservable_target_is_an_error_never_a_pass() -> None:
    broken = seen("door-b", None, error="unreachable", error_detail="no reply", evidence=("x-fail",))
    f = judge(fire_run(seen("door-a", 2.0), broken))
    assert (f.status, f.reason) == ("error", "unreachable")
    assert "x-fail" in f.evidence


def test_an_effect_already_active_before_the_trigger_cannot_be_timed() -> None:
    f = judge(fire_run(seen("door-a", 1.0), seen("door-b", None, baseline_active=True)))
    assert (f.status, f.reason) == ("not_assessed", "effect_already_active")
    # an alarm raised anew after the trigger still counts, whatever the state before
    again = judge(fire_run(seen("door-b", 1.0, baseline_active=True)))
    assert again.status == "pass"


def test_no_target_in_the_area_is_not_assessed() -> None:
    f = judge(fire_run(seen("cam", 1.0, effect="video")))
    assert (f.status, f.reason) == ("not_assessed", "no_targets")
    assert "b1-entrance" in f.detail


@pytest.mark.parametrize("outcome", ["trigger_not_seen", "site_in_alarm", "no_operator", "no_analytics"])
def test_a_test_that_never_ran_is_not_assessed_with_the_outcome_as_reason(outcome: str) -> None:
    f = judge(fire_run(outcome=outcome))
    assert (f.status, f.reason) == ("not_assessed", outcome)
    assert f.evidence == ("x-trigger",)
    assert f.facts["trigger_at"] is None and f.facts["outcome"] == outcome


def test_a_failed_trigger_is_an_error_citing_the_refusal() -> None:
    problem = Problem("device_rejected", "The panel did not take the simulated alarm.", ("x-refused",))
    f = judge(fire_run(outcome="failed", problem=problem, trigger_evidence=()))
    assert (f.status, f.reason, f.evidence) == ("error", "device_rejected", ("x-refused",))


def test_an_incomplete_restore_is_told_in_the_detail_and_the_facts() -> None:
    left = RestoreStep("door_locked", "door-a", False, "still released: mode Unlocked", ("x-r",), True)
    f = judge(fire_run(seen("door-a", 1.0), restore=(left,)))
    assert f.status == "pass"  # the effect came; the restore is a fact of its own
    assert "not fully restored" in f.detail
    assert f.facts["restore"]["complete"] is False
    assert f.facts["restore"]["steps"][0]["operator_told"] is True


# -- a panel's zones ---------------------------------------------------------------------------------------
def test_a_panel_fails_when_one_zone_fails_and_keeps_every_zone() -> None:
    entrance = fire_run(seen("door-a", 1.0), zone=1)
    garage = fire_run(seen("door-garage", 4.2, deadline_s=2.0), zone=2, area="garage")
    broken = seen("door-roof", None, error="device_rejected", error_detail="SOAP fault", evidence=("x-soap",))
    roof = fire_run(broken, zone=3, area="rooftop")
    f = judge_panel(entrance, garage, roof)
    assert (f.status, f.reason) == ("fail", "effect_late")
    assert f.detail.startswith("Zone 2 (garage): Door unlock came late: door-garage after 4.2 s")
    assert f.detail.endswith("(zones tested: 1 pass, 2 fail, 3 error)")
    zones = f.facts["zones"]
    assert [(z["zone"], z["area"], z["status"]) for z in zones] == [
        (1, "b1-entrance", "pass"), (2, "garage", "fail"), (3, "rooftop", "error")
    ]  # fmt: skip
    assert zones[1]["late"] == {"door-garage": {"delay_s": 4.2, "deadline_s": 2.0}}
    for zone in zones:  # what the report draws, per zone
        assert {"trigger_at", "timeline", "deadline_s", "restore", "reason", "detail"} <= set(zone)
    assert {"x-door-a", "x-door-garage", "x-soap"} <= set(f.evidence)  # every zone's evidence
    assert (f.facts["effect"], f.facts["restore_complete"], f.facts["zone_sample"]) == (
        "doors",
        True,
        {"mode": "every"},
    )
    json.dumps(f.facts)


def test_a_panel_passes_only_when_no_zone_did_worse() -> None:
    doorless = fire_run(seen("cam", 0.5, effect="video"), zone=2, area="charging")
    passed = judge_panel(fire_run(seen("door-a", 1.0), zone=1), doorless)
    assert (passed.status, passed.reason) == ("pass", "effect_in_time")  # a zone without doors does not count
    assert passed.detail.startswith("Zone 1 (b1-entrance): Every target")
    assert [z["reason"] for z in passed.facts["zones"]] == ["effect_in_time", "no_targets"]
    unseen = judge_panel(fire_run(seen("door-a", 1.0), zone=1), fire_run(outcome="trigger_not_seen", zone=2))
    assert (unseen.status, unseen.reason) == ("not_assessed", "trigger_not_seen")
    broken = seen("door-b", None, error="unreachable", error_detail="no reply")
    error = judge_panel(fire_run(seen("door-a", 1.0), zone=1), fire_run(broken, zone=3))
    assert (error.status, error.reason) == ("error", "unreachable")
    nothing = judge_panel(doorless, fire_run(zone=3, area="rooftop"))
    assert (nothing.status, nothing.reason) == ("not_assessed", "no_targets")
    left = RestoreStep("door_locked", "door-a", False, "still released", ("x-r",), True)
    unrestored = judge_panel(
        fire_run(seen("door-a", 1.0), zone=1), fire_run(seen("door-b", 1.0), zone=2, restore=(left,))
    )
    assert unrestored.status == "pass" and unrestored.facts["restore_complete"] is False
    assert "not fully restored" in unrestored.detail


def test_status_at_the_deadline_is_on_time() -> None:
    assert seen("d", 10.0).status == "on_time"
    assert seen("d", 10.001).status == "late"
    assert seen("d", None).status == "missing"


# -- reading the site -------------------------------------------------------------------------------------
def msg(topic: str, operation: str | None, **data: str) -> PulledMessage:
    return PulledMessage(topic, T0, operation, {}, data)


def heard(seconds: float, m: PulledMessage) -> Heard:
    return Heard(T0 + timedelta(seconds=seconds), m, f"x{seconds}")


def test_camera_alarm_onset_after_the_trigger() -> None:
    di = "Device/Trigger/DigitalInput"
    feed = [
        heard(0, msg(di, "Initialized", LogicalState="false")),
        heard(0, msg("VideoSource/SignalLoss", "Initialized", State="true")),
        heard(2, msg(di, "Initialized", LogicalState="true")),  # a resynchronisation, not a change
        heard(3, msg(di, "Changed", LogicalState="true")),
    ]
    active, onset = alarm_onset(feed, T0 + timedelta(seconds=1))
    assert not active and onset is feed[3]
    active, onset = alarm_onset(feed, T0 + timedelta(seconds=4))
    assert active and onset is None
    relay = [heard(2, msg("Device/Trigger/Relay", "Changed", LogicalState="active"))]
    assert alarm_onset(relay, T0)[1] is relay[0]
    assert current_state(feed, [di], "LogicalState") is True
    assert current_state(feed, ["RuleEngine/FieldDetector/ObjectsInside"], "IsInside") is None


def test_intrusion_onset_is_a_rule_engine_pulse_or_a_property_turning_true() -> None:
    inside = "RuleEngine/FieldDetector/ObjectsInside"
    feed = [
        heard(0, msg(inside, "Initialized", IsInside="true")),  # someone was there already
        heard(2, msg("Device/Trigger/DigitalInput", "Changed", LogicalState="true")),
        heard(3, msg(inside, "Changed", IsInside="false")),
        heard(4, msg("RuleEngine/LineDetector/Crossed", None, ObjectId="1")),
    ]
    assert intrusion_onset(feed, T0) is feed[3]
    assert intrusion_onset(feed, T0 + timedelta(seconds=5)) is None
    assert intrusion_onset([heard(1, msg(inside, "Changed", IsInside="true"))], T0) is not None


def test_isapi_door_released_by_lock_or_held_open() -> None:
    status = DoorStatus(
        lock_status=(0, 1, 0), door_status=(4, 4, 2), magnetic_status=(0, 0, 0), exchange_id="x"
    )
    assert [isapi_released(status, n) for n in (1, 2, 3, 4, 0)] == [False, True, True, None, None]


def received(payload: object, seconds: float = 0, *, retain: bool = False) -> Received:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Received(T0 + timedelta(seconds=seconds), body, len(body), 1, retain)


def summary(
    retained: Received | None = None, first: Received | None = None, last: Received | None = None
) -> TopicSummary:
    return TopicSummary("t", 3, 2, retained, first, last or first, None)


def test_relay_state_from_live_and_retained_messages() -> None:
    off, on = received({"on": False}, retain=True), received({"on": True}, 1.5)
    assert relay_on(summary(off, on), "first") == (True, on)
    assert relay_on(summary(off, received({"on": False}, 1), on), "first") == (True, on)
    assert relay_on(summary(received({"on": True}, retain=True)), "first")[0] is True
    assert relay_on(summary(off), "first") == (False, None)
    assert relay_on(summary(off, on), "latest")[0] is True
    assert relay_on(summary(received(b"on")), "latest")[0] is None  # not JSON
    assert relay_on(summary(received({"on": "yes"})), "latest")[0] is None
    assert relay_on(None, "latest") == (None, None)


def test_platform_alert_matches_the_device_or_the_area() -> None:
    def alert(device: str, area: str | None) -> PlatformAlert:
        return PlatformAlert("A1", "fire_alarm", device, area, "critical", T0, None, False, {"zone": 1})

    assert alert_matches(alert("panel-b1", None), "panel-b1", "b1-entrance")
    assert alert_matches(alert("smoke-7", "b1-entrance"), "panel-b1", "b1-entrance")
    assert not alert_matches(alert("panel-b2", "b2-entrance"), "panel-b1", "b1-entrance")


# -- the inventory ----------------------------------------------------------------------------------------
def target(id: str, kind: Any, area: str, **params: Any) -> Target:
    return Target(id, kind, "onvif", "127.0.0.1", 80, area, params=params)


SITE = SiteView(
    "t",
    (
        target("door-lobby", "door", "lobby", fire_zone=None),
        target("door-stair", "door", "stairs", fire_zone="lobby"),
        target("door-z3", "door", "yard", fire_zone="3"),
        target("cam-roof", "camera", "roof"),
        target(
            "light-lobby",
            "mqtt_device",
            "lobby",
            type="lighting_relay",
            topic_root="r/",
            site="s",
            gateway="gw",
        ),
        target("smoke-lobby", "mqtt_device", "lobby", type="smoke_detector"),
    ),
)


def test_doors_of_a_zone_by_area_or_fire_zone() -> None:
    assert [d.id for d in doors_of(SITE, "lobby", 1)] == ["door-lobby", "door-stair"]
    assert [d.id for d in doors_of(SITE, "pump", 3)] == ["door-z3"]


PANEL = target(
    "p",
    "panel",
    "ctl",
    profile="generic-fire-panel",
    zones=[{"id": 1, "area": "pump"}, {"id": 2, "area": "roof"}, {"id": 3, "area": "lobby"}, 4],
)


def without_outputs(ps: PanelSite) -> PanelSite:
    """The panel with a register map that shows neither emergency lighting nor broadcast."""
    values = {k: v for k, v in ps.profile.values.items() if k not in ("lighting_on", "broadcast_on")}
    per_zone = {k: v for k, v in ps.profile.zone_values.items() if k != "broadcast"}
    profile = ps.profile.model_copy(update={"values": values, "zone_values": per_zone})
    return PanelSite(profile, ps.unit_id, ps.zones, ps.charger_zones)


def test_the_zones_a_fire_test_covers() -> None:
    ps, zones = panel_site(PANEL), zone_areas(PANEL)
    assert zones == {1: "pump", 2: "roof", 3: "lobby"}  # zone 4 has no area
    assert expected_effects(SITE, ps, 1, "pump") == ("lighting", "broadcast")  # the panel's own outputs
    assert expected_effects(SITE, ps, 2, "roof") == ("video", "lighting", "broadcast")
    assert expected_effects(SITE, ps, 3, "lobby") == ("doors", "lighting", "broadcast")
    assert fire_zones(SITE, ps, zones) == [(1, "pump"), (2, "roof"), (3, "lobby")]
    assert zone_members(SITE, PANEL) == ("1", "2", "3")
    dark = without_outputs(ps)
    assert expected_effects(SITE, dark, 1, "pump") == ()
    assert expected_effects(SITE, dark, 3, "lobby") == ("doors", "lighting")  # the lobby's relay
    assert fire_zones(SITE, dark, zones) == [(2, "roof"), (3, "lobby")]
    assert fire_zones(SITE, dark, {1: "pump"}) == [(1, "pump")]  # none: the first, for its platform alert
    with pytest.raises(ValueError, match="no zone"):
        fire_zones(SITE, ps, {})
    assert zone_members(SITE, target("q", "panel", "ctl")) == ()  # no profile: the test itself says so


def test_the_zones_chosen_every_asked_or_sampled() -> None:
    ps = panel_site(PANEL)
    every, how = chosen_zones(SITE, PANEL, ps, FireParams())
    assert every == [(1, "pump"), (2, "roof"), (3, "lobby")]
    assert how == {"mode": "every", "members": [1, 2, 3], "picked": [1, 2, 3]}
    assert chosen_zones(SITE, PANEL, ps, FireParams(zone=2)) == (
        [(2, "roof")],
        {"mode": "asked", "picked": [2]},
    )
    pick = Sample(mode="inspection", members=("1", "2", "3"), picked=("3",), rule="7.4 a)", seed=7)
    sampled, how = chosen_zones(SITE, PANEL, ps, FireParams(sample=pick))
    assert sampled == [(3, "lobby")]
    assert how == {"mode": "inspection", "members": [1, 2, 3], "picked": [3], "rule": "7.4 a)", "seed": 7}
    with pytest.raises(ValueError, match="zone 4"):
        chosen_zones(SITE, PANEL, ps, FireParams(zone=4))
    with pytest.raises(ValueError, match="names none"):
        chosen_zones(SITE, PANEL, ps, FireParams(sample=pick.model_copy(update={"picked": ("9",)})))


def test_relay_topics() -> None:
    assert relay_topics(SITE.get("light-lobby")) == (
        "r/s/gw/light-lobby/state",
        "r/s/gw/light-lobby/telemetry",
    )
    with pytest.raises(ValueError, match="smoke-lobby"):
        relay_topics(SITE.get("smoke-lobby"))


# -- the probes' declarations -----------------------------------------------------------------------------
def test_params_defaults_and_strictness() -> None:
    p = FireParams()
    assert (p.deadline_doors_unlock_s, p.deadline_camera_alarm_s, p.deadline_emergency_lighting_s) == (
        10,
        10,
        10,
    )
    assert (p.deadline_broadcast_s, p.deadline_platform_alert_s, p.guided, p.zone) == (15, 10, True, None)
    assert p.sample is None  # every zone with an expected effect
    assert IntrusionParams().deadline_lighting_s == 10
    with pytest.raises(ValidationError):
        FireParams.model_validate({"deadline_lighting_s": 3})  # an intrusion threshold, not a fire one
    with pytest.raises(ValidationError):
        FireParams(zone=0)


@pytest.mark.parametrize("name", FIRE_PROBES + INTRUSION_PROBES)
def test_spec(name: str) -> None:
    module = importlib.import_module(f"probes.{name}")
    spec = module.SPEC
    fire = name.startswith("fire")
    assert spec.id == name == module.PROBE and spec.mode == "active"
    assert spec.applies_to == (("panel",) if fire else ("camera",))
    assert spec.active_test == (FIRE if fire else INTRUSION)
    assert issubclass(spec.params, FireParams if fire else IntrusionParams)
    assert spec.params().model_dump() == (FireParams if fire else IntrusionParams)().model_dump()


async def test_not_permitted_without_the_active_test() -> None:
    def sink(exchange: Exchange) -> None:
        raise AssertionError("no I/O expected")

    ctx = ProbeContext(site=SITE, sink=sink, active=frozenset({INTRUSION}))
    f = await fire_finding(ctx, target("p", "panel", "ctl"), FireParams(), "fire_linkage_doors", "doors")
    assert (f.status, f.reason) == ("not_assessed", "active_not_permitted")
    ctx = ProbeContext(site=SITE, sink=sink, active=frozenset({FIRE}))
    f = await intrusion_finding(
        ctx, SITE.get("cam-roof"), IntrusionParams(), "intrusion_linkage_video", "video"
    )
    assert (f.status, f.reason) == ("not_assessed", "active_not_permitted")


async def test_an_unusable_panel_entry_is_one_error_and_no_io() -> None:
    def sink(exchange: Exchange) -> None:
        raise AssertionError("no I/O expected")

    ctx = ProbeContext(site=SITE, sink=sink, active=frozenset({FIRE}))
    f = await fire_finding(ctx, target("p", "panel", "ctl"), FireParams(), "fire_linkage_doors", "doors")
    assert (f.status, f.reason) == ("error", "inventory_invalid")
    assert [(z["zone"], z["outcome"]) for z in f.facts["zones"]] == [(None, "failed")]
    await ctx.close()


async def test_the_restore_runs_to_its_end_through_repeated_cancellation() -> None:
    done: list[str] = []

    async def restore() -> None:
        await asyncio.sleep(0.05)
        done.append("restored")

    async def test() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await to_the_end(restore())

    task = asyncio.create_task(test())
    await asyncio.sleep(0)
    for _ in range(3):  # the run's interrupt, then an impatient second and third
        task.cancel()
        await asyncio.sleep(0.01)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["restored"]

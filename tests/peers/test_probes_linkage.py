"""The active linkage probes against whole simulated communities (conftest: linkage delays x0.1, so the
site acts within 0.3 s and linkage_slow's 40 s become 4 s). Every test checks the restore in the
simulator itself: panel out of alarm and test mode, doors locked, relays off, no pull point left."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import SiteFactory
from linkage_helpers import (
    DEADLINES,
    FIRE_DEADLINES,
    QUICK,
    Ledger,
    SiteOperator,
    camera_alarm,
    door_locked,
    linkage_context,
    panel,
    panel_quiet,
    pull_points,
    relay_on,
    until,
)

from collectors.modbus_profile import load_profile
from probes import (
    fire_linkage_alert,
    fire_linkage_broadcast,
    fire_linkage_doors,
    fire_linkage_lighting,
    fire_linkage_video,
    intrusion_linkage_alert,
    intrusion_linkage_lighting,
    intrusion_linkage_video,
)
from probes.base import ProbeContext
from probes.finding import Finding
from simulator.site import Site

pytestmark = pytest.mark.peers

FIRE_PROBES = (
    fire_linkage_doors,
    fire_linkage_video,
    fire_linkage_lighting,
    fire_linkage_broadcast,
    fire_linkage_alert,
)
INTRUSION_PROBES = (intrusion_linkage_video, intrusion_linkage_lighting, intrusion_linkage_alert)


async def fire(ctx: ProbeContext, panel_id: str, **changes: Any) -> dict[str, Finding]:
    """The five fire probes on one panel, as the run calls them one after another."""
    out = {}
    for mod in FIRE_PROBES:
        params = mod.SPEC.params(**(QUICK | FIRE_DEADLINES | {"guided": False} | changes))
        out[mod.PROBE] = await mod.SPEC.run(ctx, ctx.site.get(panel_id), params)
    return out


async def intrusion(ctx: ProbeContext, camera_id: str, **changes: Any) -> dict[str, Finding]:
    out = {}
    for mod in INTRUSION_PROBES:
        params = mod.SPEC.params(**(QUICK | DEADLINES | {"deadline_lighting_s": 3.0} | changes))
        out[mod.PROBE] = await mod.SPEC.run(ctx, ctx.site.get(camera_id), params)
    return out


def assert_cited(findings: dict[str, Finding], ledger: Ledger) -> None:
    for f in findings.values():
        assert set(f.evidence) <= ledger.ids(), f.probe
        assert f.facts["timeline"], f.probe
        json.dumps(f.facts)  # the report stores them as JSON


def assert_no_secret(site: Site, ledger: Ledger) -> None:
    dumped = ledger.dumped()
    for endpoint in site.endpoints():
        assert endpoint.password not in dumped, endpoint.id


async def test_fire_linkage_remote_every_effect_in_time(community_site: SiteFactory) -> None:
    async with community_site("small") as site:
        ledger = Ledger()
        ctx = linkage_context(site, ledger, SiteOperator(site))
        found = await fire(ctx, "panel-b1")
        await ctx.close()
    assert {p: f.status for p, f in found.items()} == dict.fromkeys(found, "pass")
    assert_cited(found, ledger)
    facts = found["fire_linkage_doors"].facts
    assert (facts["zone"], facts["area"], facts["trigger"]) == (1, "b1-entrance", "remote")
    timeline = {(row["effect"], row["target"]): row for row in facts["timeline"]}
    assert set(timeline) == {
        ("doors", "door-b1-unit1"),
        ("video", "cam-b1-lobby"),
        ("lighting", "panel-b1"),
        ("lighting", "light-b1-entrance"),
        ("broadcast", "panel-b1"),
        ("alert", "platform"),
    }
    assert all(0 <= row["delay_s"] <= 3.0 for row in timeline.values())
    assert timeline[("doors", "door-b1-unit1")]["after"] == {"mode": "Unlocked"}
    # one test served the five probes: one alarm on the platform, one shared run
    assert len({f.facts["trigger_at"] for f in found.values()}) == 1
    assert facts["restore"]["complete"], facts["restore"]
    steps = {s["step"] for s in facts["restore"]["steps"]}
    assert {"panel_reset", "panel_normal", "door_locked", "relay_off", "pull_points_closed"} <= steps
    assert_no_secret(site, ledger)


async def test_fire_linkage_restores_the_site(community_site: SiteFactory) -> None:
    """Remote and guided (an ISAPI door) on two panels; a zone without doors; and the site back as it was."""
    async with community_site("small") as site:
        ledger, operator = Ledger(), SiteOperator(site)
        remote = await fire(linkage_context(site, ledger, operator), "panel-b1")
        assert panel_quiet(site, "panel-b1") and door_locked(site, "door-b1-unit1")
        assert not relay_on(site, "gw-01", "light-b1-entrance") and not camera_alarm(site, "cam-b1-lobby")
        assert pull_points(site, "cam-b1-lobby") == 0
        guided = await fire(linkage_context(site, ledger, operator), "panel-b2", guided=True)
        assert panel_quiet(site, "panel-b2") and door_locked(site, "door-b2-unit1")
        charging = await fire(linkage_context(site, ledger, operator), "panel-b2", zone=2)
        assert panel_quiet(site, "panel-b2")
    assert all(f.status == "pass" for f in remote.values())
    assert all(f.status == "pass" for f in guided.values()), {p: f.detail for p, f in guided.items()}
    assert ("panel-b2", "smoke") in operator.actions()
    doors = guided["fire_linkage_doors"].facts["targets"]["door-b2-unit1"]
    assert doors["after"]["lock_status"] == 1 and guided["fire_linkage_doors"].facts["trigger"] == "guided"
    assert charging["fire_linkage_doors"].reason == "no_targets"
    assert charging["fire_linkage_video"].status == "pass"  # cam-charging-01
    assert charging["fire_linkage_doors"].facts["area"] == "charging"


async def test_nothing_is_set_off_over_an_alarm_and_a_missed_trigger(community_site: SiteFactory) -> None:
    async with community_site("small") as site:
        ledger = Ledger()
        await site.operator("panel-b1", "smoke", zone=3)  # a "real" alarm elsewhere on the panel
        await until(lambda: panel(site, "panel-b1").state.broadcast_zone == 3)  # its linkage is done
        busy = await fire(linkage_context(site, ledger, SiteOperator(site)), "panel-b1")
        assert panel(site, "panel-b1").state.zones[3].alarm  # zhian never resets an alarm it did not raise
        await site.operator("panel-b1", "reset")
        deaf = SiteOperator(site, ignore={"smoke"})
        missed = await fire(linkage_context(site, ledger, deaf), "panel-b1", guided=True, trigger_wait_s=0.6)
        assert panel_quiet(site, "panel-b1")
    assert {f.reason for f in busy.values()} == {"site_in_alarm"}
    assert all(f.status == "not_assessed" for f in busy.values())
    assert busy["fire_linkage_doors"].evidence  # the reading that showed the alarm
    assert {(f.status, f.reason) for f in missed.values()} == {("not_assessed", "trigger_not_seen")}
    restore = missed["fire_linkage_doors"].facts["restore"]["steps"]
    assert restore[0]["step"] == "panel_reset" and "nothing to reset" in restore[0]["detail"]


async def test_cancelled_midway_the_restore_still_runs(community_site: SiteFactory) -> None:
    """Cancelled while zhian still observes (it polls every second here) but after the site has
    acted, since the simulated platform does not call back effects still pending at a reset."""
    async with community_site("small") as site:
        ledger = Ledger()
        ctx = linkage_context(site, ledger, SiteOperator(site))
        changes = {"guided": False, "poll_s": 1.0, "deadline_broadcast_s": 30.0}
        params = fire_linkage_doors.SPEC.params(**(QUICK | FIRE_DEADLINES | changes))
        probe = asyncio.create_task(fire_linkage_doors.SPEC.run(ctx, ctx.site.get("panel-b1"), params))
        state = panel(site, "panel-b1").state
        await until(lambda: state.broadcast_zone != 0 and relay_on(site, "gw-01", "light-b1-entrance"))
        assert not door_locked(site, "door-b1-unit1") and not probe.done()
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        await ctx.close()  # what the run does when interrupted: cancels the shared test itself
        assert panel_quiet(site, "panel-b1")
        assert door_locked(site, "door-b1-unit1")
        assert not relay_on(site, "gw-01", "light-b1-entrance")
        assert not camera_alarm(site, "cam-b1-lobby")
        assert pull_points(site, "cam-b1-lobby") == 0
    reset = load_profile("generic-fire-panel").commands["reset"]
    writes = [
        e.operation for e in ledger if e.device == "panel-b1" and e.ok and e.operation.startswith("write")
    ]
    assert f"write_register({reset.address}, 1, unit=1)" in writes, writes


async def test_intrusion_linkage_twice_in_one_area(community_site: SiteFactory) -> None:
    """Two cameras of the perimeter one after the other: the first test's restore lets the second
    start from a quiet area (no effect 'already active')."""
    async with community_site("small") as site:
        ledger, operator = Ledger(), SiteOperator(site)
        first = await intrusion(linkage_context(site, ledger, operator), "cam-perimeter-01")
        second = await intrusion(linkage_context(site, ledger, operator), "cam-perimeter-02")
        gate = await intrusion(linkage_context(site, ledger, operator), "cam-gate-01")
        assert not relay_on(site, "gw-01", "light-perimeter")
        assert not any(camera_alarm(site, c) for c in ("cam-perimeter-01", "cam-perimeter-02", "cam-gate-01"))
        assert pull_points(site, "cam-perimeter-01") == pull_points(site, "cam-perimeter-02") == 0
        unguided = await intrusion(linkage_context(site, ledger, operator), "cam-perimeter-01", guided=False)
    for found in (first, second):
        assert {f.status for f in found.values()} == {"pass"}, {p: f.detail for p, f in found.items()}
        assert_cited(found, ledger)
    video = second["intrusion_linkage_video"].facts
    assert set(video["targets"]) == {"cam-perimeter-01", "cam-perimeter-02"}
    assert video["trigger_event"].startswith("RuleEngine/")
    assert gate["intrusion_linkage_lighting"].reason == "no_targets"
    assert gate["intrusion_linkage_alert"].status == "pass"
    assert ("cam-perimeter-01", "intrusion") in operator.actions()
    assert {f.reason for f in unguided.values()} == {"no_operator"}
    assert_no_secret(site, ledger)


async def test_faulty_doors_missing_and_late(community_site: SiteFactory) -> None:
    """door-b2-unit1 ignores the fire unlock: effect_missing; door-garage unlocks after 4 s against a
    2 s deadline: effect_late; the hung garage camera is an error, never a pass."""
    async with community_site("faulty") as site:
        ledger = Ledger()
        ctx = linkage_context(site, ledger, SiteOperator(site), call_timeout_s=1.0)  # hung cameras
        quick = dict.fromkeys(FIRE_DEADLINES, 1.5)  # the site acts within 0.5 s
        b2 = await fire(ctx, "panel-b2", **quick)
        b1 = await fire(ctx, "panel-b1", zone=2, deadline_doors_unlock_s=2.0, deadline_broadcast_s=6.0)
        assert door_locked(site, "door-b2-unit1") and door_locked(site, "door-garage")
        assert panel_quiet(site, "panel-b1") and panel_quiet(site, "panel-b2")
    missing = b2["fire_linkage_doors"]
    assert (missing.status, missing.reason) == ("fail", "effect_missing")
    assert missing.facts["missing"] == ["door-b2-unit1"] and "door-b2-unit1" in missing.detail
    assert b2["fire_linkage_alert"].status == "pass"
    late = b1["fire_linkage_doors"]
    assert (late.status, late.reason) == ("fail", "effect_late"), late.detail
    assert late.facts["late"]["door-garage"]["delay_s"] > 2.0
    assert late.facts["area"] == "garage"
    video = b1["fire_linkage_video"]
    assert video.status == "error" and "cam-garage-02" in video.detail
    assert video.facts["targets"]["cam-garage-01"]["status"] == "on_time"
    assert late.facts["restore"]["complete"], late.facts["restore"]

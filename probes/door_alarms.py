"""Door alarms (A1.3.3 forced open, A4.4.3 / B4.4.3 held open): an ONVIF door controller can raise them.

ONVIF Profile C states both alarms in one door property, DoorAlarm (Normal, DoorForcedOpen,
DoorOpenTooLong). A door can raise them when it has a door contact (capability DoorMonitor, which
tells open from closed) and alarm support (capability Alarm), and the controller advertises the
tns1:Door/State/DoorAlarm event so that a platform hears of it. The probe also reads each door's
state, which must carry the alarm and physical state those capabilities promise. It observes what
the controller offers; an alarm actually raised by forcing a door is the guided active tests' part.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError, DeviceRejected, Unsupported
from collectors.onvif import OnvifClient
from collectors.onvif_doors import DoorInfo, DoorState
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding
from probes.targets import Target

PROBE = "door_alarms"
DOOR_ALARM = "Door/State/DoorAlarm"
DOOR_PHYSICAL = "Door/State/DoorPhysicalState"


class Params(BaseModel):
    """No thresholds: the capabilities either are there or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def judge(
    device: str,
    topics: frozenset[str],
    doors: Sequence[tuple[DoorInfo, DoorState]],
    evidence: tuple[str, ...],
    started: datetime,
    finished: datetime,
) -> Finding:
    """Pass when the DoorAlarm topic is advertised and every door has a contact, alarm support and
    a readable alarm and physical state."""
    missing: list[str] = []
    if DOOR_ALARM not in topics:
        missing.append("event topic tns1:Door/State/DoorAlarm")
    unreadable: list[str] = []
    for info, state in doors:
        if not info.capabilities.door_monitor:
            missing.append(f"{info.token}: door contact (DoorMonitor)")
        if not info.capabilities.alarm:
            missing.append(f"{info.token}: alarm support (Alarm)")
        if state.alarm is None or state.physical is None:
            unreadable.append(info.token)
    supported = not missing and bool(doors)
    facts: dict[str, Any] = {
        "doors": [
            {
                "token": info.token,
                "name": info.name,
                "capabilities": info.capabilities.as_dict(),
                "mode": state.mode,
                "physical": state.physical,
                "alarm": state.alarm,
            }
            for info, state in doors
        ],
        "alarm_topic": DOOR_ALARM in topics,
        "physical_topic": DOOR_PHYSICAL in topics,
        "forced_open_supported": supported,
        "held_open_supported": supported,
        "active_alarms": {s.token: s.alarm for _, s in doors if s.alarm not in (None, "Normal")},
        "missing": missing,
    }

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(PROBE, device, status, reason, detail, facts, evidence, None, started, finished)

    if not doors:
        return finding("fail", "no_forced_open_alarm", "The controller reports no door.")
    if missing:
        return finding(
            "fail",
            "no_forced_open_alarm",
            "Forced-open and held-open alarms cannot be raised: no " + "; no ".join(missing) + ".",
        )
    if unreadable:
        return finding(
            "fail",
            "door_state_unreadable",
            f"The alarm or physical state of {', '.join(unreadable)} cannot be read.",
        )
    return finding(
        "pass",
        "door_alarms_supported",
        f"All {len(doors)} doors have a contact and alarm support, the DoorAlarm event is advertised and "
        "their state reads.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    if target.protocol != "onvif":
        detail = f"{target.id} speaks {target.protocol}, not ONVIF."
        return Finding(
            PROBE, target.id, "not_assessed", "not_onvif", detail, started_at=started, finished_at=ctx.clock()
        )
    evidence: list[str] = []
    try:
        async with ctx.client(OnvifClient, target) as client:
            services = await client.services()
            evidence += services.evidence
            if not services.has("doorcontrol"):
                detail = "The controller offers no ONVIF DoorControl service (no Profile C)."
                facts = {"services": sorted(services.names)}
                return Finding(
                    PROBE,
                    target.id,
                    "not_assessed",
                    "no_profile_c",
                    detail,
                    facts,
                    tuple(evidence),
                    None,
                    started,
                )
            topics: frozenset[str] = frozenset()
            if services.has("events"):
                try:
                    properties = await client.event_properties()
                    topics = properties.topics
                    evidence += properties.evidence
                except (DeviceRejected, Unsupported) as exc:  # no topics to show: judged as missing
                    evidence += [exc.exchange_id] if exc.exchange_id else []
            listed = await client.doors()
            evidence += listed.evidence
            doors = []
            for info in listed.doors:
                state = await client.door_state(info.token)
                evidence.append(state.exchange_id)
                doors.append((info, state))
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=tuple(evidence)
        )
    return judge(target.id, topics, doors, tuple(evidence), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="Door controllers can raise forced-open and held-open alarms and their state reads",
    mode="passive",
    applies_to=("door",),
    params=Params,
    timeout_s=60.0,
    run=run,
)

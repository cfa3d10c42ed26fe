"""The passive mode of the fire linkage: a real zone alarm the monitor saw (passive.py has what every
real trigger shares).

The trigger is the zone's alarm as the monitor's panel readings show it; `trigger_at` is the last
reading that still showed the zone quiet. Besides the area's cameras, lighting relays and the
platform's fire_alarm alert: the doors a fire in the zone must release (ONVIF doors from their event
subscriptions, ISAPI doors polled from the moment the alarm is read), and the panel's emergency
lighting and broadcast polled (their state before the trigger is the quiet reading's). An ISAPI door
found released at the first look is timed at that look (facts `before: unknown`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient
from collectors.modbus.client import ModbusClient
from collectors.modbus.readings import PanelReading
from probes.base import ProbeContext
from probes.finding import Finding
from probes.linkage.judge import judge_zones
from probes.linkage.params import FIRE, Effect, FireParams
from probes.linkage.passive import EventHistory, PassiveLinkage, RealTrigger
from probes.linkage.reading import door_mode_released, isapi_released
from probes.linkage.site import doors_of
from probes.linkage.watches import LinkageRun, PanelRun, Watch
from probes.panel_common import PanelSite

FIRE_PROBES: dict[Effect, str] = {
    "doors": "fire_linkage_doors",
    "video": "fire_linkage_video",
    "lighting": "fire_linkage_lighting",
    "broadcast": "fire_linkage_broadcast",
    "alert": "fire_linkage_alert",
}


@dataclass(frozen=True)
class RealAlarm(RealTrigger):
    """A zone's alarm: the subject is the panel, `zone` its zone."""

    site: PanelSite
    before: PanelReading  # the last reading that showed the zone quiet (at trigger_at)


class PassiveFire(PassiveLinkage):
    test = FIRE
    alert_type = "fire_alarm"

    def __init__(
        self, ctx: ProbeContext, params: FireParams, alarm: RealAlarm, history: EventHistory
    ) -> None:
        super().__init__(ctx, params, alarm, history, params.deadline_emergency_lighting_s)
        self.alarm, p = alarm, params
        self.doors = [
            (d, self.watch("doors", d.id, p.deadline_doors_unlock_s))
            for d in doors_of(ctx.site, alarm.area, alarm.zone)
        ]
        self.heard_watches += [(w, door_mode_released) for d, w in self.doors if d.protocol == "onvif"]
        before = alarm.before
        self.outputs: list[Watch] = []
        for effect, deadline, now in (
            ("lighting", p.deadline_emergency_lighting_s, before.lighting_on),
            ("broadcast", p.deadline_broadcast_s, self.broadcasting(before)),
        ):
            w = self.watch(effect, alarm.subject.id, deadline)  # type: ignore[arg-type]
            w.evidence += before.exchanges
            w.facts["before"] = now
            w.baseline_active = now is True
            if now is None:
                w.broken("unsupported", f"the register map {before.profile} has no {effect} state")
            self.outputs.append(w)
        self.looked: set[str] = set()  # polled doors already looked at once

    def broadcasting(self, reading: PanelReading) -> bool | None:
        zone = reading.zones.get(self.alarm.zone or 0)
        known = [v for v in (reading.broadcast_on, zone.broadcast if zone else None) if v is not None]
        return any(known) if known else None

    def polls(self) -> list[Coroutine[Any, Any, None]]:
        return [*super().polls(), self.poll_doors(), self.poll_panel()]

    def facts(self) -> dict[str, Any]:
        return {"panel": self.alarm.subject.id} | super().facts()

    async def poll_doors(self) -> None:
        for door, w in self.doors:
            if door.protocol != "isapi" or w.settled:
                continue
            try:
                number = int(str(door.params.get("door") or "1"))
            except ValueError:
                w.broken("inventory_invalid", f"door number {door.params.get('door')!r} is not a number")
                continue
            try:
                async with self.ctx.client(IsapiClient, door) as client:
                    status = await client.door_status()
            except CollectorError as exc:
                w.fail(exc)
                continue
            self.first_look(w)
            if isapi_released(status, number):
                w.see(self.ctx.clock(), (status.exchange_id,))

    def first_look(self, w: Watch) -> None:
        """A polled door's state before the trigger is not known: its first look says so."""
        key = f"{w.effect}|{w.target}"
        if key not in self.looked:
            self.looked.add(key)
            w.facts["before"] = "unknown"

    async def poll_panel(self) -> None:
        if all(w.settled for w in self.outputs):
            return
        s = self.alarm.site
        try:
            async with ModbusClient(self.ctx.connection(self.alarm.subject)) as modbus:
                reading = await modbus.read_panel(s.profile, s.unit_id, s.zones)
        except CollectorError as exc:
            for w in self.outputs:
                w.fail(exc)
            return
        for w in self.outputs:
            if (reading.lighting_on if w.effect == "lighting" else self.broadcasting(reading)) is True:
                w.see(self.ctx.clock(), reading.exchanges)


async def observe_real_fire(
    ctx: ProbeContext, params: FireParams, alarm: RealAlarm, history: EventHistory
) -> tuple[LinkageRun, list[Finding]]:
    """The run, and each fire_linkage probe's finding on it (the zone's, as a panel of one zone)."""
    started = ctx.clock()
    run = await PassiveFire(ctx, params, alarm, history).run()
    panel = alarm.subject.id
    panel_run = PanelRun(panel, (run,), {"mode": "real", "picked": [alarm.zone]})
    finished = ctx.clock()
    return run, [
        judge_zones(probe, panel, panel_run, effect, started, finished)
        for effect, probe in FIRE_PROBES.items()
    ]

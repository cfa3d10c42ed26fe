"""The passive mode of the fire linkage: a real zone alarm the monitor saw, its effects timed against
the same deadlines and judged by the same judges (judge_zones) as the active test, nothing set off
and nothing touched (no restore: the site's own people deal with a real alarm).

The trigger is the zone's alarm as the monitor's panel readings show it; `trigger_at` is the last
reading that still showed the zone quiet, so every delay is an upper bound. The effects:
- cameras and ONVIF doors from what the monitor's event subscriptions heard before and after the
  trigger (EventHistory), so an effect that came before zhian read the alarm is still timed to the
  moment it was heard; a device without a live subscription cannot be observed (`no_subscription`);
- ISAPI doors, the panel's emergency lighting and broadcast polled from the moment the alarm is read
  (the panel's state before the trigger is the quiet reading's);
- lighting relays from the state messages the monitor's broker subscription received;
- the platform's fire_alarm alerts raised since the trigger, polled.
An ISAPI door found released at the first look is timed at that look: its state before the trigger
is not known (facts `before: unknown`), which can only make the delay longer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient
from collectors.modbus.client import ModbusClient
from collectors.modbus.readings import PanelReading
from probes.base import ProbeContext
from probes.finding import Finding
from probes.linkage.judge import judge_zones
from probes.linkage.params import FIRE, Effect, FireParams
from probes.linkage.reading import (
    Heard,
    alarm_onset,
    alert_matches,
    door_mode_released,
    isapi_released,
    onset,
)
from probes.linkage.site import doors_of, relays_of
from probes.linkage.watches import LinkageRun, Observed, PanelRun, Watch, seconds_between
from probes.panel_common import PanelSite
from probes.platform_common import platform_client
from probes.targets import Target

FIRE_PROBES: dict[Effect, str] = {
    "doors": "fire_linkage_doors",
    "video": "fire_linkage_video",
    "lighting": "fire_linkage_lighting",
    "broadcast": "fire_linkage_broadcast",
    "alert": "fire_linkage_alert",
}


@dataclass(frozen=True)
class RelayHeard:
    """A relay's state message as the monitor's broker subscription received it."""

    at: datetime
    on: bool | None
    retain: bool  # a retained state replayed at subscription: it tells no moment


class EventHistory(Protocol):
    def heard_by(self, device: str) -> Sequence[Heard] | None:
        """What the device's live subscription heard, oldest first; None without one."""

    def relay_heard(self, relay: str) -> Sequence[RelayHeard] | None:
        """The relay's state messages, oldest first; None when its broker is not followed."""


@dataclass(frozen=True)
class RealAlarm:
    panel: Target
    site: PanelSite
    zone: int
    area: str
    trigger_at: datetime  # the last reading that showed the zone quiet
    seen_at: datetime  # the first reading that showed its alarm
    before: PanelReading  # that quiet reading
    evidence: tuple[str, ...]


class PassiveFire:
    """One real zone alarm observed until every effect is seen or past its deadline plus grace."""

    def __init__(
        self, ctx: ProbeContext, params: FireParams, alarm: RealAlarm, history: EventHistory
    ) -> None:
        self.ctx, self.p, self.alarm, self.history = ctx, params, alarm, history
        self.watches: list[Watch] = []
        self.started_at = ctx.clock()
        p, area = params, alarm.area
        self.video = [
            self.watch("video", c.id, p.deadline_camera_alarm_s) for c in ctx.site.in_area(area, "camera")
        ]
        self.doors = [
            (d, self.watch("doors", d.id, p.deadline_doors_unlock_s))
            for d in doors_of(ctx.site, area, alarm.zone)
        ]
        self.relays = [
            (r, self.watch("lighting", r.id, p.deadline_emergency_lighting_s))
            for r in relays_of(ctx.site, area)
        ]
        before = alarm.before
        self.outputs: list[tuple[Watch, bool | None]] = []
        for effect, deadline, now in (
            ("lighting", p.deadline_emergency_lighting_s, before.lighting_on),
            ("broadcast", p.deadline_broadcast_s, self.broadcasting(before)),
        ):
            w = self.watch(effect, alarm.panel.id, deadline)  # type: ignore[arg-type]
            w.evidence += before.exchanges
            w.facts["before"] = now
            w.baseline_active = now is True
            if now is None:
                w.broken("unsupported", f"the register map {before.profile} has no {effect} state")
            self.outputs.append((w, now))
        platform = ctx.site.platform
        self.alert = self.watch("alert", platform.id, p.deadline_platform_alert_s) if platform else None
        self.looked: set[str] = set()  # polled targets already looked at once

    def watch(self, effect: Effect, target: str, deadline_s: float) -> Watch:
        w = Watch(effect, target, deadline_s)
        self.watches.append(w)
        return w

    def broadcasting(self, reading: PanelReading) -> bool | None:
        zone = reading.zones.get(self.alarm.zone)
        known = [v for v in (reading.broadcast_on, zone.broadcast if zone else None) if v is not None]
        return any(known) if known else None

    # -- the observation ----------------------------------------------------------------------------
    async def run(self) -> LinkageRun:
        origin = time.monotonic() - (self.ctx.clock() - self.alarm.trigger_at).total_seconds()
        while True:
            await asyncio.gather(
                self.from_history(),
                self.poll_doors(),
                self.poll_panel(),
                self.poll_platform(),
            )
            elapsed = time.monotonic() - origin
            if all(w.settled or elapsed > w.deadline_s + self.p.grace_s for w in self.watches):
                break
            await asyncio.sleep(self.p.poll_s)
        return self.result()

    async def from_history(self) -> None:
        self.relays_from_history()
        trigger = self.alarm.trigger_at
        onvif_doors = [(d, w) for d, w in self.doors if d.protocol == "onvif"]
        for w, state_of in [(w, None) for w in self.video] + [
            (w, door_mode_released) for _, w in onvif_doors
        ]:
            heard = self.history.heard_by(w.target)
            if heard is None:
                w.broken("no_subscription", f"{w.target} has no live event subscription to hear it")
                continue
            active, first = (
                alarm_onset(heard, trigger) if state_of is None else onset(heard, trigger, state_of)
            )
            w.baseline_active = w.baseline_active or (active and not w.settled)
            if first is not None:
                w.see(first.at, (first.exchange_id,), event=first.message.topic)

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
        key = f"{w.effect}|{w.target}"
        if key not in self.looked:
            self.looked.add(key)
            w.facts["before"] = "unknown"

    async def poll_panel(self) -> None:
        if all(w.settled for w, _ in self.outputs):
            return
        s = self.alarm.site
        try:
            async with ModbusClient(self.ctx.connection(self.alarm.panel)) as modbus:
                reading = await modbus.read_panel(s.profile, s.unit_id, s.zones)
        except CollectorError as exc:
            for w, _ in self.outputs:
                w.fail(exc)
            return
        for w, _ in self.outputs:
            if (reading.lighting_on if w.effect == "lighting" else self.broadcasting(reading)) is True:
                w.see(self.ctx.clock(), reading.exchanges)

    def relays_from_history(self) -> None:
        trigger = self.alarm.trigger_at
        for relay, w in self.relays:
            heard = self.history.relay_heard(relay.id)
            if heard is None:
                w.broken("no_subscription", f"the broker of {relay.id} is not followed")
                continue
            before = [h.on for h in heard if h.at < trigger and h.on is not None]
            w.baseline_active = w.baseline_active or (bool(before and before[-1]) and not w.settled)
            first = next((h for h in heard if h.at >= trigger and h.on and not h.retain), None)
            if first is not None:
                w.see(first.at, ())

    async def poll_platform(self) -> None:
        w, platform = self.alert, self.ctx.site.platform
        if w is None or platform is None or w.settled:
            return
        since = self.alarm.trigger_at - timedelta(seconds=self.p.grace_s)  # clocks a little apart
        try:
            async with platform_client(self.ctx, platform) as api:
                listing = await api.alerts(since=since, type="fire_alarm")
        except CollectorError as exc:
            w.fail(exc)
            return
        found = next(
            (a for a in listing.rows if alert_matches(a, self.alarm.panel.id, self.alarm.area)), None
        )
        if found is not None:
            w.see(
                self.ctx.clock(),
                (listing.exchange_id,),
                alert=found.id,
                raised_at=found.raised_at.isoformat(),
            )

    # -- the result ---------------------------------------------------------------------------------
    def result(self) -> LinkageRun:
        a = self.alarm
        watches = tuple(
            Observed(
                effect=w.effect, target=w.target, deadline_s=w.deadline_s,
                delay_s=seconds_between(a.trigger_at, w.seen_at), baseline_active=w.baseline_active,
                error=w.error, error_detail=w.error_detail, evidence=tuple(w.evidence), facts=dict(w.facts),
            )
            for w in self.watches
        )  # fmt: skip
        facts: dict[str, Any] = {
            "panel": a.panel.id,
            "alarm_seen_at": a.seen_at.isoformat(),
            "trigger_resolution_s": seconds_between(a.trigger_at, a.seen_at),
        }
        return LinkageRun(
            FIRE, a.panel.id, "real", a.area, a.zone, "triggered", self.started_at, a.trigger_at,
            a.evidence, self.ctx.clock(), watches, (), facts=facts,
        )  # fmt: skip


async def observe_real_fire(
    ctx: ProbeContext, params: FireParams, alarm: RealAlarm, history: EventHistory
) -> tuple[LinkageRun, list[Finding]]:
    """The run, and each fire_linkage probe's finding on it (the zone's, as a panel of one zone)."""
    started = ctx.clock()
    run = await PassiveFire(ctx, params, alarm, history).run()
    panel_run = PanelRun(alarm.panel.id, (run,), {"mode": "real", "picked": [alarm.zone]})
    finished = ctx.clock()
    return run, [
        judge_zones(probe, alarm.panel.id, panel_run, effect, started, finished)
        for effect, probe in FIRE_PROBES.items()
    ]

"""The fire linkage test: an alarm in each chosen zone of a panel, its effects timed, the panel reset."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient
from collectors.modbus.client import ModbusClient
from collectors.modbus.readings import PanelReading
from collectors.onvif import OnvifClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage.active import LinkageTest, problem_of
from probes.linkage.judge import judge_zones, not_permitted
from probes.linkage.params import FIRE, TIMEOUT_S, Effect, FireParams, TriggerKind
from probes.linkage.reading import door_released, isapi_released
from probes.linkage.restore import Pending
from probes.linkage.site import chosen_zones, doors_of, zone_members
from probes.linkage.watches import LinkageRun, PanelRun, Problem, RestoreStep, Watch, seconds_between
from probes.panel_common import PanelSite, panel_site
from probes.targets import Target


@dataclass
class Door:
    target: Target
    watch: Watch
    onvif: OnvifClient | None = None
    token: str | None = None
    isapi: IsapiClient | None = None
    number: int = 1


class FireTest(LinkageTest):
    test = FIRE
    alert_type = "fire_alarm"

    def __init__(
        self, ctx: ProbeContext, params: FireParams, panel: Target, site: PanelSite, zone: int, area: str
    ) -> None:
        super().__init__(ctx, params, panel, area)
        self.fire = params
        self.lighting_deadline_s = params.deadline_emergency_lighting_s
        self.panel_site = site
        self.zone = zone
        self.modbus = ModbusClient(ctx.connection(panel))
        self.before: PanelReading | None = None
        self.doors: list[Door] = []
        self.touched = False  # a command was written or the operator told: the panel may need a reset
        self.reset_done = False  # the reset was sent (or nothing needed one): verify the panel
        self.test_mode_set = False  # zhian switched test mode on (it was off)
        self.facts["panel"] = panel.id

    async def read(self) -> PanelReading:
        s = self.panel_site
        return await self.modbus.read_panel(s.profile, s.unit_id, s.zones)

    def set_off(self) -> bool:
        return self.touched  # the alarm may be latched before the panel is read again

    async def precheck(self) -> bool:
        """Nothing is set off over an alarm already showing: it may be a real fire."""
        try:
            await self._stack.enter_async_context(self.modbus)
            self.before = before = await self.read()
        except CollectorError as exc:
            return self.stop(
                "failed", problem_of(exc, f"The panel could not be read before the test: {exc}.")
            )
        busy = [z for z, r in before.zones.items() if r.alarm]
        if before.alarm or busy:
            self.facts["zones_in_alarm"] = busy
            self.trigger_evidence += before.exchanges
            return self.stop("site_in_alarm")
        return True

    def own_watches(self) -> list[Coroutine[Any, Any, None]]:
        """The zone's doors, and the panel's lighting and broadcast (read before, in precheck)."""
        deadline = self.fire.deadline_doors_unlock_s
        doors = doors_of(self.ctx.site, self.area, self.zone)
        self.doors = [Door(d, self.watch("doors", d.id, deadline)) for d in doors]
        self.panel_watches()
        return [self.open_door(d) for d in self.doors]

    def panel_watches(self) -> None:
        """Emergency lighting and broadcast as the panel's registers show them."""
        assert self.before is not None
        b = self.before
        lighting = self.watch("lighting", self.subject.id, self.fire.deadline_emergency_lighting_s)
        broadcast = self.watch("broadcast", self.subject.id, self.fire.deadline_broadcast_s)
        for w, now in ((lighting, b.lighting_on), (broadcast, self.broadcasting(b))):
            w.evidence += b.exchanges
            w.facts["before"] = now
            w.baseline_active = now is True
            if now is None:
                w.broken("unsupported", f"the register map {b.profile} has no {w.effect} state")

    def broadcasting(self, reading: PanelReading) -> bool | None:
        zone = reading.zones.get(self.zone or 0)
        known = [v for v in (reading.broadcast_on, zone.broadcast if zone else None) if v is not None]
        return any(known) if known else None

    async def open_door(self, d: Door) -> None:
        t = d.target
        try:
            if t.protocol == "onvif":
                d.onvif = await self._stack.enter_async_context(OnvifClient(self.ctx.connection(t)))
                listing = await d.onvif.doors()
                tokens = [i.token for i in listing.doors]
                wanted = str(t.params.get("door") or "")
                # the inventory's "1" names a single-door controller's only door, whatever its token
                d.token = wanted if wanted in tokens else (tokens[0] if len(tokens) == 1 else None)
                if d.token is None:
                    d.watch.broken("door_not_found", f"no door {wanted!r} among {tokens}", listing.evidence)
                    return
            elif t.protocol == "isapi":
                d.number = int(str(t.params.get("door") or "1"))
                d.isapi = await self._stack.enter_async_context(IsapiClient(self.ctx.connection(t)))
            else:
                d.watch.broken("unsupported", f"doors are not read over {t.protocol}")
                return
            released, exchange, facts = await self.read_door(d)
        except CollectorError as exc:
            d.watch.fail(exc)
            return
        except ValueError:
            d.watch.broken("inventory_invalid", f"door number {t.params.get('door')!r} is not a number")
            return
        if released is None:
            d.watch.broken("door_not_found", f"the controller reports no door {d.number}", (exchange,))
            return
        d.watch.baseline_active = released
        d.watch.evidence.append(exchange)
        d.watch.facts["before"] = facts

    async def read_door(self, d: Door) -> tuple[bool | None, str, dict[str, Any]]:
        if d.onvif is not None and d.token is not None:
            state = await d.onvif.door_state(d.token)
            return door_released(state.mode), state.exchange_id, {"mode": state.mode}
        assert d.isapi is not None
        status = await d.isapi.door_status()
        i = d.number - 1
        facts = {
            "lock_status": status.lock_status[i] if i < len(status.lock_status) else None,
            "door_status": status.door_status[i] if i < len(status.door_status) else None,
        }
        return isapi_released(status, d.number), status.exchange_id, facts

    async def trigger(self) -> bool:
        s, zone = self.panel_site, self.zone or 0
        quiet = self.ctx.clock()
        if self.kind == "guided":
            assert self.ctx.operator is not None
            self.touched = True
            await self.ctx.operator.instruct(
                f"Set off the smoke detector in zone {zone} ({self.area}) of panel {self.subject.id} "
                "with test aerosol.",
                device=self.subject.id,
                action="smoke",
                params={"zone": zone},
            )
            return await self.await_alarm(quiet)
        self.touched = True
        self.test_mode_set = not (self.before and self.before.test_mode)
        try:
            self.trigger_evidence += await self.modbus.set_test_mode(s.profile, s.unit_id, True)
            quiet = self.ctx.clock()
            self.trigger_evidence += await self.modbus.simulate_zone_alarm(s.profile, s.unit_id, zone)
        except CollectorError as exc:
            return self.stop("failed", problem_of(exc, f"The panel did not take the simulated alarm: {exc}."))
        return await self.await_alarm(quiet)

    async def await_alarm(self, quiet: datetime) -> bool:
        """Poll the panel until the zone shows its alarm; the trigger is the last moment known quiet."""
        end = time.monotonic() + self.params.trigger_wait_s
        while True:
            asked = self.ctx.clock()
            try:
                reading = await self.read()
            except CollectorError as exc:
                return self.stop(
                    "failed", problem_of(exc, f"The panel could not be read during the test: {exc}.")
                )
            zone = reading.zones.get(self.zone or 0)
            if zone is not None and zone.alarm:
                self.trigger_at = quiet
                self.trigger_evidence += reading.exchanges
                self.facts["alarm_seen_at"] = reading.read_at.isoformat()
                self.facts["trigger_resolution_s"] = seconds_between(quiet, reading.read_at)
                return True
            quiet = asked
            if time.monotonic() >= end:
                self.trigger_evidence += reading.exchanges
                self.facts["trigger_wait_s"] = self.params.trigger_wait_s
                return self.stop("trigger_not_seen")
            await self.pause()

    def pollers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [*super().pollers(), self.poll_panel, *(partial(self.poll_door, d) for d in self.doors)]

    async def poll_panel(self) -> None:
        mine = [w for w in self.watches if w.target == self.subject.id]
        while self.observing and not all(w.settled for w in mine):
            try:
                reading = await self.read()
            except CollectorError as exc:
                for w in mine:
                    w.fail(exc)
                return
            for w in mine:
                if (reading.lighting_on if w.effect == "lighting" else self.broadcasting(reading)) is True:
                    w.see(self.ctx.clock(), reading.exchanges)
            self.changed.set()
            await self.pause()

    async def poll_door(self, d: Door) -> None:
        while self.observing and not d.watch.settled:
            try:
                released, exchange, facts = await self.read_door(d)
            except CollectorError as exc:
                d.watch.fail(exc)
                return
            if released:
                d.watch.see(self.ctx.clock(), (exchange,), after=facts)
                self.changed.set()
                return
            await self.pause()

    # -- restore --------------------------------------------------------------------------------------
    async def restore_actions(self) -> None:
        if not self.touched:
            return
        try:
            step = await self.reset_panel()
        except CollectorError as exc:
            kept = (exc.exchange_id,) if exc.exchange_id else ()
            step = RestoreStep(
                "panel_reset", self.subject.id, False, f"the panel could not be reset: {exc}", kept
            )
        self.reset_done = step.ok
        self.restore_steps.append(step)

    async def reset_panel(self) -> RestoreStep:
        """Reset only while the tested zone is the panel's only alarm (a reset clears every latched
        alarm, a real one too); switch test mode off when zhian switched it on."""
        s, zone, panel = self.panel_site, self.zone or 0, self.subject.id
        reading = await self.read()
        evidence = list(reading.exchanges)
        ours = bool(reading.zones.get(zone) and reading.zones[zone].alarm)
        others = [z for z, r in reading.zones.items() if r.alarm and z != zone]
        done: list[str] = []
        told = False
        ok = True
        if others or (reading.alarm_count or 0) > int(ours):
            ok = False
            done.append(f"other alarms on the panel (zones {others or 'not in the inventory'}): not reset")
        elif not ours:
            done.append(f"zone {zone} not in alarm: nothing to reset")
        elif "reset" in s.profile.commands:
            evidence += await self.modbus.reset(s.profile, s.unit_id)
            done.append("reset sent")
        else:
            say = f"Reset panel {panel}: the register map has no reset command."
            told = await self.instruct_safely(say, panel, "reset", {})
            done.append("operator asked to reset" if told else "no reset command and no operator")
            ok = told
        if self.test_mode_set and reading.test_mode:
            evidence += await self.modbus.set_test_mode(s.profile, s.unit_id, False)
            done.append("test mode off")
        return RestoreStep("panel_reset", panel, ok, "; ".join(done), tuple(evidence), told)

    def restore_items(self) -> list[Pending]:
        items: list[Pending] = []
        if self.touched and self.reset_done:
            say = f"Reset panel {self.subject.id}: the test's alarm in zone {self.zone} is still latched."
            items.append(Pending("panel_normal", self.subject.id, self.panel_normal, (say, "reset", {})))
        # a door already open before the test (a daytime release) is left as it was
        items += [self.door_item(d) for d in self.doors if not (d.watch.error or d.watch.baseline_active)]
        return items + self.relay_items() + self.camera_items()

    async def panel_normal(self) -> tuple[bool, str, tuple[str, ...]]:
        after = await self.read()
        zone = after.zones.get(self.zone or 0)
        left = [
            name
            for name, on in (
                (f"zone {self.zone} alarm", bool(zone and zone.alarm)),
                ("test mode", self.test_mode_set and bool(after.test_mode)),
                ("emergency lighting", bool(after.lighting_on) and not self.before_on("lighting")),
                ("broadcast", bool(self.broadcasting(after)) and not self.before_on("broadcast")),
            )
            if on
        ]
        detail = "still on: " + ", ".join(left) if left else "zone quiet, outputs off, test mode as before"
        return not left, detail, after.exchanges

    def before_on(self, effect: Effect) -> bool:
        return any(
            w.baseline_active for w in self.watches if w.target == self.subject.id and w.effect == effect
        )

    def door_item(self, d: Door) -> Pending:
        say = (
            f"Door {d.target.id} ({d.target.area}) stayed unlocked after the fire reset: "
            "check that nobody needs it and lock it by hand."
        )
        return Pending("door_locked", d.target.id, partial(self.door_locked, d), (say, "lock", {}))

    async def door_locked(self, d: Door) -> tuple[bool, str, tuple[str, ...]]:
        released, exchange, facts = await self.read_door(d)
        state = ", ".join(f"{k} {v}" for k, v in facts.items())
        return not released, ("still released: " if released else "locked: ") + state, (exchange,)


async def run_fire_test(ctx: ProbeContext, panel: Target, params: FireParams) -> PanelRun:
    """A fire alarm in each chosen zone of the panel, one zone after another, each timed and restored
    before the next is set off (an interrupt restores the zone under test and starts no other)."""
    try:
        site = panel_site(panel)
        zones, sample = chosen_zones(ctx.site, panel, site, params)
    except ValueError as exc:
        at = ctx.clock()
        kind: TriggerKind = "guided" if params.guided else "remote"
        problem = Problem("inventory_invalid", f"The panel's inventory entry cannot be used: {exc}.")
        failed = LinkageRun(
            FIRE, panel.id, kind, "", params.zone, "failed", at, None, (), None, (), (), problem
        )
        return PanelRun(panel.id, (failed,), {})
    runs: list[LinkageRun] = []
    for zone, area in zones:
        runs.append(await run_zone_test(ctx, panel, params, site, zone, area))
    return PanelRun(panel.id, tuple(runs), sample)


async def run_zone_test(
    ctx: ProbeContext, panel: Target, params: FireParams, site: PanelSite, zone: int, area: str
) -> LinkageRun:
    """One fire alarm in one zone of the panel, every effect timed, everything restored."""
    test = FireTest(ctx, params, panel, site, zone, area)
    if test.kind == "guided" and ctx.operator is None:
        test.stop("no_operator")
        return test.result()
    return await test.run()


async def fire_finding(
    ctx: ProbeContext, panel: Target, params: FireParams, probe: str, effect: Effect
) -> Finding:
    """A fire_linkage probe: the panel's one fire test (shared by the five), judged for one effect."""
    started = ctx.clock()
    if not ctx.allowed(FIRE):
        return not_permitted(probe, panel.id, FIRE, started)
    run: PanelRun = await ctx.shared((FIRE, panel.id), lambda: run_fire_test(ctx, panel, params))
    return judge_zones(probe, panel.id, run, effect, started, ctx.clock())


def fire_spec(probe: str, effect: Effect, title: str) -> ProbeSpec:
    """The declaration of a fire_linkage probe: the panel's shared test, judged for `effect`; its
    timeout is one zone's (the run allows it for each zone picked)."""

    async def run(ctx: ProbeContext, target: Target, params: FireParams) -> Finding:
        return await fire_finding(ctx, target, params, probe, effect)

    return ProbeSpec(
        probe, title, "active", ("panel",), FireParams, TIMEOUT_S, run, active_test=FIRE, members=zone_members
    )

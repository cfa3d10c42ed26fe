"""The site's linkage rules as the platform runs them, each effect delayed per community.linkage.

Fire alarm in area X: after fire_camera_alarm_s the cameras of X get "alarm" (reason fire); after
fire_unlock_doors_s the doors whose door.fire_zone names X (or the alarm's zone number) or that
stand in X get "unlock" (reason fire); after fire_emergency_lighting_s the panel gets "lighting"
and the lighting_relay children of gateways located in X get "switch"; after fire_broadcast_s the
panel gets "broadcast"; after fire_platform_alert_s the fire_alarm alert is raised. Fire reset:
doors "lock", lighting and broadcast off, at once. Intrusion: the alert after
intrusion_platform_alert_s, and in a perimeter area camera "alarm" and relay "switch" too.

Relays are switched the way a platform does it, over MQTT: a `cmd` to the relay's gateway
({"id", "action": "switch", "on"}; its `ack` lands in the event log). Without a broker
connection the command goes over the site's wiring instead. Panels, cameras and doors are
commanded over the wiring (the SiteBus).

A slow target (linkage_slow) delays itself: the platform logs when it issued each command; the
device's own log tells when it acted. Every step is logged with the trigger's time, the moment
the platform heard it, the effect time and the measured delay.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from simulator.bus import SiteEvent
from simulator.model import Community
from simulator.platform.state import PlatformState, from_epoch, iso


@dataclass(frozen=True)
class Effect:
    rule: str
    target: str
    action: str
    delay_s: float
    params: dict[str, Any]
    gateway: str | None = None  # a relay: the gateway that switches it


# Sends an MQTT cmd (gateway, device, body); False when there is no broker connection.
SendCommand = Callable[[str, str, dict[str, Any]], Awaitable[bool]]


class LinkageEngine:
    def __init__(self, state: PlatformState, send: SendCommand | None = None) -> None:
        self.state = state
        self.send = send
        self._cmd_ids = itertools.count(1)
        self.community: Community = state.ctx.community
        self.timing = self.community.linkage
        self._tasks: set[asyncio.Task[None]] = set()
        self._burning: dict[str, SiteEvent] = {}  # areas in fire alarm -> the alarm
        self._pending: dict[str, set[asyncio.Task[None]]] = {}  # fire effects not yet applied, by area

    # -- targets -----------------------------------------------------------------------------

    def doors(self, area: str, zone: object = None) -> list[str]:
        names = {area} | ({str(zone)} if zone is not None else set())
        return [
            d.id
            for d in self.community.devices
            if d.kind == "door" and (d.area == area or (d.door is not None and d.door.fire_zone in names))
        ]

    def cameras(self, area: str) -> list[str]:
        return [d.id for d in self.community.devices if d.kind == "camera" and d.area == area]

    def relays(self, area: str) -> list[tuple[str, str]]:
        """(gateway id, relay id) of the lighting relays located in the area."""
        return [
            (gw.id, child.id)
            for gw in self.community.devices
            for child in (gw.gateway.devices if gw.gateway else [])
            if child.type == "lighting_relay" and child.area == area
        ]

    def fire_effects(self, area: str, panel: str, zone: object = None) -> list[Effect]:
        t = self.timing
        rule = f"fire:{area}"
        effects = [
            Effect(rule, c, "alarm", t.fire_camera_alarm_s, {"reason": "fire"}) for c in self.cameras(area)
        ]
        effects += [
            Effect(rule, d, "unlock", t.fire_unlock_doors_s, {"reason": "fire"})
            for d in self.doors(area, zone)
        ]
        effects += [
            Effect(rule, relay, "switch", t.fire_emergency_lighting_s, {"on": True, "reason": "fire"}, gw)
            for gw, relay in self.relays(area)
        ]
        if self._is_panel(panel):
            on = {"on": True, "area": area}
            effects.append(Effect(rule, panel, "lighting", t.fire_emergency_lighting_s, on))
            effects.append(Effect(rule, panel, "broadcast", t.fire_broadcast_s, on))
        return effects

    def reset_effects(self, area: str, panel: str, zone: object = None) -> list[Effect]:
        rule = f"fire_reset:{area}"
        effects = [Effect(rule, d, "lock", 0.0, {"reason": "fire_reset"}) for d in self.doors(area, zone)]
        effects += [
            Effect(rule, relay, "switch", 0.0, {"on": False, "reason": "fire_reset"}, gw)
            for gw, relay in self.relays(area)
        ]
        if self._is_panel(panel):
            off = {"on": False, "area": area}
            effects += [Effect(rule, panel, "lighting", 0.0, off), Effect(rule, panel, "broadcast", 0.0, off)]
        return effects

    def _is_panel(self, device_id: str) -> bool:
        """Lighting and broadcast outputs belong to the fire panel that raised the alarm."""
        return any(d.id == device_id and d.kind == "panel" for d in self.community.devices)

    def intrusion_effects(self, area: str) -> list[Effect]:
        if self.community.area(area).kind != "perimeter":
            return []
        t = self.timing
        rule = f"intrusion:{area}"
        effects = [
            Effect(rule, c, "alarm", t.intrusion_camera_alarm_s, {"reason": "intrusion"})
            for c in self.cameras(area)
        ]
        effects += [
            Effect(rule, relay, "switch", t.intrusion_lighting_s, {"on": True, "reason": "intrusion"}, gw)
            for gw, relay in self.relays(area)
        ]
        return effects

    def rules(self) -> list[dict[str, Any]]:
        """The configured rules with their resolved targets, for GET /api/v1/linkages."""
        t = self.timing
        out: list[dict[str, Any]] = []
        for panel in (d for d in self.community.devices if d.panel is not None):
            assert panel.panel is not None
            for zone in panel.panel.zones:
                effects = self.fire_effects(zone.area, panel.id, zone.id)
                out.append(
                    {
                        "id": f"fire:{panel.id}:{zone.id}",
                        "trigger": {
                            "type": "fire_alarm",
                            "panel": panel.id,
                            "zone": zone.id,
                            "area": zone.area,
                        },
                        "effects": [_effect_json(e) for e in effects]
                        + [
                            {
                                "action": "platform_alert",
                                "alert": "fire_alarm",
                                "delay_s": t.fire_platform_alert_s,
                            }
                        ],
                        "on_reset": [
                            _effect_json(e) for e in self.reset_effects(zone.area, panel.id, zone.id)
                        ],
                    }
                )
        for area in self.community.areas:
            if area.kind == "perimeter":
                out.append(
                    {
                        "id": f"intrusion:{area.id}",
                        "trigger": {"type": "intrusion", "area": area.id},
                        "effects": [_effect_json(e) for e in self.intrusion_effects(area.id)]
                        + [
                            {
                                "action": "platform_alert",
                                "alert": "intrusion",
                                "delay_s": t.intrusion_platform_alert_s,
                            }
                        ],
                    }
                )
        return out

    # -- running -----------------------------------------------------------------------------

    def on_fire(self, event: SiteEvent, area: str) -> None:
        self._burning[area] = event
        zone = event.data.get("zone")
        pending = self._pending.setdefault(area, set())
        for effect in self.fire_effects(area, event.source, zone):
            task = self._spawn(self._apply(effect, event))
            pending.add(task)
            task.add_done_callback(pending.discard)
        self._spawn(self._alert_later(self.timing.fire_platform_alert_s, "fire_alarm", event, area))

    def on_fire_reset(self, event: SiteEvent, areas: list[str] | None) -> None:
        """Reset the areas named (idempotent), or every area in alarm when none is named.

        Effects of the alarm still waiting on their delay are dropped: a reset panel must not
        unlock doors or start the broadcast after the fact."""
        for a in areas if areas else list(self._burning):
            for task in self._pending.pop(a, set()):
                task.cancel()
            alarm = self._burning.pop(a, None)
            zone = alarm.data.get("zone") if alarm else event.data.get("zone")
            for effect in self.reset_effects(a, event.source, zone):
                self._spawn(self._apply(effect, event))

    def on_intrusion(self, event: SiteEvent, area: str) -> None:
        for effect in self.intrusion_effects(area):
            self._spawn(self._apply(effect, event))
        self._spawn(self._alert_later(self.timing.intrusion_platform_alert_s, "intrusion", event, area))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _apply(self, effect: Effect, trigger: SiteEvent) -> None:
        heard, heard_at = time.monotonic(), iso(self.state.now())
        await asyncio.sleep(effect.delay_s)
        result = await self._command(effect)
        self.state.record(
            "linkage",
            rule=effect.rule,
            trigger=trigger.type,
            trigger_source=trigger.source,
            trigger_time=iso(from_epoch(trigger.at)),
            received_at=heard_at,
            target=effect.target,
            action=effect.action,
            params=effect.params,
            configured_delay_s=effect.delay_s,
            effect_at=iso(self.state.now()),
            delay_s=round(time.monotonic() - heard, 3),
            result=result,
        )

    async def _command(self, effect: Effect) -> str:
        if effect.gateway is not None and self.send is not None:
            cmd = {"id": f"L{next(self._cmd_ids)}", "action": effect.action, "on": effect.params["on"]}
            if await self.send(effect.gateway, effect.target, cmd):
                return f"sent: mqtt cmd {cmd['id']}"
        bus = self.state.ctx.bus
        target, params = effect.target, effect.params
        if effect.gateway is not None and not bus.has(target):
            target, params = effect.gateway, {**params, "device": effect.target}
        if not bus.has(target):
            return "no_actuator"
        try:
            await bus.command(target, effect.action, **params)
        except Exception as exc:  # a device refusing is logged, never fatal to the platform
            return f"error: {exc}"
        return "ok"

    async def _alert_later(self, delay_s: float, type_: str, event: SiteEvent, area: str) -> None:
        heard, heard_at = time.monotonic(), iso(self.state.now())
        await asyncio.sleep(delay_s)
        alert = self.state.raise_alert(
            type_, event.source, area, source_time=from_epoch(event.at), data=dict(event.data)
        )
        self.state.record(
            "linkage",
            rule=f"{'fire' if type_ == 'fire_alarm' else type_}:{area}",
            trigger=event.type,
            trigger_source=event.source,
            trigger_time=iso(from_epoch(event.at)),
            received_at=heard_at,
            target="platform",
            action="platform_alert",
            params={"alert": type_},
            configured_delay_s=delay_s,
            effect_at=iso(self.state.now()),
            delay_s=round(time.monotonic() - heard, 3),
            result="ok" if alert else "suppressed",
        )


def _effect_json(effect: Effect) -> dict[str, Any]:
    via = {"via_gateway": effect.gateway} if effect.gateway else {}
    return via | {
        "action": effect.action,
        "target": effect.target,
        "delay_s": effect.delay_s,
        "params": effect.params,
    }

"""What a fire alarm panel knows, independent of how a vendor lays it out in Modbus tables.

The panel's logic lives here (latching zone alarms, walk-test mode, supervisory thresholds) so that
every register profile shows the same behaviour; a profile only chooses addresses and encodings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Number = int | bool
SourceKind = Literal["bool", "number"]
Command = Literal["test_mode", "simulate_zone_alarm", "reset"]


class Refused(ValueError):
    """A command or write with a value the panel does not accept (no such zone, negative level)."""


class NotInTestMode(Refused):
    """A write that the panel accepts only while it is in test (walk-test / commissioning) mode."""


@dataclass
class Zone:
    """One detection zone (a loop section / an area's detectors) as the panel tracks it."""

    id: int
    area: str
    charger: bool  # the zone monitors charging piles (its area is a charging area)
    alarm: bool = False  # latched until reset
    test: bool = False  # the latched alarm was raised while the panel was in test mode
    fault: bool = False
    isolated: bool = False  # disabled ("shielded"): detector activations are ignored
    broadcast: bool = False  # the emergency broadcast is playing in this zone
    charger_load_pct: int = 0  # highest pile load in the zone, percent of rated power


@dataclass(frozen=True)
class Hazard:
    """A supervisory condition that changed: reported on the site bus by the panel."""

    kind: Literal["water_low", "pressure_low", "charger_overload"]
    active: bool
    value: int
    threshold: int
    zone: int | None = None


class PanelState:
    """The panel's present condition; methods return what changed so the caller can report it."""

    def __init__(
        self,
        zones: list[Zone],
        *,
        water_level_cm: int,
        water_low_cm: int,
        pressure_kpa: int,
        pressure_low_kpa: int,
        charger_overload_pct: int,
        clock: Callable[[], datetime],
        uptime: Callable[[], int],
    ) -> None:
        self.zones = {z.id: z for z in zones}
        self.water_level_cm = water_level_cm
        self.water_low_cm = water_low_cm
        self.pressure_kpa = pressure_kpa
        self.pressure_low_kpa = pressure_low_kpa
        self.charger_overload_pct = charger_overload_pct
        self.clock = clock
        self.uptime = uptime
        self.test_mode = False
        self.silenced = False
        self.supply_fault = False
        self.battery_fault = False
        self.lighting_on = False
        self.lighting_fault = False

    def zone(self, zone_id: int) -> Zone:
        try:
            return self.zones[zone_id]
        except KeyError:
            raise Refused(f"no zone {zone_id} on this panel") from None

    # -- derived conditions ------------------------------------------------------------------------
    @property
    def alarm(self) -> bool:
        return any(z.alarm for z in self.zones.values())

    @property
    def alarm_count(self) -> int:
        return sum(z.alarm for z in self.zones.values())

    @property
    def fault_count(self) -> int:
        panel = (self.supply_fault, self.battery_fault, self.lighting_fault)
        return sum(panel) + sum(z.fault for z in self.zones.values())

    @property
    def water_low(self) -> bool:
        return self.water_level_cm < self.water_low_cm

    @property
    def pressure_low(self) -> bool:
        return self.pressure_kpa < self.pressure_low_kpa

    def charger_overload(self, zone: Zone) -> bool:
        return zone.charger and zone.charger_load_pct > self.charger_overload_pct

    @property
    def max_charger_load_pct(self) -> int:
        return max((z.charger_load_pct for z in self.zones.values()), default=0)

    @property
    def supervisory(self) -> bool:
        overload = any(self.charger_overload(z) for z in self.zones.values())
        return self.water_low or self.pressure_low or overload

    @property
    def normal(self) -> bool:
        """Nothing to show: no alarm, fault, supervisory condition, isolated zone nor test mode."""
        isolated = any(z.isolated for z in self.zones.values())
        return not (self.alarm or self.fault_count or self.supervisory or isolated or self.test_mode)

    @property
    def broadcast_zone(self) -> int:
        """0: off; the zone number when one zone plays; 65535: several zones (all-call)."""
        playing = [z.id for z in self.zones.values() if z.broadcast]
        if not playing:
            return 0
        return playing[0] if len(playing) == 1 else 0xFFFF

    # -- events --------------------------------------------------------------------------------------
    def raise_alarm(self, zone_id: int) -> bool:
        """A detector in the zone went off; False when the zone is isolated or already in alarm."""
        zone = self.zone(zone_id)
        if zone.isolated or zone.alarm:
            return False
        zone.alarm = True
        zone.test = self.test_mode
        self.silenced = False  # a new alarm re-sounds silenced sounders
        return True

    def execute(self, writes: list[tuple[Command, int | None, int]]) -> tuple[list[int], list[int]]:
        """Carry out operator writes (command, zone for per-zone points, value) in address order.

        All are checked before any takes effect, so a refused request changes nothing; test mode set
        earlier in the same request counts. Returns (zones newly in alarm, zones cleared by reset).
        """
        test_mode = self.test_mode
        for command, zone, value in writes:
            if value not in (0, 1) and not (command == "simulate_zone_alarm" and zone is None):
                raise Refused(f"{command}: {value} is neither 0 nor 1")
            if command == "test_mode":
                test_mode = bool(value)
            elif command == "simulate_zone_alarm":
                if not test_mode:
                    raise NotInTestMode("simulating a zone alarm needs test mode")
                target = value if zone is None else zone * value
                if target:
                    self.zone(target)
        alarmed: list[int] = []
        cleared: list[int] = []
        for command, zone, value in writes:
            if command == "test_mode":
                self.test_mode = bool(value)
            elif command == "reset" and value:
                cleared += self.reset()
            elif command == "simulate_zone_alarm":
                target = value if zone is None else zone * value
                if target and self.raise_alarm(target):
                    alarmed.append(target)
        return alarmed, cleared

    def reset(self) -> list[int]:
        """Clear latched alarms and silence; conditions (faults, thresholds) persist. Returns zones."""
        cleared = [z.id for z in self.zones.values() if z.alarm]
        for z in self.zones.values():
            z.alarm = z.test = False
        self.silenced = False
        return cleared

    def silence(self) -> bool:
        """Silence the sounders; meaningful only while an alarm sounds. Returns the new state."""
        self.silenced = self.alarm
        return self.silenced

    def set_isolated(self, zone_id: int, isolated: bool) -> None:
        self.zone(zone_id).isolated = isolated

    def set_water_level(self, cm: int) -> Hazard | None:
        was = self.water_low
        self.water_level_cm = _non_negative(cm)
        if self.water_low == was:
            return None
        return Hazard("water_low", self.water_low, self.water_level_cm, self.water_low_cm)

    def set_pressure(self, kpa: int) -> Hazard | None:
        was = self.pressure_low
        self.pressure_kpa = _non_negative(kpa)
        if self.pressure_low == was:
            return None
        return Hazard("pressure_low", self.pressure_low, self.pressure_kpa, self.pressure_low_kpa)

    def set_charger_load(self, zone_id: int, pct: int) -> Hazard | None:
        zone = self.zone(zone_id)
        if not zone.charger:
            raise Refused(f"zone {zone_id} ({zone.area}) monitors no charging piles")
        was = self.charger_overload(zone)
        zone.charger_load_pct = _non_negative(pct)
        now = self.charger_overload(zone)
        if now == was:
            return None
        return Hazard("charger_overload", now, zone.charger_load_pct, self.charger_overload_pct, zone.id)

    def set_lighting(self, on: bool) -> bool:
        """Switch emergency lighting; a faulty lighting circuit stays dark. Returns the new state."""
        self.lighting_on = on and not self.lighting_fault
        return self.lighting_on

    def set_broadcast(self, on: bool, area: str | None) -> list[int]:
        """Start/stop the broadcast in the zones covering area (all zones when None)."""
        targets = [z for z in self.zones.values() if area is None or z.area == area]
        for z in targets:
            z.broadcast = on
        return [z.id for z in targets]

    def set_fault(self, kind: str, active: bool, zone_id: int | None = None) -> None:
        if kind == "supply":
            self.supply_fault = active
        elif kind == "battery":
            self.battery_fault = active
        elif kind == "lighting":
            self.lighting_fault = active
            self.lighting_on = self.lighting_on and not active
        elif kind == "zone" and zone_id is not None:
            self.zone(zone_id).fault = active
        else:
            raise Refused(f"unknown fault {kind!r} (zone {zone_id})")


def _non_negative(value: int) -> int:
    if value < 0:
        raise Refused(f"a measurement cannot be negative: {value}")
    return value


# Values a profile may place in a table: panel-wide, and per zone (for per_zone points).
PANEL_SOURCES: dict[str, tuple[SourceKind, Callable[[PanelState], Number]]] = {
    "panel.normal": ("bool", lambda s: s.normal),
    "panel.alarm": ("bool", lambda s: s.alarm),
    "panel.fault": ("bool", lambda s: s.fault_count > 0),
    "panel.test_mode": ("bool", lambda s: s.test_mode),
    "panel.silenced": ("bool", lambda s: s.silenced),
    "panel.supply_fault": ("bool", lambda s: s.supply_fault),
    "panel.battery_fault": ("bool", lambda s: s.battery_fault),
    "panel.supervisory": ("bool", lambda s: s.supervisory),
    "panel.isolation": ("bool", lambda s: any(z.isolated for z in s.zones.values())),
    "panel.alarm_count": ("number", lambda s: s.alarm_count),
    "panel.fault_count": ("number", lambda s: s.fault_count),
    "panel.zone_count": ("number", lambda s: len(s.zones)),
    "water.level_cm": ("number", lambda s: s.water_level_cm),
    "water.low_cm": ("number", lambda s: s.water_low_cm),
    "water.low": ("bool", lambda s: s.water_low),
    "pressure.kpa": ("number", lambda s: s.pressure_kpa),
    "pressure.low_kpa": ("number", lambda s: s.pressure_low_kpa),
    "pressure.low": ("bool", lambda s: s.pressure_low),
    "charger.max_load_pct": ("number", lambda s: s.max_charger_load_pct),
    "charger.overload_pct": ("number", lambda s: s.charger_overload_pct),
    "charger.overload": ("bool", lambda s: any(s.charger_overload(z) for z in s.zones.values())),
    "lighting.on": ("bool", lambda s: s.lighting_on),
    "lighting.fault": ("bool", lambda s: s.lighting_fault),
    "broadcast.on": ("bool", lambda s: s.broadcast_zone != 0),
    "broadcast.zone": ("number", lambda s: s.broadcast_zone),
    "heartbeat.seconds": ("number", lambda s: s.uptime()),
    "clock.year": ("number", lambda s: s.clock().year),
    "clock.month": ("number", lambda s: s.clock().month),
    "clock.day": ("number", lambda s: s.clock().day),
    "clock.hour": ("number", lambda s: s.clock().hour),
    "clock.minute": ("number", lambda s: s.clock().minute),
    "clock.second": ("number", lambda s: s.clock().second),
}

ZONE_SOURCES: dict[str, tuple[SourceKind, Callable[[PanelState, Zone], Number]]] = {
    "zone.alarm": ("bool", lambda s, z: z.alarm),
    "zone.fault": ("bool", lambda s, z: z.fault),
    "zone.isolated": ("bool", lambda s, z: z.isolated),
    "zone.test": ("bool", lambda s, z: z.test),
    "zone.broadcast": ("bool", lambda s, z: z.broadcast),
    "zone.charger": ("bool", lambda s, z: z.charger),
    "zone.charger_overload": ("bool", lambda s, z: s.charger_overload(z)),
    "zone.charger_load_pct": ("number", lambda s, z: z.charger_load_pct),
}

"""What a Modbus read yields: raw values with their exchange, and a fire panel's typed reading."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Read(Generic[T]):
    """Values of one read request, and the exchange that carried it."""

    values: tuple[T, ...]
    exchange_id: str


@dataclass(frozen=True)
class ZoneReading:
    """One detection zone as the panel reports it; None where the profile maps nothing."""

    zone: int
    alarm: bool | None = None
    fault: bool | None = None
    isolated: bool | None = None
    test: bool | None = None  # the alarm was raised in test mode
    broadcast: bool | None = None
    charger: bool | None = None  # the zone watches charging piles
    charger_overload: bool | None = None
    charger_load_pct: float | None = None


@dataclass(frozen=True)
class PanelReading:
    """Everything a profile maps, in zhian's units. None: not in the map, or refused (see `absent`)."""

    profile: str
    unit_id: int
    read_at: datetime  # the collector's clock (UTC) when the reading was complete
    exchanges: tuple[str, ...] = ()
    normal: bool | None = None
    alarm: bool | None = None
    fault: bool | None = None
    test_mode: bool | None = None
    silenced: bool | None = None
    supply_fault: bool | None = None
    battery_fault: bool | None = None
    supervisory: bool | None = None
    isolation: bool | None = None
    alarm_count: int | None = None
    fault_count: int | None = None
    zone_count: int | None = None
    water_level_cm: float | None = None
    water_low_threshold_cm: float | None = None
    water_low: bool | None = None
    pipe_pressure_kpa: float | None = None
    pipe_pressure_low_threshold_kpa: float | None = None
    pressure_low: bool | None = None
    charger_max_load_pct: float | None = None
    charger_overload_threshold_pct: float | None = None
    charger_overload: bool | None = None
    lighting_on: bool | None = None
    lighting_fault: bool | None = None
    broadcast_on: bool | None = None
    broadcast_zone: int | None = None
    heartbeat_s: int | None = None
    clock_raw: tuple[int, ...] | None = None  # year, month, day, hour, minute, second as the panel shows
    device_time: datetime | None = None  # the panel's clock in UTC; None when absent or not a date
    zones: Mapping[int, ZoneReading] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)  # value -> exchange of the panel's refusal
    resolution: Mapping[str, float] = field(default_factory=dict)  # value -> one raw step in zhian's unit

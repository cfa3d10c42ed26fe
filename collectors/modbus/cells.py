"""A panel's register cells: which to read in few requests, and what they mean in zhian's units.

The profile places each value in a table at an address; a reading gathers the cells into blocks
(bridging only addresses the map says exist) and decodes the cells read into a PanelReading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from collectors.modbus.profile import (
    BIT_TABLES,
    CLOCK_VALUES,
    PANEL_VALUES,
    ZONE_VALUES,
    Kind,
    Location,
    PanelProfile,
    Table,
)
from collectors.modbus.readings import PanelReading, ZoneReading

_MAX_COUNT: dict[Table, int] = {
    "coil": 2000,
    "discrete_input": 2000,
    "input_register": 125,
    "holding_register": 125,
}


@dataclass(frozen=True)
class Block:
    """One read request: `count` cells of `table` from `address` on."""

    table: Table
    address: int
    count: int


Cells = dict[Table, dict[int, int]]
Refused = dict[Table, dict[int, str]]
Instance = tuple[str, Kind, Location, int | None]  # name, kind, where, zone


def plan(profile: PanelProfile, instances: list[Instance]) -> list[Block]:
    """Few reads: needed cells grouped into runs, bridging only addresses the map says exist
    (panels refuse a whole read that touches an unmapped address)."""
    needed: dict[Table, set[int]] = {}
    for _, _, where, zone in instances:
        needed.setdefault(where.table, set()).update(range(where.at(zone), where.at(zone) + where.width))
    known: dict[Table, set[int]] = {}
    for where in profile.values.values():
        known.setdefault(where.table, set()).update(range(where.address, where.address + where.width))
    for where in profile.zone_values.values():
        for zone in range(1, profile.max_zones + 1):
            known.setdefault(where.table, set()).update(range(where.at(zone), where.at(zone) + where.width))
    blocks: list[Block] = []
    for table, addresses in needed.items():
        start = last = -1
        for address in sorted(addresses):
            bridge = range(last + 1, address)
            if start >= 0 and address - start < _MAX_COUNT[table] and all(a in known[table] for a in bridge):
                last = address
                continue
            if start >= 0:
                blocks.append(Block(table, start, last - start + 1))
            start = last = address
        blocks.append(Block(table, start, last - start + 1))
    return blocks


def decode(
    profile: PanelProfile, kind: Kind, where: Location, zone: int | None, cells: Cells
) -> float | None:
    """One value from the cells read (None when any of its cells is missing), in zhian's unit."""
    first = where.at(zone)
    raw = [cells[where.table].get(a) for a in range(first, first + where.width)]
    if any(word is None for word in raw):
        return None
    words = [int(w or 0) for w in raw]
    if where.table in BIT_TABLES:
        return float(bool(words[0]))
    if where.bit is not None:
        return float(words[0] >> where.bit & 1)
    if where.type == "uint32":
        high, low = words if profile.word_order == "high_first" else words[::-1]
        value = high << 16 | low
    elif where.type == "int16":
        value = words[0] - 0x10000 if words[0] & 0x8000 else words[0]
    else:
        value = words[0]
    return float(value) if kind == "count" else round(value * where.scale, 6)


def _typed(kind: Kind, value: float | None) -> bool | int | float | None:
    if value is None:
        return None
    if kind == "flag":
        return bool(value)
    return int(value) if kind == "count" else value


def _refusal(where: Location, zone: int | None, refused: Refused) -> str | None:
    first = where.at(zone)
    return next(
        (refused[where.table][a] for a in range(first, first + where.width) if a in refused[where.table]),
        None,
    )


def local_time(profile: PanelProfile, raw: tuple[int, ...]) -> datetime | None:
    offset = timezone(timedelta(minutes=profile.clock_utc_offset_min))
    try:
        year, month, day, hour, minute, second = raw
        local = datetime(year, month, day, hour, minute, second, tzinfo=offset)
    except ValueError:
        return None
    return local.astimezone(UTC)


def panel_reading(
    profile: PanelProfile,
    unit_id: int,
    zones: list[int],
    cells: Cells,
    refused: Refused,
    read_at: datetime,
    exchanges: tuple[str, ...],
) -> PanelReading:
    values: dict[str, Any] = {}
    absent: dict[str, str] = {}
    resolution: dict[str, float] = {}
    for name, where in profile.values.items():
        values[name] = _typed(PANEL_VALUES[name], decode(profile, PANEL_VALUES[name], where, None, cells))
        if (why := _refusal(where, None, refused)) is not None:
            absent[name] = why
        if PANEL_VALUES[name] == "measure":
            resolution[name] = where.scale
    clock = [values.pop(name) for name in CLOCK_VALUES if name in values]
    clock_raw = tuple(int(c) for c in clock) if clock and None not in clock else None
    by_zone: dict[int, ZoneReading] = {}
    for zone in zones:
        zone_values: dict[str, Any] = {}
        for name, where in profile.zone_values.items():
            kind = ZONE_VALUES[name]
            zone_values[name] = _typed(kind, decode(profile, kind, where, zone, cells))
            if (why := _refusal(where, zone, refused)) is not None:
                absent[f"zone{zone}.{name}"] = why
            if kind == "measure":
                resolution[name] = where.scale
        by_zone[zone] = ZoneReading(zone=zone, **zone_values)
    return PanelReading(
        profile=profile.name,
        unit_id=unit_id,
        read_at=read_at,
        exchanges=exchanges,
        clock_raw=clock_raw,
        device_time=local_time(profile, clock_raw) if clock_raw else None,
        zones=by_zone,
        absent=absent,
        resolution=resolution,
        **values,
    )

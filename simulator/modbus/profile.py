"""A vendor's Modbus register map as data: which table and address carries each panel value.

Fire panels of different makers expose the same facts (zone alarms, water level, a heartbeat) at
different addresses, in different tables and scalings. The panel logic is shared (state.py); a
profile only lays it out, so a second vendor is a YAML file, not code. Validated strictly: an
overlap, an unknown value name or a write to a read-only table is an error at load time.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.modbus.state import PANEL_SOURCES, ZONE_SOURCES, Command, SourceKind

Table = Literal["coil", "discrete_input", "input_register", "holding_register"]
TABLES: tuple[Table, ...] = ("coil", "discrete_input", "input_register", "holding_register")
BIT_TABLES: frozenset[Table] = frozenset({"coil", "discrete_input"})
WRITABLE_TABLES: frozenset[Table] = frozenset({"coil", "holding_register"})
PROFILE_DIR = Path(__file__).parent / "profiles"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Strict):
    """One value (source), one bit-field register (bits) or one operator command (command).

    per_zone repeats the point for zones 1..max_zones at address + (zone - 1) * stride.
    Register values are sent as round(value * scale), saturated to the type's range.
    """

    name: str
    table: Table
    address: int = Field(ge=0, le=65535)
    source: str | None = None
    bits: dict[int, str] | None = None
    command: Command | None = None
    type: Literal["uint16", "int16", "uint32"] = "uint16"
    scale: float = Field(default=1.0, gt=0)
    unit: str = ""
    per_zone: bool = False
    stride: int = Field(default=1, ge=1)
    doc: str = ""

    @property
    def width(self) -> int:
        """Addresses one instance occupies (bits: 1; uint32: 2 registers)."""
        return 2 if self.type == "uint32" else 1

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        given = [x for x in (self.source, self.bits, self.command) if x is not None]
        if len(given) != 1:
            raise ValueError(f"{self.name}: give exactly one of source, bits, command")
        is_bits = self.table in BIT_TABLES
        if is_bits and ({"type", "scale"} & self.model_fields_set):
            raise ValueError(f"{self.name}: a {self.table} is one bit, it has no type or scale")
        if self.per_zone and self.stride < self.width:
            raise ValueError(f"{self.name}: stride {self.stride} < width {self.width}")
        if self.source is not None:
            kind = _kind(self.name, self.source, self.per_zone)
            if is_bits and kind != "bool":
                raise ValueError(f"{self.name}: {self.source} is a number, a {self.table} holds a bit")
        if self.bits is not None:
            if is_bits:
                raise ValueError(f"{self.name}: bit fields belong in register tables")
            if self.type != "uint16" or self.scale != 1:
                raise ValueError(f"{self.name}: a bit field is one plain uint16 register")
            for bit, source in self.bits.items():
                if not 0 <= bit <= 15:
                    raise ValueError(f"{self.name}: bit {bit} outside 0..15")
                if _kind(self.name, source, self.per_zone) != "bool":
                    raise ValueError(f"{self.name}: bit {bit} needs a true/false value, not {source}")
        if self.command is not None:
            if self.table not in WRITABLE_TABLES:
                raise ValueError(f"{self.name}: a {self.table} cannot be written")
            if self.type != "uint16" or self.scale != 1:
                raise ValueError(f"{self.name}: a command register is one plain uint16")
            if self.per_zone and self.command != "simulate_zone_alarm":
                raise ValueError(f"{self.name}: only simulate_zone_alarm can be per zone")
        return self


def _kind(point: str, source: str, per_zone: bool) -> SourceKind:
    table = ZONE_SOURCES if per_zone else PANEL_SOURCES
    found = table.get(source)
    if found is None:
        where = "zone" if per_zone else "panel"
        raise ValueError(f"{point}: unknown {where} value {source!r} (one of {sorted(table)})")
    return found[0]


class Profile(_Strict):
    """A panel model's register map and the vendor behaviours that differ between makers."""

    name: str
    vendor: str
    model: str
    description: str
    max_zones: int = Field(ge=1, le=1024)
    max_connections: int = Field(default=1, ge=1)  # embedded Modbus stacks often serve one client
    charger_overload_pct: int = Field(default=100, gt=0)
    clock_utc_offset_min: int = Field(default=480, ge=-720, le=840)  # panels keep local time
    word_order: Literal["big", "little"] = "big"  # uint32: high word first (big) or low word first
    refuse_outside_test_mode: Literal["illegal_data_value", "device_failure"] = "illegal_data_value"
    points: list[Point]

    def instances(self, point: Point) -> list[tuple[int, int | None]]:
        """(first address, zone) of every copy of a point."""
        if not point.per_zone:
            return [(point.address, None)]
        return [(point.address + (z - 1) * point.stride, z) for z in range(1, self.max_zones + 1)]

    @model_validator(mode="after")
    def _no_overlap(self) -> Profile:
        taken: dict[tuple[Table, int], str] = {}
        commands: dict[Command, str] = {}
        for point in self.points:
            if point.command is not None:
                if point.command in commands:
                    raise ValueError(f"{point.name}: {point.command} already at {commands[point.command]}")
                commands[point.command] = point.name
            for first, _zone in self.instances(point):
                for address in range(first, first + point.width):
                    if address > 65535:
                        raise ValueError(f"{point.name}: reaches past address 65535")
                    other = taken.setdefault((point.table, address), point.name)
                    if other != point.name:
                        raise ValueError(f"{point.name}: {point.table} {address} already holds {other}")
        return self


class ProfileError(Exception):
    """A profile that cannot be used, with the file and the place named."""


@cache
def load_profile(name: str) -> Profile:
    """The profile shipped as profiles/<name>.yaml."""
    if not _NAME.match(name):
        raise ProfileError(f"bad profile name {name!r}")
    path = PROFILE_DIR / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Profile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProfileError(f"{path}: {where}: {first['msg']}") from exc

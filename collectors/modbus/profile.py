"""A fire panel's Modbus register map as zhian knows it: the maker's document, kept as data.

Makers put the same facts (zone alarms, tank level, a heartbeat) in different tables, at different
addresses, in different units. zhian reads a panel through a profile transcribed from the maker's
register map (collectors/modbus/profiles/<name>.yaml), so a new panel model is a YAML file, not
code. Every value is named in zhian's own terms and units (cm, kPa, % of rated power); `scale`
converts the maker's raw number into them. Validated strictly: an unknown name, a bit outside a
register or two values on one cell is an error that names the file and the place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collectors.profile_file import parse_profile_text, read_profile_text

Table = Literal["coil", "discrete_input", "input_register", "holding_register"]
BIT_TABLES: frozenset[Table] = frozenset({"coil", "discrete_input"})
Kind = Literal["flag", "count", "measure"]  # a bit; a whole number; a scaled measurement
CommandName = Literal["test_mode", "simulate_zone_alarm", "reset"]

PROFILE_DIR = Path(__file__).parent / "profiles"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# What zhian reads from a panel, by name, and of what kind (PanelReading has a field for each).
PANEL_VALUES: dict[str, Kind] = {
    "normal": "flag",
    "alarm": "flag",
    "fault": "flag",
    "test_mode": "flag",
    "silenced": "flag",
    "supply_fault": "flag",
    "battery_fault": "flag",
    "supervisory": "flag",
    "isolation": "flag",
    "alarm_count": "count",
    "fault_count": "count",
    "zone_count": "count",
    "water_level_cm": "measure",
    "water_low_threshold_cm": "measure",
    "water_low": "flag",
    "pipe_pressure_kpa": "measure",
    "pipe_pressure_low_threshold_kpa": "measure",
    "pressure_low": "flag",
    "charger_max_load_pct": "measure",
    "charger_overload_threshold_pct": "measure",
    "charger_overload": "flag",
    "lighting_on": "flag",
    "lighting_fault": "flag",
    "broadcast_on": "flag",
    "broadcast_zone": "count",
    "heartbeat_s": "count",
    "clock_year": "count",
    "clock_month": "count",
    "clock_day": "count",
    "clock_hour": "count",
    "clock_minute": "count",
    "clock_second": "count",
}
ZONE_VALUES: dict[str, Kind] = {
    "alarm": "flag",
    "fault": "flag",
    "isolated": "flag",
    "test": "flag",
    "broadcast": "flag",
    "charger": "flag",
    "charger_overload": "flag",
    "charger_load_pct": "measure",
}
_Claims = dict[tuple[Table, int], dict[int | None, str]]
CLOCK_VALUES = ("clock_year", "clock_month", "clock_day", "clock_hour", "clock_minute", "clock_second")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    """Where one value sits: a bit-table cell, one bit of a register, or a register (pair).

    For a zone value, `address` is zone 1's and zone n sits at address + (n - 1) * stride.
    A register's value in zhian's unit is raw * scale; `unit` is the maker's, for the record.
    """

    table: Table
    address: int = Field(ge=0, le=65535)
    bit: int | None = Field(default=None, ge=0, le=15)
    type: Literal["uint16", "int16", "uint32"] = "uint16"
    scale: float = Field(default=1.0, gt=0)
    unit: str = ""
    stride: int = Field(default=1, ge=1)

    @property
    def is_bit(self) -> bool:
        return self.table in BIT_TABLES or self.bit is not None

    def at(self, zone: int | None = None) -> int:
        """The first address of the panel's value, or of zone n's."""
        return self.address if zone is None else self.address + (zone - 1) * self.stride

    @property
    def width(self) -> int:
        """Addresses one instance takes (a uint32 takes two registers)."""
        return 2 if self.type == "uint32" else 1

    @model_validator(mode="after")
    def _consistent(self) -> Location:
        shaped = {"type", "scale", "unit"} & self.model_fields_set
        if self.table in BIT_TABLES and (self.bit is not None or shaped):
            raise ValueError(f"a {self.table} cell is one bit: no bit, type, scale or unit")
        if self.bit is not None and shaped:
            raise ValueError("a register bit has no type, scale or unit")
        return self


class CommandLocation(_Strict):
    """A writable cell: a holding register (write a number) or a coil (write ON)."""

    table: Literal["coil", "holding_register"]
    address: int = Field(ge=0, le=65535)
    per_zone: bool = False  # one cell per zone (coil n alarms zone n) instead of one taking the number
    stride: int = Field(default=1, ge=1)

    def at(self, zone: int | None = None) -> int:
        return self.address if zone is None or not self.per_zone else self.address + (zone - 1) * self.stride


class PanelProfile(_Strict):
    """A panel model's register map and the maker's habits that a client has to know."""

    name: str
    vendor: str
    model: str
    document: str  # where the map was transcribed from
    max_zones: int = Field(ge=1, le=1024)
    max_connections: int = Field(default=1, ge=1)  # clients the panel serves at a time
    clock_utc_offset_min: int = Field(ge=-720, le=840)  # panels keep local time
    word_order: Literal["high_first", "low_first"]  # of a uint32 over two registers
    values: dict[str, Location]
    zone_values: dict[str, Location] = Field(default_factory=dict)
    commands: dict[CommandName, CommandLocation] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_and_apart(self) -> PanelProfile:
        taken: _Claims = {}
        for scope, known, points in (
            ("values", PANEL_VALUES, self.values),
            ("zone_values", ZONE_VALUES, self.zone_values),
        ):
            for name, where in points.items():
                kind = known.get(name)
                if kind is None:
                    raise ValueError(f"{scope}.{name}: unknown value (one of {', '.join(known)})")
                if (kind == "flag") != where.is_bit:
                    need = "a bit" if kind == "flag" else "a register"
                    raise ValueError(f"{scope}.{name}: a {kind} needs {need}")
                if kind == "count" and where.scale != 1:
                    raise ValueError(f"{scope}.{name}: a count is not scaled")
                zones = self.max_zones if scope == "zone_values" else 1
                if zones > 1 and where.stride < where.width:
                    raise ValueError(f"{scope}.{name}: stride {where.stride} < width {where.width}")
                for n in range(zones):
                    for word in range(where.width):
                        address = where.address + n * where.stride + word
                        self._claim(taken, (where.table, address, where.bit), f"{scope}.{name}")
        for command, cell in self.commands.items():
            if cell.per_zone and command != "simulate_zone_alarm":
                raise ValueError(f"commands.{command}: only simulate_zone_alarm has a cell per zone")
            for n in range(self.max_zones if cell.per_zone else 1):
                self._claim(taken, (cell.table, cell.address + n * cell.stride, None), f"commands.{command}")
        clock = [name for name in CLOCK_VALUES if name in self.values]
        if clock and len(clock) != len(CLOCK_VALUES):
            raise ValueError(f"values: the clock needs all of {', '.join(CLOCK_VALUES)}")
        return self

    @staticmethod
    def _claim(taken: _Claims, cell: tuple[Table, int, int | None], by: str) -> None:
        """One owner per cell; bits of one register may have different owners, a whole register not."""
        table, address, bit = cell
        if address > 65535:
            raise ValueError(f"{by}: reaches past address 65535")
        owners = taken.setdefault((table, address), {})
        for other_bit, owner in owners.items():
            if owner != by and (bit is None or other_bit is None or bit == other_bit):
                raise ValueError(f"{by}: {table} {address} already holds {owner}")
        owners[bit] = by


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the place named."""


def parse_profile(text: str, source: str = "<profile>") -> PanelProfile:
    return parse_profile_text(text, source, PanelProfile, ProfileError)


def load_profile(name: str) -> PanelProfile:
    """The profile shipped as profiles/<name>.yaml."""
    if not _NAME.match(name):
        raise ProfileError(f"bad profile name {name!r}")
    path = PROFILE_DIR / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        shipped = ", ".join(shipped_profiles())
        raise ProfileError(
            f"no profile {name!r} shipped (shipped: {shipped}); a site's own map goes in profile_file:"
        ) from None
    profile = parse_profile(text, str(path))
    if profile.name != name:
        raise ProfileError(f"{path}: names itself {profile.name!r}")
    return profile


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile_file(path: Path) -> PanelProfile:
    """A site's own register map, for a panel model zhian does not ship."""
    text = read_profile_text(path, "a register map", ProfileError)
    return parse_profile(text, str(path))

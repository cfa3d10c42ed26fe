"""The four Modbus tables of a panel, computed from its state through a profile on every request.

Rendering at request time (instead of copying values into the datastore whenever they change)
keeps the heartbeat and the clock exact to the second and leaves no update path to forget.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.modbus.profile import BIT_TABLES, TABLES, Point, Profile, Table
from simulator.modbus.state import PANEL_SOURCES, ZONE_SOURCES, Command, Number, PanelState

_RANGES = {"uint16": (0, 0xFFFF), "int16": (-0x8000, 0x7FFF), "uint32": (0, 0xFFFFFFFF)}


class IllegalAddress(Exception):
    """A write to an address that holds no command (a read-only value, or nothing)."""


@dataclass(frozen=True)
class _Cell:
    point: Point
    zone: int | None
    word: int  # 0, or 1 for the second register of a uint32


class RegisterImage:
    """Where every cell of every table comes from, for one profile."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._cells: dict[Table, dict[int, _Cell]] = {t: {} for t in TABLES}
        for point in profile.points:
            for first, zone in profile.instances(point):
                for word in range(point.width):
                    self._cells[point.table][first + word] = _Cell(point, zone, word)

    def used(self, table: Table) -> bool:
        return bool(self._cells[table])

    def runs(self, table: Table) -> list[tuple[int, int]]:
        """Contiguous (start, length) address ranges of a table: what the datastore must declare."""
        out: list[tuple[int, int]] = []
        for address in sorted(self._cells[table]):
            if out and out[-1][0] + out[-1][1] == address:
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((address, 1))
        return out

    def render(self, table: Table, state: PanelState) -> dict[int, int]:
        """Every defined address of a table with its present value (register, or 0/1 for a bit)."""
        out: dict[int, int] = {}
        for address, cell in self._cells[table].items():
            if cell.word:
                continue
            words = self._encode(cell.point, self._value(cell, state))
            for i, word in enumerate(words):
                out[address + i] = word
        return out

    def fill(self, table: Table, state: PanelState, start: int, registers: list[int]) -> None:
        """Write the rendered table into a pymodbus block (bit tables: 16 bits per word, LSB first)."""
        values = self.render(table, state)
        if table in BIT_TABLES:
            for address, bit in values.items():
                i, mask = address // 16 - start, 1 << (address % 16)
                registers[i] = (registers[i] | mask) if bit else (registers[i] & ~mask)
        else:
            for address, word in values.items():
                registers[address - start] = word

    def writes(self, table: Table, address: int, values: list[int]) -> list[tuple[Command, int | None, int]]:
        """Decode a write request into panel commands; anything but a command cell is refused."""
        out: list[tuple[Command, int | None, int]] = []
        for i, value in enumerate(values):
            cell = self._cells[table].get(address + i)
            if cell is None or cell.point.command is None:
                raise IllegalAddress(f"{table} {address + i} is not writable")
            out.append((cell.point.command, cell.zone, int(value)))
        return out

    def _value(self, cell: _Cell, state: PanelState) -> Number:
        point = cell.point
        if point.command is not None:
            return state.test_mode if point.command == "test_mode" else 0  # triggers read back as 0
        if point.bits is not None:
            return sum(1 << bit for bit, name in point.bits.items() if self._source(name, cell, state))
        assert point.source is not None  # the profile validator guarantees exactly one kind
        return self._source(point.source, cell, state)

    @staticmethod
    def _source(name: str, cell: _Cell, state: PanelState) -> Number:
        if cell.zone is None:
            return PANEL_SOURCES[name][1](state)
        zone = state.zones.get(cell.zone)
        return ZONE_SOURCES[name][1](state, zone) if zone is not None else 0  # unused zone: all clear

    def _encode(self, point: Point, value: Number) -> list[int]:
        if point.table in BIT_TABLES:
            return [int(bool(value))]
        low, high = _RANGES[point.type]
        raw = min(max(round(value * point.scale), low), high)
        if point.type == "int16":
            return [raw & 0xFFFF]
        if point.type == "uint32":
            words = [raw >> 16, raw & 0xFFFF]
            return words if self.profile.word_order == "big" else words[::-1]
        return [raw]

"""Modbus TCP client for fire alarm panels: typed reads through the maker's register map, raw frames kept.

A panel often serves one client at a time and closes any connection beyond that at once. This client
therefore holds a connection only for one operation, under the per-host gate, and reconnects once
when the panel drops it (see transport). Every request leaves one Exchange with the request and
reply frames in hex.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation, Unsupported
from collectors.exchange import now
from collectors.modbus.cells import Block, Cells, Instance, Refused, decode, local_time, panel_reading, plan
from collectors.modbus.profile import (
    BIT_TABLES,
    CLOCK_VALUES,
    PANEL_VALUES,
    ZONE_VALUES,
    CommandLocation,
    CommandName,
    PanelProfile,
)
from collectors.modbus.readings import PanelReading, Read
from collectors.modbus.transport import READ_FC, ModbusTransport

# Refusals that mean "this panel has no such value" when a whole reading is taken.
_ABSENT = frozenset({"ILLEGAL_FUNCTION", "ILLEGAL_DATA_ADDRESS"})


class ModbusClient:
    """`async with ModbusClient(conn) as c:` one panel (or any Modbus TCP device) at conn.host:conn.port."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._transport = ModbusTransport(conn)
        self._serial = asyncio.Lock()  # one operation of this client at a time

    async def __aenter__(self) -> ModbusClient:
        if self.conn.tls is not None:
            raise Unsupported(
                f"{self.conn.device}: Modbus/TCP Security (TLS) is not implemented, only plain TCP"
            )
        return self

    async def __aexit__(self, *_: object) -> None:
        self._transport.disconnect()

    # -- raw reads and writes ---------------------------------------------------------------------
    async def read_input_registers(self, unit_id: int, address: int, count: int) -> Read[int]:
        async with self._session():
            return await self._transport.read_registers("input_register", unit_id, address, count)

    async def read_holding_registers(self, unit_id: int, address: int, count: int) -> Read[int]:
        async with self._session():
            return await self._transport.read_registers("holding_register", unit_id, address, count)

    async def read_discrete_inputs(self, unit_id: int, address: int, count: int) -> Read[bool]:
        async with self._session():
            return await self._transport.read_bits("discrete_input", unit_id, address, count)

    async def read_coils(self, unit_id: int, address: int, count: int) -> Read[bool]:
        async with self._session():
            return await self._transport.read_bits("coil", unit_id, address, count)

    async def write_register(self, unit_id: int, address: int, value: int) -> str:
        async with self._session():
            return await self._transport.write_register(unit_id, address, value)

    async def write_coil(self, unit_id: int, address: int, value: bool) -> str:
        async with self._session():
            return await self._transport.write_coil(unit_id, address, value)

    # -- a fire panel through its profile -------------------------------------------------------------
    async def read_panel(self, profile: PanelProfile, unit_id: int, zones: Iterable[int]) -> PanelReading:
        """Every value the profile maps, panel-wide and for `zones`. A block the panel refuses with
        ILLEGAL FUNCTION / ILLEGAL DATA ADDRESS leaves its values None and named in `absent`."""
        wanted = _zones(profile, zones)
        instances: list[Instance] = [(n, PANEL_VALUES[n], w, None) for n, w in profile.values.items()]
        for zone in wanted:
            instances += [(n, ZONE_VALUES[n], w, zone) for n, w in profile.zone_values.items()]
        async with self._session() as ids:
            cells, refused = await self._read_cells(profile, unit_id, instances, absent_ok=True)
            read_at = now()
        return panel_reading(profile, unit_id, wanted, cells, refused, read_at, tuple(ids))

    async def device_time(self, profile: PanelProfile, unit_id: int) -> tuple[datetime, str]:
        """The panel's clock in UTC (the profile says in which offset the panel keeps it)."""
        if not all(name in profile.values for name in CLOCK_VALUES):
            raise Unsupported(f"{profile.name}: the register map has no clock")
        instances: list[Instance] = [(n, "count", profile.values[n], None) for n in CLOCK_VALUES]
        async with self._session() as ids:
            cells, _ = await self._read_cells(profile, unit_id, instances, absent_ok=False)
            exchange_id = ids[-1]
        raw = tuple(int(decode(profile, "count", w, None, cells) or 0) for _, _, w, _ in instances)
        when = local_time(profile, raw)
        if when is None:
            raise ProtocolViolation(
                f"{self.conn.device}: clock registers {raw} are not a date", exchange_id=exchange_id
            )
        return when, exchange_id

    async def set_test_mode(self, profile: PanelProfile, unit_id: int, on: bool) -> tuple[str, ...]:
        """Enter (on) or leave walk-test mode. Returns the exchanges of the operation."""
        cell = _command(profile, "test_mode")
        async with self._session() as ids:
            await self._command(unit_id, cell, int(on))
            return tuple(ids)

    async def simulate_zone_alarm(self, profile: PanelProfile, unit_id: int, zone: int) -> tuple[str, ...]:
        """Raise a simulated alarm in a zone; panels allow it in test mode only, so that is read first
        (makers answer a refusal with different exception codes, the mode flag is unambiguous)."""
        cell = _command(profile, "simulate_zone_alarm")
        [zone] = _zones(profile, [zone])
        async with self._session() as ids:
            where = profile.values.get("test_mode")
            if where is not None:
                cells, _ = await self._read_cells(
                    profile, unit_id, [("test_mode", "flag", where, None)], absent_ok=False
                )
                if not decode(profile, "flag", where, None, cells):
                    raise DeviceRejected(
                        f"{self.conn.device}: not in test mode; a simulated alarm needs test mode",
                        code="NOT_IN_TEST_MODE",
                        exchange_id=ids[-1],
                    )
            await self._command(unit_id, cell, 1 if cell.per_zone else zone, zone)
            return tuple(ids)

    async def reset(self, profile: PanelProfile, unit_id: int) -> tuple[str, ...]:
        """Clear latched alarms (what the monitoring centre does after a test)."""
        cell = _command(profile, "reset")
        async with self._session() as ids:
            await self._command(unit_id, cell, 1)
            return tuple(ids)

    # -- operations ---------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[list[str]]:
        """One operation: under the host's gate, with a connection that ends with it (so that a
        one-client panel is free for the next operation, ours or another's)."""
        gate: contextlib.AbstractAsyncContextManager[Any] = self.conn.gate or contextlib.nullcontext()
        async with self._serial, gate:
            self._transport.ids = []
            try:
                yield self._transport.ids
            finally:
                self._transport.disconnect()

    async def _read_cells(
        self, profile: PanelProfile, unit_id: int, instances: list[Instance], *, absent_ok: bool
    ) -> tuple[Cells, Refused]:
        cells: Cells = {t: {} for t in READ_FC}
        refused: Refused = {t: {} for t in READ_FC}
        for block in plan(profile, instances):
            try:
                values = await self._read_block(unit_id, block)
            except DeviceRejected as exc:
                if not absent_ok or exc.code not in _ABSENT:
                    raise
                for address in range(block.address, block.address + block.count):
                    refused[block.table][address] = exc.exchange_id or ""
                continue
            for offset, value in enumerate(values):
                cells[block.table][block.address + offset] = value
        return cells, refused

    async def _read_block(self, unit_id: int, block: Block) -> tuple[int, ...]:
        """A block's cells as numbers (bits as 0/1)."""
        if block.table in BIT_TABLES:
            bits = await self._transport.read_bits(block.table, unit_id, block.address, block.count)
            return tuple(int(b) for b in bits.values)
        return (await self._transport.read_registers(block.table, unit_id, block.address, block.count)).values

    async def _command(
        self, unit_id: int, cell: CommandLocation, value: int, zone: int | None = None
    ) -> None:
        if cell.table == "coil":
            await self._transport.write_coil(unit_id, cell.at(zone), bool(value))
        else:
            await self._transport.write_register(unit_id, cell.at(zone), value)


def _zones(profile: PanelProfile, zones: Iterable[int]) -> list[int]:
    wanted = sorted(set(zones))
    outside = [z for z in wanted if not 1 <= z <= profile.max_zones]
    if outside:
        raise ValueError(f"{profile.name} has zones 1..{profile.max_zones}, not {outside}")
    return wanted


def _command(profile: PanelProfile, name: CommandName) -> CommandLocation:
    cell = profile.commands.get(name)
    if cell is None:
        raise Unsupported(f"{profile.name}: the register map has no {name} command")
    return cell

"""Modbus TCP client for fire alarm panels: typed reads through the maker's register map, raw frames kept.

A panel often serves one client at a time and closes any connection beyond that at once. This client
therefore holds a connection only for one operation, under the per-host gate, and reconnects once
when the panel drops it. Modbus exception responses become DeviceRejected named after the
exception: no caller ever inspects a response object. Every request leaves one Exchange with the
request and reply frames in hex, captured by pymodbus' trace hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation, Unreachable, Unsupported
from collectors.exchange import Exchange, excerpt, library_version, now, redact
from collectors.modbus_profile import (
    BIT_TABLES,
    CLOCK_VALUES,
    PANEL_VALUES,
    ZONE_VALUES,
    CommandLocation,
    CommandName,
    Kind,
    Location,
    PanelProfile,
    Table,
)

T = TypeVar("T")

EXCEPTION_NAMES = {
    0x01: "ILLEGAL_FUNCTION",
    0x02: "ILLEGAL_DATA_ADDRESS",
    0x03: "ILLEGAL_DATA_VALUE",
    0x04: "SERVER_DEVICE_FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER_DEVICE_BUSY",
    0x07: "NEGATIVE_ACKNOWLEDGE",
    0x08: "MEMORY_PARITY_ERROR",
    0x0A: "GATEWAY_PATH_UNAVAILABLE",
    0x0B: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}
# Refusals that mean "this panel has no such value" when a whole reading is taken.
_ABSENT = frozenset({"ILLEGAL_FUNCTION", "ILLEGAL_DATA_ADDRESS"})
_MAX_COUNT: dict[Table, int] = {
    "coil": 2000,
    "discrete_input": 2000,
    "input_register": 125,
    "holding_register": 125,
}
_READ_FC: dict[Table, int] = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}
# Long enough for a panel whose one client slot was busy to free it (one short poll of another client).
RECONNECT_PAUSE_S = 0.2


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


class _Dropped(Exception):
    """The panel closed the connection before it answered (a busy client slot, or a restart)."""

    def __init__(self, exchange_id: str = "") -> None:
        super().__init__(exchange_id)
        self.exchange_id = exchange_id


class _Malformed(Exception):
    """A well-framed reply whose content does not fit the request."""


@dataclass(frozen=True)
class _Block:
    table: Table
    address: int
    count: int


_Cells = dict[Table, dict[int, int]]
_Refused = dict[Table, dict[int, str]]
_Instance = tuple[str, Kind, Location, int | None]  # name, kind, where, zone


class ModbusClient:
    """`async with ModbusClient(conn) as c:` one panel (or any Modbus TCP device) at conn.host:conn.port."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._client: AsyncModbusTcpClient | None = None
        self._serial = asyncio.Lock()  # one operation of this client at a time
        self._library = library_version("pymodbus")
        self._ids: list[str] = []
        self._tx = b""
        self._rx = b""
        self._waiting = False

    async def __aenter__(self) -> ModbusClient:
        if self.conn.tls is not None:
            raise Unsupported(
                f"{self.conn.device}: Modbus/TCP Security (TLS) is not implemented, only plain TCP"
            )
        return self

    async def __aexit__(self, *_: object) -> None:
        self._disconnect()

    # -- raw reads and writes ---------------------------------------------------------------------
    async def read_input_registers(self, unit_id: int, address: int, count: int) -> Read[int]:
        async with self._session():
            return await self._read_registers("input_register", unit_id, address, count)

    async def read_holding_registers(self, unit_id: int, address: int, count: int) -> Read[int]:
        async with self._session():
            return await self._read_registers("holding_register", unit_id, address, count)

    async def read_discrete_inputs(self, unit_id: int, address: int, count: int) -> Read[bool]:
        async with self._session():
            return await self._read_bits("discrete_input", unit_id, address, count)

    async def read_coils(self, unit_id: int, address: int, count: int) -> Read[bool]:
        async with self._session():
            return await self._read_bits("coil", unit_id, address, count)

    async def write_register(self, unit_id: int, address: int, value: int) -> str:
        async with self._session():
            return await self._write_register(unit_id, address, value)

    async def write_coil(self, unit_id: int, address: int, value: bool) -> str:
        async with self._session():
            return await self._write_coil(unit_id, address, value)

    # -- a fire panel through its profile -------------------------------------------------------------
    async def read_panel(self, profile: PanelProfile, unit_id: int, zones: Iterable[int]) -> PanelReading:
        """Every value the profile maps, panel-wide and for `zones`. A block the panel refuses with
        ILLEGAL FUNCTION / ILLEGAL DATA ADDRESS leaves its values None and named in `absent`."""
        wanted = _zones(profile, zones)
        instances: list[_Instance] = [(n, PANEL_VALUES[n], w, None) for n, w in profile.values.items()]
        for zone in wanted:
            instances += [(n, ZONE_VALUES[n], w, zone) for n, w in profile.zone_values.items()]
        async with self._session() as ids:
            cells, refused = await self._read_cells(profile, unit_id, instances, absent_ok=True)
            read_at = now()
        return _panel_reading(profile, unit_id, wanted, cells, refused, read_at, tuple(ids))

    async def device_time(self, profile: PanelProfile, unit_id: int) -> tuple[datetime, str]:
        """The panel's clock in UTC (the profile says in which offset the panel keeps it)."""
        if not all(name in profile.values for name in CLOCK_VALUES):
            raise Unsupported(f"{profile.name}: the register map has no clock")
        instances: list[_Instance] = [(n, "count", profile.values[n], None) for n in CLOCK_VALUES]
        async with self._session() as ids:
            cells, _ = await self._read_cells(profile, unit_id, instances, absent_ok=False)
            exchange_id = ids[-1]
        raw = tuple(int(_decode(profile, "count", w, None, cells) or 0) for _, _, w, _ in instances)
        when = _local_time(profile, raw)
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
                if not _decode(profile, "flag", where, None, cells):
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
            self._ids = []
            try:
                yield self._ids
            finally:
                self._disconnect()

    async def _read_cells(
        self, profile: PanelProfile, unit_id: int, instances: list[_Instance], *, absent_ok: bool
    ) -> tuple[_Cells, _Refused]:
        cells: _Cells = {t: {} for t in _READ_FC}
        refused: _Refused = {t: {} for t in _READ_FC}
        for block in _plan(profile, instances):
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

    async def _read_block(self, unit_id: int, block: _Block) -> tuple[int, ...]:
        """A block's cells as numbers (bits as 0/1)."""
        if block.table in BIT_TABLES:
            bits = await self._read_bits(block.table, unit_id, block.address, block.count)
            return tuple(int(b) for b in bits.values)
        return (await self._read_registers(block.table, unit_id, block.address, block.count)).values

    async def _command(
        self, unit_id: int, cell: CommandLocation, value: int, zone: int | None = None
    ) -> None:
        if cell.table == "coil":
            await self._write_coil(unit_id, cell.at(zone), bool(value))
        else:
            await self._write_register(unit_id, cell.at(zone), value)

    # -- requests -----------------------------------------------------------------------------------
    async def _read_registers(self, table: Table, unit_id: int, address: int, count: int) -> Read[int]:
        fc = _READ_FC[table]

        def send(c: AsyncModbusTcpClient) -> Awaitable[ModbusPDU]:
            if fc == 4:
                return c.read_input_registers(address, count=count, device_id=unit_id)
            return c.read_holding_registers(address, count=count, device_id=unit_id)

        def decode(pdu: ModbusPDU) -> tuple[int, ...]:
            if len(pdu.registers) != count:
                raise _Malformed(f"{len(pdu.registers)} registers in reply to a read of {count}")
            return tuple(int(r) for r in pdu.registers)

        operation = f"{_OPERATION[fc]}({address}, {count}, unit={unit_id})"
        values, exchange_id = await self._call(
            operation, fc, unit_id, {"address": address, "count": count}, send, decode
        )
        return Read(values, exchange_id)

    async def _read_bits(self, table: Table, unit_id: int, address: int, count: int) -> Read[bool]:
        fc = _READ_FC[table]

        def send(c: AsyncModbusTcpClient) -> Awaitable[ModbusPDU]:
            if fc == 2:
                return c.read_discrete_inputs(address, count=count, device_id=unit_id)
            return c.read_coils(address, count=count, device_id=unit_id)

        def decode(pdu: ModbusPDU) -> tuple[bool, ...]:
            if len(pdu.bits) < count:  # bits come in whole bytes: 8 or more for a read of `count`
                raise _Malformed(f"{len(pdu.bits)} bits in reply to a read of {count}")
            return tuple(bool(b) for b in pdu.bits[:count])

        operation = f"{_OPERATION[fc]}({address}, {count}, unit={unit_id})"
        values, exchange_id = await self._call(
            operation, fc, unit_id, {"address": address, "count": count}, send, decode
        )
        return Read(values, exchange_id)

    async def _write_register(self, unit_id: int, address: int, value: int) -> str:
        def send(c: AsyncModbusTcpClient) -> Awaitable[ModbusPDU]:
            return c.write_register(address, value, device_id=unit_id)

        def decode(pdu: ModbusPDU) -> tuple[int, ...]:
            if pdu.address != address or list(pdu.registers) != [value]:  # FC06 echoes the request
                raise _Malformed(f"reply echoes {pdu.address}={pdu.registers}, not {address}={value}")
            return (value,)

        operation = f"write_register({address}, {value}, unit={unit_id})"
        _, exchange_id = await self._call(
            operation, 6, unit_id, {"address": address, "value": value}, send, decode
        )
        return exchange_id

    async def _write_coil(self, unit_id: int, address: int, value: bool) -> str:
        def send(c: AsyncModbusTcpClient) -> Awaitable[ModbusPDU]:
            return c.write_coil(address, value, device_id=unit_id)

        def decode(pdu: ModbusPDU) -> tuple[bool, ...]:
            if pdu.address != address or bool(pdu.bits[0]) != value:  # FC05 echoes the request
                raise _Malformed(f"reply echoes {pdu.address}={pdu.bits[:1]}, not {address}={value}")
            return (value,)

        operation = f"write_coil({address}, {'ON' if value else 'OFF'}, unit={unit_id})"
        _, exchange_id = await self._call(
            operation, 5, unit_id, {"address": address, "value": value}, send, decode
        )
        return exchange_id

    async def _call(
        self,
        operation: str,
        fc: int,
        unit_id: int,
        facts: dict[str, Any],
        send: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
        decode: Callable[[ModbusPDU], tuple[T, ...]],
    ) -> tuple[tuple[T, ...], str]:
        """One request; if the panel drops the connection before answering, reconnect once and resend
        (panel reads and commands are idempotent: a latched alarm or a reset does not double)."""
        facts = {"unit_id": unit_id, "function_code": fc, **facts}
        client = await self._connect()
        try:
            return await self._request(client, operation, fc, facts, send, decode)
        except _Dropped:
            self._disconnect()
        await asyncio.sleep(RECONNECT_PAUSE_S)
        client = await self._connect()
        try:
            return await self._request(client, operation, fc, facts, send, decode)
        except _Dropped as again:
            self._disconnect()
            raise Unreachable(
                f"{self.conn.device}: closed the connection twice before answering {operation} "
                "(its client slots may all be taken)",
                exchange_id=again.exchange_id,
            ) from None

    async def _request(
        self,
        client: AsyncModbusTcpClient,
        operation: str,
        fc: int,
        facts: dict[str, Any],
        send: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
        decode: Callable[[ModbusPDU], tuple[T, ...]],
    ) -> tuple[tuple[T, ...], str]:
        self._tx = self._rx = b""
        started, t0 = now(), time.monotonic()

        def record(ok: bool, error: str | None = None, **more: Any) -> str:
            return self._record(operation, started, t0, ok=ok, error=error, facts={**facts, **more})

        self._waiting = True
        try:
            async with asyncio.timeout(self.conn.timeout_s):
                response = await send(client)
        except TimeoutError:
            self._disconnect()  # a late reply must not be taken for the next request's
            if not _reply_so_far(self._tx, self._rx):
                raise self._garbage(record, "no Modbus reply in time") from None
            error = f"no complete reply within {self.conn.timeout_s:g} s ({len(self._rx)} bytes came)"
            exchange_id = record(False, error, bytes_received=len(self._rx))
            raise Unreachable(
                f"{self.conn.device}: {error}", timed_out=True, exchange_id=exchange_id
            ) from None
        except (_Dropped, ConnectionException):
            if not _reply_so_far(self._tx, self._rx):
                raise self._garbage(record, "then closed the connection") from None
            error = f"connection closed by the device before it answered ({len(self._rx)} bytes came)"
            raise _Dropped(record(False, error)) from None
        except ModbusException as exc:  # a frame pymodbus could not match or decode
            self._disconnect()
            raise self._garbage(record, str(exc)) from None
        finally:
            self._waiting = False
        if response.function_code & 0x7F != fc:
            raise self._garbage(record, f"reply has function code {response.function_code}, not {fc}")
        if response.isError():
            code = int(response.exception_code)
            name = EXCEPTION_NAMES.get(code, f"EXCEPTION_{code:#04x}")
            error = f"exception {code:#04x} {name}"
            exchange_id = record(False, error, exception_code=code)
            raise DeviceRejected(
                f"{self.conn.device}: {operation}: {error}", code=name, exchange_id=exchange_id
            )
        try:
            values = decode(response)
        except _Malformed as exc:
            raise self._garbage(record, str(exc)) from None
        return values, record(True, values=list(values))

    def _garbage(self, record: Callable[..., str], what: str) -> ProtocolViolation:
        error = f"not a valid Modbus reply ({len(self._rx)} bytes): {what}"
        return ProtocolViolation(f"{self.conn.device}: {error}", exchange_id=record(False, error))

    # -- the connection -----------------------------------------------------------------------------
    async def _connect(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._disconnect()
        client = AsyncModbusTcpClient(
            self.conn.host,
            port=self.conn.port,
            name=self.conn.device,
            timeout=self.conn.timeout_s * 2,  # ours (asyncio.timeout) is the one that fires
            retries=0,
            reconnect_delay=0,  # no background reconnects: we decide when to reconnect
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        started, t0 = now(), time.monotonic()
        try:
            async with asyncio.timeout(self.conn.timeout_s):
                connected = await client.connect()
        except TimeoutError:
            client.close()
            error = f"no connection within {self.conn.timeout_s:g} s"
            exchange_id = self._record("connect", started, t0, ok=False, error=error)
            raise Unreachable(
                f"{self.conn.device}: {error}", timed_out=True, exchange_id=exchange_id
            ) from None
        if not connected:
            client.close()
            error = "connection refused or no route"
            exchange_id = self._record("connect", started, t0, ok=False, error=error)
            raise Unreachable(f"{self.conn.device}: {error}", exchange_id=exchange_id)
        self._record("connect", started, t0, ok=True)
        self._client = client
        return client

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """pymodbus' hook: every frame out, and the receive buffer each time bytes arrive."""
        if sending:
            self._tx = data
        else:
            self._rx = data
        return data

    def _trace_connect(self, up: bool) -> None:
        """pymodbus' hook: a dropped connection fails the waiting request at once, not at its timeout."""
        if up or not self._waiting or self._client is None:
            return
        pending = self._client.ctx.response_future
        if not pending.done():
            pending.set_exception(_Dropped())

    def _record(
        self,
        operation: str,
        started: datetime,
        t0: float,
        *,
        ok: bool,
        error: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> str:
        secrets = self.conn.secrets()
        exchange = Exchange(
            device=self.conn.device,
            address=self.conn.address,
            protocol="modbus",
            operation=operation,
            started_at=started,
            duration_s=time.monotonic() - t0,
            request=excerpt(redact(self._tx.hex(" ") if operation != "connect" else "", secrets)),
            response=excerpt(redact(self._rx.hex(" ") if operation != "connect" else "", secrets)),
            ok=ok,
            error=error,
            library=self._library,
            facts=facts or {},
        )
        self.conn.sink(exchange)
        self._ids.append(exchange.id)
        return exchange.id


_OPERATION = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
}


def _reply_so_far(request: bytes, received: bytes) -> bool:
    """Whether the bytes received can begin the reply to `request` (a slow panel, not garbage):
    MBAP header with the request's transaction id, protocol 0, a sane length, the same unit."""
    head = received[:7]
    if head[:4] != (request[0:2] + b"\x00\x00")[: len(head[:4])]:
        return False
    if len(head) >= 6 and not 2 <= int.from_bytes(head[4:6], "big") <= 254:
        return False
    return len(head) < 7 or head[6] == request[6]


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


def _plan(profile: PanelProfile, instances: list[_Instance]) -> list[_Block]:
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
    blocks: list[_Block] = []
    for table, addresses in needed.items():
        start = last = -1
        for address in sorted(addresses):
            bridge = range(last + 1, address)
            if start >= 0 and address - start < _MAX_COUNT[table] and all(a in known[table] for a in bridge):
                last = address
                continue
            if start >= 0:
                blocks.append(_Block(table, start, last - start + 1))
            start = last = address
        blocks.append(_Block(table, start, last - start + 1))
    return blocks


def _decode(
    profile: PanelProfile, kind: Kind, where: Location, zone: int | None, cells: _Cells
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


def _refusal(where: Location, zone: int | None, refused: _Refused) -> str | None:
    first = where.at(zone)
    return next(
        (refused[where.table][a] for a in range(first, first + where.width) if a in refused[where.table]),
        None,
    )


def _local_time(profile: PanelProfile, raw: tuple[int, ...]) -> datetime | None:
    offset = timezone(timedelta(minutes=profile.clock_utc_offset_min))
    try:
        year, month, day, hour, minute, second = raw
        local = datetime(year, month, day, hour, minute, second, tzinfo=offset)
    except ValueError:
        return None
    return local.astimezone(UTC)


def _panel_reading(
    profile: PanelProfile,
    unit_id: int,
    zones: list[int],
    cells: _Cells,
    refused: _Refused,
    read_at: datetime,
    exchanges: tuple[str, ...],
) -> PanelReading:
    values: dict[str, Any] = {}
    absent: dict[str, str] = {}
    resolution: dict[str, float] = {}
    for name, where in profile.values.items():
        values[name] = _typed(PANEL_VALUES[name], _decode(profile, PANEL_VALUES[name], where, None, cells))
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
            zone_values[name] = _typed(kind, _decode(profile, kind, where, zone, cells))
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
        device_time=_local_time(profile, clock_raw) if clock_raw else None,
        zones=by_zone,
        absent=absent,
        resolution=resolution,
        **values,
    )

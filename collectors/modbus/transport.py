"""Modbus TCP requests to one device, each kept as an Exchange with its frames in hex.

The frames are captured by pymodbus' trace hook. Modbus exception responses become DeviceRejected
named after the exception: no caller ever inspects a response object. A panel that drops the
connection before answering is reconnected once and asked again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation, Unreachable
from collectors.exchange import library_version, now
from collectors.modbus.profile import Table
from collectors.modbus.readings import Read

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
READ_FC: dict[Table, int] = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}
# Long enough for a panel whose one client slot was busy to free it (one short poll of another client).
RECONNECT_PAUSE_S = 0.2
_OPERATION = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
}


class _Dropped(Exception):
    """The panel closed the connection before it answered (a busy client slot, or a restart)."""

    def __init__(self, exchange_id: str = "") -> None:
        super().__init__(exchange_id)
        self.exchange_id = exchange_id


class _Malformed(Exception):
    """A well-framed reply whose content does not fit the request."""


class ModbusTransport:
    """Requests on a connection that lasts until `disconnect`; `ids` collects the exchanges recorded."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ids: list[str] = []
        self._client: AsyncModbusTcpClient | None = None
        self._library = library_version("pymodbus")
        self._tx = b""
        self._rx = b""
        self._waiting = False

    async def read_registers(self, table: Table, unit_id: int, address: int, count: int) -> Read[int]:
        fc = READ_FC[table]

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

    async def read_bits(self, table: Table, unit_id: int, address: int, count: int) -> Read[bool]:
        fc = READ_FC[table]

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

    async def write_register(self, unit_id: int, address: int, value: int) -> str:
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

    async def write_coil(self, unit_id: int, address: int, value: bool) -> str:
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
            self.disconnect()
        await asyncio.sleep(RECONNECT_PAUSE_S)
        client = await self._connect()
        try:
            return await self._request(client, operation, fc, facts, send, decode)
        except _Dropped as again:
            self.disconnect()
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
            self.disconnect()  # a late reply must not be taken for the next request's
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
            self.disconnect()
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
        self.disconnect()
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

    def disconnect(self) -> None:
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
        wire = operation != "connect"
        exchange_id = self.conn.record(
            "modbus",
            operation,
            started,
            t0,
            self._tx.hex(" ") if wire else "",
            self._rx.hex(" ") if wire else "",
            ok=ok,
            error=error,
            library=self._library,
            facts=facts,
        )
        self.ids.append(exchange_id)
        return exchange_id


def _reply_so_far(request: bytes, received: bytes) -> bool:
    """Whether the bytes received can begin the reply to `request` (a slow panel, not garbage):
    MBAP header with the request's transaction id, protocol 0, a sane length, the same unit."""
    head = received[:7]
    if head[:4] != (request[0:2] + b"\x00\x00")[: len(head[:4])]:
        return False
    if len(head) >= 6 and not 2 <= int.from_bytes(head[4:6], "big") <= 254:
        return False
    return len(head) < 7 or head[6] == request[6]

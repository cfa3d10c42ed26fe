"""A fire alarm control panel that a building management system polls over Modbus TCP.

Served by pymodbus' own TCP server (SimDevice datastore, one server per panel address). The panel
logic is in state.py and the vendor's register layout in a profile; this module wires both to the
wire (latency, one-client limit, the offline / hung / slow faults) and to the site bus, where the
platform's linkage switches lighting and broadcast and where detectors "go off".

Modbus TCP has no authentication and no encryption: anyone who reaches port 502/5020 can read the
panel and write its command registers. The panel therefore ignores the site's TLS setting and the
weak_credentials / no_lockout faults; that openness is itself what an inspector should report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any, Final, cast

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from simulator.bus import EventType, SiteEvent
from simulator.faults import HeartbeatMissing, LinkageSlow, Slow
from simulator.modbus.image import IllegalAddress, RegisterImage
from simulator.modbus.profile import BIT_TABLES, Profile, Table, load_profile
from simulator.modbus.state import Hazard, NotInTestMode, PanelState, Refused, Zone
from simulator.model import PanelParams
from simulator.runtime import DeviceContext

# A supervisory condition (low tank, low pressure, charger overload) changed: not fire, not a fault.
# Not yet one of bus.EventType; the cast goes once the literal is added there.
HAZARD_EVENT: Final[EventType] = "hazard"

_TABLE_OF_FC: dict[int, Table] = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete_input",
    4: "input_register",
    3: "holding_register",
    6: "holding_register",
    16: "holding_register",
    22: "holding_register",
    23: "holding_register",
}
_WRITE_FCS = frozenset({5, 6, 15, 16})  # their read-back call answers the values just written
_REFUSALS = {"illegal_data_value": ExcCodes.ILLEGAL_VALUE, "device_failure": ExcCodes.DEVICE_FAILURE}


class FirePanel:
    """One panel: kind panel, protocol modbus. `profile` overrides the spec's (tests only)."""

    def __init__(self, ctx: DeviceContext, profile: Profile | None = None) -> None:
        self.ctx = ctx
        params = ctx.spec.panel or PanelParams()
        self.profile = profile or load_profile(params.profile)
        self.image = RegisterImage(self.profile)
        self.unit_id = params.unit_id
        too_high = [z.id for z in params.zones if z.id > self.profile.max_zones]
        if too_high:
            raise ValueError(
                f"{ctx.spec.id}: zones {too_high} beyond the {self.profile.max_zones} of {self.profile.name}"
            )
        zones = [
            Zone(z.id, z.area, charger=ctx.community.area(z.area).kind == "charging_area")
            for z in params.zones
        ]
        self._started = time.monotonic()
        frozen = ctx.spec.fault(HeartbeatMissing) is not None
        frozen_clock = ctx.now()
        tz = timezone(timedelta(minutes=self.profile.clock_utc_offset_min))
        self.state = PanelState(
            zones,
            water_level_cm=params.water_tank_level_cm,
            water_low_cm=params.water_tank_low_cm,
            pressure_kpa=params.pipe_pressure_kpa,
            pressure_low_kpa=params.pipe_pressure_low_kpa,
            charger_overload_pct=self.profile.charger_overload_pct,
            # heartbeat_missing: the panel's 1 Hz tick stopped; counter and clock stand still
            clock=(lambda: frozen_clock.astimezone(tz)) if frozen else (lambda: ctx.now().astimezone(tz)),
            uptime=(lambda: 0) if frozen else (lambda: int(time.monotonic() - self._started)),
        )
        self._server: _PanelServer | None = None
        self._port = ctx.port
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (differs from ctx.port when that is 0)."""
        return self._port

    async def start(self) -> None:
        self._started = time.monotonic()
        self.ctx.bus.register(self.ctx.spec.id, self._command)
        if not self.ctx.offline:
            await self._listen()

    async def stop(self) -> None:
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._close()

    async def unplug(self) -> None:
        """Cable pulled: the port stops listening and open connections drop."""
        await self._close()

    async def replug(self) -> None:
        if not self.ctx.offline and self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        server = _PanelServer(self, self._datastore(), (self.ctx.host, self._port))
        await server.serve_forever(background=True)
        self._port = server.bound_port()
        self._server = server

    async def _close(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    def _datastore(self) -> SimDevice:
        """Declare every table's addresses; values come from `_access` on each request."""

        def block(table: Table) -> list[SimData]:
            runs = self.image.runs(table) or [(0, 1)]  # an unused table: refused in _access
            if table in BIT_TABLES:
                return [SimData(start, values=[False] * n, datatype=DataType.BITS) for start, n in runs]
            return [SimData(start, values=[0] * n, datatype=DataType.REGISTERS) for start, n in runs]

        return SimDevice(
            id=self.unit_id,
            simdata=(
                block("coil"),
                block("discrete_input"),
                block("holding_register"),
                block("input_register"),
            ),
            action=self._access,
        )

    async def _access(
        self,
        func_code: int,
        start: int,
        address: int,
        _count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus' hook before it answers: fill the block from the state, or carry out a write."""
        table = _TABLE_OF_FC[func_code]
        if not self.image.used(table):
            return ExcCodes.ILLEGAL_FUNCTION  # this model implements no such table
        if values is None:
            if func_code not in _WRITE_FCS:
                self.image.fill(table, self.state, start, registers)
            return None
        try:
            writes = self.image.writes(table, address, [int(v) for v in values])
            alarmed, cleared = self.state.execute(writes)
        except IllegalAddress:
            return ExcCodes.ILLEGAL_ADDRESS
        except NotInTestMode:
            return _REFUSALS[self.profile.refuse_outside_test_mode]
        except Refused:
            return ExcCodes.ILLEGAL_VALUE
        for zone in alarmed:
            self._fire_alarm(zone)
        if cleared:
            self._fire_reset(cleared)
        return None

    # -- the site bus ---------------------------------------------------------------------------------
    async def _command(self, action: str, params: dict[str, Any]) -> None:
        """Actions: smoke, reset, silence, isolate, fault, water_level, pipe_pressure, charger_load,
        lighting, broadcast (see docs/modbus-register-map.md)."""
        state = self.state
        if action == "smoke":
            zone = int(params["zone"])
            if state.raise_alarm(zone):
                self._fire_alarm(zone)
        elif action == "reset":
            if cleared := state.reset():
                self._fire_reset(cleared)
        elif action == "silence":
            state.silence()
        elif action == "isolate":
            state.set_isolated(int(params["zone"]), bool(params.get("isolated", True)))
        elif action == "fault":
            where = params.get("zone")
            state.set_fault(str(params["kind"]), bool(params.get("active", True)), where and int(where))
        elif action == "water_level":
            self._hazard(state.set_water_level(int(params["cm"])))
        elif action == "pipe_pressure":
            self._hazard(state.set_pressure(int(params["kpa"])))
        elif action == "charger_load":
            self._hazard(state.set_charger_load(int(params["zone"]), int(params["pct"])))
        elif action == "lighting":
            on, area = bool(params["on"]), params.get("area")
            self._linked(lambda: self._lighting(on, area))
        elif action == "broadcast":
            on, area = bool(params["on"]), params.get("area")
            self._linked(lambda: self._broadcast(on, area))
        else:
            raise ValueError(f"panel {self.ctx.spec.id} has no action {action!r}")

    def _linked(self, apply: Callable[[], None]) -> None:
        """A linkage output: at once, or delay_s later under the linkage_slow fault."""
        slow = self.ctx.spec.fault(LinkageSlow)
        if slow is None:
            apply()
            return

        async def later() -> None:
            await asyncio.sleep(slow.delay_s)
            apply()

        task = asyncio.create_task(later())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _lighting(self, on: bool, area: str | None) -> None:
        lit = self.state.set_lighting(on)
        self._publish("lighting", area, {"on": lit, "requested": on})

    def _broadcast(self, on: bool, area: str | None) -> None:
        zones = self.state.set_broadcast(on, area)
        self._publish("broadcast", area, {"on": on, "zones": zones})

    def _fire_alarm(self, zone_id: int) -> None:
        zone = self.state.zones[zone_id]
        self._publish("fire_alarm", zone.area, {"zone": zone_id, "area": zone.area, "test_mode": zone.test})

    def _fire_reset(self, zones: list[int]) -> None:
        self._publish("fire_reset", None, {"zones": zones})

    def _hazard(self, hazard: Hazard | None) -> None:
        if hazard is None:
            return
        area = self.state.zones[hazard.zone].area if hazard.zone is not None else None
        data: dict[str, Any] = {"kind": hazard.kind, "active": hazard.active, "value": hazard.value}
        data |= {"threshold": hazard.threshold, "zone": hazard.zone}
        self._publish(HAZARD_EVENT, area, data)

    def _publish(self, kind: EventType, area: str | None, data: dict[str, Any]) -> None:
        self.ctx.bus.publish(SiteEvent(kind, source=self.ctx.spec.id, area=area, data=data))


class _PanelServer(ModbusTcpServer):
    """pymodbus' TCP server with the panel's own connection handler."""

    def __init__(self, panel: FirePanel, device: SimDevice, address: tuple[str, int]) -> None:
        super().__init__(device, address=address)
        self.panel = panel

    def bound_port(self) -> int:
        sockets = cast(asyncio.Server, self.transport).sockets
        return int(sockets[0].getsockname()[1])

    def callback_new_connection(self) -> _PanelConnection:
        return _PanelConnection(self)


class _PanelConnection(ServerRequestHandler):
    """One client connection: the one-client limit, latency, and the hung / slow faults."""

    def __init__(self, server: _PanelServer) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            server, server.trace_packet, server.trace_pdu, server.trace_connect
        )
        self.panel = server.panel
        self._serial = asyncio.Lock()  # one request at a time, as the panel's single Modbus task
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._dripper: asyncio.Task[None] | None = None

    def callback_connected(self) -> None:
        """Over the limit: the TCP stack accepted, the Modbus task has no slot, so it closes."""
        super().callback_connected()
        if (
            self.listener is not None
            and len(self.listener.active_connections) > self.panel.profile.max_connections
        ):
            self.close()

    def callback_disconnected(self, exc: Exception | None) -> None:
        super().callback_disconnected(exc)
        if self._dripper is not None:
            self._dripper.cancel()

    async def handle_request(self) -> None:
        pdu, addr = self.last_pdu, self.last_addr
        if pdu is None or self.panel.ctx.hung:
            return  # hung: the request was read and is never answered
        async with self._serial:
            await self.panel.ctx.latency.wait("modbus")
            if pdu.dev_id != self.panel.unit_id:
                # like a gateway whose target does not answer (pymodbus' choice for unknown ids)
                reply = ExceptionResponse(
                    pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE, pdu.dev_id, pdu.transaction_id
                )
                self.server_send(reply, addr)  # type: ignore[no-untyped-call]
                return
            self.last_pdu, self.last_addr = pdu, addr
            await super().handle_request()  # type: ignore[no-untyped-call]

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        """Under the slow fault the reply trickles out a few bytes at a time."""
        slow = self.panel.ctx.spec.fault(Slow)
        if slow is None:
            super().send(data, addr)
            return
        self._outbox.put_nowait(data)
        if self._dripper is None:
            self._dripper = asyncio.create_task(self._drip(slow.bytes_per_second))

    async def _drip(self, bytes_per_second: int) -> None:
        chunk = max(1, bytes_per_second // 10)
        while True:
            data = await self._outbox.get()
            for i in range(0, len(data), chunk):
                await asyncio.sleep(chunk / bytes_per_second)
                if not self.transport:
                    return
                cast(asyncio.WriteTransport, self.transport).write(data[i : i + chunk])

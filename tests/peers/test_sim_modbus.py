"""Simulated fire panels seen through a plain pymodbus client, as a BMS or an inspector sees them."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from panel_helpers import UNIT, make_ctx
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU

from simulator.bus import SiteEvent
from simulator.modbus import HAZARD_EVENT, FirePanel, Profile, load_profile
from simulator.modbus.image import RegisterImage
from simulator.modbus.profile import Table
from simulator.modbus.state import PanelState, Refused
from simulator.runtime import DeviceContext

DOC = Path(__file__).parents[2] / "docs" / "modbus-register-map.md"
# generic-fire-panel addresses used below (docs/modbus-register-map.md)
IR_STATUS, IR_HEARTBEAT, IR_CLOCK, IR_ZONE = 0, 30, 40, 100
HR_TEST, HR_SIMULATE, HR_RESET = 0, 1, 2
NORMAL, ALARM, FAULT, TEST, SILENCED, SUPPLY, BATTERY, SUPERVISORY, ISOLATION = (1 << i for i in range(9))


@asynccontextmanager
async def running(ctx: DeviceContext, profile: Profile | None = None) -> AsyncIterator[FirePanel]:
    panel = FirePanel(ctx, profile)
    await panel.start()
    try:
        yield panel
    finally:
        await panel.stop()


@asynccontextmanager
async def modbus(panel: FirePanel, reply_timeout: float = 10.0) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(
        panel.ctx.host, port=panel.port, timeout=reply_timeout, retries=0, reconnect_delay=0
    )
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def ir(client: AsyncModbusTcpClient, address: int, count: int = 1) -> list[int]:
    rr = await client.read_input_registers(address, count=count, device_id=UNIT)
    assert not rr.isError(), rr
    return list(rr.registers)


async def write(client: AsyncModbusTcpClient, address: int, value: int) -> ModbusPDU:
    return await client.write_register(address, value, device_id=UNIT)


def events(ctx: DeviceContext, kind: str) -> list[SiteEvent]:
    return [e for e in ctx.bus.history if e.type == kind]


@pytest.fixture
async def panel() -> AsyncIterator[FirePanel]:
    async with running(make_ctx()) as p:
        yield p


@pytest.mark.peers
async def test_every_block_of_the_generic_map_reads(panel: FirePanel) -> None:
    async with modbus(panel) as c:
        assert await ir(c, 0, 4) == [NORMAL, 0, 0, 3]
        assert await ir(c, 10, 7) == [320, 150, 450, 250, 0, 0, 100]
        assert await ir(c, 20, 3) == [0, 0, 0]
        uptime_hi, uptime_lo = await ir(c, IR_HEARTBEAT, 2)
        assert uptime_hi == 0 and uptime_lo < 5
        year, month, day, *_ = await ir(c, IR_CLOCK, 6)
        local = datetime.now(UTC) + timedelta(hours=8)
        assert (year, month) == (local.year, local.month) and abs(day - local.day) <= 1
        zones = await ir(c, IR_ZONE, 32)
        assert zones[1] == 1 << 5  # zone 2 is in the charging area
        assert zones[0] == zones[4] == 0 and set(zones[5:]) == {0}
        assert await ir(c, 200, 32) == [0] * 32
        rr = await c.read_discrete_inputs(0, count=32, device_id=UNIT)
        assert rr.bits[:32] == [False] * 32
        rr = await c.read_holding_registers(0, count=3, device_id=UNIT)
        assert rr.registers == [0, 0, 0]


@pytest.mark.peers
async def test_unknown_addresses_and_tables_answer_modbus_exceptions(panel: FirePanel) -> None:
    async with modbus(panel) as c:
        for rr in (
            await c.read_input_registers(4, count=1, device_id=UNIT),  # a gap in the map
            await c.read_input_registers(0, count=5, device_id=UNIT),  # runs into the gap
            await c.read_input_registers(232, count=1, device_id=UNIT),  # past zone 32
            await c.read_holding_registers(3, count=1, device_id=UNIT),
            await c.read_discrete_inputs(40, count=1, device_id=UNIT),
            await write(c, 3, 1),
        ):
            assert rr.isError() and rr.exception_code == 2, rr  # ILLEGAL DATA ADDRESS
        rr = await c.read_coils(0, count=1, device_id=UNIT)
        assert rr.isError() and rr.exception_code == 1  # ILLEGAL FUNCTION: this model has no coils
        rr = await c.read_input_registers(0, count=1, device_id=UNIT + 1)
        assert rr.isError() and rr.exception_code == 0x0B  # no such unit behind this address


@pytest.mark.peers
async def test_simulate_register_is_gated_by_test_mode(panel: FirePanel) -> None:
    ctx = panel.ctx
    async with modbus(panel) as c:
        rr = await write(c, HR_SIMULATE, 2)
        assert rr.isError() and rr.exception_code == 3  # ILLEGAL DATA VALUE outside test mode
        assert await ir(c, IR_ZONE + 1) == [1 << 5] and not events(ctx, "fire_alarm")

        assert not (await write(c, HR_TEST, 1)).isError()
        assert (await c.read_holding_registers(HR_TEST, count=1, device_id=UNIT)).registers == [1]
        assert await ir(c, IR_STATUS) == [TEST]
        for bad in ((HR_TEST, 2), (HR_SIMULATE, 3), (HR_SIMULATE, 99), (HR_RESET, 7)):
            rr = await write(c, *bad)
            assert rr.isError() and rr.exception_code == 3, bad

        rr = await write(c, HR_SIMULATE, 2)
        assert not rr.isError() and rr.registers == [2]  # FC06 echoes the request
        assert (await c.read_holding_registers(HR_SIMULATE, count=1, device_id=UNIT)).registers == [0]
        assert await ir(c, IR_STATUS, 2) == [ALARM | TEST, 1]
        assert await ir(c, IR_ZONE + 1) == [1 | 1 << 3 | 1 << 5]  # alarm, under test, charger zone
        assert (await c.read_discrete_inputs(0, count=8, device_id=UNIT)).bits[:3] == [False, True, False]
        [event] = events(ctx, "fire_alarm")
        assert (event.source, event.area, event.data) == (
            "fp1",
            "ev",
            {"zone": 2, "area": "ev", "test_mode": True},
        )

        # leave test mode and simulate in the same request: refused as a whole, nothing changes
        rr = await c.write_registers(HR_TEST, [0, 1], device_id=UNIT)
        assert rr.isError() and rr.exception_code == 3
        assert await ir(c, IR_STATUS) == [ALARM | TEST]


@pytest.mark.peers
async def test_smoke_on_the_bus_alarms_and_reset_register_clears(panel: FirePanel) -> None:
    ctx = panel.ctx
    await ctx.bus.command("fp1", "smoke", zone=1)
    await ctx.bus.command("fp1", "smoke", zone=1)  # already latched: one event only
    [event] = events(ctx, "fire_alarm")
    assert event.area == "b1" and event.data == {"zone": 1, "area": "b1", "test_mode": False}
    async with modbus(panel) as c:
        assert await ir(c, IR_STATUS, 2) == [ALARM, 1]
        assert await ir(c, IR_ZONE) == [1]
        await ctx.bus.command("fp1", "silence")
        assert await ir(c, IR_STATUS) == [ALARM | SILENCED]

        assert not (await write(c, HR_RESET, 1)).isError()
        assert await ir(c, IR_STATUS, 2) == [NORMAL, 0]
        assert await ir(c, IR_ZONE) == [0]
        assert (await c.read_holding_registers(HR_RESET, count=1, device_id=UNIT)).registers == [0]
    [reset] = events(ctx, "fire_reset")
    assert reset.data == {"zones": [1]}


@pytest.mark.peers
async def test_isolated_zone_ignores_detectors_and_faults_count(panel: FirePanel) -> None:
    bus = panel.ctx.bus
    await bus.command("fp1", "isolate", zone=5)
    await bus.command("fp1", "smoke", zone=5)
    await bus.command("fp1", "fault", kind="zone", zone=1)
    await bus.command("fp1", "fault", kind="battery")
    async with modbus(panel) as c:
        assert await ir(c, IR_STATUS, 3) == [FAULT | BATTERY | ISOLATION, 0, 2]
        assert await ir(c, IR_ZONE, 5) == [1 << 1, 1 << 5, 0, 0, 1 << 2]
    assert not events(panel.ctx, "fire_alarm")
    with pytest.raises(Refused):
        await bus.command("fp1", "smoke", zone=4)  # no zone 4 on this panel


@pytest.mark.peers
async def test_linkage_outputs_from_the_bus_are_visible_over_modbus(panel: FirePanel) -> None:
    bus = panel.ctx.bus
    await bus.command("fp1", "lighting", on=True, area="ev")
    await bus.command("fp1", "broadcast", on=True, area="ev")
    async with modbus(panel) as c:
        assert await ir(c, 20, 3) == [1, 1, 2]
        assert await ir(c, IR_ZONE + 1) == [1 << 4 | 1 << 5]
        await bus.command("fp1", "broadcast", on=True)  # all-call
        assert await ir(c, 21, 2) == [1, 0xFFFF]
        await bus.command("fp1", "fault", kind="lighting")
        await bus.command("fp1", "lighting", on=True)
        assert await ir(c, 20) == [0b10]  # a faulty lighting circuit stays dark
    assert [e.data for e in events(panel.ctx, "lighting")] == [
        {"on": True, "requested": True},
        {"on": False, "requested": True},
    ]


@pytest.mark.peers
async def test_measurements_cross_thresholds_and_report_hazards(panel: FirePanel) -> None:
    bus = panel.ctx.bus
    await bus.command("fp1", "water_level", cm=140)
    await bus.command("fp1", "pipe_pressure", kpa=200)
    await bus.command("fp1", "charger_load", zone=2, pct=120)
    async with modbus(panel) as c:
        assert await ir(c, 10, 7) == [140, 150, 200, 250, 0b111, 120, 100]
        assert await ir(c, IR_STATUS) == [SUPERVISORY]
        assert await ir(c, IR_ZONE + 1) == [1 << 5 | 1 << 6]
        assert await ir(c, 201) == [120]
        await bus.command("fp1", "water_level", cm=300)
        assert await ir(c, 14) == [0b110]
    hazards = [(e.data["kind"], e.data["active"], e.area) for e in events(panel.ctx, HAZARD_EVENT)]
    assert hazards == [
        ("water_low", True, None),
        ("pressure_low", True, None),
        ("charger_overload", True, "ev"),
        ("water_low", False, None),
    ]
    with pytest.raises(Refused):
        await bus.command("fp1", "charger_load", zone=1, pct=50)  # zone 1 has no charging piles


@pytest.mark.peers
async def test_heartbeat_counts_seconds_unless_the_tick_is_missing() -> None:
    async with (
        running(make_ctx()) as alive,
        running(make_ctx(faults=[{"type": "heartbeat_missing"}], host="127.0.0.2")) as frozen,
        modbus(alive) as a,
        modbus(frozen) as f,
    ):
        began = time.monotonic()
        before, clock_before = await ir(a, IR_HEARTBEAT, 2), await ir(f, IR_CLOCK, 6)
        async with asyncio.timeout(10):
            while (after := await ir(a, IR_HEARTBEAT, 2))[1] == before[1]:  # noqa: ASYNC110 - over Modbus
                await asyncio.sleep(0.2)
        # one count a second: never more than the seconds that passed (however many a load made it)
        assert after[0] == before[0] and after[1] - before[1] <= math.ceil(time.monotonic() - began) + 1
        await asyncio.sleep(1.1)  # a second more, in which the frozen one still does not count
        assert await ir(f, IR_HEARTBEAT, 2) == [0, 0]
        assert await ir(f, IR_CLOCK, 6) == clock_before


@pytest.mark.peers
async def test_clock_skew_shows_in_the_clock_registers() -> None:
    async with running(make_ctx(faults=[{"type": "clock_skew", "seconds": -7200}])) as p, modbus(p) as c:
        y, mo, d, h, mi, s = await ir(c, IR_CLOCK, 6)
        panel_time = datetime(y, mo, d, h, mi, s, tzinfo=UTC) - timedelta(hours=8)
        skew = (panel_time - datetime.now(UTC)).total_seconds()
        assert -7202 <= skew <= -7198


@pytest.mark.peers
async def test_offline_panel_refuses_connections() -> None:
    async with running(make_ctx(faults=[{"type": "offline"}], host="127.0.43.1")) as p:
        client = AsyncModbusTcpClient(p.ctx.host, port=5020, timeout=1, retries=0, reconnect_delay=0)
        assert not await client.connect()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(p.ctx.host, 5020)
        await p.ctx.bus.command("fp1", "smoke", zone=1)  # the panel itself still detects fire
        assert events(p.ctx, "fire_alarm")


@pytest.mark.peers
async def test_hung_panel_accepts_and_never_answers() -> None:
    async with running(make_ctx(faults=[{"type": "hung"}])) as p, modbus(p, reply_timeout=0.3) as c:
        with pytest.raises(ModbusIOException):
            await c.read_input_registers(0, count=1, device_id=UNIT)


@pytest.mark.peers
async def test_slow_panel_drips_its_reply() -> None:
    async with running(make_ctx(faults=[{"type": "slow", "bytes_per_second": 100}])) as p:
        async with modbus(p) as c:
            t0 = time.monotonic()
            assert await ir(c, IR_ZONE, 10) == [0, 1 << 5] + [0] * 8  # 29 bytes on the wire
            assert time.monotonic() - t0 >= 0.25
        async with modbus(p, reply_timeout=0.1) as c:
            with pytest.raises(ModbusIOException):
                await c.read_input_registers(IR_ZONE, count=10, device_id=UNIT)


@pytest.mark.peers
async def test_linkage_slow_applies_lighting_late() -> None:
    delay = 2.0  # long enough for the read just after the command, on a loaded machine
    async with running(make_ctx(faults=[{"type": "linkage_slow", "delay_s": delay}])) as p, modbus(p) as c:
        began = time.monotonic()
        await p.ctx.bus.command("fp1", "lighting", on=True)
        assert await ir(c, 20) == [0]
        async with asyncio.timeout(10):
            while await ir(c, 20) != [1]:  # noqa: ASYNC110 - polling the panel over Modbus
                await asyncio.sleep(0.1)
        assert time.monotonic() - began >= delay


async def closed_by_peer(host: str, port: int) -> bool:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(reader.read(1), timeout=1.0) == b""
    finally:
        writer.close()


@pytest.mark.peers
async def test_one_client_at_a_time(panel: FirePanel) -> None:
    async with modbus(panel) as first:
        assert await closed_by_peer(panel.ctx.host, panel.port)
        assert await ir(first, IR_STATUS) == [NORMAL]
    async with asyncio.timeout(10):  # until the server has seen the first client go
        while panel._server is not None and panel._server.active_connections:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    async with modbus(panel) as again:
        assert await ir(again, IR_STATUS) == [NORMAL]


@pytest.mark.peers
async def test_client_slots_come_from_the_profile() -> None:
    profile = load_profile("generic-fire-panel").model_copy(update={"max_connections": 2})
    async with running(make_ctx(), profile) as p, modbus(p) as a, modbus(p) as b:
        assert await ir(a, IR_STATUS) == await ir(b, IR_STATUS) == [NORMAL]
        assert await closed_by_peer(p.ctx.host, p.port)


@pytest.mark.peers
async def test_gateway_profile_lays_out_the_same_panel_differently() -> None:
    async with running(make_ctx(profile="gateway-fire-panel")) as p, modbus(p) as c:
        rr = await c.read_holding_registers(10, count=7, device_id=UNIT)
        assert rr.registers == [3200, 1500, 45, 25, 0, 100, 0]  # mm and 0.01 MPa
        assert (await c.read_input_registers(0, count=1, device_id=UNIT)).exception_code == 1
        rr = await c.write_coil(104, True, device_id=UNIT)  # simulate zone 5 outside test mode
        assert rr.isError() and rr.exception_code == 4  # this vendor says DEVICE FAILURE
        assert not (await c.write_coil(0, True, device_id=UNIT)).isError()
        assert not (await c.write_coil(104, True, device_id=UNIT)).isError()
        assert (await c.read_coils(100, count=8, device_id=UNIT)).bits[:8] == [False] * 8  # triggers
        rr = await c.read_discrete_inputs(0, count=8, device_id=UNIT)
        assert rr.bits[:8] == [False, False, False, False, True, False, False, False]
        rr = await c.read_discrete_inputs(256, count=4, device_id=UNIT)
        assert rr.bits[:4] == [False, True, False, True]  # not normal, alarm, no fault, test mode
        assert (await c.write_register(10, 1, device_id=UNIT)).exception_code == 2  # read-only
        assert (await c.write_coil(105, True, device_id=UNIT)).exception_code == 3  # no zone 6
    assert events(p.ctx, "fire_alarm")[0].data == {"zone": 5, "area": "pump", "test_mode": True}


@pytest.mark.peers
async def test_unplug_refuses_and_replug_serves_on_the_same_port(panel: FirePanel) -> None:
    port = panel.port
    await panel.unplug()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(panel.ctx.host, port)
    await panel.replug()
    assert panel.port == port
    async with modbus(panel) as c:
        assert await ir(c, IR_STATUS) == [NORMAL]


@pytest.mark.peers
async def test_twenty_panels_in_one_process() -> None:
    panels = [FirePanel(make_ctx(host=f"127.0.42.{i}")) for i in range(1, 21)]
    await asyncio.gather(*(p.start() for p in panels))
    try:
        for p in panels:
            async with modbus(p) as c:
                assert await ir(c, 3) == [3]
    finally:
        await asyncio.gather(*(p.stop() for p in panels))
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(panels[0].ctx.host, panels[0].port)


def test_register_map_document_names_every_point_of_every_profile() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in ("generic-fire-panel", "gateway-fire-panel"):
        profile = load_profile(name)
        assert f"`{name}`" in text
        for point in profile.points:
            assert re.search(rf"\b{point.name}\b", text), f"{name}: {point.name} undocumented"


def test_32_bit_values_follow_the_profile_word_order() -> None:
    def uptime_of(profile: str) -> dict[int, int]:
        state = PanelState(
            [],
            water_level_cm=0,
            water_low_cm=0,
            pressure_kpa=0,
            pressure_low_kpa=0,
            charger_overload_pct=100,
            clock=lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            uptime=lambda: 70_000,  # 0x0001_1170
        )
        table: Table = "input_register" if profile == "generic-fire-panel" else "holding_register"
        return RegisterImage(load_profile(profile)).render(table, state)

    generic, gateway = uptime_of("generic-fire-panel"), uptime_of("gateway-fire-panel")
    assert (generic[30], generic[31]) == (0x0001, 0x1170)  # high word first
    assert (gateway[20], gateway[21]) == (0x1170, 0x0001)  # low word first


def test_profiles_reject_overlaps_and_misplaced_values() -> None:
    base = load_profile("generic-fire-panel").model_dump(exclude_unset=True)
    overlap = {
        **base,
        "points": [
            *base["points"],
            {"name": "x", "table": "input_register", "address": 31, "source": "panel.alarm_count"},
        ],
    }
    with pytest.raises(ValidationError, match="already holds heartbeat"):
        Profile.model_validate(overlap)
    number_bit = {
        **base,
        "points": [{"name": "y", "table": "coil", "address": 9, "source": "water.level_cm"}],
    }
    with pytest.raises(ValidationError, match="holds a bit"):
        Profile.model_validate(number_bit)
    read_only = {
        **base,
        "points": [{"name": "z", "table": "input_register", "address": 9, "command": "reset"}],
    }
    with pytest.raises(ValidationError, match="cannot be written"):
        Profile.model_validate(read_only)

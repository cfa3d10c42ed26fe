"""The Modbus collector and the fire-panel probes against simulated panels (pymodbus' own server).

Panels are built one by one from a DeviceContext, as the simulator's own tests do, each on its own
loopback address with a port chosen at run time. Garbage-talking peers are small asyncio servers.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from exchange_sink import Ledger
from panel_helpers import UNIT, ZONES
from panel_helpers import make_ctx as panel_ctx

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation, Unreachable, Unsupported
from collectors.exchange import Exchange
from collectors.modbus.client import ModbusClient
from collectors.modbus.profile import Location, PanelProfile, ProfileError, load_profile, parse_profile
from collectors.modbus.readings import PanelReading
from collectors.modbus.transport import RECONNECT_PAUSE_S
from probes import charger_load, emergency_outputs, fire_water, panel_common, panel_liveness
from probes.base import ProbeContext
from probes.finding import Finding
from probes.targets import Secret, SiteView, Target
from simulator.bus import SiteEvent
from simulator.modbus import FirePanel
from simulator.runtime import DeviceContext

GENERIC, GATEWAY = "generic-fire-panel", "gateway-fire-panel"
PASSWORD = "modbus-has-no-password-9731"
_hosts = iter(f"127.0.93.{i}" for i in range(1, 250))


# -- peers --------------------------------------------------------------------------------------------
def make_ctx(*, profile: str = GENERIC, faults: list[dict[str, Any]] | None = None) -> DeviceContext:
    return panel_ctx(profile=profile, faults=faults, host=next(_hosts), password=PASSWORD)


@asynccontextmanager
async def panel(
    profile: str = GENERIC, *, faults: list[dict[str, Any]] | None = None, sim_profile: Any = None
) -> AsyncIterator[FirePanel]:
    p = FirePanel(make_ctx(profile=profile, faults=faults), sim_profile)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def free_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def talker(reply: Callable[[bytes], bytes], *, close: bool) -> AsyncIterator[int]:
    """A TCP peer that answers each request with reply(request), and maybe hangs up."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        request = await reader.read(260)
        writer.write(reply(request))
        await writer.drain()
        if close:
            writer.close()
        else:
            await reader.read()  # keep the connection until the client leaves

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


def conn(host: str, port: int, ledger: Ledger, *, timeout_s: float = 10.0, gate: Any = None) -> Connection:
    return Connection(
        device="fp1", host=host, port=port, timeout_s=timeout_s, sink=ledger, gate=gate, password=PASSWORD
    )


def at(p: FirePanel, ledger: Ledger, **kw: Any) -> Connection:
    return conn(p.ctx.host, p.port, ledger, **kw)


def events(p: FirePanel, kind: str) -> list[SiteEvent]:
    return [e for e in p.ctx.bus.history if e.type == kind]


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """The block takes under `seconds` (as idle), plus 2 s of slack for a loaded machine."""
    t0 = time.monotonic()
    yield
    assert time.monotonic() - t0 < seconds + 2.0


async def clients(p: FirePanel, count: int) -> None:
    """Until the panel holds `count` client connections (it sees one come or go a moment later)."""
    async with asyncio.timeout(10):
        while p._server is None or len(p._server.active_connections) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


# -- typed reads --------------------------------------------------------------------------------------
async def condition(p: FirePanel) -> None:
    """Something in every group of values: alarm, isolation, fault, overload, linkage outputs."""
    p._started -= 70_000  # up for 0x0001_1170 s: both words of the uint32 heartbeat count
    bus = p.ctx.bus
    await bus.command("fp1", "smoke", zone=1)
    await bus.command("fp1", "isolate", zone=5)
    await bus.command("fp1", "fault", kind="battery")
    await bus.command("fp1", "charger_load", zone=2, pct=120)
    await bus.command("fp1", "water_level", cm=140)
    await bus.command("fp1", "pipe_pressure", kpa=300)
    await bus.command("fp1", "lighting", on=True)
    await bus.command("fp1", "broadcast", on=True, area="ev")


def assert_conditioned(r: PanelReading) -> None:
    assert (r.normal, r.alarm, r.fault, r.test_mode, r.silenced) == (False, True, True, False, False)
    assert (r.supply_fault, r.battery_fault, r.supervisory, r.isolation) == (False, True, True, True)
    assert (r.alarm_count, r.fault_count, r.zone_count) == (1, 1, 3)
    assert (r.water_level_cm, r.water_low_threshold_cm, r.water_low) == (140, 150, True)
    assert (r.pipe_pressure_kpa, r.pipe_pressure_low_threshold_kpa, r.pressure_low) == (300, 250, False)
    assert (r.charger_max_load_pct, r.charger_overload_threshold_pct, r.charger_overload) == (120, 100, True)
    assert (r.lighting_on, r.lighting_fault, r.broadcast_on, r.broadcast_zone) == (True, False, True, 2)
    assert r.heartbeat_s is not None and 70_000 <= r.heartbeat_s < 70_010  # the profile's word order
    assert r.device_time is not None and abs((r.device_time - datetime.now(UTC)).total_seconds()) < 5
    assert r.absent == {}
    z1, z2, z5 = r.zones[1], r.zones[2], r.zones[5]
    assert (z1.alarm, z1.isolated, z1.test, z1.charger_load_pct) == (True, False, False, 0)
    assert (z2.alarm, z2.charger_load_pct) == (False, 120)
    assert (z5.alarm, z5.isolated) == (False, True)


@pytest.mark.peers
async def test_read_panel_generic_reads_every_value_in_zhian_units() -> None:
    ledger = Ledger()
    async with panel() as p:
        await condition(p)
        async with ModbusClient(at(p, ledger)) as c:
            r = await c.read_panel(load_profile(GENERIC), UNIT, [5, 1, 2])
    assert_conditioned(r)
    assert (r.zones[2].charger, r.zones[2].charger_overload, r.zones[2].broadcast) == (True, True, True)
    assert (r.zones[1].charger, r.zones[1].broadcast) == (False, False)
    assert list(r.zones) == [1, 2, 5] and r.profile == GENERIC and r.unit_id == UNIT
    assert [e.id for e in ledger] == list(r.exchanges)
    assert [e.operation for e in ledger] == [
        "connect",
        "read_input_registers(0, 4, unit=3)",
        "read_input_registers(10, 7, unit=3)",
        "read_input_registers(20, 3, unit=3)",
        "read_input_registers(30, 2, unit=3)",
        "read_input_registers(40, 6, unit=3)",
        "read_input_registers(100, 5, unit=3)",  # zones 1..5: 3 and 4 exist in the map
        "read_input_registers(200, 5, unit=3)",
    ]  # zone alarms come with the zone status word: the fast-poll discrete inputs are not needed
    first = ledger[1]
    assert first.ok and first.protocol == "modbus" and first.library.startswith("pymodbus ")
    assert first.request == "00 01 00 00 00 06 03 04 00 00 00 04"  # MBAP, unit 3, FC04, address 0, count 4
    assert first.response.startswith("00 01 00 00 00 0b 03 04 08")
    assert first.facts["values"][1:] == [1, 1, 3]


@pytest.mark.peers
async def test_read_panel_gateway_converts_the_makers_units() -> None:
    ledger = Ledger()
    async with panel(GATEWAY) as p:
        await condition(p)
        async with ModbusClient(at(p, ledger)) as c:
            r = await c.read_panel(load_profile(GATEWAY), UNIT, [1, 2, 5])
    assert_conditioned(r)  # mm -> cm, 0.01 MPa -> kPa, heartbeat low word first
    assert r.zones[2].charger is None and r.zones[2].broadcast is None  # this map has no such flags
    assert r.resolution["pipe_pressure_kpa"] == 10
    assert [e.operation for e in ledger][1] == "read_discrete_inputs(0, 271, unit=3)"


@pytest.mark.peers
async def test_a_block_the_panel_refuses_leaves_its_values_absent() -> None:
    generic = load_profile(GENERIC)
    values = dict(generic.values) | {"charger_max_load_pct": Location(table="input_register", address=5)}
    profile = generic.model_copy(update={"values": values})
    ledger = Ledger()
    async with panel() as p, ModbusClient(at(p, ledger)) as c:
        r = await c.read_panel(profile, UNIT, [2])
    refusal = ledger.get(r.absent["charger_max_load_pct"])
    assert refusal.operation == "read_input_registers(5, 1, unit=3)" and not refusal.ok
    assert refusal.facts["exception_code"] == 2 and "ILLEGAL_DATA_ADDRESS" in (refusal.error or "")
    assert r.charger_max_load_pct is None and r.water_level_cm == 320 and r.zones[2].charger is True


@pytest.mark.peers
async def test_raw_reads_and_modbus_exceptions_are_typed() -> None:
    ledger = Ledger()
    async with panel(GATEWAY) as gw, panel() as gen:
        async with ModbusClient(at(gw, ledger)) as c:
            assert (await c.read_holding_registers(UNIT, 10, 4)).values == (3200, 1500, 45, 25)
            assert (await c.read_discrete_inputs(UNIT, 256, 2)).values == (True, False)
            assert (await c.read_coils(UNIT, 0, 2)).values == (False, False)
            with pytest.raises(DeviceRejected) as exc:
                await c.read_input_registers(UNIT, 0, 1)  # this model has no input registers
            assert exc.value.code == "ILLEGAL_FUNCTION"
            with pytest.raises(DeviceRejected) as exc:
                await c.write_register(UNIT, 10, 1)  # a measurement is read-only
            assert exc.value.code == "ILLEGAL_DATA_ADDRESS"
            with pytest.raises(DeviceRejected) as exc:
                await c.write_coil(UNIT, 104, True)  # simulate zone 5 outside test mode
            assert exc.value.code == "SERVER_DEVICE_FAILURE"  # this maker's way of saying "not now"
        async with ModbusClient(at(gen, ledger)) as c:
            read = await c.read_input_registers(UNIT, 0, 4)
            assert read.values == (1, 0, 0, 3) and ledger.get(read.exchange_id).ok
            with pytest.raises(DeviceRejected) as exc:
                await c.read_input_registers(UNIT, 0, 5)  # runs into a gap of the map
            assert exc.value.code == "ILLEGAL_DATA_ADDRESS"
            with pytest.raises(DeviceRejected) as exc:
                await c.write_register(UNIT, 1, 2)  # simulate outside test mode
            assert exc.value.code == "ILLEGAL_DATA_VALUE"
            with pytest.raises(DeviceRejected) as exc:
                await c.read_input_registers(UNIT + 1, 0, 1)
            assert exc.value.code == "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
    rejected = ledger.get(exc.value.exchange_id)
    assert not rejected.ok and rejected.facts["exception_code"] == 0x0B
    assert rejected.response.split()[7] == "84"  # FC04 | 0x80 in the reply frame


@pytest.mark.peers
@pytest.mark.parametrize("profile", [GENERIC, GATEWAY])
async def test_commands_are_gated_by_test_mode(profile: str) -> None:
    prof, ledger = load_profile(profile), Ledger()
    async with panel(profile) as p, ModbusClient(at(p, ledger)) as c:
        with pytest.raises(DeviceRejected) as exc:
            await c.simulate_zone_alarm(prof, UNIT, 2)
        assert exc.value.code == "NOT_IN_TEST_MODE" and not events(p, "fire_alarm")
        assert ledger.get(exc.value.exchange_id).operation.startswith("read_")  # the mode flag, no write

        await c.set_test_mode(prof, UNIT, True)
        ids = await c.simulate_zone_alarm(prof, UNIT, 2)
        assert ledger.get(ids[-1]).operation.startswith("write_") and ledger.get(ids[-1]).ok
        [alarm] = events(p, "fire_alarm")
        assert alarm.data == {"zone": 2, "area": "ev", "test_mode": True}
        r = await c.read_panel(prof, UNIT, [2])
        assert (r.alarm, r.test_mode, r.zones[2].alarm, r.zones[2].test) == (True, True, True, True)

        await c.reset(prof, UNIT)
        await c.set_test_mode(prof, UNIT, False)
        r = await c.read_panel(prof, UNIT, [2])
        assert (r.normal, r.alarm, r.test_mode) == (True, False, False)
    assert [e.data for e in events(p, "fire_reset")] == [{"zones": [2]}]


@pytest.mark.peers
async def test_without_a_mode_flag_the_panels_own_refusal_comes_through() -> None:
    generic = load_profile(GENERIC)
    blind = generic.model_copy(
        update={"values": {k: v for k, v in generic.values.items() if k != "test_mode"}}
    )
    async with panel() as p, ModbusClient(at(p, Ledger())) as c:
        with pytest.raises(DeviceRejected) as exc:
            await c.simulate_zone_alarm(blind, UNIT, 2)
        assert exc.value.code == "ILLEGAL_DATA_VALUE"
        with pytest.raises(ValueError, match=r"zones 1\.\.32"):
            await c.simulate_zone_alarm(blind, UNIT, 33)
        no_commands = generic.model_copy(update={"commands": {}})
        with pytest.raises(Unsupported):
            await c.reset(no_commands, UNIT)
    assert not events(p, "fire_alarm")


@pytest.mark.peers
async def test_clock_skew_is_read_back_in_utc() -> None:
    async with (
        panel(faults=[{"type": "clock_skew", "seconds": -7200}]) as p,
        ModbusClient(at(p, Ledger())) as c,
    ):
        when, exchange_id = await c.device_time(load_profile(GENERIC), UNIT)
        r = await c.read_panel(load_profile(GENERIC), UNIT, ())
    assert exchange_id and when.tzinfo is not None
    assert -7205 < (when - datetime.now(UTC)).total_seconds() < -7195
    assert r.device_time is not None and abs((r.device_time - when).total_seconds()) < 5
    assert r.clock_raw is not None and r.clock_raw[3] == (when + timedelta(hours=8)).hour  # local UTC+8


# -- failures -------------------------------------------------------------------------------------------
@pytest.mark.peers
async def test_hung_panel_times_out_within_the_timeout() -> None:
    ledger = Ledger()
    async with panel(faults=[{"type": "hung"}]) as p, ModbusClient(at(p, ledger, timeout_s=0.3)) as c:
        with within(1.0), pytest.raises(Unreachable) as exc:
            await c.read_panel(load_profile(GENERIC), UNIT, [1])
    assert exc.value.timed_out
    failed = ledger.get(exc.value.exchange_id)
    assert not failed.ok and failed.request.startswith("00 01 00 00 00 06 03 04") and failed.response == ""


@pytest.mark.peers
async def test_offline_panel_is_unreachable_not_timed_out() -> None:
    ledger = Ledger()
    async with ModbusClient(conn("127.0.0.1", free_port(), ledger)) as c:
        with within(1.0), pytest.raises(Unreachable) as exc:
            await c.read_input_registers(UNIT, 0, 1)
    assert not exc.value.timed_out
    assert ledger.get(exc.value.exchange_id).operation == "connect" and len(ledger) == 1


@pytest.mark.peers
async def test_slow_panel_answers_slowly_or_times_out() -> None:
    ledger = Ledger()
    async with panel(faults=[{"type": "slow", "bytes_per_second": 100}]) as p:
        async with ModbusClient(at(p, ledger)) as c:
            t0 = time.monotonic()
            assert (await c.read_input_registers(UNIT, 100, 10)).values == (0, 1 << 5) + (0,) * 8
            assert time.monotonic() - t0 >= 0.25  # 29 bytes at 100 B/s
        async with ModbusClient(at(p, ledger, timeout_s=0.15)) as c:
            with pytest.raises(Unreachable) as exc:  # part of a reply is a slow panel, not garbage
                await c.read_input_registers(UNIT, 100, 10)
    assert exc.value.timed_out and ledger.get(exc.value.exchange_id).facts["bytes_received"] > 0


@pytest.mark.peers
@pytest.mark.parametrize(
    ("reply", "close"),
    [
        (lambda req: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", True),
        (
            lambda req: req[:2] + b"\x00\x07\x00\x05" + req[6:7] + b"\x04\x02\x00\x01",
            False,
        ),  # bad protocol id
        (
            lambda req: req[:2] + b"\x00\x00\x00\x05" + req[6:7] + b"\x04\x02\x00\x01",
            False,
        ),  # 1 of 4 registers
        (lambda req: req[:2] + b"\x00\x00\x00\x05" + req[6:7] + b"\x03\x02\x00\x01", False),  # wrong function
    ],
    ids=["http", "protocol-id", "short", "function"],
)
async def test_garbage_is_a_protocol_violation(reply: Callable[[bytes], bytes], close: bool) -> None:
    ledger = Ledger()
    async with (
        talker(reply, close=close) as port,
        ModbusClient(conn("127.0.0.1", port, ledger, timeout_s=0.5)) as c,
    ):
        with within(1.5), pytest.raises(ProtocolViolation) as exc:
            await c.read_input_registers(UNIT, 0, 4)
    failed = ledger.get(exc.value.exchange_id)
    assert not failed.ok and failed.response  # the garbage is kept as evidence


@pytest.mark.peers
async def test_tls_is_refused_rather_than_ignored() -> None:
    import ssl

    tls = Connection(device="fp1", host="127.0.0.1", port=free_port(), tls=ssl.create_default_context())
    with pytest.raises(Unsupported):
        async with ModbusClient(tls):
            pass


# -- one client at a time ------------------------------------------------------------------------------
@pytest.mark.peers
async def test_two_clients_on_a_one_client_panel_serialize_through_the_gate() -> None:
    ledger, gate = Ledger(), asyncio.Semaphore(1)
    profile = load_profile(GENERIC)
    async with (
        panel() as p,
        ModbusClient(at(p, ledger, gate=gate)) as a,
        ModbusClient(at(p, ledger, gate=gate)) as b,
    ):
        ra, rb = await asyncio.gather(a.read_panel(profile, UNIT, [1, 2]), b.read_panel(profile, UNIT, [5]))
    assert ra.zone_count == rb.zone_count == 3
    assert all(e.ok for e in ledger)  # no connection was ever dropped


@pytest.mark.peers
async def test_a_dropped_connection_is_retried_once() -> None:
    """Another client holds the panel's one slot; it lets go when we are turned away the first time."""
    async with panel() as p:
        _, holder = await asyncio.open_connection(p.ctx.host, p.port)
        await clients(p, 1)

        def release(exchange: Exchange) -> None:
            ledger.append(exchange)
            if not exchange.ok:
                holder.close()

        ledger = Ledger()
        c = Connection(device="fp1", host=p.ctx.host, port=p.port, timeout_s=2, sink=release)
        async with ModbusClient(c) as client:
            assert (await client.read_input_registers(UNIT, 3, 1)).values == (3,)
        dropped = [e for e in ledger if not e.ok]
        assert len(dropped) == 1 and "closed by the device" in (dropped[0].error or "")
        assert [e.operation for e in ledger].count("connect") == 2

        await clients(p, 0)  # the panel has seen our client go
        _, holder = await asyncio.open_connection(p.ctx.host, p.port)  # and this one never lets go
        await clients(p, 1)
        try:
            async with ModbusClient(at(p, Ledger())) as client:
                with within(RECONNECT_PAUSE_S + 1.0), pytest.raises(Unreachable) as exc:
                    await client.read_input_registers(UNIT, 3, 1)
            assert not exc.value.timed_out and "twice" in str(exc.value)
        finally:
            holder.close()


# -- profiles -----------------------------------------------------------------------------------------
def test_shipped_profiles_load_and_name_themselves() -> None:
    for name in (GENERIC, GATEWAY):
        profile = load_profile(name)
        assert profile.name == name and profile.clock_utc_offset_min == 480
    assert load_profile(GENERIC).max_connections == 1 and load_profile(GATEWAY).word_order == "low_first"
    with pytest.raises(ProfileError, match="bad profile name"):
        load_profile("../etc/passwd")
    with pytest.raises(ProfileError, match="no profile 'acme-panel'"):
        load_profile("acme-panel")


_HEAD = """
name: p
vendor: v
model: m
document: d
max_zones: 4
clock_utc_offset_min: 480
word_order: high_first
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("values: {water_level: {table: input_register, address: 1}}", "values.water_level: unknown value"),
        ("values: {alarm: {table: input_register, address: 1}}", "values.alarm: a flag needs a bit"),
        (
            "values: {alarm_count: {table: discrete_input, address: 1}}",
            "values.alarm_count: a count needs a register",
        ),
        (
            "values: {alarm_count: {table: input_register, address: 1, scale: 2}}",
            "values.alarm_count: a count is not scaled",
        ),
        (
            "values: {alarm: {table: discrete_input, address: 1, bit: 2}}",
            "values.alarm: Value error, a discrete_input",
        ),
        (
            "values: {normal: {table: input_register, address: 0, bit: 0}, alarm: {table: input_register, "
            "address: 0, bit: 0}}",
            "values.alarm: input_register 0 already holds values.normal",
        ),
        (
            "values: {heartbeat_s: {table: input_register, address: 0, type: uint32}, alarm_count: "
            "{table: input_register, address: 1}}",
            "values.alarm_count: input_register 1 already holds values.heartbeat_s",
        ),
        ("values: {clock_year: {table: input_register, address: 9}}", "the clock needs all of"),
        (
            "values: {}\nzone_values: {charger_load_pct: {table: input_register, address: 0, type: uint32}}",
            "zone_values.charger_load_pct: stride 1 < width 2",
        ),
        (
            "values: {}\ncommands: {reset: {table: coil, address: 0, per_zone: true}}",
            "only simulate_zone_alarm",
        ),
        ("values: {}\ncommands: {reset: {table: discrete_input, address: 0}}", "commands.reset.table"),
        ("values: {}\nsurprise: 1", "surprise: Extra inputs are not permitted"),
        # the line and the wording are libyaml's or PyYAML's own, whichever parses
        ("values: [", re.compile(r"^<test>:\d+: not valid YAML \(.+\)$")),
    ],
)
def test_invalid_profiles_are_refused_with_the_place_named(body: str, message: str | re.Pattern[str]) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(_HEAD + body, "<test>")
    text = str(exc.value)
    assert text.startswith("<test>:")
    assert message.search(text) if isinstance(message, re.Pattern) else message in text


# -- probes ---------------------------------------------------------------------------------------------
def target(p: FirePanel | None = None, *, port: int = 0, **params: Any) -> Target:
    inventory: dict[str, Any] = {"profile": GENERIC, "unit_id": UNIT, "zones": ZONES} | params
    host = p.ctx.host if p else "127.0.0.1"
    return Target(
        id="fp1",
        kind="panel",
        protocol="modbus",
        host=host,
        port=p.port if p else port,
        area="mc",
        password=Secret(PASSWORD),
        params=inventory,
    )


def probe_ctx(t: Target, ledger: Ledger, *, timeout_s: float = 10.0, per_host: int = 1) -> ProbeContext:
    return ProbeContext(site=SiteView("test", (t,)), sink=ledger, call_timeout_s=timeout_s, per_host=per_host)


async def run_probe(spec: Any, ctx: ProbeContext, t: Target, **params: Any) -> Finding:
    finding: Finding = await spec.run(ctx, t, spec.params(**params))
    return finding


def cites_only_recorded(f: Finding, ledger: Ledger) -> None:
    recorded = {e.id for e in ledger}
    assert f.evidence and set(f.evidence) <= recorded


LIVE: dict[str, Any] = {"interval_s": 2}


@pytest.mark.peers
async def test_liveness_passes_on_a_live_panel_and_fails_on_a_frozen_one() -> None:
    async with panel() as alive, panel(faults=[{"type": "heartbeat_missing"}]) as frozen:
        la, lf = Ledger(), Ledger()
        ta, tf = target(alive), target(frozen)
        fa, ff = await asyncio.gather(
            run_probe(panel_liveness.SPEC, probe_ctx(ta, la), ta, **LIVE),
            run_probe(panel_liveness.SPEC, probe_ctx(tf, lf), tf, **LIVE),
        )
    assert (fa.status, fa.reason) == ("pass", "alive") and fa.facts["heartbeat_delta"] >= 1
    assert fa.facts["elapsed_s"] >= 2 and abs(fa.facts["clock_skew_s"]) < 5
    assert (ff.status, ff.reason) == ("fail", "heartbeat_frozen")
    assert (
        ff.facts["heartbeat_first"] == ff.facts["heartbeat_second"] == 0 and ff.facts["clock_advance_s"] == 0
    )
    cites_only_recorded(fa, la)
    cites_only_recorded(ff, lf)


@pytest.mark.peers
async def test_liveness_fails_on_unreachable_panels_and_errs_on_garbage() -> None:
    ledger = Ledger()
    offline = target(port=free_port())
    f = await run_probe(panel_liveness.SPEC, probe_ctx(offline, ledger), offline, **LIVE)
    assert (f.status, f.reason, f.facts["timed_out"]) == ("fail", "unreachable", False)
    assert [ledger.get(e).operation for e in f.evidence] == ["connect"]

    async with panel(faults=[{"type": "hung"}]) as p:
        t, ledger = target(p), Ledger()
        f = await run_probe(panel_liveness.SPEC, probe_ctx(t, ledger, timeout_s=0.3), t, **LIVE)
    assert (f.status, f.reason, f.facts["timed_out"]) == ("fail", "unreachable", True)
    cites_only_recorded(f, ledger)

    async with talker(lambda req: b"<html>no</html>", close=True) as port:
        t, ledger = target(port=port), Ledger()
        f = await run_probe(panel_liveness.SPEC, probe_ctx(t, ledger), t, **LIVE)
    assert (f.status, f.reason) == ("error", "protocol_violation")
    cites_only_recorded(f, ledger)


@pytest.mark.peers
async def test_panel_probes_share_one_reading_and_pass_on_a_healthy_panel() -> None:
    ledger = Ledger()
    async with panel() as p:
        t = target(p)
        ctx = probe_ctx(t, ledger, per_host=2)  # the shared reading keeps it to one connection anyway
        findings = await asyncio.gather(
            *(
                run_probe(spec, ctx, t)
                for spec in (fire_water.SPEC, charger_load.SPEC, emergency_outputs.SPEC)
            )
        )
    assert [(f.status, f.reason) for f in findings] == [("pass", "monitored")] * 3
    assert findings[0].evidence == findings[1].evidence == findings[2].evidence
    assert [e.operation for e in ledger].count("connect") == 1 and all(e.ok for e in ledger)
    assert findings[1].facts["zones"] == {"2": {"load_pct": 0.0, "overload": False}}
    for e in ledger:  # frames as evidence, and no password anywhere (Modbus has none to leak)
        assert PASSWORD not in repr(e)
        assert e.operation == "connect" or (e.request and e.response)


@pytest.mark.peers
async def test_panel_probes_fail_on_what_the_panel_reports() -> None:
    async with panel() as p:
        await p.ctx.bus.command("fp1", "water_level", cm=100)
        await p.ctx.bus.command("fp1", "charger_load", zone=2, pct=130)
        await p.ctx.bus.command("fp1", "fault", kind="lighting")
        t, ledger = target(p), Ledger()
        ctx = probe_ctx(t, ledger)
        water = await run_probe(fire_water.SPEC, ctx, t)
        charger = await run_probe(charger_load.SPEC, ctx, t)
        outputs = await run_probe(emergency_outputs.SPEC, ctx, t)
    assert (water.status, water.reason) == ("fail", "water_low")
    assert water.facts["water_level_cm"] == 100 and water.facts["water_low"] is True
    assert (charger.status, charger.reason) == ("fail", "charger_overload")
    assert charger.facts["zones"]["2"] == {"load_pct": 130.0, "overload": True}
    assert (outputs.status, outputs.reason) == ("fail", "lighting_fault")
    for f in (water, charger, outputs):
        cites_only_recorded(f, ledger)


@pytest.mark.peers
async def test_charger_zones_come_from_the_inventory_on_a_gateway_panel() -> None:
    async with panel(GATEWAY) as p:
        await p.ctx.bus.command("fp1", "charger_load", zone=2, pct=60)
        zones = [{"id": 1, "area": "b1"}, {"id": 2, "area": "ev", "charger": True}, {"id": 5, "area": "pump"}]
        marked, unmarked = target(p, profile=GATEWAY, zones=zones), target(p, profile=GATEWAY)
        f = await run_probe(charger_load.SPEC, probe_ctx(marked, Ledger()), marked)
        g = await run_probe(charger_load.SPEC, probe_ctx(unmarked, Ledger()), unmarked)
    assert (f.status, f.reason) == ("pass", "monitored")
    assert f.facts["zones"] == {"2": {"load_pct": 60.0, "overload": False}}
    assert (g.status, g.reason) == ("not_assessed", "charger_zones_unknown")


@pytest.mark.peers
async def test_panel_probes_err_when_the_panel_cannot_be_read() -> None:
    offline = target(port=free_port())
    ledger = Ledger()
    ctx = probe_ctx(offline, ledger)
    for spec in (fire_water.SPEC, charger_load.SPEC, emergency_outputs.SPEC):
        f = await run_probe(spec, ctx, offline)
        assert (f.status, f.reason, f.facts["timed_out"]) == ("error", "unreachable", False)
        assert f.evidence == (ledger[0].id,)  # the one refused connection, shared


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"profile": None}, "no register profile"),
        ({"profile": "acme"}, "no profile 'acme'"),
        ({"zones": [{"id": 40, "area": "x"}]}, "zone 40 is not on a generic-fire-panel"),
        ({"zones": [{"area": "x"}]}, "has no zone number"),
    ],
)
async def test_a_bad_inventory_entry_is_an_error_finding(params: dict[str, Any], message: str) -> None:
    inventory = {"unit_id": UNIT, "zones": ZONES, "profile": GENERIC} | params
    if inventory["profile"] is None:
        del inventory["profile"]
    t = Target(
        id="fp1", kind="panel", protocol="modbus", host="127.0.0.1", port=1, area="mc", params=inventory
    )
    ledger = Ledger()
    runs: list[Callable[[], Awaitable[Finding]]] = [
        lambda: run_probe(panel_liveness.SPEC, probe_ctx(t, ledger), t, **LIVE),
        lambda: run_probe(fire_water.SPEC, probe_ctx(t, ledger), t),
    ]
    for run in runs:
        f = await run()
        assert (f.status, f.reason) == ("error", "inventory_invalid") and message in f.detail
    assert not ledger  # nothing was sent


def test_panel_site_reads_the_inventory() -> None:
    zones = [{"id": 2, "area": "ev", "charger": True}, 1, {"id": 1, "area": "b1"}]
    site = panel_common.panel_site(target(zones=zones, unit_id=7))
    assert isinstance(site.profile, PanelProfile) and site.profile.name == GENERIC
    assert (site.unit_id, site.zones, site.charger_zones) == (7, (1, 2), frozenset({2}))

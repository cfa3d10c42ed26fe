"""The fire-panel probes' judging functions, on readings built by hand (no panel, no I/O)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collectors.errors import DeviceRejected, ProtocolViolation, Unreachable
from collectors.modbus.profile import CLOCK_VALUES, PANEL_VALUES, ZONE_VALUES
from collectors.modbus.readings import PanelReading, ZoneReading
from probes import charger_load, emergency_outputs, finding, fire_water, panel_liveness

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)


def reading(**values: Any) -> PanelReading:
    """A healthy generic panel; keyword arguments override."""
    healthy: dict[str, Any] = {
        "profile": "generic-fire-panel",
        "unit_id": 1,
        "read_at": T0,
        "exchanges": ("ex-1", "ex-2"),
        "normal": True,
        "water_level_cm": 320.0,
        "water_low_threshold_cm": 150.0,
        "water_low": False,
        "pipe_pressure_kpa": 450.0,
        "pipe_pressure_low_threshold_kpa": 250.0,
        "pressure_low": False,
        "charger_max_load_pct": 35.0,
        "charger_overload_threshold_pct": 100.0,
        "charger_overload": False,
        "lighting_on": False,
        "lighting_fault": False,
        "broadcast_on": False,
        "broadcast_zone": 0,
        "heartbeat_s": 100,
        "device_time": T0 + timedelta(seconds=3),
        "zones": {
            1: ZoneReading(1, alarm=False, charger=False, charger_overload=False, charger_load_pct=0.0),
            2: ZoneReading(2, alarm=False, charger=True, charger_overload=False, charger_load_pct=35.0),
        },
        "resolution": {n: 1.0 for n in ("water_level_cm", "pipe_pressure_kpa", "charger_load_pct")},
    }
    return PanelReading(**(healthy | values))


# -- panel_liveness -------------------------------------------------------------------------------------
def live(first: PanelReading, second: PanelReading) -> tuple[str, str, dict[str, Any]]:
    f = panel_liveness.judge("fp1", first, second, T0, T1)
    assert f.evidence == first.exchanges + second.exchanges
    return f.status, f.reason, f.facts


def test_a_heartbeat_that_advances_is_alive() -> None:
    second = reading(read_at=T0 + timedelta(seconds=2), heartbeat_s=102, exchanges=("ex-3",))
    status, reason, facts = live(reading(), second)
    assert (status, reason) == ("pass", "alive")
    assert facts["heartbeat_delta"] == 2 and facts["elapsed_s"] == 2.0 and facts["clock_skew_s"] == 1.0


def test_a_heartbeat_that_stands_still_is_frozen_although_the_panel_answers() -> None:
    second = reading(read_at=T0 + timedelta(seconds=2), exchanges=("ex-3",))
    status, reason, facts = live(reading(), second)
    assert (status, reason) == ("fail", "heartbeat_frozen")
    assert facts["heartbeat_delta"] == 0 and facts["clock_advance_s"] == 0


def test_a_heartbeat_that_went_back_is_a_restart() -> None:
    second = reading(read_at=T0 + timedelta(seconds=2), heartbeat_s=1, exchanges=("ex-3",))
    assert live(reading(), second)[:2] == ("pass", "heartbeat_restarted")


def test_without_a_heartbeat_the_clock_tells() -> None:
    first = reading(heartbeat_s=None)
    moving = reading(heartbeat_s=None, device_time=T0 + timedelta(seconds=5), exchanges=("ex-3",))
    assert live(first, moving)[:2] == ("pass", "alive")
    assert live(first, replace(moving, device_time=first.device_time))[:2] == ("fail", "heartbeat_frozen")
    blind = reading(heartbeat_s=None, device_time=None)
    assert live(blind, blind)[:2] == ("fail", "no_liveness_signal")


def test_collector_errors_become_findings_with_their_evidence() -> None:
    hung = Unreachable("fp1: no reply", timed_out=True, exchange_id="ex-9")
    f = finding.collector_finding(
        "panel_liveness", "fp1", hung, status="fail", started_at=T0, finished_at=T1, evidence=("ex-1",)
    )
    assert (f.status, f.reason, f.evidence) == ("fail", "unreachable", ("ex-1", "ex-9"))
    assert f.facts["timed_out"] is True
    rejected = DeviceRejected("fp1: refused", code="ILLEGAL_DATA_ADDRESS", exchange_id="ex-8")
    f = finding.collector_finding(
        "fire_water", "fp1", rejected, status="error", started_at=T0, finished_at=T1
    )
    assert (f.status, f.reason, f.facts["code"]) == ("error", "device_rejected", "ILLEGAL_DATA_ADDRESS")
    f = finding.collector_finding(
        "fire_water", "fp1", ProtocolViolation("fp1: garbage"), status="error", started_at=T0, finished_at=T1
    )
    assert (f.reason, f.evidence) == ("protocol_violation", ())


# -- fire_water -------------------------------------------------------------------------------------------
def water(r: PanelReading) -> tuple[str, str, dict[str, Any]]:
    f = fire_water.judge("fp1", r, T0, T1)
    assert f.evidence == r.exchanges
    return f.status, f.reason, f.facts


def test_fire_water_monitored_without_alarm_passes() -> None:
    status, reason, facts = water(reading())
    assert (status, reason) == ("pass", "monitored")
    assert facts["water_level_cm"] == 320 and facts["pipe_pressure_low_threshold_kpa"] == 250


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"water_level_cm": 140.0, "water_low": True}, "water_low"),
        ({"pipe_pressure_kpa": 0.0, "pressure_low": True}, "pressure_low"),
        (
            {"water_level_cm": 0.0, "water_low": True, "pipe_pressure_kpa": 10.0, "pressure_low": True},
            "water_low",
        ),
        ({"water_low_threshold_cm": 0.0}, "threshold_unset"),
        ({"water_level_cm": 140.0}, "alarm_inconsistent"),  # below threshold, alarm off
        ({"pressure_low": True}, "alarm_inconsistent"),  # far above threshold, alarm on
        ({"pipe_pressure_kpa": None}, "not_monitored"),
        ({"water_low": None}, "not_monitored"),
    ],
)
def test_fire_water_fails(values: dict[str, Any], reason: str) -> None:
    assert water(reading(**values))[:2] == ("fail", reason)


def test_fire_water_names_what_is_missing_and_what_the_panel_refused() -> None:
    r = reading(water_level_cm=None, water_low_threshold_cm=None, absent={"water_level_cm": "ex-2"})
    _, _, facts = water(r)
    assert facts["missing"] == ["water_level_cm", "water_low_threshold_cm"]
    assert facts["refused"] == {"water_level_cm": "ex-2"}


def test_fire_water_allows_rounding_in_the_makers_unit() -> None:
    """Within one raw step of its threshold a value may round either way (0.01 MPa = 10 kPa steps)."""
    coarse = {"pipe_pressure_kpa": 10.0, "pipe_pressure_low_threshold_kpa": 10.0}
    r = reading(pipe_pressure_kpa=255.0, pressure_low=True, resolution=coarse)
    assert water(r)[:2] == ("fail", "pressure_low")
    assert water(replace(r, resolution={}))[:2] == ("fail", "alarm_inconsistent")
    assert water(replace(r, pipe_pressure_kpa=260.0))[:2] == ("fail", "alarm_inconsistent")


# -- charger_load -----------------------------------------------------------------------------------------
def charger(r: PanelReading, marked: frozenset[int] = frozenset()) -> tuple[str, str, dict[str, Any]]:
    f = charger_load.judge("fp1", r, marked, T0, T1)
    assert f.evidence == r.exchanges
    return f.status, f.reason, f.facts


def test_charger_load_monitored_per_zone_passes() -> None:
    status, reason, facts = charger(reading())
    assert (status, reason) == ("pass", "monitored")
    assert facts["charger_zones"] == [2] and facts["zones"] == {"2": {"load_pct": 35.0, "overload": False}}


def test_charger_overload_now_fails() -> None:
    z2 = ZoneReading(2, charger=True, charger_overload=True, charger_load_pct=120.0)
    r = reading(zones={2: z2}, charger_overload=True, charger_max_load_pct=120.0)
    assert charger(r)[:2] == ("fail", "charger_overload")


def test_charger_zones_from_the_inventory_when_the_map_has_no_flag() -> None:
    """A gateway map: per-zone load, a panel-wide overload bit, no charger flag per zone."""
    zones = {1: ZoneReading(1, charger_load_pct=0.0), 2: ZoneReading(2, charger_load_pct=101.0)}
    r = reading(zones=zones, charger_overload=True)
    assert charger(r)[:2] == ("not_assessed", "charger_zones_unknown")
    status, reason, facts = charger(r, frozenset({2}))
    assert (status, reason) == ("fail", "charger_overload")
    assert facts["zones"]["2"] == {"load_pct": 101.0, "overload": True}  # load against threshold
    calm = replace(r, zones={2: ZoneReading(2, charger_load_pct=40.0)}, charger_overload=False)
    assert charger(calm, frozenset({2}))[:2] == ("pass", "monitored")


@pytest.mark.parametrize(
    ("zone", "panel", "expected"),
    [
        (ZoneReading(2, charger=False, charger_load_pct=0.0), {}, ("not_assessed", "no_charger_zones")),
        (ZoneReading(2, charger=True, charger_overload=False), {}, ("fail", "not_monitored")),
        (
            ZoneReading(2, charger=True, charger_load_pct=50.0),
            {"charger_overload": None, "charger_overload_threshold_pct": None},
            ("fail", "not_monitored"),
        ),
        (
            ZoneReading(2, charger=True, charger_overload=True, charger_load_pct=50.0),
            {},
            ("fail", "alarm_inconsistent"),
        ),
    ],
)
def test_charger_load_cannot_pass(
    zone: ZoneReading, panel: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert charger(reading(zones={2: zone}, **panel))[:2] == expected


# -- emergency_outputs -------------------------------------------------------------------------------------
def outputs(r: PanelReading) -> tuple[str, str, dict[str, Any], float | None]:
    f = emergency_outputs.judge("fp1", r, T0, T1)
    assert f.evidence == r.exchanges
    return f.status, f.reason, f.facts, f.ratio


def test_emergency_outputs_monitored_and_sound_pass() -> None:
    status, reason, facts, _ = outputs(reading(lighting_on=True, broadcast_on=True, broadcast_zone=2))
    assert (status, reason) == ("pass", "monitored")
    assert facts["lighting_on"] is True and facts["broadcast_zone"] == 2


def test_emergency_outputs_fail_or_partial() -> None:
    assert outputs(reading(lighting_fault=True))[:2] == ("fail", "lighting_fault")
    blind = reading(lighting_on=None, lighting_fault=None, broadcast_on=None)
    assert outputs(blind)[:2] == ("fail", "not_monitored")
    status, reason, facts, ratio = outputs(reading(broadcast_on=None))
    assert (status, reason, ratio) == ("partial", "partially_monitored", 0.5)
    assert facts["lighting_monitored"] is True and facts["broadcast_monitored"] is False


def test_every_value_a_profile_may_name_has_a_field_in_the_reading() -> None:
    assert set(PANEL_VALUES) - set(CLOCK_VALUES) <= {f.name for f in fields(PanelReading)}
    assert set(ZONE_VALUES) <= {f.name for f in fields(ZoneReading)}

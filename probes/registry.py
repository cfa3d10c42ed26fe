"""Every probe zhian has, listed explicitly (a test compares this list with the files on disk)."""

from __future__ import annotations

from probes import (
    broker_auth,
    charger_load,
    door_alarms,
    emergency_outputs,
    event_service,
    fire_water,
    gateway_status,
    heartbeat,
    panel_liveness,
    recording_alive,
    retention,
)
from probes.base import ProbeSpec

PROBES: dict[str, ProbeSpec] = {
    spec.id: spec
    for spec in (
        panel_liveness.SPEC,
        fire_water.SPEC,
        charger_load.SPEC,
        emergency_outputs.SPEC,
        retention.SPEC,
        recording_alive.SPEC,
        event_service.SPEC,
        door_alarms.SPEC,
        heartbeat.SPEC,
        gateway_status.SPEC,
        broker_auth.SPEC,
    )
}

"""Every probe zhian has, listed explicitly (a test compares this list with the files on disk)."""

from __future__ import annotations

from probes import (
    broker_auth,
    charger_load,
    clock_skew,
    door_alarms,
    emergency_outputs,
    event_service,
    fire_water,
    gateway_status,
    heartbeat,
    isapi_retention,
    login_lockout,
    offline_alert,
    offline_alert_test,
    panel_liveness,
    platform_auth,
    privacy_masking,
    recording_alive,
    retention,
    transport_security,
    video_loss_alert,
    video_signal,
    weak_credentials,
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
        isapi_retention.SPEC,
        recording_alive.SPEC,
        event_service.SPEC,
        video_signal.SPEC,
        video_loss_alert.SPEC,
        door_alarms.SPEC,
        heartbeat.SPEC,
        gateway_status.SPEC,
        broker_auth.SPEC,
        offline_alert.SPEC,
        offline_alert_test.SPEC,
        clock_skew.SPEC,
        transport_security.SPEC,
        platform_auth.SPEC,
        privacy_masking.SPEC,
        weak_credentials.SPEC,
        login_lockout.SPEC,
    )
}

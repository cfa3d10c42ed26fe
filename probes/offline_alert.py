"""Offline alert (passive): every device found down has a device_offline alert on the platform.

zhian finds the devices that are down on its own (a refused or silent port; an MQTT device whose
retained status says offline, or whose heartbeats stopped while its status still says online)
and then gives the platform the alert window to show an alert for each, counted from the latest
moment every one of them is known to have been down: the port check, the start of the MQTT window
for a device that sent no heartbeat in all of it, the window's end for one whose status says
offline (it may have turned so at any time in the window). With nothing down there is nothing to
observe passively: the active `offline_alert_test` makes a device go away.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.mqtt_common import (
    InventoryError,
    broker_of,
    device_liveness,
    interval_of,
    matcher_of,
    shared_index,
)
from probes.offline_common import tcp_down, wait_for_alerts
from probes.targets import Target

PROBE = "offline_alert"
DOWN = ("offline", "stale_online", "silent")


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    offline_alert_window_s: float = Field(default=180, gt=0)
    heartbeat_interval_s: float = Field(default=30, gt=0)
    heartbeat_misses: int = Field(default=3, ge=1)
    observe_s: float = Field(default=60, gt=0)
    connect_timeout_s: float = Field(default=3, gt=0)


async def devices_down(ctx: ProbeContext, params: Params) -> tuple[dict[str, str], tuple[str, ...], datetime]:
    """Device id -> why we think it is down; the evidence of the MQTT observations; and the latest
    moment every device found down is known to have been down since."""
    down: dict[str, str] = {}
    evidence: list[str] = []
    hosts = [t for t in ctx.site.targets if t.kind in ("camera", "nvr", "door", "panel")]
    results = await asyncio.gather(*(tcp_down(ctx, t, params.connect_timeout_s) for t in hosts))
    since = ctx.clock()  # every port checked by now
    down |= {t.id: "port_unreachable" for t, is_down in zip(hosts, results, strict=True) if is_down}
    for device in ctx.site.of_kind("mqtt_device"):
        try:
            m, broker = matcher_of(device), broker_of(ctx, device)
        except InventoryError:
            continue
        observation, index = await shared_index(ctx, broker, m, params.observe_s)
        evidence.append(observation.exchange_id)
        interval, _ = interval_of(device, params.heartbeat_interval_s)
        live = device_liveness(PROBE, observation, index, device.id, interval, params.heartbeat_misses)
        if live.reason in DOWN:
            down[device.id] = live.reason
            # silent all through the window, or reported offline at some time in it
            known = observation.ended_at if live.reason == "offline" else observation.started_at
            since = max(since, known)
    return down, tuple(dict.fromkeys(evidence)), since


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        down, evidence, since = await devices_down(ctx, params)
        if not down:
            return Finding(
                PROBE,
                target.id,
                "not_assessed",
                "nothing_offline",
                "No device was down during the inspection, so no offline alert could be observed.",
                {"checked": len(ctx.site.targets)},
                evidence,
                started_at=started,
                finished_at=ctx.clock(),
            )
        left_s = params.offline_alert_window_s - (ctx.clock() - since).total_seconds()
        waited = await wait_for_alerts(ctx, target, down, max(0.0, left_s))
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    missing = sorted(set(down) - set(waited.found))
    facts: dict[str, Any] = {
        "down": down,
        "alerted": {d: a.id for d, a in sorted(waited.found.items())},
        "missing": missing,
        "window_s": params.offline_alert_window_s,
        "down_since": since.isoformat(),
    }
    proof = (*evidence, *waited.evidence)
    if missing:
        return Finding(
            PROBE,
            target.id,
            "fail",
            "alert_missing",
            f"{len(missing)} of {len(down)} devices found down have no device_offline alert on the "
            f"platform {params.offline_alert_window_s:g} s after they were known down: "
            f"{', '.join(missing[:10])}.",
            facts,
            proof,
            started_at=started,
            finished_at=ctx.clock(),
        )
    return Finding(
        PROBE,
        target.id,
        "pass",
        "alerts_raised",
        f"Every device found down ({len(down)}) has a device_offline alert on the platform.",
        facts,
        proof,
        started_at=started,
        finished_at=ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="Devices found offline have an alert on the platform",
    mode="passive",
    applies_to=("platform",),
    params=Params,
    timeout_s=600,
    run=run,
    window=True,
)

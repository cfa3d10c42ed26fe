"""Heartbeat: an MQTT device behind a gateway is alive, not merely retained "online".

Every device probe of a run reads the same observation window of the broker (one subscription to
the site's statuses and heartbeats), so a 5,000-device site costs one connection and one window.
The verdict rests on the heartbeats seen in that window, debounced over `heartbeat_misses`
intervals; the retained status only says what the site believes (mqtt_common.judge_liveness).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding, inventory_finding
from probes.mqtt_common import (
    InventoryError,
    broker_of,
    device_liveness,
    interval_of,
    matcher_of,
    shared_index,
)
from probes.targets import Target

PROBE = "heartbeat"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # used when the inventory does not give the gateway's own interval (target params.heartbeat_s)
    heartbeat_interval_s: float = Field(default=30, gt=0)
    heartbeat_misses: int = Field(default=3, ge=1)  # missed in a row that make an outage
    observe_s: float = Field(default=60, gt=0)  # the shared window; >= misses x interval to judge silence


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        m = matcher_of(target)
        broker = broker_of(ctx, target)
    except InventoryError as exc:
        return inventory_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    gateway = m.gateway
    try:
        observation, index = await shared_index(ctx, broker, m, params.observe_s)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    interval, source = interval_of(target, params.heartbeat_interval_s)
    live = device_liveness("The device", observation, index, target.id, interval, params.heartbeat_misses)
    return Finding(
        probe=PROBE,
        device=target.id,
        status=live.status,
        reason=live.reason,
        detail=live.detail,
        facts=live.facts
        | {"interval_from": source, "gateway": gateway, "broker": broker.id, "profile": m.profile.name},
        evidence=(observation.exchange_id,),
        started_at=started,
        finished_at=ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="MQTT device sends heartbeats (not only a retained online status)",
    mode="passive",
    applies_to=("mqtt_device",),
    params=Params,
    timeout_s=300.0,
    run=run,
    window=True,
)

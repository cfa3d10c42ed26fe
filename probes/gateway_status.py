"""Gateway status: an IoT gateway is alive on the broker, and how many of its children are not.

The gateway is judged like any device (its own status and heartbeats in the shared window): a
Will "offline/lwt" shows a gateway whose connection died. Its children are only counted in the
facts, since each has its own heartbeat finding; a dead gateway leaves them all retained
"online" and silent, and the count makes that visible on the gateway's row.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.mqtt.messages import Observation
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding, inventory_finding
from probes.mqtt_common import (
    DeviceIndex,
    InventoryError,
    broker_of,
    child_ids,
    device_liveness,
    interval_of,
    matcher_of,
    shared_index,
)
from probes.targets import Target

PROBE = "gateway_status"
LISTED = 50  # child ids named per reason in the facts; the counts are always complete


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_interval_s: float = Field(default=30, gt=0)  # when the inventory gives no heartbeat_s
    heartbeat_misses: int = Field(default=3, ge=1)
    observe_s: float = Field(default=60, gt=0)


def children_facts(
    observation: Observation,
    index: DeviceIndex,
    children: list[str],
    interval_s: float,
    misses: int,
) -> dict[str, Any]:
    """How many children are alive, stale, offline, silent... (by heartbeat reason), and which."""
    by_reason: dict[str, list[str]] = {}
    for child in children:
        live = device_liveness("", observation, index, child, interval_s, misses)
        by_reason.setdefault(live.reason, []).append(child)
    alive = {"alive", "alive_no_status"}
    return {
        "children": len(children),
        "children_by_reason": {reason: len(ids) for reason, ids in sorted(by_reason.items())},
        "children_not_alive": {
            reason: ids[:LISTED] for reason, ids in sorted(by_reason.items()) if reason not in alive
        },
    }


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        m = matcher_of(target)
        broker = broker_of(ctx, target)
    except InventoryError as exc:
        return inventory_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    try:
        observation, index = await shared_index(ctx, broker, m, params.observe_s)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    interval, source = interval_of(target, params.heartbeat_interval_s)
    misses = params.heartbeat_misses
    live = device_liveness("The gateway", observation, index, target.id, interval, misses)
    children = children_facts(observation, index, child_ids(target.params.get("children")), interval, misses)
    return Finding(
        probe=PROBE,
        device=target.id,
        status=live.status,
        reason=live.reason,
        detail=live.detail,
        facts=live.facts
        | {"interval_from": source, "broker": broker.id, "profile": m.profile.name}
        | children,
        evidence=(observation.exchange_id,),
        started_at=started,
        finished_at=ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="IoT gateway is online on the broker and sends heartbeats; its children counted",
    mode="passive",
    applies_to=("gateway",),
    params=Params,
    timeout_s=300.0,
    run=run,
    window=True,
)

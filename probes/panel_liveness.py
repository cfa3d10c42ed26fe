"""Panel liveness: the fire panel's running state can be monitored (it answers, and its heartbeat moves).

A panel whose processing has stopped may still answer Modbus with its last values: only a counter
that advances between two reads some seconds apart tells a live panel from a frozen one. An
unreachable panel fails this property (it cannot be monitored); a reply that is not Modbus is an
error (we could not judge).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError, Unreachable
from collectors.exchange import now
from collectors.modbus.client import ModbusClient
from collectors.modbus.readings import PanelReading
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding, inventory_finding
from probes.panel_common import panel_site, shared_reading
from probes.targets import Target

PROBE = "panel_liveness"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # heartbeat and clock count seconds: 1.5 s holds at least one tick
    interval_s: float = Field(default=5.0, ge=1.5, le=120)


def judge(
    device: str, first: PanelReading, second: PanelReading, started_at: datetime, finished_at: datetime
) -> Finding:
    """Alive when the heartbeat counter moved between the reads (or, with no heartbeat in the map,
    the panel's clock did); frozen when it stood still."""
    elapsed = (second.read_at - first.read_at).total_seconds()
    facts: dict[str, Any] = {
        "heartbeat_first": first.heartbeat_s,
        "heartbeat_second": second.heartbeat_s,
        "elapsed_s": round(elapsed, 3),
        "clock_advance_s": None,
        "clock_skew_s": None,
    }
    if first.device_time is not None and second.device_time is not None:
        facts["clock_advance_s"] = (second.device_time - first.device_time).total_seconds()
    if second.device_time is not None:
        facts["clock_skew_s"] = round((second.device_time - second.read_at).total_seconds(), 1)

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(
            probe=PROBE,
            device=device,
            status=status,
            reason=reason,
            detail=detail,
            facts=facts,
            evidence=first.exchanges + second.exchanges,
            started_at=started_at,
            finished_at=finished_at,
        )

    if first.heartbeat_s is not None and second.heartbeat_s is not None:
        delta = facts["heartbeat_delta"] = second.heartbeat_s - first.heartbeat_s
        if delta == 0:
            return finding(
                "fail",
                "heartbeat_frozen",
                f"The panel answers but its heartbeat stood at {second.heartbeat_s} for {elapsed:.1f} s: "
                "its processing has stopped.",
            )
        if delta < 0:
            return finding(
                "pass",
                "heartbeat_restarted",
                f"The panel's heartbeat went from {first.heartbeat_s} back to {second.heartbeat_s}: "
                "it restarted between the reads and runs again.",
            )
        return finding("pass", "alive", f"The panel's heartbeat advanced by {delta} in {elapsed:.1f} s.")
    advance = facts["clock_advance_s"]
    if advance is not None:
        if advance <= 0:
            return finding(
                "fail",
                "heartbeat_frozen",
                f"The panel has no heartbeat in its map and its clock stood still for {elapsed:.1f} s.",
            )
        return finding("pass", "alive", f"The panel's clock advanced by {advance:g} s in {elapsed:.1f} s.")
    return finding(
        "fail",
        "no_liveness_signal",
        "The panel answers but shows neither a heartbeat nor a clock, so a frozen panel cannot be "
        "told from a live one.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        site = panel_site(target)
    except ValueError as exc:
        return inventory_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    seen: tuple[str, ...] = ()
    try:
        first = await shared_reading(ctx, target, site)
        seen = first.exchanges
        wait = params.interval_s - (now() - first.read_at).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        async with ModbusClient(ctx.connection(target)) as client:
            second = await client.read_panel(site.profile, site.unit_id, ())
    except CollectorError as exc:
        # a panel nobody can reach cannot be monitored: that is the finding; garbage is an error
        status: Status = "fail" if isinstance(exc, Unreachable) else "error"
        return collector_finding(
            PROBE, target.id, exc, status=status, started_at=started, finished_at=ctx.clock(), evidence=seen
        )
    return judge(target.id, first, second, started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire panel answers and its heartbeat advances",
    mode="passive",
    applies_to=("panel",),
    params=Params,
    timeout_s=90.0,
    run=run,
)

"""Emergency outputs: emergency lighting and the emergency broadcast report their state, and are sound.

Monitored means the panel shows whether each output is on (lighting also whether it is faulty).
Whether that state reaches the platform is checked elsewhere; this probe checks that it exists at
the source and that the lighting circuit is not in fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from collectors.modbus.readings import PanelReading
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status
from probes.panel_common import PanelSite, judge_reading
from probes.targets import Target

PROBE = "emergency_outputs"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def judge(device: str, reading: PanelReading, started_at: datetime, finished_at: datetime) -> Finding:
    lighting = reading.lighting_on is not None and reading.lighting_fault is not None
    broadcast = reading.broadcast_on is not None
    facts: dict[str, Any] = {
        "lighting_monitored": lighting,
        "broadcast_monitored": broadcast,
        "lighting_on": reading.lighting_on,
        "lighting_fault": reading.lighting_fault,
        "broadcast_on": reading.broadcast_on,
        "broadcast_zone": reading.broadcast_zone,
    }

    def finding(status: Status, reason: str, detail: str, ratio: float | None = None) -> Finding:
        return Finding(
            probe=PROBE,
            device=device,
            status=status,
            reason=reason,
            detail=detail,
            facts=facts,
            evidence=reading.exchanges,
            ratio=ratio,
            started_at=started_at,
            finished_at=finished_at,
        )

    if reading.lighting_fault:
        return finding("fail", "lighting_fault", "The panel reports the emergency lighting circuit in fault.")
    if not (lighting or broadcast):
        return finding(
            "fail",
            "not_monitored",
            "The panel reports the state of neither emergency lighting nor broadcast.",
        )
    if not (lighting and broadcast):
        missing = "broadcast" if lighting else "lighting (on and fault)"
        return finding(
            "partial", "partially_monitored", f"The panel does not report the emergency {missing} state.", 0.5
        )
    return finding(
        "pass",
        "monitored",
        f"Emergency lighting ({'on' if reading.lighting_on else 'off'}, no fault) and broadcast "
        f"({'on' if reading.broadcast_on else 'off'}) report their state.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    def judged(site: PanelSite, reading: PanelReading, started: datetime, finished: datetime) -> Finding:
        return judge(target.id, reading, started, finished)

    return await judge_reading(ctx, target, PROBE, judged)


SPEC = ProbeSpec(
    id=PROBE,
    title="Emergency lighting and broadcast report their state, lighting not in fault",
    mode="passive",
    applies_to=("panel",),
    params=Params,
    timeout_s=60.0,
    run=run,
)

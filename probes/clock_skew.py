"""Clock skew: the device's clock against the inspector's.

Every timestamp in the evidence (recordings, events, alarms, linkage timings) is read on some
device's clock, so its skew is measured and kept. GB 50348 asks for synchronised system time.
The skew is the device's time minus the midpoint of our request, so network delay cancels out
to within half the round trip.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient
from collectors.modbus.client import ModbusClient
from collectors.onvif import OnvifClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding, inventory_finding
from probes.panel_common import panel_site
from probes.targets import Target

PROBE = "clock_skew"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    clock_skew_max_s: float = Field(default=10.0, ge=0)


async def device_time(ctx: ProbeContext, target: Target) -> tuple[datetime, str]:
    if target.protocol == "onvif":
        async with ctx.client(OnvifClient, target) as onvif:
            return await onvif.device_time()
    if target.protocol == "isapi":
        async with ctx.client(IsapiClient, target) as isapi:
            return await isapi.device_time()
    site = panel_site(target)
    async with ModbusClient(ctx.connection(target)) as modbus:
        return await modbus.device_time(site.profile, site.unit_id)


def judge(
    target: Target, device: datetime, before: datetime, after: datetime, exchange: str, params: Params
) -> Finding:
    midpoint = before + (after - before) / 2
    skew = (device - midpoint).total_seconds()
    facts = {
        "skew_s": round(skew, 3),
        "round_trip_s": round((after - before).total_seconds(), 3),
        "device_time": device.isoformat(),
        "inspector_time": midpoint.isoformat(),
        "max_s": params.clock_skew_max_s,
    }
    ok = abs(skew) <= params.clock_skew_max_s
    detail = (
        f"The device clock is {abs(skew):.1f} s {'ahead' if skew > 0 else 'behind'}"
        f" ({'within' if ok else 'beyond'} {params.clock_skew_max_s:g} s)."
    )
    status: Status = "pass" if ok else "fail"
    return Finding(
        PROBE,
        target.id,
        status,
        "clock_in_sync" if ok else "clock_skew",
        detail,
        facts,
        (exchange,),
        started_at=before,
        finished_at=after,
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    before = ctx.clock()
    try:
        device, exchange = await device_time(ctx, target)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=before, finished_at=ctx.clock())
    except ValueError as exc:  # the panel's inventory entry cannot be used
        return inventory_finding(PROBE, target.id, exc, started_at=before, finished_at=ctx.clock())
    return judge(target, device, before, ctx.clock(), exchange, params)


SPEC = ProbeSpec(
    id=PROBE,
    title="The device clock agrees with the inspector's",
    mode="passive",
    applies_to=("camera", "nvr", "door", "panel"),
    params=Params,
    timeout_s=60,
    run=run,
)

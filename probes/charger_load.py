"""Charger load: the panel watches the load of the charging piles per zone and reports overload.

Charger zones are those the panel itself flags as watching charging piles, and those the inventory
marks `charger: true` (for panels whose map carries no such flag). Monitored means every charger
zone's load is readable and an overload state is reported (per zone, or panel-wide with its
threshold). An overload now is a real finding (a fire risk), so it fails too.
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

PROBE = "charger_load"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def judge(
    device: str,
    reading: PanelReading,
    marked: frozenset[int],
    started_at: datetime,
    finished_at: datetime,
) -> Finding:
    """`marked`: the zones the inventory says watch charging piles."""
    threshold = reading.charger_overload_threshold_pct
    flag_known = any(z.charger is not None for z in reading.zones.values())
    chargers = sorted(z for z, r in reading.zones.items() if r.charger or z in marked)
    zones: dict[str, dict[str, Any]] = {}
    facts: dict[str, Any] = {
        "charger_zones": chargers,
        "overload_threshold_pct": threshold,
        "panel_overload": reading.charger_overload,
        "max_load_pct": reading.charger_max_load_pct,
        "zones": zones,
    }

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(
            probe=PROBE,
            device=device,
            status=status,
            reason=reason,
            detail=detail,
            facts=facts,
            evidence=reading.exchanges,
            started_at=started_at,
            finished_at=finished_at,
        )

    if not chargers:
        if flag_known:
            return finding(
                "not_assessed", "no_charger_zones", "None of the panel's zones watches charging piles."
            )
        return finding(
            "not_assessed",
            "charger_zones_unknown",
            "The panel does not say which zones watch charging piles and the inventory marks none.",
        )
    step = reading.resolution.get("charger_load_pct", 1.0)
    for zone in chargers:
        r = reading.zones[zone]
        load, overload = r.charger_load_pct, r.charger_overload
        over: bool | None = None
        if load is not None and threshold is not None:
            over = load > threshold
            if overload is not None and overload != over and abs(load - threshold) >= step:
                return finding(
                    "fail",
                    "alarm_inconsistent",
                    f"Zone {zone} carries {load:g} % against an overload threshold of {threshold:g} %, but "
                    f"the panel's overload flag is {'on' if overload else 'off'}.",
                )
        zones[str(zone)] = {"load_pct": load, "overload": overload if overload is not None else over}
    unread = [z for z in chargers if zones[str(z)]["load_pct"] is None]
    unflagged = (
        [z for z in chargers if zones[str(z)]["overload"] is None] if reading.charger_overload is None else []
    )
    if unread or unflagged:
        facts["refused"] = dict(reading.absent)
        what = f"the load of zones {unread}" if unread else f"an overload state for zones {unflagged}"
        return finding(
            "fail", "not_monitored", f"The panel does not report {what}: charger load is not monitored."
        )
    overloaded = [z for z in chargers if zones[str(z)]["overload"]]
    if overloaded or reading.charger_overload:
        where = f"zones {overloaded}" if overloaded else "a charger zone"
        return finding(
            "fail", "charger_overload", f"The panel reports charging piles overloaded now in {where}."
        )
    loads = ", ".join(f"zone {z}: {zones[str(z)]['load_pct']:g} %" for z in chargers)
    return finding("pass", "monitored", f"Charging-pile load is monitored per zone ({loads}), no overload.")


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    def judged(site: PanelSite, reading: PanelReading, started: datetime, finished: datetime) -> Finding:
        return judge(target.id, reading, site.charger_zones, started, finished)

    return await judge_reading(ctx, target, PROBE, judged)


SPEC = ProbeSpec(
    id=PROBE,
    title="Charging-pile load is monitored per zone, with overload alarms",
    mode="passive",
    applies_to=("panel",),
    params=Params,
    timeout_s=60.0,
    run=run,
)

"""Fire water: the tank level and the pipe pressure are monitored against low-alarm thresholds.

Monitored means the panel reports each value, its low threshold (set, above zero) and its low
alarm, and the alarm agrees with value against threshold. A low tank or low pressure now is a
real finding (the sprinklers would run dry), so an active alarm fails too.
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

PROBE = "fire_water"
# (what, value, threshold, alarm bit, alarm reason)
_MEASURES = (
    ("water level", "water_level_cm", "water_low_threshold_cm", "water_low", "water_low"),
    ("pipe pressure", "pipe_pressure_kpa", "pipe_pressure_low_threshold_kpa", "pressure_low", "pressure_low"),
)


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def judge(device: str, reading: PanelReading, started_at: datetime, finished_at: datetime) -> Finding:
    facts: dict[str, Any] = {}
    for _, value, threshold, alarm, _ in _MEASURES:
        facts |= {n: getattr(reading, n) for n in (value, threshold, alarm)}

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

    missing = [n for n in facts if facts[n] is None]
    if missing:
        facts["missing"] = missing
        facts["refused"] = {n: reading.absent[n] for n in missing if n in reading.absent}
        return finding(
            "fail",
            "not_monitored",
            f"The panel does not report {', '.join(missing)}: fire water is not monitored.",
        )
    unset = [threshold for _, _, threshold, _, _ in _MEASURES if facts[threshold] <= 0]
    if unset:
        return finding("fail", "threshold_unset", f"No low-alarm threshold is set ({', '.join(unset)} = 0).")
    alarms: list[tuple[str, str, float, float]] = []
    for what, value, threshold, alarm, reason in _MEASURES:
        below = facts[value] < facts[threshold]
        # within one raw step of its threshold a value may round either way in the maker's unit
        step = max(reading.resolution.get(value, 1.0), reading.resolution.get(threshold, 1.0))
        if facts[alarm] != below and abs(facts[value] - facts[threshold]) >= step:
            return finding(
                "fail",
                "alarm_inconsistent",
                f"The {what} reads {facts[value]:g} against a threshold of {facts[threshold]:g}, "
                f"but the panel's low alarm is {'on' if facts[alarm] else 'off'}.",
            )
        if facts[alarm]:
            alarms.append((what, reason, facts[value], facts[threshold]))
    if alarms:
        shown = "; ".join(f"{what} {v:g} below {t:g}" for what, _, v, t in alarms)
        return finding("fail", alarms[0][1], f"The panel reports a low-alarm now: {shown}.")
    return finding(
        "pass",
        "monitored",
        f"Tank level {facts['water_level_cm']:g} cm (alarm below {facts['water_low_threshold_cm']:g}) and "
        f"pipe pressure {facts['pipe_pressure_kpa']:g} kPa (alarm below "
        f"{facts['pipe_pressure_low_threshold_kpa']:g}) are monitored, no alarm.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    def judged(site: PanelSite, reading: PanelReading, started: datetime, finished: datetime) -> Finding:
        return judge(target.id, reading, started, finished)

    return await judge_reading(ctx, target, PROBE, judged)


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire water tank level and pipe pressure are monitored with low alarms",
    mode="passive",
    applies_to=("panel",),
    params=Params,
    timeout_s=60.0,
    run=run,
)

"""The passive mode of the intrusion linkage: a real intruder a perimeter camera's analytics reported
to the monitor's event subscription (passive.py has what every real trigger shares).

The trigger is the camera's RuleEngine event (a line crossed, objects inside a field) as the
subscription heard it; `trigger_at` is the return of the camera's previous pull, the last moment zhian
knew nothing had been reported (a long poll returns as soon as a message comes, so this is the
pull's moment, not its wait). The effects are the active test's: the area's cameras raise their alarm
(the camera that saw the intruder among them), its lighting relays switch on within
deadline_lighting_s, and the platform raises an `intrusion` alert for the camera or its area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probes.base import ProbeContext
from probes.finding import Finding
from probes.linkage.judge import judge_effect
from probes.linkage.params import INTRUSION, Effect, IntrusionParams
from probes.linkage.passive import EventHistory, PassiveLinkage, RealTrigger
from probes.linkage.site import intrusion_cameras
from probes.linkage.watches import LinkageRun
from probes.targets import Target

INTRUSION_PROBES: dict[Effect, str] = {
    "video": "intrusion_linkage_video",
    "lighting": "intrusion_linkage_lighting",
    "alert": "intrusion_linkage_alert",
}


@dataclass(frozen=True)
class RealIntrusion(RealTrigger):
    """An intruder seen: the subject is the camera, `event` the analytics topic that said so."""

    event: str
    device_time: str | None  # the event's UtcTime, on the camera's clock


class PassiveIntrusion(PassiveLinkage):
    test = INTRUSION
    alert_type = "intrusion"

    def __init__(
        self, ctx: ProbeContext, params: IntrusionParams, intrusion: RealIntrusion, history: EventHistory
    ) -> None:
        self.intrusion = intrusion
        super().__init__(ctx, params, intrusion, history, params.deadline_lighting_s)

    def cameras(self) -> tuple[Target, ...]:
        return intrusion_cameras(self.ctx.site, self.intrusion.subject)

    def facts(self) -> dict[str, Any]:
        i = self.intrusion
        own = {"camera": i.subject.id, "trigger_event": i.event, "trigger_device_time": i.device_time}
        return own | super().facts()


async def observe_real_intrusion(
    ctx: ProbeContext, params: IntrusionParams, intrusion: RealIntrusion, history: EventHistory
) -> tuple[LinkageRun, list[Finding]]:
    """The run, and each intrusion_linkage probe's finding on it (the camera's)."""
    started = ctx.clock()
    run = await PassiveIntrusion(ctx, params, intrusion, history).run()
    finished = ctx.clock()
    camera = intrusion.subject.id
    return run, [
        judge_effect(probe, camera, run, effect, started, finished)
        for effect, probe in INTRUSION_PROBES.items()
    ]

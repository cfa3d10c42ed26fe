"""Fire alarm -> the cameras of the zone's area raise their alarm (A3.2.4, B3.2.2).

The panel's fire test (probes/linkage_common) subscribes a PullPoint on every camera of the area
before the alarm; the linkage's effect is the camera's alarm input (tns1:Device/Trigger/DigitalInput,
or its alarm output Device/Trigger/Relay) turning active after the trigger. Pass when every camera
raised it within deadline_camera_alarm_s.
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import FIRE, TIMEOUT_S, FireParams, fire_finding
from probes.targets import Target

PROBE = "fire_linkage_video"


class Params(FireParams):
    """The fire test's parameters: every fire_linkage probe has them all, as they share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await fire_finding(ctx, target, params, PROBE, "video")


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire alarm raises the zone's camera alarms in time",
    mode="active",
    applies_to=("panel",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=FIRE,
)

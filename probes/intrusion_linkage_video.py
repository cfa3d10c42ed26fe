"""Perimeter intrusion -> the area's cameras raise their alarm (A1.2.1, C1.2.1, A1.2.2).

Guided: the operator walks into the camera's detection zone; the camera's own analytics event
(RuleEngine, e.g. FieldDetector/ObjectsInside) is the trigger. Pass when every camera of the area
raised its alarm input within deadline_camera_alarm_s. The test (probes/linkage_common) is shared by
the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import INTRUSION, TIMEOUT_S, IntrusionParams, intrusion_finding
from probes.targets import Target

PROBE = "intrusion_linkage_video"


class Params(IntrusionParams):
    """The intrusion test's parameters: the three intrusion_linkage probes share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await intrusion_finding(ctx, target, params, PROBE, "video")


SPEC = ProbeSpec(
    id=PROBE,
    title="Perimeter intrusion raises the area's camera alarms in time",
    mode="active",
    applies_to=("camera",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=INTRUSION,
)

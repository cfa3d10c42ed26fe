"""Perimeter intrusion -> the platform raises an intrusion alert for the camera or its area, so the
guards are told (A1.2.2, A1.2.1), within deadline_platform_alert_s of the camera's event.

The test (probes/linkage_common) is shared by the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import INTRUSION, TIMEOUT_S, IntrusionParams, intrusion_finding
from probes.targets import Target

PROBE = "intrusion_linkage_alert"


class Params(IntrusionParams):
    """The intrusion test's parameters: the three intrusion_linkage probes share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await intrusion_finding(ctx, target, params, PROBE, "alert")


SPEC = ProbeSpec(
    id=PROBE,
    title="Perimeter intrusion reaches the platform as an alert in time",
    mode="active",
    applies_to=("camera",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=INTRUSION,
)

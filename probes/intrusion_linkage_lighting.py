"""Perimeter intrusion -> the area's lighting relays switch on (A1.2.1, C1.2.1 at night).

The relays' MQTT state and telemetry are observed read-only; pass when every lighting relay of the
area switched on within deadline_lighting_s of the camera's intrusion event. The test
(probes/linkage_common) is shared by the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import INTRUSION, TIMEOUT_S, IntrusionParams, intrusion_finding
from probes.targets import Target

PROBE = "intrusion_linkage_lighting"


class Params(IntrusionParams):
    """The intrusion test's parameters: the three intrusion_linkage probes share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await intrusion_finding(ctx, target, params, PROBE, "lighting")


SPEC = ProbeSpec(
    id=PROBE,
    title="Perimeter intrusion switches the area's lighting on in time",
    mode="active",
    applies_to=("camera",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=INTRUSION,
)

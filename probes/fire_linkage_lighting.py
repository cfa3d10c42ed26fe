"""Fire alarm -> emergency lighting on (A3.5.2): the panel's emergency lighting output (its
registers) and the lighting relays of the zone's area (their MQTT state and telemetry, observed
read-only) switch on within deadline_emergency_lighting_s of the alarm.

The test is the panel's shared fire test (probes/linkage_common).
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import FIRE, TIMEOUT_S, FireParams, fire_finding
from probes.targets import Target

PROBE = "fire_linkage_lighting"


class Params(FireParams):
    """The fire test's parameters: every fire_linkage probe has them all, as they share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await fire_finding(ctx, target, params, PROBE, "lighting")


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire alarm switches emergency lighting on in time",
    mode="active",
    applies_to=("panel",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=FIRE,
)

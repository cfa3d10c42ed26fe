"""Fire alarm -> emergency broadcast on (A3.3.3, B3.3.3): the panel shows its broadcast output on
(panel-wide or for the zone) within deadline_broadcast_s of the alarm.

The test is the panel's shared fire test (probes/linkage_common).
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import FIRE, TIMEOUT_S, FireParams, fire_finding
from probes.targets import Target

PROBE = "fire_linkage_broadcast"


class Params(FireParams):
    """The fire test's parameters: every fire_linkage probe has them all, as they share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await fire_finding(ctx, target, params, PROBE, "broadcast")


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire alarm starts the emergency broadcast in time",
    mode="active",
    applies_to=("panel",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=FIRE,
)

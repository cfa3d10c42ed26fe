"""Fire alarm -> the platform raises a fire_alarm alert for the panel or the zone's area (A3.2.1, and
the platform pop-up of A3.2.4 / B3.2.2) within deadline_platform_alert_s. Alerts are read from the
platform's API since its own clock before the alarm, so the platform's clock skew does not matter.

The test is the panel's shared fire test (probes/linkage_common).
"""

from __future__ import annotations

from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage_common import FIRE, TIMEOUT_S, FireParams, fire_finding
from probes.targets import Target

PROBE = "fire_linkage_alert"


class Params(FireParams):
    """The fire test's parameters: every fire_linkage probe has them all, as they share one test."""


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    return await fire_finding(ctx, target, params, PROBE, "alert")


SPEC = ProbeSpec(
    id=PROBE,
    title="Fire alarm reaches the platform as an alert in time",
    mode="active",
    applies_to=("panel",),
    params=Params,
    timeout_s=TIMEOUT_S,
    run=run,
    active_test=FIRE,
)

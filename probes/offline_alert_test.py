"""Offline alert test (active, guided): take one device away and time the platform's alert.

The operator disconnects the device (unplugs it, takes its battery out); zhian waits for the
platform's device_offline alert within the alert window, then always asks the operator to
reconnect it, even when the wait failed or the run is interrupted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from probes.base import Operator, ProbeContext, ProbeSpec, to_the_end
from probes.finding import Finding, collector_finding
from probes.offline_common import wait_for_alerts
from probes.targets import Target

PROBE = "offline_alert_test"
RESTORE_TIMEOUT_S = 30.0


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    offline_alert_window_s: float = Field(default=180, gt=0)


async def reconnect(ctx: ProbeContext, operator: Operator, target: Target) -> None:
    """Ask the operator to reconnect the device and note the step with its outcome, which the run's
    `interrupted` finding lists when a stop cut the test short; a failure is raised afterwards."""
    step = {"step": "operator_told_reconnect", "target": target.id}
    told = operator.instruct(f"Reconnect {target.id}.", device=target.id, action="child_online", params={})
    try:
        await asyncio.wait_for(told, RESTORE_TIMEOUT_S)
    except Exception as exc:  # noted, then raised: the probe's error finding says the rest
        detail = f"the operator could not be told: {type(exc).__name__}: {exc}"
        ctx.note_restore(target.id, [step | {"operator_told": False, "ok": False, "detail": detail}])
        raise
    ctx.note_restore(
        target.id,
        [step | {"operator_told": True, "ok": True, "detail": "the operator was told to reconnect it"}],
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    platform, operator = ctx.site.platform, ctx.operator
    if platform is None or operator is None:
        missing = "platform in the inventory" if platform is None else "operator on site"
        return Finding(
            PROBE,
            target.id,
            "not_assessed",
            "cannot_test",
            f"No {missing} for this test.",
            started_at=started,
            finished_at=ctx.clock(),
        )
    cut = ctx.clock()
    try:  # from the instruction on: a stop while the operator is being told still reconnects it
        await operator.instruct(
            f"Disconnect {target.id} ({target.params.get('type', target.kind)} in {target.area}): unplug it "
            "or remove its battery, and leave it off until told.",
            device=target.id,
            action="child_offline",
            params={},
        )
        cut = ctx.clock()
        waited = await wait_for_alerts(
            ctx, platform, [target.id], params.offline_alert_window_s, since=started
        )
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    finally:
        await to_the_end(reconnect(ctx, operator, target))
    alert = waited.found.get(target.id)
    facts: dict[str, Any] = {
        "disconnected_at": cut.isoformat(),
        "window_s": params.offline_alert_window_s,
        "restored": True,
    }
    if alert is None:
        return Finding(
            PROBE,
            target.id,
            "fail",
            "alert_missing",
            f"No device_offline alert within {params.offline_alert_window_s:g} s of disconnecting.",
            facts,
            waited.evidence,
            started_at=started,
            finished_at=ctx.clock(),
        )
    delay = (waited.seen_at[target.id] - cut).total_seconds()
    facts |= {
        "alert": alert.id,
        "alert_seen_after_s": round(delay, 2),
        "raised_at": alert.raised_at.isoformat(),
    }
    return Finding(
        PROBE,
        target.id,
        "pass",
        "alert_in_time",
        f"The platform raised device_offline {delay:.1f} s after the device was disconnected.",
        facts,
        waited.evidence,
        started_at=started,
        finished_at=ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="A disconnected device raises an offline alert on the platform in time",
    mode="active",
    applies_to=("mqtt_device",),
    params=Params,
    timeout_s=600,
    run=run,
    active_test="offline_alert",
)

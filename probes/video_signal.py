"""Video signal: the camera has a live picture (its SignalLoss state is false).

A camera that has lost its video still answers ONVIF and may still "record" black frames: only the
SignalLoss state tells. Supports the coverage indicators (a camera without a picture covers nothing).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.targets import Target
from probes.video_common import signal_state

PROBE = "video_signal"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        state = await signal_state(ctx, target)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    facts = {"signal_loss_event": state.advertised, "signal_lost": state.lost}
    if state.lost:
        return Finding(
            PROBE,
            target.id,
            "fail",
            "video_signal_lost",
            "The camera reports its video signal lost.",
            facts,
            state.evidence,
            started_at=started,
            finished_at=ctx.clock(),
        )
    if state.lost is None:
        return Finding(
            PROBE,
            target.id,
            "not_assessed",
            "signal_state_unknown",
            "The camera reports no SignalLoss state, so its picture cannot be checked remotely.",
            facts,
            state.evidence,
            started_at=started,
            finished_at=ctx.clock(),
        )
    return Finding(
        PROBE,
        target.id,
        "pass",
        "video_signal_present",
        "The camera reports a live video signal.",
        facts,
        state.evidence,
        started_at=started,
        finished_at=ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="The camera has a live video signal",
    mode="passive",
    applies_to=("camera",),
    params=Params,
    timeout_s=60,
    run=run,
)

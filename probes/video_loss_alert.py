"""Video loss alarm (B1.1.2): the camera raises SignalLoss, and a lost signal reaches the platform.

Where the camera's signal is lost now, the platform must hold a video_loss alert for it; where it
is not, the function is shown by the camera offering the SignalLoss event (no one may blind a
camera during an inspection just to test this).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding
from probes.platform_common import platform_client
from probes.targets import Target
from probes.video_common import signal_state

PROBE = "video_loss_alert"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()

    def finding(
        status: Status, reason: str, detail: str, facts: dict[str, object], evidence: tuple[str, ...]
    ) -> Finding:
        return Finding(
            PROBE,
            target.id,
            status,
            reason,
            detail,
            facts,
            evidence,
            started_at=started,
            finished_at=ctx.clock(),
        )

    try:
        state = await signal_state(ctx, target)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    facts: dict[str, object] = {"signal_loss_event": state.advertised, "signal_lost": state.lost}
    if not state.advertised:
        return finding(
            "fail",
            "no_video_loss_event",
            "The camera does not offer the SignalLoss event.",
            facts,
            state.evidence,
        )
    if not state.lost:
        return finding(
            "pass",
            "video_loss_event_offered",
            "The camera offers the SignalLoss event; its signal is present, so no alert is due.",
            facts,
            state.evidence,
        )
    platform = ctx.site.platform
    if platform is None:
        return finding(
            "not_assessed",
            "no_platform",
            "The camera's video is lost and no platform is in the inventory to check the alarm on.",
            facts,
            state.evidence,
        )
    try:
        async with platform_client(ctx, platform) as api:
            alerts = await api.alerts(type="video_loss")
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=state.evidence
        )
    mine = [a for a in alerts.rows if a.device == target.id]
    facts["platform_alerts"] = [a.id for a in mine]
    evidence = (*state.evidence, alerts.exchange_id)
    if mine:
        return finding(
            "pass",
            "alert_raised",
            "The camera's video is lost and the platform raised the alarm.",
            facts,
            evidence,
        )
    return finding(
        "fail",
        "alert_missing",
        "The camera's video is lost but the platform holds no video_loss alert.",
        facts,
        evidence,
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="Video loss raises an alarm that reaches the platform",
    mode="passive",
    applies_to=("camera",),
    params=Params,
    timeout_s=60,
    run=run,
)

"""Recording alive: the newest recorded video is recent, so the camera is being recorded right now.

LatestRecording and the recorder's clock are read together and compared on the recorder's own
clock, so a recorder whose clock is off by hours is neither called stale nor fresh by mistake; the
measured skew is reported beside the age. The recorder is found as the retention probe finds it
(an NVR named by `recorded_by`, else the camera's own storage) and read once per run for both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.onvif_recording import Recording
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding, inventory_finding
from probes.recorder_common import (
    InventoryError,
    Verdict,
    combine,
    no_profile_g,
    no_recording,
    not_onvif,
    recorder_view,
    scope,
    wanted,
)
from probes.targets import Target

PROBE = "recording_alive"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recording_fresh_s: float = Field(default=300, gt=0)  # newest data at most this old


def judge_alive(recording: Recording, device_now: datetime, fresh_s: float) -> Verdict:
    """Fresh when the newest data is at most fresh_s older than the recorder's clock."""
    name = recording.source_name or recording.token
    facts: dict[str, Any] = {
        "recording": recording.token,
        "source": recording.source_name,
        "latest": recording.latest.isoformat() if recording.latest else None,
        "recording_status": recording.status,
        "fresh_s": fresh_s,
    }
    if recording.latest is None:
        facts["age_s"] = None
        return Verdict(
            recording.token, "fail", "recording_stale", f"{name}: the recording holds no data.", facts
        )
    age = max(0.0, (device_now - recording.latest).total_seconds())
    facts["age_s"] = round(age, 1)
    if age > fresh_s:
        detail = f"{name}: newest video {age / 60:.1f} min old on the recorder's clock (limit {fresh_s:g} s)."
        return Verdict(recording.token, "fail", "recording_stale", detail, facts)
    return Verdict(
        recording.token, "pass", "recording", f"{name}: the newest video is {age:.0f} s old.", facts
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        sc = scope(ctx.site, target)
    except InventoryError as exc:
        return inventory_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    if sc.recorder.protocol != "onvif":
        return not_onvif(PROBE, target, sc, started, ctx.clock())
    try:
        view = await recorder_view(ctx, sc.recorder)
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    if view.recordings is None:
        return no_profile_g(PROBE, target, sc, view, started, ctx.clock())
    chosen = [r for r, _ in wanted(ctx.site, sc, view.recordings.items)]
    if not chosen:
        return no_recording(PROBE, target, sc, view, started, ctx.clock())
    verdicts = [judge_alive(r, view.device_now, params.recording_fresh_s) for r in chosen]
    facts = {"recorder": sc.recorder.id, "clock_skew_s": view.clock_skew_s}
    return combine(PROBE, target.id, verdicts, view.evidence, facts, started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="The camera is being recorded now (newest recorded video is recent)",
    mode="passive",
    applies_to=("camera", "nvr"),
    params=Params,
    timeout_s=60.0,
    run=run,
)

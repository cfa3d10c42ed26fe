"""Retention on ISAPI NVRs (A2.3.4): video reaches back 30 days (90 at key locations) without holes.

Many NVRs on Chinese sites speak ONVIF Profile S only, so their recorded history is read over
ISAPI: the content search lists the recorded files of a channel (track = channel x 100 + 1). The
NVR is asked once per run for all its channels (one search per required window, every channel's
track in its trackIDList) and each camera is judged on its channel's share, citing the shared
pages. Days held are counted from the earliest file to the NVR's own clock; holes are the spaces
between files inside the required window. The search covers the window and one day more, so a
recorder holding more than enough shows it without listing its whole disk.

Same reason codes as the ONVIF retention probe: retention_short, recording_gap, no_recording
(data_deleted cannot be told here: the content search shows a hole but not whether the NVR
stopped recording or the data was deleted later; such holes are reported as recording_gap with
the cause left open). A camera is judged on the NVR channel the inventory gives it
(`params.recorded_by`, `params.channel`); an NVR on every camera the inventory records on it
(partial when some pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.isapi import ChannelRecordings, IsapiClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.recorder_common import Verdict, cameras_of, combine
from probes.targets import Target

PROBE = "isapi_retention"
DAY_S = 86_400.0
SEARCH_MARGIN = timedelta(days=1)


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float = Field(default=30, gt=0)
    retention_days_key: float = Field(default=90, gt=0)  # cameras tagged key_location
    gap_tolerance_s: float = Field(default=60, ge=0)  # shorter holes between files are not counted
    tail_tolerance_s: float = Field(default=3600, ge=0)  # the file being written may not be listed yet


@dataclass(frozen=True)
class ChannelView:
    """One channel searched: the NVR clock when read and the files found."""

    device_now: datetime
    search_start: datetime
    recordings: ChannelRecordings
    evidence: tuple[str, ...]


def _hours(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "hours": round((end - start).total_seconds() / 3600, 2),
    }


def judge_channel(camera: str, view: ChannelView, required: float, params: Params) -> Verdict:
    rec = view.recordings
    now = view.device_now
    window_start = now - timedelta(days=required)
    spans = rec.spans
    facts: dict[str, Any] = {
        "recording": camera,
        "channel": rec.channel,
        "track": rec.track,
        "required_days": required,
        "window_start": window_start.isoformat(),
        "searched_from": view.search_start.isoformat(),
        "configured_days": None,  # ISAPI's record schedule does not state a retention
    }
    if not spans:
        facts |= {"observed_days": 0.0, "earliest": None, "gaps": []}
        detail = f"{camera}: channel {rec.channel} holds no recorded video in the last {required:g} days."
        return Verdict(camera, "fail", "no_recording", detail, facts)
    earliest = spans[0].start
    observed = max(0.0, (now - earliest).total_seconds() / DAY_S)
    holes: list[tuple[datetime, datetime]] = []
    covered = spans[0].end  # files may overlap: a hole starts where everything before it ended
    for span in spans[1:]:
        lo = max(covered, window_start)
        if (span.start - lo).total_seconds() > params.gap_tolerance_s:
            holes.append((lo, span.start))
        covered = max(covered, span.end)
    if (now - covered).total_seconds() > params.tail_tolerance_s:
        holes.append((max(covered, window_start), now))
    facts |= {
        "observed_days": round(observed, 2),
        "earliest": earliest.isoformat(),
        "latest": covered.isoformat(),
        "reaches_search_start": earliest <= view.search_start + timedelta(seconds=params.gap_tolerance_s),
        "gaps": [_hours(a, b) for a, b in holes],
        "hole_cause": "not told by the content search (stopped recording or deleted)",
    }
    if observed < required:
        detail = (
            f"{camera}: video reaches back {observed:.1f} days, {required:g} are required; "
            "a recorder younger than the window cannot show it yet."
        )
        return Verdict(camera, "fail", "retention_short", detail, facts)
    if holes:
        hours = sum(g["hours"] for g in facts["gaps"])
        detail = f"{camera}: {hours:.1f} h without recorded video within the last {required:g} days."
        return Verdict(camera, "fail", "recording_gap", detail, facts)
    if not rec.complete:
        detail = f"{camera}: the NVR's content search did not complete, so holes cannot be ruled out."
        return Verdict(camera, "error", "search_incomplete", detail, facts)
    detail = f"{camera}: {observed:.1f} days of video held without a hole in the last {required:g} days."
    return Verdict(camera, "pass", "retained", detail, facts)


def required_days(camera: Target, params: Params) -> float:
    return params.retention_days_key if camera.key_location else params.retention_days


@dataclass(frozen=True)
class RecorderSearch:
    """An ISAPI NVR read once per run: its clock, and per required window the files of every
    channel that window applies to, from one content search over all of them."""

    device_now: datetime
    clock_id: str
    windows: dict[float, tuple[datetime, dict[int, ChannelRecordings]]]

    def view(self, channel: int, required: float) -> ChannelView:
        start, found = self.windows[required]
        recordings = found[channel]
        return ChannelView(self.device_now, start, recordings, (self.clock_id, *recordings.evidence))


def channels_by_window(ctx: ProbeContext, nvr: Target, params: Params) -> dict[float, list[int]]:
    """The NVR's channels (from the inventory's cameras on it) grouped by the days each must hold."""
    windows: dict[float, list[int]] = {}
    for camera in cameras_of(ctx.site, nvr):
        channel = camera.params.get("channel")
        if isinstance(channel, int):
            windows.setdefault(required_days(camera, params), []).append(channel)
    return windows


async def recorder_search(ctx: ProbeContext, nvr: Target, params: Params) -> RecorderSearch:
    """One clock read and one content search per required window for all the NVR's channels, per
    run, whichever camera or the NVR asks first; each camera is judged on its channel's share.
    A channel the shared search found nothing on is asked alone before it is judged: firmware that
    reads only the first trackID of the list would otherwise make it look empty."""

    async def fetch() -> RecorderSearch:
        windows: dict[float, tuple[datetime, dict[int, ChannelRecordings]]] = {}
        async with ctx.client(IsapiClient, nvr) as client:
            device_now, clock_id = await client.device_time()
            for required, channels in sorted(channels_by_window(ctx, nvr, params).items()):
                start = device_now - timedelta(days=required) - SEARCH_MARGIN
                found = await client.recordings_of(channels, start, device_now)
                for channel, shared in found.items():
                    if len(found) > 1 and not shared.spans:
                        alone = await client.recordings(channel, start, device_now)
                        found[channel] = replace(alone, evidence=(*shared.evidence, *alone.evidence))
                windows[required] = (start, found)
        return RecorderSearch(device_now, clock_id, windows)

    key = ("isapi.recorder", nvr.id, f"{params.retention_days:g}", f"{params.retention_days_key:g}")
    search: RecorderSearch = await ctx.shared(key, fetch)
    return search


def _not_assessed(target: Target, reason: str, detail: str, started: datetime, now: datetime) -> Finding:
    return Finding(PROBE, target.id, "not_assessed", reason, detail, started_at=started, finished_at=now)


def cameras_on(ctx: ProbeContext, target: Target) -> tuple[Target | None, Sequence[Target], str | None]:
    """The ISAPI NVR and the cameras to judge, or None and why not (a not-assessed reason)."""
    if target.kind == "nvr":
        if target.protocol != "isapi":
            return None, (), "not_isapi"
        return target, cameras_of(ctx.site, target), None
    recorded_by = target.params.get("recorded_by")
    try:
        nvr = ctx.site.get(str(recorded_by)) if recorded_by else None
    except KeyError:
        return None, (), "inventory_invalid"
    if nvr is None or nvr.kind != "nvr" or nvr.protocol != "isapi":
        return None, (), "not_isapi"
    return nvr, [target], None


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    nvr, cameras, why = cameras_on(ctx, target)
    if why == "inventory_invalid":
        detail = (
            f"{target.id} is recorded by {target.params.get('recorded_by')!r}, which is not in the inventory."
        )
        return Finding(PROBE, target.id, "error", why, detail, started_at=started, finished_at=ctx.clock())
    if nvr is None:
        detail = f"{target.id} is not recorded on an ISAPI NVR; the ONVIF retention probe judges it."
        return _not_assessed(target, "not_isapi", detail, started, ctx.clock())
    unplaced = [c.id for c in cameras if not isinstance(c.params.get("channel"), int)]
    if unplaced:
        detail = f"The inventory gives no NVR channel for {', '.join(unplaced)}."
        return Finding(
            PROBE,
            target.id,
            "error",
            "inventory_invalid",
            detail,
            started_at=started,
            finished_at=ctx.clock(),
        )
    if not cameras:
        detail = f"The inventory lists no camera recorded on {nvr.id}."
        return _not_assessed(target, "no_cameras", detail, started, ctx.clock())
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    try:
        search = await recorder_search(ctx, nvr, params)
        for camera in cameras:
            required = required_days(camera, params)
            view = search.view(int(camera.params["channel"]), required)
            evidence += view.evidence
            verdicts.append(judge_channel(camera.id, view, required, params))
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=tuple(evidence)
        )
    return combine(PROBE, target.id, verdicts, evidence, {"recorder": nvr.id}, started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="Video on ISAPI NVRs is kept for the required days without holes (content search)",
    mode="passive",
    applies_to=("camera", "nvr"),
    params=Params,
    timeout_s=180.0,
    run=run,
)

"""Retention (A2.3.4): recorded video reaches back the required days, without holes in that window.

Observed history is the evidence: days from the earliest recorded data to the recorder's own
clock, and the RecordingHistory holes (gaps: not recording; deletions: recording but no data)
inside the required window. The configured MaximumRetentionTime is reported beside it and never
decides: a recorder set for 90 days that holds 20 fails, whether it lost data or the site is
younger than the window.

A camera recorded by an NVR (`params.recorded_by`) is judged on the NVR's recording of it; an
NVR on all its recordings (partial when some pass). A recorder without the history search
(FindEvents answered ActionNotSupported) is judged on the span alone, and the finding says that
gaps were not checked; one without the recording search at all is `not_assessed`, saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError, Unsupported
from collectors.onvif import OnvifClient
from collectors.onvif_recording import HistorySpan, Recording, RecordingHistory, RetentionConfig
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding, inventory_finding
from probes.recorder_common import (
    InventoryError,
    RecorderView,
    Verdict,
    combine,
    no_profile_g,
    no_recording,
    not_onvif,
    recorder_view,
    scope,
    search_unsupported,
    wanted,
)
from probes.targets import Target

PROBE = "retention"
DAY_S = 86_400.0
# The history search starts this long after the earliest data: EarliestRecording comes in whole
# seconds, and a start state read just before the first frame would look like missing data.
HISTORY_MARGIN = timedelta(minutes=1)
# Pages of history results allowed per recording (of 100 events each) in the recorder's one search.
PAGES_PER_RECORDING = 50


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float = Field(default=30, gt=0)
    retention_days_key: float = Field(default=90, gt=0)  # cameras tagged key_location
    gap_tolerance_s: float = Field(default=60, ge=0)  # shorter holes (a reboot) are not counted


@dataclass(frozen=True)
class Histories:
    """The recorder's history search, per recording; or, when it answered that it does not
    support FindEvents, none and the refusal's exchange."""

    by_recording: dict[str, RecordingHistory]
    unsupported: str | None = None  # the refusal's exchange id ("" when it left none)


async def recorder_history(
    ctx: ProbeContext, recorder: Target, view: RecorderView, params: Params
) -> Histories:
    """The history of every recording on the recorder, read once per run: one search over the
    longest window any camera needs for all recordings at least that old, each camera judged on
    its own share (judge_retention). A younger recording gets a search from its first data on, as
    a search from before it would show its start state as missing data."""
    assert view.recordings is not None
    days = max(params.retention_days, params.retention_days_key)
    oldest = view.device_now - timedelta(days=days)
    groups: dict[datetime, list[str]] = {}
    for r in view.recordings.items:
        if r.earliest is not None and r.earliest + HISTORY_MARGIN < view.device_now:
            groups.setdefault(max(oldest, r.earliest + HISTORY_MARGIN), []).append(r.token)

    async def fetch() -> Histories:
        found: dict[str, RecordingHistory] = {}
        async with ctx.client(OnvifClient, recorder) as client:
            for start, tokens in sorted(groups.items()):
                pages = PAGES_PER_RECORDING * len(tokens)
                try:
                    history = await client.recording_history(start, view.device_now, tokens, max_pages=pages)
                except Unsupported as exc:  # no FindEvents: the span alone can be judged
                    return Histories({}, exc.exchange_id or "")
                found |= dict.fromkeys(tokens, history)
        return Histories(found)

    histories: Histories = await ctx.shared(("onvif.history", recorder.id, f"{days:g}"), fetch)
    return histories


# -- judging ------------------------------------------------------------------------------------


def required_days(subject: Target, params: Params) -> float:
    """90 days for a key location (the camera's tag, or the NVR's for a recording of no known camera)."""
    return params.retention_days_key if subject.key_location else params.retention_days


def observed_days(earliest: datetime | None, device_now: datetime) -> float:
    """Days of video held: from the earliest data to the recorder's clock (0 without data)."""
    if earliest is None:
        return 0.0
    return max(0.0, (device_now - earliest).total_seconds() / DAY_S)


def spans_in_window(
    spans: Iterable[HistorySpan], start: datetime, end: datetime, tolerance_s: float
) -> list[HistorySpan]:
    """Holes clipped to [start, end], dropping those no longer than tolerance_s."""
    out = []
    for s in spans:
        clipped = HistorySpan(s.recording, s.kind, max(s.start, start), min(s.end, end), s.open)
        if clipped.seconds > tolerance_s:
            out.append(clipped)
    return out


def _span_facts(spans: Iterable[HistorySpan]) -> list[dict[str, Any]]:
    return [
        {
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
            "hours": round(s.seconds / 3600, 2),
            "open": s.open,
        }
        for s in spans
    ]


def configured_days(configured: RetentionConfig | None, token: str) -> float | str | None:
    """Configured retention in days; "disk_bound" for 0 (kept until the disk is full); None unknown."""
    if configured is None or token not in configured.max_retention:
        return None
    days = configured.max_retention[token].total_seconds() / DAY_S
    return "disk_bound" if days == 0 else round(days, 2)


def judge_retention(
    recording: Recording,
    required: float,
    device_now: datetime,
    configured: float | str | None,
    history: RecordingHistory | None,
    tolerance_s: float,
    gaps_checked: bool = True,
) -> Verdict:
    """Judge the span held, then the holes in the window; without a history search (FindEvents not
    supported, `gaps_checked` False) the span alone, saying that holes were not looked for."""
    observed = observed_days(recording.earliest, device_now)
    window_start = device_now - timedelta(days=required)
    # before its first data a recording has nothing to lose: holes count from then on
    since = max(window_start, recording.earliest + HISTORY_MARGIN) if recording.earliest else window_start
    holes = spans_in_window(
        (s for s in (history.spans if history else ()) if s.recording == recording.token),
        since,
        device_now,
        tolerance_s,
    )
    gaps = [s for s in holes if s.kind == "gap"]
    deleted = [s for s in holes if s.kind == "deleted"]
    facts: dict[str, Any] = {
        "recording": recording.token,
        "source": recording.source_name,
        "observed_days": round(observed, 2),
        "configured_days": configured,
        "required_days": required,
        "earliest": recording.earliest.isoformat() if recording.earliest else None,
        "window_start": window_start.isoformat(),
        "gaps": _span_facts(gaps),
        "deletions": _span_facts(deleted),
        "gaps_checked": gaps_checked,
    }
    name = recording.source_name or recording.token
    if observed < required:
        set_for = (
            f"configured for {configured} days"
            if isinstance(configured, float)
            else f"configured {configured}"
        )
        detail = (
            f"{name}: video reaches back {observed:.1f} days, {required:g} are required ({set_for}); "
            "a recorder younger than the window cannot show it yet."
        )
        return Verdict(recording.token, "fail", "retention_short", detail, facts)
    if not gaps_checked:
        detail = (
            f"{name}: {observed:.1f} days of video held ({required:g} required); gaps and deletions "
            "were not checked: the recorder does not support the history search (FindEvents)."
        )
        return Verdict(recording.token, "pass", "retained_span_only", detail, facts)
    if deleted:
        hours = sum(s.seconds for s in deleted) / 3600
        detail = f"{name}: {hours:.1f} h of recorded video were deleted within the last {required:g} days."
        return Verdict(recording.token, "fail", "data_deleted", detail, facts)
    if gaps:
        hours = sum(s.seconds for s in gaps) / 3600
        detail = f"{name}: recording stopped for {hours:.1f} h within the last {required:g} days."
        return Verdict(recording.token, "fail", "recording_gap", detail, facts)
    if history is None or not history.complete:
        detail = f"{name}: the recorder's history search did not complete, so holes cannot be ruled out."
        return Verdict(recording.token, "error", "search_incomplete", detail, facts)
    detail = f"{name}: {observed:.1f} days of video held without a hole in the last {required:g} days."
    return Verdict(recording.token, "pass", "retained", detail, facts)


# -- the probe ----------------------------------------------------------------------------------


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        sc = scope(ctx.site, target)
    except InventoryError as exc:
        return inventory_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    if sc.recorder.protocol != "onvif":
        return not_onvif(PROBE, target, sc, started, ctx.clock())
    view: RecorderView | None = None
    evidence: list[str] = []
    try:
        view = await recorder_view(ctx, sc.recorder)
        if view.recordings is None:
            return no_profile_g(PROBE, target, sc, view, started, ctx.clock())
        chosen = wanted(ctx.site, sc, view.recordings.items)
        if not chosen:
            return no_recording(PROBE, target, sc, view, started, ctx.clock())
        histories = await recorder_history(ctx, sc.recorder, view, params)
        searchable = histories.unsupported is None
        evidence += [histories.unsupported] if histories.unsupported else []
        verdicts = []
        for recording, camera in chosen:
            history = histories.by_recording.get(recording.token)
            evidence += history.evidence if history else ()
            required = required_days(camera or target, params)
            configured = configured_days(view.configured, recording.token)
            verdicts.append(
                judge_retention(
                    recording,
                    required,
                    view.device_now,
                    configured,
                    history,
                    params.gap_tolerance_s,
                    gaps_checked=searchable,
                )
            )
    except Unsupported as exc:
        return search_unsupported(PROBE, target, sc, exc, view, started, ctx.clock())
    except CollectorError as exc:
        seen = (*(view.evidence if view else ()), *evidence)
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=seen
        )
    facts = {"recorder": sc.recorder.id, "clock_skew_s": view.clock_skew_s}
    if view.config_evidence:
        facts["configured_refused"] = True
    return combine(
        PROBE,
        target.id,
        verdicts,
        (*view.evidence, *view.config_evidence, *evidence),
        facts,
        started,
        ctx.clock(),
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="Recorded video is kept for the required days without gaps or deletions",
    mode="passive",
    applies_to=("camera", "nvr"),
    params=Params,
    timeout_s=180.0,
    run=run,
)

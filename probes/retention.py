"""Retention (A2.3.4): recorded video reaches back the required days, without holes in that window.

Observed history is the evidence: days from the earliest recorded data to the recorder's own
clock, and the RecordingHistory holes (gaps: not recording; deletions: recording but no data)
inside the required window. The configured MaximumRetentionTime is reported beside it and never
decides: a recorder set for 90 days that holds 20 fails, whether it lost data or the site is
younger than the window.

A camera recorded by an NVR (`params.recorded_by`) is judged on the NVR's recording of it; an
NVR on all its recordings (partial when some pass). Also home of what the ONVIF probes share: the
recorder a target's video lives on, one read of that recorder per run, and findings from errors.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError, DeviceRejected, Unsupported
from collectors.onvif import OnvifClient, Services
from collectors.onvif_recording import HistorySpan, Recording, RecordingHistory, Recordings, RetentionConfig
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding, inventory_finding
from probes.targets import SiteView, Target

PROBE = "retention"
DAY_S = 86_400.0
# The history search starts this long after the earliest data: EarliestRecording comes in whole
# seconds, and a start state read just before the first frame would look like missing data.
HISTORY_MARGIN = timedelta(minutes=1)
# Among failing recordings of one finding, the reason reported first.
# Pages of history results allowed per recording (of 100 events each) in the recorder's one search.
PAGES_PER_RECORDING = 50
SEVERITY = ("no_recording", "retention_short", "data_deleted", "recording_gap", "recording_stale")


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float = Field(default=30, gt=0)
    retention_days_key: float = Field(default=90, gt=0)  # cameras tagged key_location
    gap_tolerance_s: float = Field(default=60, ge=0)  # shorter holes (a reboot) are not counted


# -- shared by the ONVIF probes -----------------------------------------------------------------


class InventoryError(ValueError):
    """The inventory does not say where a target's recordings are."""


@dataclass(frozen=True)
class Scope:
    """The device holding a target's recordings, and the camera whose recording is wanted."""

    recorder: Target
    camera: Target | None  # None: every recording on the recorder (an NVR target)
    on_nvr: bool


def scope(site: SiteView, target: Target) -> Scope:
    if target.kind == "nvr":
        return Scope(target, None, False)
    if target.kind != "camera":
        raise InventoryError(f"{target.id} is a {target.kind}, which records nothing")
    recorded_by = target.params.get("recorded_by")
    if not recorded_by:
        return Scope(target, target, False)
    try:
        return Scope(site.get(str(recorded_by)), target, True)
    except KeyError:
        raise InventoryError(
            f"{target.id} is recorded by {recorded_by!r}, which is not in the inventory"
        ) from None


@dataclass(frozen=True)
class RecorderView:
    """One read of a recorder: its clock, services, recordings and configured retention."""

    device_now: datetime  # the recorder's clock when read
    measured_at: datetime  # ours at that moment
    services: Services
    recordings: Recordings | None  # None: no search service (no Profile G)
    configured: RetentionConfig | None  # None: not offered or refused (see config_evidence)
    evidence: tuple[str, ...]
    config_evidence: tuple[str, ...] = ()

    @property
    def clock_skew_s(self) -> float:
        return round((self.device_now - self.measured_at).total_seconds(), 1)


async def recorder_view(ctx: ProbeContext, recorder: Target) -> RecorderView:
    """The recorder read once per run, whichever camera or probe asks first."""

    async def fetch() -> RecorderView:
        async with ctx.client(OnvifClient, recorder) as client:
            device_now, clock_id = await client.device_time()
            measured = ctx.clock()
            services = await client.services()
            evidence = (clock_id, *services.evidence)
            if not services.has("search"):
                return RecorderView(device_now, measured, services, None, None, evidence)
            recordings = await client.recordings()
            configured: RetentionConfig | None = None
            refused: tuple[str, ...] = ()
            if services.has("recording"):
                try:
                    configured = await client.retention_config(device_now)
                except (DeviceRejected, Unsupported) as exc:  # configuration is context, not the verdict
                    refused = (exc.exchange_id,) if exc.exchange_id else ()
            more = configured.evidence if configured else ()
            return RecorderView(
                device_now,
                measured,
                services,
                recordings,
                configured,
                (*evidence, *recordings.evidence, *more),
                refused,
            )

    view: RecorderView = await ctx.shared(("onvif.recorder", recorder.id), fetch)
    return view


async def recorder_history(
    ctx: ProbeContext, recorder: Target, view: RecorderView, params: Params
) -> dict[str, RecordingHistory]:
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

    async def fetch() -> dict[str, RecordingHistory]:
        found: dict[str, RecordingHistory] = {}
        async with ctx.client(OnvifClient, recorder) as client:
            for start, tokens in sorted(groups.items()):
                pages = PAGES_PER_RECORDING * len(tokens)
                history = await client.recording_history(start, view.device_now, tokens, max_pages=pages)
                found |= dict.fromkeys(tokens, history)
        return found

    histories: dict[str, RecordingHistory] = await ctx.shared(
        ("onvif.history", recorder.id, f"{days:g}"), fetch
    )
    return histories


def _hosts(recording: Recording) -> set[str]:
    return {h for h in (urlsplit(recording.source_id).hostname, urlsplit(recording.address).hostname) if h}


def _numbers(recording: Recording) -> set[int]:
    """Numbers standing alone in a recording's names; 101 also reads as channel 1 (channel x 100 + stream)."""
    found: set[int] = set()
    for text in (recording.token, recording.source_id, recording.source_name):
        for digits in re.findall(r"\d+", text):
            n = int(digits)
            found |= {n, n // 100} if n >= 100 else {n}
    return found


def match_camera(recordings: Sequence[Recording], camera: Target) -> Recording | None:
    """The recording of a camera on an NVR: by the camera's address in the source, else by name,
    else by channel number; each rule counts only when it picks exactly one recording."""
    names = {camera.id, str(camera.params.get("name", camera.id))}
    channel = camera.params.get("channel")
    channel = channel if isinstance(channel, int) else None

    def by_host(r: Recording) -> bool:
        return camera.host in _hosts(r)

    def by_name(r: Recording) -> bool:
        return r.source_name in names or r.token in names

    def by_channel(r: Recording) -> bool:
        return channel is not None and channel in _numbers(r)

    rules = (by_host, by_name, by_channel)
    for rule in rules:
        hits = [r for r in recordings if rule(r)]
        if len(hits) == 1:
            return hits[0]
    return None


def not_assessed(
    probe: str, target: Target, reason: str, detail: str, started: datetime, finished: datetime, **kw: Any
) -> Finding:
    return Finding(
        probe, target.id, "not_assessed", reason, detail, started_at=started, finished_at=finished, **kw
    )


def no_profile_g(
    probe: str, target: Target, sc: Scope, view: RecorderView, started: datetime, now: datetime
) -> Finding:
    return not_assessed(
        probe,
        target,
        "no_profile_g",
        f"{sc.recorder.id} offers no ONVIF search service (no Profile G); its recordings are read over "
        "its vendor API, if at all.",
        started,
        now,
        facts={"recorder": sc.recorder.id, "services": sorted(view.services.names)},
        evidence=view.evidence,
    )


def not_onvif(probe: str, target: Target, sc: Scope, started: datetime, now: datetime) -> Finding:
    return not_assessed(
        probe,
        target,
        "not_onvif",
        f"{sc.recorder.id} speaks {sc.recorder.protocol}, not ONVIF; its recordings are judged by the "
        f"{sc.recorder.protocol} probes.",
        started,
        now,
        facts={"recorder": sc.recorder.id, "protocol": sc.recorder.protocol},
    )


@dataclass(frozen=True)
class Verdict:
    """The judgement of one recording."""

    token: str
    status: Status
    reason: str
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


def combine(
    probe: str,
    device: str,
    verdicts: Sequence[Verdict],
    evidence: Iterable[str],
    facts: dict[str, Any],
    started: datetime,
    finished: datetime,
) -> Finding:
    """One recording: its verdict. Several (an NVR): pass when all pass, fail when none, else partial."""
    cited = tuple(dict.fromkeys(e for e in evidence if e))
    if len(verdicts) == 1:
        v = verdicts[0]
        return Finding(
            probe, device, v.status, v.reason, v.detail, {**facts, **v.facts}, cited, None, started, finished
        )
    failing = [v for v in verdicts if v.status != "pass"]
    summary = {
        **facts,
        "recordings": [{"recording": v.token, "reason": v.reason, **v.facts} for v in verdicts],
    }
    summary["failing"] = [v.token for v in failing]
    if not failing:
        detail = f"All {len(verdicts)} recordings pass."
        return Finding(
            probe, device, "pass", verdicts[0].reason, detail, summary, cited, None, started, finished
        )
    counts = Counter(v.reason for v in failing)
    reason = min(counts, key=lambda r: (SEVERITY.index(r) if r in SEVERITY else len(SEVERITY), r))
    detail = f"{len(failing)} of {len(verdicts)} recordings fail ({', '.join(sorted(counts))}): " + "; ".join(
        v.detail for v in failing[:3]
    )
    if len(failing) == len(verdicts):
        return Finding(probe, device, "fail", reason, detail, summary, cited, None, started, finished)
    ratio = round(1 - len(failing) / len(verdicts), 4)
    return Finding(probe, device, "partial", reason, detail, summary, cited, ratio, started, finished)


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
) -> Verdict:
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


def cameras_of(site: SiteView, nvr: Target) -> list[Target]:
    return [t for t in site.of_kind("camera") if t.params.get("recorded_by") == nvr.id]


def wanted(
    site: SiteView, sc: Scope, recordings: Sequence[Recording]
) -> list[tuple[Recording, Target | None]]:
    """The recordings to judge, each with the camera it records (when the inventory tells)."""
    if sc.camera is not None and not sc.on_nvr:
        return [(r, sc.camera) for r in recordings]
    if sc.camera is not None:
        found = match_camera(recordings, sc.camera)
        return [(found, sc.camera)] if found else []
    by_token = {}
    for camera in cameras_of(site, sc.recorder):
        hit = match_camera(recordings, camera)
        if hit is not None:
            by_token[hit.token] = camera
    return [(r, by_token.get(r.token)) for r in recordings]


def no_recording(
    probe: str, target: Target, sc: Scope, view: RecorderView, started: datetime, now: datetime
) -> Finding:
    held = view.recordings.items if view.recordings else ()
    seen = [f"{r.token} ({r.source_name or r.source_id})" for r in held]
    where = (
        f"{sc.recorder.id} holds no recording of {target.id}"
        if sc.on_nvr
        else f"{target.id} holds no recording"
    )
    return Finding(
        probe,
        target.id,
        "fail",
        "no_recording",
        f"{where}.",
        facts={"recorder": sc.recorder.id, "recordings_seen": seen},
        evidence=view.evidence,
        started_at=started,
        finished_at=now,
    )


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
        verdicts = []
        for recording, camera in chosen:
            history = histories.get(recording.token)
            evidence += history.evidence if history else ()
            required = required_days(camera or target, params)
            configured = configured_days(view.configured, recording.token)
            verdicts.append(
                judge_retention(
                    recording, required, view.device_now, configured, history, params.gap_tolerance_s
                )
            )
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

"""What the ONVIF video probes share: the recorder a target's video lives on, one read of that
recorder per run, the recording of each camera on it, and one finding from many recordings."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from collectors.errors import DeviceRejected, Unsupported
from collectors.onvif import OnvifClient, Services
from collectors.onvif_recording import Recording, Recordings, RetentionConfig
from probes.base import ProbeContext
from probes.finding import Finding, Status
from probes.targets import SiteView, Target

# Among failing recordings of one finding, the reason reported first.
SEVERITY = ("no_recording", "retention_short", "data_deleted", "recording_gap", "recording_stale")


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


def search_unsupported(
    probe: str,
    target: Target,
    sc: Scope,
    exc: Unsupported,
    view: RecorderView | None,
    started: datetime,
    now: datetime,
) -> Finding:
    """The recorder lists a search service but supports neither the recording search nor the
    history search: nothing to judge retention by."""
    cited = (*(view.evidence if view else ()), *((exc.exchange_id,) if exc.exchange_id else ()))
    return not_assessed(
        probe,
        target,
        "search_unsupported",
        f"{sc.recorder.id} does not support the ONVIF recording search ({exc}), so neither the span of "
        "its recordings nor their gaps can be read.",
        started,
        now,
        facts={"recorder": sc.recorder.id, "error": str(exc)},
        evidence=tuple(dict.fromkeys(cited)),
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

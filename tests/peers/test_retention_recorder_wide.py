"""One history search per recorder gives each camera the verdict its own search would.

The fast path (every retention job of an NVR at once, one client, one FindEvents over the longest
window for all recordings, each camera judged on its share) against per-device questions (per
camera its own client and a FindEvents for its recording over its own window, as before). Likewise
for ISAPI NVRs: one content search per window over all channels against a search per channel.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from onvif_collector_helpers import Ledger, context, target
from onvif_helpers import Starter, camera, nvr, start
from security_helpers import isapi, isapi_community, isapi_targets

from collectors.isapi import IsapiClient
from collectors.onvif import OnvifClient
from probes import isapi_retention, retention
from probes.base import ProbeContext
from probes.finding import Finding
from probes.targets import SiteView, Target
from simulator.isapi import IsapiNvr
from simulator.onvif import OnvifNvr

pytestmark = pytest.mark.peers
__all__ = ["isapi", "start"]  # the fixtures, imported for pytest

# Holes inside and outside each camera's window, of both kinds; one key location (90 days).
CAMERAS: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    ("camA", {}, []),
    ("camB", {}, [{"type": "deleted_span", "days_ago": 2, "hours": 3}]),
    ("camC", {}, [{"type": "recording_gap", "days_ago": 12, "hours": 5}]),
    ("camD", {}, [{"type": "recording_gap", "days_ago": 45, "hours": 8}]),  # outside 30 days
    ("camE", {"key_location": True}, [{"type": "recording_gap", "days_ago": 45, "hours": 8}]),
    ("camF", {}, [{"type": "retention_short", "days": 9}]),
    ("camG", {"key_location": True}, [{"type": "deleted_span", "days_ago": 80, "hours": 30}]),
]


async def per_device(recorder: Target, cam: Target, everyone: list[Target]) -> tuple[Any, ...]:
    """The verdict from the camera's own questions: a fresh client, its recording, its window."""
    params = retention.Params()
    ctx = context(everyone, Ledger())
    try:
        view = await retention.recorder_view(ctx, recorder)
        assert view.recordings is not None
        (recording, _), *_ = retention.wanted(ctx.site, retention.scope(ctx.site, cam), view.recordings.items)
        required = retention.required_days(cam, params)
        assert recording.earliest is not None
        start = max(view.device_now - timedelta(days=required), recording.earliest + retention.HISTORY_MARGIN)
        async with OnvifClient(ctx.connection(recorder)) as client:
            history = await client.recording_history(start, view.device_now, [recording.token])
        configured = retention.configured_days(view.configured, recording.token)
        v = retention.judge_retention(
            recording, required, view.device_now, configured, history, params.gap_tolerance_s
        )
    finally:
        await ctx.close()
    return v.status, v.reason, v.facts["gaps"], v.facts["deletions"]


def verdict(f: Finding) -> tuple[Any, ...]:
    return f.status, f.reason, f.facts["gaps"], f.facts["deletions"]


async def test_recorder_wide_history_gives_every_camera_its_own_verdict(start: Starter) -> None:
    devices = [nvr(nvr={"configured_retention_days": 100})] + [
        camera(id=cid, camera={"recorded_by": "nvr1", "channel": n}, faults=faults)
        for n, (cid, _, faults) in enumerate(CAMERAS, start=1)
    ]
    device = await start(OnvifNvr, devices)
    recorder = target(device, "nvr")
    cams = [
        target(None, "camera", id=cid, recorded_by="nvr1", channel=n, tags=tags)
        for n, (cid, tags, _) in enumerate(CAMERAS, start=1)
    ]
    ledger = Ledger()
    ctx = context([recorder, *cams], ledger)
    try:
        fast = await asyncio.gather(*(retention.run(ctx, c, retention.Params()) for c in cams))
    finally:
        await ctx.close()
    slow = [await per_device(recorder, c, [recorder, *cams]) for c in cams]
    assert [verdict(f) for f in fast] == slow
    assert {f.reason for f in fast} >= {"retained", "data_deleted", "recording_gap", "retention_short"}
    # one search for the six cameras older than the longest window, one for the younger camF
    assert ledger.operations().count("FindEvents") == 2
    assert ledger.operations().count("GetServices") == 1  # services discovered once

    def searches(f: Finding) -> set[str]:
        return {e for e in f.evidence if ledger.get(e).operation == "FindEvents"}

    shared = [searches(f) for f in fast if f.device != "camF"]
    assert len(shared[0]) == 1 and all(s == shared[0] for s in shared)  # each cites the shared one


# -- ISAPI NVRs: one content search per window for all channels ------------------------------------


async def isapi_per_channel(ctx: ProbeContext, nvr: Target, cam: Target) -> tuple[Any, ...]:
    """The verdict from the camera's own questions: the NVR's clock, a search of its channel alone."""
    params = isapi_retention.Params()
    required = isapi_retention.required_days(cam, params)
    async with IsapiClient(ctx.connection(nvr)) as client:
        device_now, clock_id = await client.device_time()
        start = device_now - timedelta(days=required) - isapi_retention.SEARCH_MARGIN
        found = await client.recordings(int(cam.params["channel"]), start, device_now)
    view = isapi_retention.ChannelView(device_now, start, found, (clock_id, *found.evidence))
    v = isapi_retention.judge_channel(cam.id, view, required, params)
    return v.status, v.reason, [g["hours"] for g in v.facts["gaps"]], v.facts["required_days"]


def isapi_verdict(f: Finding) -> tuple[Any, ...]:
    """The simulated holes move with the clock: the per-channel searches come later, so hours, not times."""
    return f.status, f.reason, [g["hours"] for g in f.facts["gaps"]], f.facts["required_days"]


@pytest.mark.slow
async def test_isapi_recorder_wide_search_gives_every_camera_its_own_verdict(isapi: Starter) -> None:
    community = isapi_community(
        nvr={"nvr": {"retention_days": 95}},
        cameras=[
            {"id": cid, "tags": tags, "camera": {"recorded_by": "nvr1", "channel": n}, "faults": faults}
            for n, (cid, tags, faults) in enumerate(CAMERAS, start=1)
        ],
    )
    device = await isapi(IsapiNvr, community)
    targets = isapi_targets(device, community)
    nvr_target, cams = targets[0], targets[1:]
    ledger = Ledger()
    ctx = ProbeContext(site=SiteView("t", targets), sink=ledger, call_timeout_s=5.0)
    params = isapi_retention.Params()
    try:
        fast = await asyncio.gather(*(isapi_retention.run(ctx, t, params) for t in targets))
        slow = [await isapi_per_channel(ctx, nvr_target, c) for c in cams]
    finally:
        await ctx.close()
    assert [isapi_verdict(f) for f in fast[1:]] == slow
    assert {f.reason for f in fast} >= {"retained", "recording_gap", "retention_short"}
    assert fast[0].status == "partial"
    assert fast[0].facts["failing"] == [f.device for f in fast[1:] if f.status != "pass"] != []
    shared = [e for e in ledger if e.operation.startswith("ContentMgmt/search tracks ")]
    # one search over the five 30-day channels, one over the two key locations (90 days)
    assert {e.operation.split(" from ")[0] for e in shared} == {
        "ContentMgmt/search tracks 101,201,301,401,601",
        "ContentMgmt/search tracks 501,701",
    }
    fast_ops = [e.operation for e in ledger if e.id in {x for f in fast for x in f.evidence}]
    assert fast_ops.count("time") == 1  # the NVR's clock read once for all
    assert set(fast[1].evidence) == set(fast[2].evidence)  # camA and camB cite the same search

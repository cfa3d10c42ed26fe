"""One history search per recorder gives each camera the verdict its own search would.

The fast path (every retention job of an NVR at once, one client, one FindEvents over the longest
window for all recordings, each camera judged on its share) against per-device questions (per
camera its own client and a FindEvents for its recording over its own window, as before).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from onvif_collector_helpers import Ledger, context, target
from onvif_helpers import Starter, camera, nvr, start

from collectors.onvif import OnvifClient
from probes import retention
from probes.finding import Finding
from probes.targets import Target
from simulator.onvif import OnvifNvr

pytestmark = pytest.mark.peers
__all__ = ["start"]  # the fixture, imported for pytest

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

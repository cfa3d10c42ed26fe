"""What the video-signal probes share: the camera's SignalLoss state, read once per camera and run.

A PullPoint subscription delivers every property's current state as `Initialized` messages when it
starts (ONVIF Core 9.2), so one short pull tells whether the video signal is lost now, without
waiting for a change. The subscription is the camera's shared one (probes/event_common.py), whose
life event_service checks: its creation and first pull serve both.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.onvif import OnvifClient
from probes.base import ProbeContext
from probes.event_common import shared_opening
from probes.targets import Target

SIGNAL_LOSS = "VideoSource/SignalLoss"
TRUE = {"true", "1"}


@dataclass(frozen=True)
class SignalState:
    advertised: bool  # the camera offers the SignalLoss event at all
    lost: bool | None  # None: the camera reported no SignalLoss state
    evidence: tuple[str, ...]


async def signal_state(ctx: ProbeContext, camera: Target) -> SignalState:
    async def fetch() -> SignalState:
        async with ctx.client(OnvifClient, camera) as client:
            props = await client.event_properties()
            evidence = props.evidence
            advertised = SIGNAL_LOSS in props.topics
            if not advertised:
                return SignalState(False, None, evidence)
            opening = await shared_opening(ctx, camera)
        first = opening.first_pull()
        evidence += opening.evidence
        states = [m.data.get("State", "").lower() for m in first.messages if m.topic == SIGNAL_LOSS]
        return SignalState(True, (states[-1] in TRUE) if states else None, evidence)

    state: SignalState = await ctx.shared(("onvif.signal", camera.id), fetch)
    return state

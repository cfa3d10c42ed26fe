"""What the video-signal probes share: the camera's SignalLoss state, read once per camera and run.

A PullPoint subscription delivers every property's current state as `Initialized` messages when it
starts (ONVIF Core 9.2), so one short pull tells whether the video signal is lost now, without
waiting for a change.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.onvif import OnvifClient
from probes.base import ProbeContext
from probes.targets import Target

SIGNAL_LOSS = "VideoSource/SignalLoss"
TRUE = {"true", "1"}


@dataclass(frozen=True)
class SignalState:
    advertised: bool  # the camera offers the SignalLoss event at all
    lost: bool | None  # None: the camera reported no SignalLoss state
    evidence: tuple[str, ...]


async def signal_state(ctx: ProbeContext, camera: Target, pull_s: float = 1.0) -> SignalState:
    async def fetch() -> SignalState:
        async with ctx.client(OnvifClient, camera) as client:
            props = await client.event_properties()
            evidence = props.evidence
            advertised = SIGNAL_LOSS in props.topics
            if not advertised:
                return SignalState(False, None, evidence)
            async with await client.pull_point(termination_s=30) as pp:
                pulled = await pp.pull(pull_s)
                evidence += (*pp.evidence, pulled.exchange_id)
                states = [m.data.get("State", "").lower() for m in pulled.messages if m.topic == SIGNAL_LOSS]
        return SignalState(True, (states[-1] in TRUE) if states else None, evidence)

    state: SignalState = await ctx.shared(("onvif.signal", camera.id), fetch)
    return state

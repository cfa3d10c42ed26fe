"""One ONVIF event subscription per device and run, shared by the probes that read its events.

`event_service` takes a subscription through its life (create, first pull, synchronization point,
renew, unsubscribe) and the video signal probes read the SignalLoss state its first pull brings
(every property's current state, ONVIF Core 9.2). Each made its own: a camera cost two
CreatePullPointSubscription, three PullMessages and two Unsubscribe where one subscription's
exchanges prove both. The first probe of a device to ask opens it (ProbeContext.shared: per run,
per round in `zhian monitor`); the others cite its CreatePullPointSubscription and first
PullMessages. event_service then goes on with it and ends it; one it does not take is unsubscribed
when the device's client closes (OnvifClient.opening) or the run or round ends (in `zhian monitor`
the clients stay, and each probe has rounds of its own), whichever comes first.
"""

from __future__ import annotations

from collectors.onvif import OnvifClient
from collectors.onvif_events import Opening
from probes.base import ProbeContext
from probes.targets import Target

TERMINATION_S = 60.0  # what a subscription is opened for when a probe without its own say opens it


async def shared_opening(ctx: ProbeContext, target: Target, termination_s: float = TERMINATION_S) -> Opening:
    """The device's subscription of this run and its first pull, opened by the first probe to ask
    (its refusal raised to every one that asks, with the one exchange that shows it)."""

    async def fetch() -> Opening:
        async with ctx.client(OnvifClient, target) as client:
            return await client.opening(termination_s)

    opening: Opening = await ctx.shared(("onvif.opening", target.id), fetch, _release)
    return opening


async def _release(opening: Opening) -> None:
    await opening.pull_point.release()

"""Event service: the device lists its event topics and a PullPoint subscription stays alive.

Alarms reach a platform only through a working event service, and subscriptions die silently on
real devices; so besides reading the topic set (GetEventProperties) the probe takes one
subscription through its whole life: create, pull, and after a while check it still hears
(SetSynchronizationPoint: the device sends its properties' states again, which a deaf pull point
never receives), renew, unsubscribe. A subscription that dies on the way (the device forgets it, stops
answering, answers past its termination time, or goes deaf) is an `error`: the events could not be
observed. A death after the probe's window is `zhian monitor`'s to notice. The topics are reported
as facts, the analytics ones (tns1:RuleEngine/...) serving as evidence that the camera runs video
analytics (A1.1.1); door controllers raise their alarms (forced, held open) the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError, DeviceRejected, ProtocolViolation, Unreachable, Unsupported
from collectors.onvif import OnvifClient
from collectors.onvif_events import Opening, Pull, PullPoint
from probes.base import ProbeContext, ProbeSpec
from probes.event_common import shared_opening
from probes.finding import Finding, Status, collector_finding
from probes.targets import Target

PROBE = "event_service"
VIDEO_LOSS = "VideoSource/SignalLoss"
DIGITAL_INPUT = "Device/Trigger/DigitalInput"
TAMPER_PREFIXES = ("VideoSource/GlobalSceneChange", "VideoSource/ImageTooBlurry", "VideoSource/ImageTooDark")
ANALYTICS_PREFIX = "RuleEngine/"
# Time a shared subscription must have left, past the wait and the synchronization point's pulls,
# for the calls after them (each bounded by the call timeout) to come before its termination.
JOIN_MARGIN_S = 10.0


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription_s: float = Field(default=60, gt=0)  # InitialTerminationTime asked for
    pull_wait_s: float = Field(
        default=2, ge=0, le=60
    )  # the subscription must still answer and hear after this
    renew_s: float = Field(default=60, gt=0)
    sync_wait_s: float = Field(default=2, gt=0, le=60)  # for the states a synchronization point re-sends


@dataclass(frozen=True)
class Lifecycle:
    """How far one subscription got: create, pull, sync (after pull_wait_s), renew, unsubscribe, done."""

    step: str
    initial_messages: int
    renewed_for_s: float | None
    refused: CollectorError | None  # what ended it: a refusal (SubscriptionLost when it vanished), a call
    evidence: tuple[str, ...]
    heard_sync: bool | None = None  # a synchronization point's states came back (None: not checked)
    past_termination: bool = False  # it answered after the termination time it gave


def topic_facts(topics: Iterable[str]) -> dict[str, Any]:
    listed = sorted(topics)
    return {
        "topics": listed,
        "topic_count": len(listed),
        "video_loss": VIDEO_LOSS in listed,
        "tamper": any(t.startswith(TAMPER_PREFIXES) or "Tamper" in t for t in listed),
        "digital_input": DIGITAL_INPUT in listed,
        "analytics_topics": [t for t in listed if t.startswith(ANALYTICS_PREFIX)],
    }


def judge(
    device: str,
    topics: frozenset[str],
    life: Lifecycle,
    evidence: tuple[str, ...],
    started: datetime,
    finished: datetime,
) -> Finding:
    """A subscription the device refuses is a fail of its event service; one that dies once made
    (gone, unanswered, past its termination, deaf) is an `error`: what the device's events would
    have shown could not be observed, and nothing is judged on that silence."""
    facts = {
        **topic_facts(topics),
        "subscription_step": life.step,
        "initial_messages": life.initial_messages,
        "renewed_for_s": life.renewed_for_s,
        "sync_heard": life.heard_sync,
    }

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(PROBE, device, status, reason, detail, facts, evidence, None, started, finished)

    if life.refused is not None:
        facts["error"] = str(life.refused)
        if isinstance(life.refused, DeviceRejected):
            facts["code"] = life.refused.code
        said = f"the device answered {facts['code']}" if "code" in facts else str(life.refused)
        if life.step == "create" and isinstance(life.refused, DeviceRejected):
            return finding("fail", "subscription_dead", f"The device refuses an event subscription: {said}.")
        return finding("error", "subscription_dead", f"The event subscription died at {life.step}: {said}.")
    if life.past_termination:
        return finding(
            "error",
            "subscription_dead",
            f"The event subscription still answered at {life.step}, past the termination time it was given.",
        )
    if life.renewed_for_s is not None and life.renewed_for_s <= 0:
        return finding(
            "error", "subscription_dead", "Renewing the event subscription left it no time to live."
        )
    if life.heard_sync is False:
        return finding(
            "error",
            "subscription_silent",
            f"The event subscription went deaf: it still answers PullMessages and Renew, but the "
            f"{life.initial_messages} states its first pull brought did not come back after a "
            "synchronization point.",
        )
    if not topics:
        return finding("fail", "no_topics", "The event service lists no topic the device could raise.")
    return finding(
        "pass",
        "events_live",
        f"The event service lists {len(topics)} topics; a subscription was created, pulled, renewed, "
        "checked alive and ended.",
    )


class _Life:
    """One subscription taken through its life, each exchange kept as evidence."""

    def __init__(self) -> None:
        self.step = "create"
        self.initial = 0
        self.renewed: float | None = None
        self.evidence: list[str] = []
        self.past_termination = False

    def pulled(self, pull: Pull) -> Pull:
        self.evidence.append(pull.exchange_id)
        now, ends = pull.current_time, pull.termination_time
        self.past_termination |= now is not None and ends is not None and now > ends
        return pull

    async def synchronized(self, pp: PullPoint, wait_s: float) -> bool:
        """Whether a synchronization point's states reach the subscription within wait_s: a live
        one hears them at once, a deaf one answers empty pulls (some devices answer a long poll
        early, so it pulls again until the time is up). One message is proof enough: the pull asks
        for one (MessageLimit), and the reply to parse holds one state instead of all of them."""
        self.evidence.append(await pp.synchronize())
        ends = time.monotonic() + wait_s
        while (left := ends - time.monotonic()) > 0 and not self.past_termination:
            if self.pulled(await pp.pull(left, limit=1)).messages:
                return True
        return False

    def end(self, refused: CollectorError | None = None, heard: bool | None = None) -> Lifecycle:
        cited = (refused.exchange_id,) if refused is not None and refused.exchange_id else ()
        return Lifecycle(
            self.step,
            self.initial,
            self.renewed,
            refused,
            (*self.evidence, *cited),
            heard,
            self.past_termination,
        )


def _joinable(opening: Opening, asked: float, params: Params) -> bool:
    """Whether the device's shared subscription can be taken through the rest of its life: one
    opened after this probe asked, or an older one still open and with the time to live that the
    wait, the synchronization point and the renewal need. An older one that cannot (its first pull
    failed on another probe's behalf, or it was opened a minute before) is not this probe's to
    judge: it opens its own."""
    if opening.at >= asked:
        return True  # opened as this probe asked: how it went is this probe's to judge
    needed = params.pull_wait_s + params.sync_wait_s + JOIN_MARGIN_S
    return opening.first is not None and opening.pull_point.open and opening.pull_point.left_s() >= needed


async def lifecycle(ctx: ProbeContext, target: Target, client: OnvifClient, params: Params) -> Lifecycle:
    """Create, pull its first states, let pull_wait_s pass, check it still hears (a synchronization
    point's states come back, or for a device without states it still answers a pull), renew, end.
    The create and the first pull are the device's shared ones (probes/event_common.py) when fit."""
    life = _Life()
    heard: bool | None = None
    asked = time.monotonic()
    pp: PullPoint | None = None
    try:
        opening = await shared_opening(ctx, target, params.subscription_s)
        if not _joinable(opening, asked, params):
            opening = await client.opening(params.subscription_s)
        pp = opening.pull_point
        life.evidence += pp.evidence
        life.step = "pull"
        first = opening.first_pull()
        life.initial = len(life.pulled(first).messages)
        # nothing to ask meanwhile: one call fewer per device
        await asyncio.sleep(max(0.0, params.pull_wait_s - (time.monotonic() - first.at)))
        life.step = "sync"
        try:
            if life.initial and not life.past_termination:  # a device with no state cannot show it
                heard = await life.synchronized(pp, params.sync_wait_s)
        except Unsupported as exc:  # no SetSynchronizationPoint: whether it hears stays unchecked
            life.evidence += (exc.exchange_id,) if exc.exchange_id else ()
        if heard is None:
            life.pulled(await pp.pull(0))  # it must still answer
        life.step = "renew"
        renewal = await pp.renew(params.renew_s)
        life.evidence.append(renewal.exchange_id)
        life.renewed = renewal.remaining_s
        life.step = "unsubscribe"
        life.evidence.append(await pp.unsubscribe())
        life.step = "done"
    except CollectorError as exc:
        if pp is not None:
            await pp.end(exc)
        if not isinstance(exc, DeviceRejected | Unreachable | ProtocolViolation):
            raise
        if life.step == "create" and not isinstance(exc, DeviceRejected):
            raise  # not a subscription's death: the device could not be read at all
        return life.end(exc, heard)
    return life.end(heard=heard)


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    if target.protocol != "onvif":
        detail = f"{target.id} speaks {target.protocol}, not ONVIF."
        return Finding(
            PROBE, target.id, "not_assessed", "not_onvif", detail, started_at=started, finished_at=ctx.clock()
        )
    evidence: tuple[str, ...] = ()
    try:
        async with ctx.client(OnvifClient, target) as client:
            services = await client.services()
            evidence = services.evidence
            if not services.has("events"):
                facts: dict[str, Any] = {"services": sorted(services.names)}
                detail = "The device advertises no event service."
                return Finding(
                    PROBE,
                    target.id,
                    "fail",
                    "no_event_service",
                    detail,
                    facts,
                    evidence,
                    None,
                    started,
                    ctx.clock(),
                )
            try:
                properties = await client.event_properties()
            except (DeviceRejected, Unsupported) as exc:
                cited = (*evidence, *((exc.exchange_id,) if exc.exchange_id else ()))
                detail = f"The event service refuses to list its topics: {exc}."
                facts = {"error": str(exc)}
                return Finding(
                    PROBE,
                    target.id,
                    "fail",
                    "no_event_service",
                    detail,
                    facts,
                    cited,
                    None,
                    started,
                    ctx.clock(),
                )
            evidence += properties.evidence
            life = await lifecycle(ctx, target, client, params)
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=evidence
        )
    return judge(target.id, properties.topics, life, (*evidence, *life.evidence), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="The device's event service lists its topics and keeps a subscription alive",
    mode="passive",
    applies_to=("camera", "nvr", "door"),
    params=Params,
    timeout_s=90.0,
    run=run,
)

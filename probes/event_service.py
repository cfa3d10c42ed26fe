"""Event service: the device lists its event topics and a PullPoint subscription stays alive.

Alarms reach a platform only through a working event service, and subscriptions die silently on
real devices; so besides reading the topic set (GetEventProperties) the probe takes one
subscription through its whole life: create, pull, wait on it, renew, unsubscribe. The topics are
reported as facts, the analytics ones (tns1:RuleEngine/...) serving as evidence that the camera
runs video analytics (A1.1.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError, DeviceRejected, Unsupported
from collectors.onvif import OnvifClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding
from probes.targets import Target

PROBE = "event_service"
VIDEO_LOSS = "VideoSource/SignalLoss"
DIGITAL_INPUT = "Device/Trigger/DigitalInput"
TAMPER_PREFIXES = ("VideoSource/GlobalSceneChange", "VideoSource/ImageTooBlurry", "VideoSource/ImageTooDark")
ANALYTICS_PREFIX = "RuleEngine/"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription_s: float = Field(default=60, gt=0)  # InitialTerminationTime asked for
    pull_wait_s: float = Field(default=2, ge=0, le=60)  # the subscription must still answer after this
    renew_s: float = Field(default=60, gt=0)


@dataclass(frozen=True)
class Lifecycle:
    """How far one subscription got: create, pull, wait, renew, unsubscribe, done."""

    step: str
    initial_messages: int
    renewed_for_s: float | None
    refused: DeviceRejected | None  # the refusal that ended it (SubscriptionLost when it vanished)
    evidence: tuple[str, ...]


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
    facts = {
        **topic_facts(topics),
        "subscription_step": life.step,
        "initial_messages": life.initial_messages,
        "renewed_for_s": life.renewed_for_s,
    }

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(PROBE, device, status, reason, detail, facts, evidence, None, started, finished)

    if life.refused is not None:
        facts["code"] = life.refused.code
        return finding(
            "fail",
            "subscription_dead",
            f"The event subscription failed at {life.step}: the device answered {life.refused.code}.",
        )
    if life.renewed_for_s is not None and life.renewed_for_s <= 0:
        return finding(
            "fail", "subscription_dead", "Renewing the event subscription left it no time to live."
        )
    if not topics:
        return finding("fail", "no_topics", "The event service lists no topic the device could raise.")
    return finding(
        "pass",
        "events_live",
        f"The event service lists {len(topics)} topics; a subscription was created, pulled, renewed, ended.",
    )


async def lifecycle(client: OnvifClient, params: Params) -> Lifecycle:
    evidence: list[str] = []
    step, initial, renewed = "create", 0, None
    try:
        async with await client.pull_point(params.subscription_s) as pp:
            evidence += pp.evidence
            step = "pull"
            first = await pp.pull(0)
            evidence.append(first.exchange_id)
            initial = len(first.messages)
            step = "wait"
            evidence.append((await pp.pull(params.pull_wait_s)).exchange_id)
            step = "renew"
            renewal = await pp.renew(params.renew_s)
            evidence.append(renewal.exchange_id)
            renewed = renewal.remaining_s
            step = "unsubscribe"
            evidence.append(await pp.unsubscribe())
    except DeviceRejected as exc:
        return Lifecycle(
            step, initial, renewed, exc, (*evidence, *((exc.exchange_id,) if exc.exchange_id else ()))
        )
    return Lifecycle("done", initial, renewed, None, tuple(evidence))


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
            life = await lifecycle(client, params)
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=evidence
        )
    return judge(target.id, properties.topics, life, (*evidence, *life.evidence), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="The device's event service lists its topics and keeps a subscription alive",
    mode="passive",
    applies_to=("camera", "nvr"),
    params=Params,
    timeout_s=90.0,
    run=run,
)

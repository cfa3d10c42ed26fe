"""The intrusion linkage test: an operator walks before a perimeter camera, its effects timed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import partial

from collectors.errors import CollectorError
from collectors.onvif import OnvifClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.linkage.active import LinkageTest, problem_of
from probes.linkage.judge import judge_effect, not_permitted
from probes.linkage.params import INTRUSION, TIMEOUT_S, Effect, IntrusionParams
from probes.linkage.reading import intrusion_onset
from probes.linkage.restore import Pending, zone_empty
from probes.linkage.site import intrusion_cameras
from probes.linkage.watches import LinkageRun
from probes.targets import Target


class IntrusionTest(LinkageTest):
    test = INTRUSION
    alert_type = "intrusion"

    def __init__(self, ctx: ProbeContext, params: IntrusionParams, camera: Target) -> None:
        super().__init__(ctx, params, camera, camera.area)
        self.lighting_deadline_s = params.deadline_lighting_s
        self.walker: Pending | None = None  # the operator we sent into the detection zone
        self.facts["camera"] = camera.id

    def set_off(self) -> bool:
        return self.walker is not None  # the walker may be in the zone before the camera says so

    async def precheck(self) -> bool:
        """Only a person can set an intrusion off; and only a camera with analytics can see one."""
        if self.kind != "guided" or self.ctx.operator is None:
            return self.stop("no_operator")
        try:
            async with OnvifClient(self.ctx.connection(self.subject)) as client:
                props = await client.event_properties()
        except CollectorError as exc:
            return self.stop(
                "failed", problem_of(exc, f"The camera's event topics could not be read: {exc}.")
            )
        self.trigger_evidence += props.evidence
        rules = sorted(t for t in props.topics if t.startswith("RuleEngine/"))
        self.facts["analytics_topics"] = rules
        return True if rules else self.stop("no_analytics")

    def cameras(self) -> tuple[Target, ...]:
        return intrusion_cameras(self.ctx.site, self.subject)

    async def trigger(self) -> bool:
        """The operator walks in; the camera's own analytics event is the trigger."""
        assert self.ctx.operator is not None
        feed = self.feeds[self.subject.id]
        if feed.error is not None:
            return self.stop(
                "failed", problem_of(feed.error, f"The camera's events cannot be followed: {feed.error}.")
            )
        since = self.ctx.clock()
        say = f"The intrusion test at camera {self.subject.id} is over: leave its detection zone."
        self.walker = Pending("intruder_left", self.subject.id, partial(zone_empty, feed), (say, "clear", {}))
        await self.ctx.operator.instruct(
            f"Walk into the detection zone of camera {self.subject.id} ({self.area}) and stay until told.",
            device=self.subject.id,
            action="intrusion",
            params={},
        )
        end = time.monotonic() + self.params.trigger_wait_s
        while (onset := intrusion_onset(feed.heard, since)) is None:
            remaining = end - time.monotonic()
            if remaining <= 0 or feed.error is not None:
                self.facts["trigger_wait_s"] = self.params.trigger_wait_s
                return self.stop("trigger_not_seen")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self.params.poll_s)):
                    await self.changed.wait()
        self.trigger_at = onset.at
        self.trigger_evidence.append(onset.exchange_id)
        self.facts["trigger_event"] = onset.message.topic
        when = onset.message.utc_time
        self.facts["trigger_device_time"] = when.isoformat() if when else None
        return True

    async def restore_actions(self) -> None:
        if self.walker is not None:
            await self.tell(self.walker)

    def restore_items(self) -> list[Pending]:
        return ([self.walker] if self.walker else []) + self.relay_items() + self.camera_items()


async def run_intrusion_test(ctx: ProbeContext, camera: Target, params: IntrusionParams) -> LinkageRun:
    """One guided walk into the camera's detection zone, every effect timed, everything restored."""
    return await IntrusionTest(ctx, params, camera).run()


async def intrusion_finding(
    ctx: ProbeContext, camera: Target, params: IntrusionParams, probe: str, effect: Effect
) -> Finding:
    """An intrusion_linkage probe: the camera's one intrusion test (shared), judged for one effect."""
    started = ctx.clock()
    if not ctx.allowed(INTRUSION):
        return not_permitted(probe, camera.id, INTRUSION, started)
    run: LinkageRun = await ctx.shared(
        (INTRUSION, camera.id), lambda: run_intrusion_test(ctx, camera, params)
    )
    return judge_effect(probe, camera.id, run, effect, started, ctx.clock())


def intrusion_spec(probe: str, effect: Effect, title: str) -> ProbeSpec:
    """The declaration of an intrusion_linkage probe: the camera's shared test, judged for `effect`."""

    async def run(ctx: ProbeContext, target: Target, params: IntrusionParams) -> Finding:
        return await intrusion_finding(ctx, target, params, probe, effect)

    return ProbeSpec(
        probe, title, "active", ("camera",), IntrusionParams, TIMEOUT_S, run, active_test=INTRUSION
    )

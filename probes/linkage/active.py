"""The course of one active linkage test, whatever its trigger."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from collectors.errors import CollectorError
from probes.base import to_the_end
from probes.linkage.restore import Restoring
from probes.linkage.site import relays_of
from probes.linkage.watches import LinkageRun, Observed, Problem, seconds_between
from probes.targets import Target


class LinkageTest(Restoring):
    """What both tests share: the order of a run (precheck, prepare, trigger, observe, restore)."""

    # -- the run --------------------------------------------------------------------------------------
    async def run(self) -> LinkageRun:
        async with self._stack:
            try:
                if await self.precheck():
                    await self.prepare()
                    if await self.trigger():
                        await self.observe()
            finally:
                await to_the_end(self.restore())
        return self.result()

    async def precheck(self) -> bool:
        """False when the test must not start (self.outcome says why)."""
        raise NotImplementedError

    def cameras(self) -> tuple[Target, ...]:
        return self.ctx.site.in_area(self.area, "camera")

    def own_watches(self) -> list[Coroutine[Any, Any, None]]:
        """The test's own watches; returns what reads their state before the trigger."""
        return []

    async def prepare(self) -> None:
        """Every watch first, then every target's state before the trigger, read all at once."""
        cameras = self.cameras()
        video = [self.watch("video", c.id, self.params.deadline_camera_alarm_s) for c in cameras]
        baselines = self.own_watches()
        self.relay_watches(relays_of(self.ctx.site, self.area), self.lighting_deadline_s)
        platform = self.ctx.site.platform
        alert = self.watch("alert", platform.id, self.params.deadline_platform_alert_s) if platform else None
        async with asyncio.TaskGroup() as tg:
            for camera in cameras:
                tg.create_task(self.open_feed(camera))
            for baseline in baselines:
                tg.create_task(baseline)
            tg.create_task(self.relay_baseline())
            if platform is not None and alert is not None:
                tg.create_task(self.platform_baseline(platform, alert))
        for w in video:
            error = self.feeds[w.target].error
            if error is not None:
                w.fail(error)

    async def trigger(self) -> bool:
        """Set the trigger off; True once it is seen (self.trigger_at set)."""
        raise NotImplementedError

    def result(self) -> LinkageRun:
        watches = tuple(
            Observed(
                effect=w.effect,
                target=w.target,
                deadline_s=w.deadline_s,
                delay_s=seconds_between(self.trigger_at, w.seen_at),
                baseline_active=w.baseline_active,
                error=w.error,
                error_detail=w.error_detail,
                evidence=tuple(w.evidence),
                facts=dict(w.facts),
            )
            for w in self.watches
        )
        return LinkageRun(
            test=self.test,
            subject=self.subject.id,
            trigger_kind=self.kind,
            area=self.area,
            zone=self.zone,
            outcome=self.outcome,
            started_at=self.started_at,
            trigger_at=self.trigger_at,
            trigger_evidence=tuple(dict.fromkeys(self.trigger_evidence)),
            observed_until=self.observed_until,
            watches=watches,
            restore=tuple(self.restore_steps),
            problem=self.problem,
            facts=dict(self.facts),
        )


def problem_of(exc: CollectorError, detail: str) -> Problem:
    return Problem(exc.reason, detail, (exc.exchange_id,) if exc.exchange_id else ())

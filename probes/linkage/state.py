"""The state one linkage test keeps while it runs, shared by its observation and its restore."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectors.artemis import ArtemisClient
from collectors.errors import CollectorError
from collectors.onvif_events import PullPoint
from collectors.platform import PlatformClient
from probes.base import ProbeContext
from probes.linkage.params import Effect, Outcome, TestParams, TriggerKind
from probes.linkage.reading import Heard
from probes.linkage.watches import Problem, RestoreStep, Watch
from probes.targets import Target

RelayWatch = tuple[Target, Watch, tuple[str, str]]  # relay, its watch, its state and telemetry topics


@dataclass
class Feed:
    """A camera's PullPoint subscription and every message zhian received on it."""

    camera: Target
    pull: PullPoint | None = None
    heard: list[Heard] = field(default_factory=list)
    error: CollectorError | None = None
    evidence: list[str] = field(default_factory=list)
    news: asyncio.Event = field(default_factory=asyncio.Event)  # set as messages (or an error) arrive


class LinkageState:
    """What a linkage test knows while it runs: its subject, its watches, its tasks."""

    test: str  # fire_linkage | intrusion_linkage
    alert_type: str
    lighting_deadline_s: float

    def __init__(self, ctx: ProbeContext, params: TestParams, subject: Target, area: str) -> None:
        self.ctx = ctx
        self.params = params
        self.subject = subject
        self.area = area
        self.zone: int | None = None
        self.kind: TriggerKind = "guided" if params.guided else "remote"
        self.started_at = ctx.clock()
        self.outcome: Outcome = "triggered"
        self.problem: Problem | None = None
        self.watches: list[Watch] = []
        self.trigger_at: datetime | None = None
        self.trigger_evidence: list[str] = []
        self.observed_until: datetime | None = None
        self.facts: dict[str, Any] = {}
        self.feeds: dict[str, Feed] = {}
        self.relays: list[RelayWatch] = []
        self.platform: PlatformClient | ArtemisClient | None = None
        self.platform_since: datetime | None = None
        self.restore_steps: list[RestoreStep] = []
        self.changed = asyncio.Event()
        self.observing = True
        self.feeds_on = True
        self._feed_tasks: list[asyncio.Task[None]] = []
        self._pollers: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    def stop(self, outcome: Outcome, problem: Problem | None = None) -> bool:
        self.outcome, self.problem = outcome, problem
        return False

    def watch(self, effect: Effect, target: str, deadline_s: float) -> Watch:
        w = Watch(effect, target, deadline_s)
        self.watches.append(w)
        return w

    async def pause(self) -> None:
        await asyncio.sleep(self.params.poll_s)


async def finish(tasks: list[asyncio.Task[None]], wait_s: float, *, raise_errors: bool = False) -> None:
    """Let tasks end by themselves for wait_s, then cancel what is left. A task's own failure (a bug)
    is raised when asked; on the way to a restore it is not, so that the restore still runs."""
    if not tasks:
        return
    if wait_s > 0:
        await asyncio.wait(tasks, timeout=wait_s)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
    errors = [r for r in results if isinstance(r, Exception)]
    if errors and raise_errors:
        raise errors[0]

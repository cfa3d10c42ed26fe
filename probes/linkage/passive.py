"""The passive mode of the linkage tests: a real trigger the monitor saw (a fire zone's alarm, an
intruder before a perimeter camera), its effects timed against the same deadlines and judged by the
same judges as the active test, nothing set off and nothing touched (no restore: the site's own
people deal with a real alarm). passive_fire.py and passive_intrusion.py say what each trigger is and
what it must move; this module holds what they share.

`trigger_at` is the last moment zhian knew the site quiet (the last panel reading that showed the zone
quiet, the camera's last pull before the one that brought the intrusion), so every delay is an upper
bound. The shared effects:
- the area's cameras (and ONVIF doors) from what the monitor's event subscriptions heard before and
  after the trigger (EventHistory), so an effect that came before zhian read the trigger is still
  timed to the moment it was heard; a device without a live subscription cannot be observed
  (`no_subscription`);
- the area's lighting relays from the state messages the monitor's broker subscription received;
- the platform's alert of the trigger's type raised since the trigger, polled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from collectors.errors import CollectorError
from collectors.onvif_events import PulledMessage
from probes.base import ProbeContext
from probes.linkage.params import Effect, TestParams
from probes.linkage.reading import Heard, alarm_onset, alert_matches, onset
from probes.linkage.site import relays_of
from probes.linkage.watches import LinkageRun, Observed, Watch, seconds_between
from probes.platform_common import platform_client
from probes.targets import Target


@dataclass(frozen=True)
class RelayHeard:
    """A relay's state message as the monitor's broker subscription received it."""

    at: datetime
    on: bool | None
    retain: bool  # a retained state replayed at subscription: it tells no moment


class EventHistory(Protocol):
    def heard_by(self, device: str) -> Sequence[Heard] | None:
        """What the device's live subscription heard, oldest first; None without one."""

    def relay_heard(self, relay: str) -> Sequence[RelayHeard] | None:
        """The relay's state messages, oldest first; None when its broker is not followed."""


@dataclass(frozen=True)
class RealTrigger:
    """What set a real linkage off, as the monitor saw it."""

    subject: Target  # the panel whose zone alarmed, the camera that saw the intruder
    area: str
    zone: int | None
    trigger_at: datetime  # the last moment zhian knew it quiet
    seen_at: datetime  # the first moment zhian knew it
    evidence: tuple[str, ...]


StateOf = Callable[[PulledMessage], bool | None]


class PassiveLinkage:
    """One real trigger observed until every effect is seen or past its deadline plus grace."""

    test: str
    alert_type: str

    def __init__(
        self,
        ctx: ProbeContext,
        params: TestParams,
        trigger: RealTrigger,
        history: EventHistory,
        lighting_deadline_s: float,
    ) -> None:
        self.ctx, self.p, self.trigger, self.history = ctx, params, trigger, history
        self.watches: list[Watch] = []
        self.started_at = ctx.clock()
        self.video = [self.watch("video", c.id, params.deadline_camera_alarm_s) for c in self.cameras()]
        self.heard_watches: list[tuple[Watch, StateOf | None]] = [(w, None) for w in self.video]
        self.relays = [
            (r, self.watch("lighting", r.id, lighting_deadline_s)) for r in relays_of(ctx.site, trigger.area)
        ]
        platform = ctx.site.platform
        self.alert = self.watch("alert", platform.id, params.deadline_platform_alert_s) if platform else None

    def cameras(self) -> tuple[Target, ...]:
        return self.ctx.site.in_area(self.trigger.area, "camera")

    def watch(self, effect: Effect, target: str, deadline_s: float) -> Watch:
        w = Watch(effect, target, deadline_s)
        self.watches.append(w)
        return w

    def polls(self) -> list[Coroutine[Any, Any, None]]:
        """One look at what must be polled (the platform; a subclass adds its own)."""
        return [self.poll_platform()]

    def facts(self) -> dict[str, Any]:
        t = self.trigger
        return {
            "alarm_seen_at": t.seen_at.isoformat(),
            "trigger_resolution_s": seconds_between(t.trigger_at, t.seen_at),
        }

    # -- the observation ----------------------------------------------------------------------------
    async def run(self) -> LinkageRun:
        origin = time.monotonic() - (self.ctx.clock() - self.trigger.trigger_at).total_seconds()
        while True:
            self.from_history()
            await asyncio.gather(*self.polls())
            elapsed = time.monotonic() - origin
            if all(w.settled or elapsed > w.deadline_s + self.p.grace_s for w in self.watches):
                break
            await asyncio.sleep(self.p.poll_s)
        return self.result()

    def from_history(self) -> None:
        """Cameras (their alarm) and ONVIF doors (their release) from what their subscriptions heard,
        lighting relays from what the broker subscription received."""
        trigger = self.trigger.trigger_at
        for w, state_of in self.heard_watches:
            heard = self.history.heard_by(w.target)
            if heard is None:
                w.broken("no_subscription", f"{w.target} has no live event subscription to hear it")
                continue
            active, first = (
                alarm_onset(heard, trigger) if state_of is None else onset(heard, trigger, state_of)
            )
            w.baseline_active = w.baseline_active or (active and not w.settled)
            if first is not None:
                w.see(first.at, (first.exchange_id,), event=first.message.topic)
        for relay, w in self.relays:
            said = self.history.relay_heard(relay.id)
            if said is None:
                w.broken("no_subscription", f"the broker of {relay.id} is not followed")
                continue
            before = [h.on for h in said if h.at < trigger and h.on is not None]
            w.baseline_active = w.baseline_active or (bool(before and before[-1]) and not w.settled)
            on = next((h for h in said if h.at >= trigger and h.on and not h.retain), None)
            if on is not None:
                w.see(on.at, ())

    async def poll_platform(self) -> None:
        w, platform = self.alert, self.ctx.site.platform
        if w is None or platform is None or w.settled:
            return
        since = self.trigger.trigger_at - timedelta(seconds=self.p.grace_s)  # clocks a little apart
        try:
            async with platform_client(self.ctx, platform) as api:
                listing = await api.alerts(since=since, type=self.alert_type)
        except CollectorError as exc:
            w.fail(exc)
            return
        subject, area = self.trigger.subject.id, self.trigger.area
        found = next((a for a in listing.rows if alert_matches(a, subject, area)), None)
        if found is not None:
            w.see(
                self.ctx.clock(),
                (listing.exchange_id,),
                alert=found.id,
                raised_at=found.raised_at.isoformat(),
            )

    # -- the result ---------------------------------------------------------------------------------
    def result(self) -> LinkageRun:
        t = self.trigger
        watches = tuple(
            Observed(
                effect=w.effect, target=w.target, deadline_s=w.deadline_s,
                delay_s=seconds_between(t.trigger_at, w.seen_at), baseline_active=w.baseline_active,
                error=w.error, error_detail=w.error_detail, evidence=tuple(w.evidence), facts=dict(w.facts),
            )
            for w in self.watches
        )  # fmt: skip
        return LinkageRun(
            self.test, t.subject.id, "real", t.area, t.zone, "triggered", self.started_at, t.trigger_at,
            t.evidence, self.ctx.clock(), watches, (), facts=self.facts(),
        )  # fmt: skip

"""ONVIF event subscriptions on every camera and door, kept alive for the life of the monitor.

One PullPoint subscription per device, on the engine's client of that device (ProbeContext.client:
the scheduled checks read the device through the same session). PullMessages long-polls up to
`event_pull_s` without taking a slot of the run's limits (it waits, it does not work); Renew goes
out at half of `event_termination_s` as the device's own clock counts it.

Real devices drop subscriptions without a word, and each way is noticed here:
- the device forgot it (a reboot, an expiry): PullMessages or Renew answer ResourceUnknownFault;
- the device cannot be reached: the call fails;
- it answers past the termination time it gave: the subscription should be gone, yet answers;
- it answers, empty, for ever: every `event_check_s` a SetSynchronizationPoint asks the device to
  send its properties' states again; a live subscription hears them at its next pulls, a deaf one
  stays silent (`silent`).
The routine exchanges of a live subscription (a PullMessages that brought nothing, a Renew that
worked) are not written to the ledger: a site of a thousand cameras would add millions of records
a day that show nothing. The last one of each device is held, and written when a death cites it.
Each death is an `event_gap` record (with the exchange that shows it), the subscription is created
again with backoff (reconnect_min_s doubling to reconnect_max_s), and its return is an
`event_gap_end` record with the gap's duration. What the subscriptions hear is kept per device
(`heard`, on zhian's clock) for the passive linkage, and told to the listeners.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from collectors.errors import CollectorError, Unreachable
from collectors.exchange import Exchange, Sink, discard
from collectors.onvif import OnvifClient
from collectors.onvif_events import Pull, PullPoint, SubscriptionLost
from probes.linkage.reading import Heard
from probes.targets import Target

if TYPE_CHECKING:
    from zhian.monitor.service import Monitor

KINDS = ("camera", "door")
HEARD_KEPT = 2000  # messages kept per device for the passive linkage (minutes of a busy door)
SYNC_PULLS = 3  # pulls without a message after a synchronization point: the subscription is deaf

Listener = Callable[[Target, Sequence[Heard]], None]
ROUTINE = frozenset({"PullMessages", "Renew"})
HELD = 32  # routine exchanges held per device (a panel reading takes several), for a record to cite
# which task an exchange comes from: an event subscription, or a poller of the monitor's own
following: ContextVar[str | None] = ContextVar("zhian_monitor_observer", default=None)


def routine(exchange: Exchange) -> bool:
    """What an observer need not record: for an event subscription a successful Renew or a
    PullMessages that brought no message; for a poller (the panels' readings) every success."""
    observer = following.get()
    if observer is None or not exchange.ok:
        return False
    if observer == "poller":
        return True
    if exchange.operation not in ROUTINE:
        return False
    return exchange.operation == "Renew" or "NotificationMessage" not in exchange.response


@dataclass(frozen=True)
class Death:
    """Why a subscription ended: a reason code, a sentence, the exchange that shows it."""

    reason: str  # lost | unreachable | past_termination | silent | refused
    detail: str
    evidence: str | None


class EventObserver:
    def __init__(self, monitor: Monitor) -> None:
        self.m = monitor
        self.targets = [t for t in monitor.site.targets if t.kind in KINDS and t.protocol == "onvif"]
        self.heard: dict[str, deque[Heard]] = {t.id: deque(maxlen=HEARD_KEPT) for t in self.targets}
        self.state: dict[str, str] = {}  # device -> subscribed | gap
        self.gap_started: dict[str, datetime] = {}
        self.listeners: list[Listener] = []
        self.held: dict[str, deque[Exchange]] = {}  # device -> its observers' last routine exchanges
        self.pull_points: dict[str, PullPoint] = {}  # device -> its live subscription, ended at stop
        self._record: Sink = discard

    def sink(self, record: Sink) -> Sink:
        """The monitor's sink: the subscriptions' routine exchanges held, every other one recorded."""

        def sink(exchange: Exchange) -> None:
            if routine(exchange):
                self.held.setdefault(exchange.device, deque(maxlen=HELD)).append(exchange)
            else:
                record(exchange)

        self._record = record
        return sink

    def flush(self, device: str, ids: Sequence[str | None]) -> None:
        """Record the held exchanges a record is about to cite."""
        held = self.held.get(device, ())
        wanted = set(ids)
        for exchange in [e for e in held if e.id in wanted]:
            held.remove(exchange)  # type: ignore[union-attr]
            self._record(exchange)

    def heard_by(self, device: str) -> Sequence[Heard] | None:
        """What the device's subscription heard, while it is alive (the passive linkage's history)."""
        return self.heard.get(device) if self.state.get(device) == "subscribed" else None

    async def run(self) -> None:
        """Follow every device until the service stops (the followers never end by themselves)."""
        async with asyncio.TaskGroup() as tg:
            if self.m.config.monitor.events:
                for target in self.targets:
                    tg.create_task(self.follow(target), name=f"events {target.id}")
            await asyncio.Event().wait()  # also with nothing to follow: ends with the service

    async def follow(self, target: Target) -> None:
        following.set("subscription")  # this task's own context: the checks' exchanges are all recorded
        settings = self.m.config.monitor
        delay = settings.reconnect_min_s
        while True:
            death: Death | None = None
            try:
                async with (
                    self.m.ctx.client(OnvifClient, target) as client,
                    await client.pull_point(settings.event_termination_s) as pp,
                ):
                    self.pull_points[target.id] = pp
                    self.subscribed(target, pp.evidence[0])
                    delay = settings.reconnect_min_s
                    death = await self.keep(target, pp)
            except SubscriptionLost as exc:
                lost = Death("lost", f"the device no longer knows the subscription: {exc}", exc.exchange_id)
                death = death or lost
            except CollectorError as exc:  # also an Unsubscribe refused after a silent death
                reason = "unreachable" if isinstance(exc, Unreachable) else "refused"
                death = death or Death(reason, str(exc), exc.exchange_id)
            assert death is not None
            self.died(target, death)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, settings.reconnect_max_s)

    async def keep(self, target: Target, pp: PullPoint) -> Death:
        """Pull, renew and check the subscription until it dies; returns how it died. A death by
        SubscriptionLost or a failed call is raised (the caller reads it from the exception)."""
        settings = self.m.config.monitor
        checked = time.monotonic()
        sync: tuple[str, int] | None = None  # the synchronization point's exchange, pulls since
        last = self.m.ctx.clock()  # the subscription's creation, then each pull's return
        while True:
            pulled = await pp.pull(settings.event_pull_s, slot=False)
            last = self.take(target, pulled, last)
            if pulled.messages:
                sync = None
            elif sync is not None:
                sync = (sync[0], sync[1] + 1)
                if sync[1] >= SYNC_PULLS:
                    return Death(
                        "silent",
                        f"no state came back in {SYNC_PULLS} pulls after a synchronization point: "
                        "the subscription answers but receives nothing",
                        sync[0],
                    )
            now, ends = pulled.current_time, pulled.termination_time
            if now is not None and ends is not None and now > ends:
                return Death(
                    "past_termination",
                    f"the device answers past the subscription's termination ({ends.isoformat()}, "
                    f"its clock {now.isoformat()})",
                    pulled.exchange_id,
                )
            if (
                now is not None
                and ends is not None
                and (ends - now).total_seconds() < settings.event_termination_s / 2
            ):
                await pp.renew(settings.event_termination_s)
            if sync is None and time.monotonic() - checked >= settings.event_check_s:
                sync, checked = (await pp.synchronize(), 0), time.monotonic()

    async def unsubscribe(self, budget_s: float) -> dict[str, dict[str, Any]]:
        """At stop, the followers cancelled (a cancelled pull leaves its subscription open): end every
        live subscription, so that the devices' few pull points are free again, all at once and
        within budget_s; a device that does not answer by then is left to expire it. Each device's
        outcome: the Unsubscribe exchange, or why it was not sent through."""
        live = {d: pp for d, pp in self.pull_points.items() if pp.open}
        self.pull_points.clear()
        tasks = {d: asyncio.create_task(pp.unsubscribe(), name=f"unsubscribe {d}") for d, pp in live.items()}
        if tasks:
            await asyncio.wait(tasks.values(), timeout=budget_s)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        out: dict[str, dict[str, Any]] = {}
        for device, task in tasks.items():
            if task.cancelled():
                out[device] = {"ok": False, "reason": "no_answer", "budget_s": budget_s, "evidence": []}
            elif isinstance(error := task.exception(), CollectorError):
                ids = [error.exchange_id] if error.exchange_id else []
                out[device] = {"ok": False, "reason": error.reason, "evidence": ids}
            elif error is not None:  # a bug: said, and the segment still sealed
                out[device] = {"ok": False, "reason": "internal_error", "detail": repr(error), "evidence": []}
            else:
                out[device] = {"ok": True, "evidence": [task.result()]}
        return out

    def take(self, target: Target, pulled: Pull, after: datetime) -> datetime:
        """Keep what a pull brought (its messages came after the previous pull's return, `after`),
        tell the listeners; returns this pull's return."""
        at = self.m.ctx.clock()
        if pulled.messages:
            new = [Heard(at, m, pulled.exchange_id, after) for m in pulled.messages]
            self.heard[target.id].extend(new)
            for listener in self.listeners:
                listener(target, new)
        return at

    # -- the record ---------------------------------------------------------------------------------
    def subscribed(self, target: Target, exchange_id: str) -> None:
        self.state[target.id] = "subscribed"
        self.m.metrics.event_up.labels(target.id).set(1)
        began = self.gap_started.pop(target.id, None)
        if began is None:
            return
        at = datetime.now(UTC)
        seconds = round((at - began).total_seconds(), 3)
        self.m.ledger.append(
            "event_gap_end",
            {"run_id": self.m.monitor_id, "device": target.id, "started_at": began.isoformat(),
             "ended_at": at.isoformat(), "duration_s": seconds, "evidence": [exchange_id]},
        )  # fmt: skip
        self.m.console.note(f"{target.id}: event subscription created again after {seconds:g} s")

    def died(self, target: Target, death: Death) -> None:
        self.state[target.id] = "gap"
        self.m.metrics.event_up.labels(target.id).set(0)
        self.m.metrics.event_lost.labels(target.id, death.reason).inc()
        if target.id in self.gap_started:
            return  # still the same gap: the retries failed too
        at = datetime.now(UTC)
        self.gap_started[target.id] = at
        self.flush(target.id, [death.evidence])
        self.m.ledger.append(
            "event_gap",
            {"run_id": self.m.monitor_id, "device": target.id, "started_at": at.isoformat(),
             "reason": death.reason, "error": death.detail,
             "evidence": [death.evidence] if death.evidence else []},
        )  # fmt: skip
        self.m.console.note(f"{target.id}: event subscription lost ({death.reason}); creating it again")

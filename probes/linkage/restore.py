"""Restoring the site after a linkage test, and the record of each restore step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from collectors.errors import CollectorError
from probes.linkage.observe import Observing
from probes.linkage.params import ALARM_TOPICS, INSIDE_TOPIC, RETAINED_S
from probes.linkage.reading import current_state, relay_on
from probes.linkage.state import Feed, RelayWatch, finish
from probes.linkage.watches import RestoreStep, Watch, restore_rows
from probes.targets import Target

Check = Callable[[], Awaitable[tuple[bool, str, tuple[str, ...]]]]  # (restored, detail, evidence)


@dataclass
class Pending:
    """Something the test changed that must be seen back in its normal state."""

    step: str
    target: str
    check: Check
    instruction: tuple[str, str, dict[str, Any]] | None = None  # (what to say, action, params)
    told: bool = False
    ok: bool = False
    detail: str = "not verified"
    evidence: tuple[str, ...] = ()

    def step_done(self) -> RestoreStep:
        return RestoreStep(self.step, self.target, self.ok, self.detail, self.evidence, self.told)


class Restoring(Observing):
    """Putting back what a test changed: what the site must show back to normal, handed to the
    operator when it does not, recorded step by step."""

    def set_off(self) -> bool:
        """True once the trigger was set off: from then on the site may move before zhian sees it
        (a stop can come in between), so every target the test watches is checked back."""
        return self.trigger_at is not None

    def may_have_moved(self, w: Watch) -> bool:
        """Whether the test may have moved this target: seen moving, or it could move unseen."""
        if w.baseline_active:
            return False  # it was so before the test, and is left so
        return w.seen_at is not None or (self.set_off() and w.error is None)

    def camera_items(self) -> list[Pending]:
        """Camera alarms the test raised must clear (the linkage's alarm input falls back)."""
        items: list[Pending] = []
        for w in self.watches:
            feed = self.feeds.get(w.target)
            if w.effect == "video" and feed is not None and self.may_have_moved(w):
                say = f"Camera {w.target}: acknowledge and clear the alarm the test raised."
                items.append(
                    Pending("camera_cleared", w.target, partial(camera_clear, feed), (say, "clear", {}))
                )
        return items

    def relay_items(self) -> list[Pending]:
        """Relays the test switched on must be back off: the site switches them, zhian cannot."""
        items: list[Pending] = []
        for broker, relays in self.brokers():
            for one in relays:
                relay, w, _ = one
                if self.may_have_moved(w):
                    say = (
                        f"Lighting relay {relay.id} ({relay.area}) is still on after the test: switch it off."
                    )
                    check = partial(self.relay_off, broker, one)
                    items.append(Pending("relay_off", relay.id, check, (say, "switch", {"on": False})))
        return items

    async def relay_off(self, broker: Target, one: RelayWatch) -> tuple[bool, str, tuple[str, ...]]:
        obs = await self.observe_relays(broker, [one], RETAINED_S)
        state, telemetry = one[2]
        on, _ = relay_on(obs.topic(state) or obs.topic(telemetry), "latest")
        word = {True: "still on", False: "off", None: "state not reported"}[on]
        return on is not True, f"relay {word}", (obs.exchange_id,)

    # -- restore --------------------------------------------------------------------------------------
    async def restore_actions(self) -> None:
        """What the test itself undoes at once (a panel reset, telling the walker to leave)."""

    def restore_items(self) -> list[Pending]:
        """What must be seen back to normal."""
        return []

    async def restore(self) -> None:
        """Put back what the test changed. What the site has not put back after restore_settle_s is
        handed to the operator; what is still not back at restore_timeout_s is recorded as such."""
        self.observing = False
        await finish(self._pollers, 0)
        budget = self.params.restore_timeout_s
        items: list[Pending] = []
        try:
            async with asyncio.timeout(budget):
                await self.restore_actions()
                items = self.restore_items()
                await self.settle(items, time.monotonic() + self.params.restore_settle_s)
        except TimeoutError:
            why = f"the restore did not finish within {budget:g} s"
            self.restore_steps.append(RestoreStep("restore_timeout", self.subject.id, False, why))
        self.restore_steps += [item.step_done() for item in items]
        await self.close_feeds()
        # kept on the context too: if the run is interrupted, this test's finding never comes, and
        # the run's `interrupted` finding lists these steps instead
        zone = {} if self.zone is None else {"zone": self.zone}
        rows = restore_rows(self.restore_steps)
        for row, step in zip(rows, self.restore_steps, strict=True):
            row |= zone | {"evidence": list(step.evidence)}
        self.ctx.note_restore(self.subject.id, rows)

    async def settle(self, items: list[Pending], tell_after: float) -> None:
        while True:
            for item in (i for i in items if not i.ok):
                try:
                    item.ok, item.detail, item.evidence = await item.check()
                except CollectorError as exc:
                    item.ok, item.detail = False, f"could not be read: {exc}"
                    item.evidence = (exc.exchange_id,) if exc.exchange_id else ()
            waiting = [i for i in items if not i.ok]
            if not waiting:
                return
            if time.monotonic() >= tell_after:
                for item in waiting:
                    await self.tell(item)
            await self.pause()

    async def tell(self, item: Pending) -> None:
        if item.told or item.instruction is None:
            return
        say, action, params = item.instruction
        item.told = await self.instruct_safely(say, item.target, action, params)

    async def instruct_safely(self, say: str, device: str, action: str, params: dict[str, Any]) -> bool:
        """During the restore an unreachable operator hook must not stop the rest of the restore."""
        if self.ctx.operator is None:
            return False
        try:
            await self.ctx.operator.instruct(say, device=device, action=action, params=params)
        except Exception as exc:  # a hook's failure is recorded as a restore step; the restore goes on
            step = RestoreStep("operator", device, False, f"could not tell the operator: {exc}")
            self.restore_steps.append(step)
            return False
        return True


async def camera_clear(feed: Feed) -> tuple[bool, str, tuple[str, ...]]:
    if feed.error is not None:
        raise feed.error
    on = current_state(feed.heard, ALARM_TOPICS, "LogicalState")
    return on is not True, "alarm still on" if on else "alarm cleared", last_heard(feed)


async def zone_empty(feed: Feed) -> tuple[bool, str, tuple[str, ...]]:
    if feed.error is not None:
        raise feed.error
    inside = current_state(feed.heard, (INSIDE_TOPIC,), "IsInside")
    return inside is not True, "objects inside" if inside else "detection zone empty", last_heard(feed)


def last_heard(feed: Feed) -> tuple[str, ...]:
    return (feed.heard[-1].exchange_id,) if feed.heard else ()

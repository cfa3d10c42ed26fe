"""Observing a linkage's effects: what each camera, relay and the platform show after a trigger."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any

from collectors.errors import CollectorError, Unsupported
from collectors.mqtt.client import MqttClient
from collectors.mqtt.messages import Observation
from collectors.onvif import OnvifClient
from collectors.onvif_events import Pull
from probes.linkage.params import PULL_WAIT_S, RETAINED_S, SYNC_WAIT_S
from probes.linkage.reading import Heard, alarm_onset, alert_matches, relay_on
from probes.linkage.site import relay_topics
from probes.linkage.state import Feed, LinkageState, RelayWatch, finish
from probes.linkage.watches import RestoreStep, Watch
from probes.platform_common import platform_client
from probes.targets import Target


class Observing(LinkageState):
    """The passive side of a test: camera event feeds, lighting relays over MQTT, the platform's
    alerts, and the wait until every watch is settled or past its deadline."""

    def cameras(self) -> tuple[Target, ...]:
        return self.ctx.site.in_area(self.area, "camera")

    # -- cameras ------------------------------------------------------------------------------------
    async def open_feed(self, camera: Target) -> None:
        """Subscribe before the trigger; the first pull brings every property's current state."""
        p = self.params
        deadlines = [v for k, v in p.model_dump().items() if k.startswith("deadline_")]
        lifetime = p.trigger_wait_s + max(deadlines) + p.grace_s + p.restore_timeout_s + 60
        feed = self.feeds.setdefault(camera.id, Feed(camera))
        try:
            client = await self._stack.enter_async_context(OnvifClient(self.ctx.connection(camera)))
            feed.pull = await self._stack.enter_async_context(await client.pull_point(lifetime))
            feed.evidence += feed.pull.evidence
            self.take(feed, await feed.pull.pull(0))
        except CollectorError as exc:
            feed.error = exc
            return
        self._feed_tasks.append(asyncio.create_task(self.follow(feed), name=f"linkage-feed-{camera.id}"))

    def take(self, feed: Feed, pulled: Pull) -> None:
        at = self.ctx.clock()
        feed.heard += [Heard(at, m, pulled.exchange_id) for m in pulled.messages]
        if pulled.messages:
            feed.news.set()
            self.evaluate_feeds()

    async def follow(self, feed: Feed) -> None:
        assert feed.pull is not None
        while self.feeds_on and feed.pull.open:
            try:
                self.take(feed, await feed.pull.pull(PULL_WAIT_S))
            except CollectorError as exc:
                feed.error = exc
                feed.news.set()
                self.evaluate_feeds()
                return

    def evaluate_feeds(self) -> None:
        """Video watches from what the feeds heard (the trigger time tells before from after)."""
        for w in self.watches:
            feed = self.feeds.get(w.target)
            if w.effect != "video" or feed is None or self.trigger_at is None:
                continue
            w.baseline_active, onset = alarm_onset(feed.heard, self.trigger_at)
            if onset is not None:
                w.see(onset.at, (*feed.evidence, onset.exchange_id), event=onset.message.topic)
            elif feed.error is not None and not w.baseline_active:
                w.fail(feed.error)
        self.changed.set()

    async def close_feeds(self) -> None:
        """Stop pulling and end every subscription (cameras have few pull points to spare)."""
        self.feeds_on = False
        await finish(self._feed_tasks, PULL_WAIT_S + self.ctx.call_timeout_s)
        ended, kept = [], []
        for feed in self.feeds.values():
            if feed.pull is None or not feed.pull.open:
                continue
            try:
                ended.append(await feed.pull.unsubscribe())
            except CollectorError as exc:
                kept.append(f"{feed.camera.id} ({exc.reason})")
        if ended or kept:
            detail = "every subscription ended" if not kept else "left to expire: " + ", ".join(kept)
            step = RestoreStep("pull_points_closed", self.subject.id, not kept, detail, tuple(ended))
            self.restore_steps.append(step)

    # -- lighting relays (MQTT, read-only) -------------------------------------------------------------
    def relay_watches(self, relays: Iterable[Target], deadline_s: float) -> None:
        for relay in relays:
            w = self.watch("lighting", relay.id, deadline_s)
            try:
                self.relays.append((relay, w, relay_topics(relay)))
            except ValueError as exc:
                w.broken("inventory_invalid", str(exc))

    def brokers(self) -> list[tuple[Target, list[RelayWatch]]]:
        """The relays grouped by the broker they report through (one subscription per broker)."""
        groups: dict[str, tuple[Target, list[RelayWatch]]] = {}
        for relay, w, topics in self.relays:
            broker_id = str(relay.params.get("broker"))
            try:
                broker = self.ctx.site.get(broker_id)
            except KeyError:
                w.broken("inventory_invalid", f"{relay.id}: broker {broker_id!r} is not in the inventory")
                continue
            groups.setdefault(broker.id, (broker, []))[1].append((relay, w, topics))
        return list(groups.values())

    async def observe_relays(self, broker: Target, relays: list[RelayWatch], window_s: float) -> Observation:
        filters = [topic for _, _, topics in relays for topic in topics]
        async with MqttClient(self.ctx.connection(broker)) as client:
            return await client.observe(filters, window_s)

    async def relay_baseline(self) -> None:
        for broker, relays in self.brokers():
            try:
                obs = await self.observe_relays(broker, relays, RETAINED_S)
            except CollectorError as exc:
                for _, w, _ in relays:
                    w.fail(exc)
                continue
            for _, w, (state, telemetry) in relays:
                on, _ = relay_on(obs.topic(state) or obs.topic(telemetry), "latest")
                w.baseline_active = on is True
                w.evidence.append(obs.exchange_id)
                w.facts["before"] = on

    async def poll_relays(self, broker: Target, relays: list[RelayWatch]) -> None:
        """Short observation windows one after another: a switch shows live, or as the retained state
        of the next window (then timed at that window's start, an upper bound)."""
        while self.observing and not all(w.settled for _, w, _ in relays):
            try:
                obs = await self.observe_relays(broker, relays, self.params.poll_s)
            except CollectorError as exc:
                for _, w, _ in relays:
                    w.fail(exc)
                return
            for _, w, topics in relays:
                for topic in topics:
                    on, received = relay_on(obs.topic(topic), "first")
                    if on and received is not None:
                        at = obs.started_at if received.retain else received.at
                        w.see(at, (obs.exchange_id,), topic=topic)
            self.changed.set()

    # -- the platform -------------------------------------------------------------------------------
    async def platform_baseline(self, platform: Target, w: Watch) -> None:
        """The platform's own clock before the trigger: alerts raised since then are the test's."""
        try:
            api = platform_client(self.ctx, platform)
            await self._stack.enter_async_context(api)
            self.platform = api
            self.platform_since, exchange = await api.time()
            w.evidence.append(exchange)
        except CollectorError as exc:
            self.platform = None
            w.fail(exc)

    async def poll_platform(self) -> None:
        watch = next((w for w in self.watches if w.effect == "alert"), None)
        if self.platform is None or watch is None:
            return
        while self.observing and not watch.settled:
            try:
                listing = await self.platform.alerts(since=self.platform_since, type=self.alert_type)
            except CollectorError as exc:
                watch.fail(exc)
                return
            found = next((a for a in listing.rows if alert_matches(a, self.subject.id, self.area)), None)
            if found is not None:
                raised = found.raised_at.isoformat()
                watch.see(self.ctx.clock(), (listing.exchange_id,), alert=found.id, raised_at=raised)
                self.changed.set()
                return
            await self.pause()

    # -- observing ------------------------------------------------------------------------------------
    def pollers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [self.poll_platform, *(partial(self.poll_relays, b, r) for b, r in self.brokers())]

    async def observe(self) -> None:
        """Until every watch is settled or past its own deadline plus grace after the trigger (then
        it is missing): a missing door is not watched for as long as the slower broadcast may take."""
        assert self.trigger_at is not None
        self.evaluate_feeds()
        self._pollers = [asyncio.create_task(p(), name="linkage-poll") for p in self.pollers()]
        origin = time.monotonic() - (self.ctx.clock() - self.trigger_at).total_seconds()
        while True:
            elapsed = time.monotonic() - origin
            ends = [w.deadline_s + self.params.grace_s for w in self.watches if not w.settled]
            waiting = [end - elapsed for end in ends if end > elapsed]
            if not waiting:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(*waiting, self.params.poll_s)):
                    await self.changed.wait()
        self.observed_until = self.ctx.clock()
        await asyncio.gather(
            *(self.still_hears(w) for w in self.watches if w.effect == "video" and not w.settled)
        )
        self.observing = False
        await finish(self._pollers, self.ctx.call_timeout_s + self.params.poll_s, raise_errors=True)

    async def still_hears(self, w: Watch) -> None:
        """A camera not seen alarming by its deadline: did its subscription still hear? After a
        synchronization point the device sends its states again, which a live subscription receives
        at once; a deaf pull point (it answers, but hears nothing) leaves the camera unobserved
        (`subscription_silent`), which is not a camera that ignored the trigger."""
        feed = self.feeds.get(w.target)
        if feed is None or feed.pull is None or not feed.pull.open or not feed.heard:
            return  # a subscription that never brought a state cannot show it again
        heard = len(feed.heard)
        try:
            sync = await feed.pull.synchronize()
        except Unsupported:
            return  # no synchronization point: it stays missing, as seen
        except CollectorError as exc:  # the subscription is gone or does not answer
            w.fail(exc)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SYNC_WAIT_S):
                while len(feed.heard) == heard and feed.error is None:  # the feed's own pulls bring them
                    feed.news.clear()
                    await feed.news.wait()
        if len(feed.heard) == heard and feed.error is None:
            detail = (
                f"{w.target}'s event subscription went deaf: it still answers, but its states did not "
                f"come back within {SYNC_WAIT_S:g} s of a synchronization point"
            )
            w.broken("subscription_silent", detail, (*feed.evidence, sync))

"""ONVIF events: the topic set a device advertises, and PullPoint subscriptions checked for life.

Real devices drop subscriptions silently (reboot, too many pull points, a missed renewal); the
pull point then answers wsrf-r:ResourceUnknownFault, which this module raises as SubscriptionLost
so that a caller can tell a dead subscription from an idle one.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from lxml import etree

from collectors.errors import CollectorError, DeviceRejected, ProtocolViolation, Unreachable
from collectors.onvif_client import OnvifSession, SubscriptionLost, utc

TOPICS_NS = "http://www.onvif.org/ver10/topics"
WSTOP = "http://docs.oasis-open.org/wsn/t-1"
TT = "http://www.onvif.org/ver10/schema"

__all__ = [
    "EventProperties",
    "Opening",
    "Pull",
    "PullPoint",
    "PulledMessage",
    "Renewal",
    "SubscriptionLost",
    "open_pull_point",
]

# The first pull's long poll: a device queues every property's Initialized state when the
# subscription starts (ONVIF Core 9.2), and the poll returns as soon as they are there.
OPENING_PULL_S = 1.0


@dataclass(frozen=True)
class EventProperties:
    """The topics the device can raise, as paths without prefixes: "VideoSource/SignalLoss"."""

    topics: frozenset[str]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class PulledMessage:
    topic: str
    utc_time: datetime | None
    operation: str | None  # Initialized | Changed | Deleted for properties, None for pulses
    source: dict[str, str]
    data: dict[str, str]


@dataclass(frozen=True)
class Pull:
    messages: tuple[PulledMessage, ...]
    current_time: datetime | None  # the device's clock
    termination_time: datetime | None
    exchange_id: str
    at: float = field(default_factory=time.monotonic)  # when it came back (time.monotonic())


@dataclass(frozen=True)
class Renewal:
    current_time: datetime | None
    termination_time: datetime | None
    exchange_id: str

    @property
    def remaining_s(self) -> float | None:
        if self.current_time is None or self.termination_time is None:
            return None
        return (self.termination_time - self.current_time).total_seconds()


def _localname(tag: Any) -> str:
    return str(etree.QName(tag).localname)


def topic_path(topic: Any) -> str:
    """A topic expression ("tns1:VideoSource/SignalLoss") as a path without prefixes."""
    text = topic
    if not isinstance(topic, str):
        text = getattr(topic, "_value_1", None)
        if text is None and getattr(topic, "text", None) is not None:
            text = topic.text
    segments = [s.split(":", 1)[-1] for s in str(text or "").strip().split("/") if s]
    return "/".join(segments)


def _items(node: Any, name: str) -> dict[str, str]:
    if node is None:
        return {}
    if isinstance(node, etree._Element):
        return {
            str(item.get("Name")): str(item.get("Value"))
            for child in node
            if isinstance(child.tag, str) and _localname(child.tag) == name
            for item in child
            if isinstance(item.tag, str) and _localname(item.tag) == "SimpleItem"
        }
    group = getattr(node, name, None)
    return {str(i.Name): str(i.Value) for i in (getattr(group, "SimpleItem", None) or [])}


def _message(holder_message: Any) -> Any:
    return getattr(holder_message, "_value_1", holder_message)


def message_items(holder_message: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(Source, Data) simple items of a tt:Message, parsed by zeep or left as XML."""
    msg = _message(holder_message)
    return _items(msg, "Source"), _items(msg, "Data")


def _attribute(msg: Any, name: str) -> Any:
    if isinstance(msg, etree._Element):
        return msg.get(name)
    return getattr(msg, name, None)


def parse_message(holder: Any) -> PulledMessage:
    msg = _message(holder.Message)
    source, data = message_items(holder.Message)
    when = _attribute(msg, "UtcTime")
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            when = None
    op = _attribute(msg, "PropertyOperation")
    return PulledMessage(topic_path(holder.Topic), utc(when), None if op is None else str(op), source, data)


def topic_set_paths(topic_set: Any) -> frozenset[str]:
    """Every element marked wstop:topic="true" in a TopicSet, as its path from the root topic."""
    roots = getattr(topic_set, "_value_1", None) or []
    found: set[str] = set()

    def walk(el: etree._Element, path: tuple[str, ...]) -> None:
        if el.get(f"{{{WSTOP}}}topic") == "true":
            found.add("/".join(path))
        for child in el:
            if isinstance(child.tag, str) and etree.QName(child.tag).namespace != TT:
                walk(child, (*path, _localname(child.tag)))

    for root in roots:
        if isinstance(root, etree._Element) and isinstance(root.tag, str):
            walk(root, (_localname(root.tag),))
    return frozenset(found)


async def event_properties(session: OnvifSession, events: Any) -> EventProperties:
    reply, exchange = await session.call(events, "GetEventProperties")
    if reply is None:
        raise ProtocolViolation("GetEventProperties: empty reply", exchange_id=exchange)
    return EventProperties(topic_set_paths(reply.TopicSet), (exchange,))


def _relative(seconds: float) -> str:
    return f"PT{seconds:g}S"


class PullPoint:
    """`async with await client.pull_point(...) as pp:` a PullPoint subscription, unsubscribed on the
    way out while it is open.

    Devices have few pull points (often under ten) and the platform needs one: after a refusal the
    subscription is still ended, best effort, the refusal staying the error reported. An unreachable
    device or a cancelled task is left alone (the device ends the subscription at its termination
    time; a dying task must not start network calls). A subscription the device said is gone
    (SubscriptionLost) is no longer open.
    """

    def __init__(self, session: OnvifSession, events: Any, termination_s: float) -> None:
        self._session = session
        self._events = events
        self._termination_s = termination_s
        self._pull: Any = None
        self._manager: Any = None
        self._expires = 0.0  # time.monotonic() at the termination time the device gave (set at open)
        self._unanswered = False  # the device did not answer the last call: left to expire it
        self.address = ""
        self.termination_time: datetime | None = None
        self.evidence: tuple[str, ...] = ()
        self.open = False

    async def __aenter__(self) -> PullPoint:
        params = {"InitialTerminationTime": _relative(self._termination_s)}
        reply, exchange = await self._session.call(self._events, "CreatePullPointSubscription", params)
        self.evidence = (exchange,)
        address = getattr(getattr(reply, "SubscriptionReference", None), "Address", None)
        address = getattr(address, "_value_1", address)
        if not address:
            raise ProtocolViolation(
                "CreatePullPointSubscription: no subscription address", exchange_id=exchange
            )
        self.address = str(address)
        self.termination_time = utc(reply.TerminationTime)
        self._expires = time.monotonic() + self._termination_s
        self._lives_until(utc(getattr(reply, "CurrentTime", None)), self.termination_time)
        self._pull = await self._session.service("pullpoint", self.address)
        self._manager = await self._session.service("subscription", self.address)
        self.open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.end(exc)

    async def end(self, exc: BaseException | None = None) -> None:
        """Unsubscribe while open, after `exc` (None: all went well) as the class says."""
        if not self.open or self._unanswered:
            return
        if exc is None:
            await self.unsubscribe()
        elif isinstance(exc, CollectorError) and not isinstance(exc, Unreachable):
            with contextlib.suppress(CollectorError):
                await self.unsubscribe()

    async def release(self) -> None:
        """End it, best effort, unless it has ended, expired or its device stopped answering: a
        shared subscription that no probe ended, at the end of a run or round."""
        if self.alive:
            with contextlib.suppress(CollectorError):
                await self.end(None)

    def left_s(self) -> float:
        """Seconds the subscription has to live, by the termination and current times the device
        last gave (our clock since then), else by the termination it was asked for."""
        return self._expires - time.monotonic()

    @property
    def alive(self) -> bool:
        """Open and not past its termination: still worth an Unsubscribe, or a probe's joining."""
        return self.open and self.left_s() > 0

    def _lives_until(self, current: datetime | None, termination: datetime | None) -> None:
        if current is not None and termination is not None:
            self._expires = time.monotonic() + (termination - current).total_seconds()

    async def _call(
        self, service: Any, operation: str, params: dict[str, Any], wait_s: float = 0.0, slot: bool = True
    ) -> Any:
        """A call on the subscription; once the device says it is gone, it is no longer open."""
        try:
            result = await self._session.call(service, operation, params, wait_s=wait_s, slot=slot)
        except SubscriptionLost:
            self.open = False
            raise
        except Unreachable:
            self._unanswered = True
            raise
        self._unanswered = False
        return result

    async def pull(self, timeout_s: float, limit: int = 100, *, slot: bool = True) -> Pull:
        """Wait up to timeout_s on the device for messages (PullMessages long poll); `slot=False`
        for a subscription that long-polls for the life of a service (see OnvifSession.call)."""
        params = {"Timeout": timedelta(seconds=timeout_s), "MessageLimit": limit}
        reply, exchange = await self._call(self._pull, "PullMessages", params, wait_s=timeout_s, slot=slot)
        if reply is None:
            raise ProtocolViolation("PullMessages: empty reply", exchange_id=exchange)
        messages = tuple(parse_message(m) for m in reply.NotificationMessage or [])
        self.termination_time = utc(reply.TerminationTime) or self.termination_time
        current, termination = utc(reply.CurrentTime), utc(reply.TerminationTime)
        self._lives_until(current, termination)
        return Pull(messages, current, termination, exchange)

    async def renew(self, seconds: float) -> Renewal:
        reply, exchange = await self._call(self._manager, "Renew", {"TerminationTime": _relative(seconds)})
        current = utc(getattr(reply, "CurrentTime", None))
        termination = utc(getattr(reply, "TerminationTime", None))
        self.termination_time = termination or self.termination_time
        self._lives_until(current, termination)
        return Renewal(current, termination, exchange)

    async def synchronize(self) -> str:
        """SetSynchronizationPoint: the device sends every property's current state again, so a
        live subscription hears from it at its next pull (a deaf one does not)."""
        _, exchange = await self._call(self._pull, "SetSynchronizationPoint", {})
        return str(exchange)

    async def unsubscribe(self) -> str:
        _, exchange = await self._call(self._manager, "Unsubscribe", {})
        self.open = False
        return str(exchange)


@dataclass(frozen=True)
class Opening:
    """A subscription just made and its first pull: every property's current state.

    Shared by the probes of one device that read its events (probes/event_common.py): one
    subscription a device serves the event service's life check and the video signal's state.
    `first` is None when the first pull failed (`error` says how; the subscription was made)."""

    pull_point: PullPoint
    first: Pull | None
    error: CollectorError | None = None
    at: float = field(default_factory=time.monotonic)  # when it was made (time.monotonic())

    @property
    def evidence(self) -> tuple[str, ...]:
        cited = (self.first.exchange_id,) if self.first is not None else ()
        failed = (self.error.exchange_id,) if self.error is not None and self.error.exchange_id else ()
        return (*self.pull_point.evidence, *cited, *failed)

    def first_pull(self) -> Pull:
        """The first pull's states, or its failure raised (to the probe that reads them)."""
        if self.first is None:
            assert self.error is not None
            raise self.error
        return self.first


async def open_pull_point(pp: PullPoint) -> Opening:
    """Create the subscription (its refusal is raised) and pull its first states (a failure of the
    pull is the opening's `error`, the subscription having been made)."""
    await pp.__aenter__()
    try:
        return Opening(pp, await pp.pull(OPENING_PULL_S))
    except (DeviceRejected, Unreachable, ProtocolViolation) as exc:
        return Opening(pp, None, exc)

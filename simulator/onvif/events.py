"""ONVIF events: the device's topic set, its property states and pull-point subscriptions.

Behaviour follows the ONVIF Core event chapter: a new pull point first receives every property
in its current state (PropertyOperation="Initialized"), later changes arrive as "Changed", and
SetSynchronizationPoint re-sends the current states.  PullMessages long-polls up to its Timeout
(capped at MAX_PULL_S).  A subscription dies at its termination time unless renewed; after that its
address answers env:Sender / wsrf-r:ResourceUnknownFault, as Hikvision and Axis devices do, so a
client can tell a dead pull point from an idle one.  A reboot (`forget`) drops every subscription
the same way.  Under the subscription_dies_silently fault a pull point goes deaf `after_s` after
its creation: it still answers PullMessages and Renew, but receives nothing any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree
from zeep.xsd.types.builtins import DateTime, Duration

from simulator.onvif import soap
from simulator.onvif.render import Catalog
from simulator.onvif.service import Call, Service, seconds

CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
MAX_PULL_S = 60.0
DEFAULT_TERMINATION_S = 60.0
MAX_PULLPOINTS = 32
QUEUE_LIMIT = 1000
PULLPOINT_PREFIX = "/onvif/pullpoint/"

Items = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Topic:
    """A topic of the ONVIF topic namespace (tns1:), with its message description."""

    path: str
    is_property: bool
    source: Items  # (name, xsd type QName)
    data: Items


_VS = (("VideoSourceToken", "tt:ReferenceToken"),)
_RULE = (
    ("VideoSourceConfigurationToken", "tt:ReferenceToken"),
    ("VideoAnalyticsConfigurationToken", "tt:ReferenceToken"),
    ("Rule", "xs:string"),
)
_DOOR = (("DoorToken", "pt:ReferenceToken"),)
_AP = (("AccessPointToken", "pt:ReferenceToken"),)
_CREDENTIAL = (("CredentialToken", "pt:ReferenceToken"), ("CredentialHolderName", "xs:string"))

SIGNAL_LOSS = Topic("VideoSource/SignalLoss", True, _VS, (("State", "xs:boolean"),))
SCENE_CHANGE = Topic("VideoSource/GlobalSceneChange/ImagingService", True, _VS, (("State", "xs:boolean"),))
OBJECTS_INSIDE = Topic("RuleEngine/FieldDetector/ObjectsInside", True, _RULE, (("IsInside", "xs:boolean"),))
LINE_CROSSED = Topic("RuleEngine/LineDetector/Crossed", False, _RULE, (("ObjectId", "xs:integer"),))
DIGITAL_INPUT = Topic(
    "Device/Trigger/DigitalInput",
    True,
    (("InputToken", "tt:ReferenceToken"),),
    (("LogicalState", "xs:boolean"),),
)
STORAGE_FAILURE = Topic(
    "Device/HardwareFailure/StorageFailure",
    True,
    (("Token", "tt:ReferenceToken"),),
    (("Failed", "xs:boolean"),),
)
RECORDING_STATE = Topic(
    "RecordingHistory/Recording/State",
    True,
    (("RecordingToken", "tt:RecordingReference"),),
    (("IsRecording", "xs:boolean"),),
)
TRACK_STATE = Topic(
    "RecordingHistory/Track/State",
    True,
    (("RecordingToken", "tt:RecordingReference"), ("Track", "tt:TrackReference")),
    (("IsDataPresent", "xs:boolean"),),
)
DOOR_MODE = Topic("Door/State/DoorMode", True, _DOOR, (("State", "tdc:DoorMode"),))
DOOR_PHYSICAL = Topic("Door/State/DoorPhysicalState", True, _DOOR, (("State", "tdc:DoorPhysicalState"),))
DOOR_ALARM = Topic("Door/State/DoorAlarm", True, _DOOR, (("State", "tdc:DoorAlarmState"),))
ACCESS_GRANTED = Topic("AccessControl/AccessGranted/Credential", False, _AP, _CREDENTIAL)
ACCESS_DENIED = Topic("AccessControl/Denied/Credential", False, _AP, (*_CREDENTIAL, ("Reason", "xs:string")))


@dataclass(frozen=True)
class Notification:
    topic: str
    time: datetime
    operation: str | None  # Initialized | Changed for properties, None for pulses
    source: Items
    data: Items


def xml_bool(value: bool) -> str:
    return "true" if value else "false"


def topic_matcher(expressions: list[str]) -> Callable[[str], bool]:
    """Match topics against ConcreteSet expressions: `a/b`, `a//.` (subtree), `*` segments, `|`."""
    alternatives: list[tuple[list[str], bool]] = []
    for expression in expressions:
        for alt in expression.split("|"):
            alt = alt.strip()
            deep = alt.endswith("//.") or alt.endswith("//*")
            alt = alt[:-3] if deep else alt
            segments = [s.split(":", 1)[-1] for s in alt.split("/") if s]
            alternatives.append((segments, deep))

    def match(path: str) -> bool:
        parts = path.split("/")
        for segments, deep in alternatives:
            fits = len(parts) == len(segments) or (deep and len(parts) >= len(segments))
            if fits and all(s in ("*", p) for s, p in zip(segments, parts, strict=False)):
                return True
        return False

    return match


@dataclass
class Subscription:
    token: str
    expires: float  # time.monotonic()
    matches: Callable[[str], bool]
    queue: deque[Notification] = field(default_factory=lambda: deque(maxlen=QUEUE_LIMIT))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    deaf_at: float = float("inf")  # time.monotonic() from which nothing reaches it (a silent death)

    def push(self, n: Notification) -> None:
        if self.matches(n.topic) and time.monotonic() < self.deaf_at:
            self.queue.append(n)
            self.wake.set()


class EventBroker:
    """The device's event source: property states and the pull points that receive them."""

    def __init__(
        self, topics: list[Topic], clock: Callable[[], datetime], deaf_after_s: float | None = None
    ) -> None:
        self.topics = topics
        self.clock = clock
        self.deaf_after_s = deaf_after_s
        self._properties: dict[tuple[str, Items], Notification] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)

    def set_property(self, topic: Topic, source: dict[str, str], data: dict[str, str]) -> None:
        """Record a property's state; a change reaches every subscriber (no event if unchanged)."""
        key = (topic.path, tuple(source.items()))
        old = self._properties.get(key)
        items = tuple(data.items())
        if old is not None and old.data == items:
            return
        n = Notification(topic.path, self.clock(), "Changed" if old else "Initialized", key[1], items)
        self._properties[key] = n
        self._fanout(n)

    def pulse(self, topic: Topic, source: dict[str, str], data: dict[str, str]) -> None:
        """A stateless event (a line crossed, a credential presented)."""
        self._fanout(Notification(topic.path, self.clock(), None, tuple(source.items()), tuple(data.items())))

    def subscribe(self, matches: Callable[[str], bool], lifetime_s: float) -> Subscription | None:
        """A new pull point primed with the current properties; None when all pull points are taken."""
        self._prune()
        if len(self._subscriptions) >= MAX_PULLPOINTS:
            return None
        now = time.monotonic()
        sub = Subscription(f"{next(self._ids)}", now + lifetime_s, matches)
        if self.deaf_after_s is not None:
            sub.deaf_at = now + self.deaf_after_s
        self._subscriptions[sub.token] = sub
        self.synchronize(sub)
        return sub

    def synchronize(self, sub: Subscription) -> None:
        for n in self._properties.values():
            sub.push(Notification(n.topic, n.time, "Initialized", n.source, n.data))

    def get(self, token: str) -> Subscription | None:
        sub = self._subscriptions.get(token)
        if sub is not None and sub.expires <= time.monotonic():
            del self._subscriptions[token]
            return None
        return sub

    def forget(self) -> None:
        """A reboot: every subscription is gone, its address unknown from now on."""
        for token in list(self._subscriptions):
            self.unsubscribe(token)

    def unsubscribe(self, token: str) -> None:
        sub = self._subscriptions.pop(token, None)
        if sub is not None:
            sub.wake.set()

    def _fanout(self, n: Notification) -> None:
        self._prune()
        for sub in self._subscriptions.values():
            sub.push(n)

    def _prune(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._subscriptions.items() if s.expires <= now]:
            del self._subscriptions[token]


def message_holder(cat: Catalog, n: Notification) -> dict[str, Any]:
    """A wsnt:NotificationMessageHolderType value carrying a tt:Message."""
    attrs: dict[str, Any] = {"UtcTime": n.time.replace(microsecond=0)}
    if n.operation is not None:
        attrs["PropertyOperation"] = n.operation
    message = cat.build(
        f"{{{soap.TT}}}Message",
        {
            **attrs,
            "Source": {"SimpleItem": [{"Name": k, "Value": v} for k, v in n.source]},
            "Data": {"SimpleItem": [{"Name": k, "Value": v} for k, v in n.data]},
        },
    )
    return {
        "Topic": {"_value_1": f"tns1:{n.topic}", "Dialect": CONCRETE_SET},
        "Message": {"_value_1": message},
    }


_DURATION: Any = Duration()  # type: ignore[no-untyped-call]
_DATETIME: Any = DateTime()  # type: ignore[no-untyped-call]


def parse_time(value: Any, now: datetime) -> datetime:
    """An AbsoluteOrRelativeTimeType: an xs:dateTime or an xs:duration from now."""
    text = str(value).strip()
    try:
        if text.lstrip("-").startswith("P"):
            return now + timedelta(seconds=seconds(_DURATION.pythonvalue(text), now))
        parsed: datetime = _DATETIME.pythonvalue(text)
    except ValueError as exc:
        raise soap.invalid_arg("InvalidTime", f"not a time: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def resource_unknown(cat: Catalog, now: datetime, token: str) -> soap.SoapFault:
    detail = cat.build(f"{{{soap.WSRF_R}}}ResourceUnknownFault", {"Timestamp": now.replace(microsecond=0)})
    return soap.SoapFault(
        "Sender",
        ("wsrf-r:ResourceUnknownFault",),
        f"no subscription {token!r} (expired or unsubscribed)",
        detail,
    )


class EventServices:
    """The event service endpoint and the per-subscription pull-point endpoints of one device."""

    def __init__(self, cat: Catalog, broker: EventBroker, base_url: Callable[[], str]) -> None:
        self.cat = cat
        self.broker = broker
        self.base_url = base_url

    def event_service(self) -> Service:
        return Service(
            path="/onvif/events_service",
            namespace=soap.TEV,
            bindings=("events",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetEventProperties": self.get_event_properties,
                "CreatePullPointSubscription": self.create_pull_point_subscription,
            },
            capabilities=self.capabilities,
        )

    def pullpoint_service(self) -> Service:
        """Answers at every PULLPOINT_PREFIX address; the subscription is named by the path."""
        return Service(
            path=PULLPOINT_PREFIX,
            namespace=soap.TEV,
            bindings=("pullpoint", "subscription"),
            handlers={
                "PullMessages": self.pull_messages,
                "SetSynchronizationPoint": self.set_synchronization_point,
                "Renew": self.renew,
                "Unsubscribe": self.unsubscribe,
            },
        )

    def capabilities(self) -> dict[str, Any]:
        return {
            "WSSubscriptionPolicySupport": False,
            "WSPullPointSupport": True,
            "WSPausableSubscriptionManagerInterfaceSupport": False,
            "MaxNotificationProducers": 0,
            "MaxPullPoints": MAX_PULLPOINTS,
            "PersistentNotificationStorage": False,
        }

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_event_properties(self, call: Call) -> dict[str, Any]:
        topic_set = etree.Element(f"{{{soap.WSTOP}}}TopicSet", nsmap=soap.NSMAP)
        for topic in self.broker.topics:
            node = topic_set
            for segment in topic.path.split("/"):
                child = node.find(f"{{{soap.TNS1}}}{segment}")
                node = etree.SubElement(node, f"{{{soap.TNS1}}}{segment}") if child is None else child
            node.set(f"{{{soap.WSTOP}}}topic", "true")
            node.append(self._description(topic))
        return {
            "TopicNamespaceLocation": ["http://www.onvif.org/onvif/ver10/topics/topicns.xml"],
            "FixedTopicSet": True,
            "TopicSet": {"_value_1": list(topic_set)},
            "TopicExpressionDialect": [
                "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet",
                "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete",
            ],
            "MessageContentFilterDialect": ["http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"],
            "MessageContentSchemaLocation": ["http://www.onvif.org/onvif/ver10/schema/onvif.xsd"],
        }

    def _description(self, topic: Topic) -> etree._Element:
        def items(pairs: Items) -> dict[str, Any]:
            return {"SimpleItemDescription": [{"Name": n, "Type": t} for n, t in pairs]}

        return self.cat.build(
            f"{{{soap.TT}}}MessageDescription",
            {"IsProperty": topic.is_property, "Source": items(topic.source), "Data": items(topic.data)},
            type_qname=f"{{{soap.TT}}}MessageDescription",
        )

    async def create_pull_point_subscription(self, call: Call) -> dict[str, Any]:
        now = self.broker.clock()
        params = call.params
        filters = [] if params.Filter is None else params.Filter._value_1 or []
        expressions = [str(f._value_1) for f in filters if "opicExpression" in str(getattr(f, "Dialect", ""))]
        matches = topic_matcher(expressions) if expressions else (lambda _path: True)
        lifetime = DEFAULT_TERMINATION_S
        if params.InitialTerminationTime is not None:
            lifetime = (parse_time(params.InitialTerminationTime, now) - now).total_seconds()
        if lifetime <= 0:
            raise soap.invalid_arg("InvalidTerminationTime", "termination time is in the past")
        sub = self.broker.subscribe(matches, lifetime)
        if sub is None:
            detail = self.cat.build(f"{{{soap.WSNT}}}SubscribeCreationFailedFault", {"Timestamp": now})
            raise soap.SoapFault(
                "Receiver", ("wsnt:SubscribeCreationFailedFault",), "all pull points are in use", detail
            )
        return {
            "SubscriptionReference": {
                "Address": {"_value_1": f"{self.base_url()}{PULLPOINT_PREFIX}{sub.token}"}
            },
            "CurrentTime": now.replace(microsecond=0),
            "TerminationTime": self._termination(sub, now),
        }

    def _termination(self, sub: Subscription, now: datetime) -> datetime:
        return (now + timedelta(seconds=sub.expires - time.monotonic())).replace(microsecond=0)

    def _subscription(self, call: Call) -> Subscription:
        token = call.path.removeprefix(PULLPOINT_PREFIX)
        sub = self.broker.get(token)
        if sub is None:
            raise resource_unknown(self.cat, self.broker.clock(), token)
        return sub

    async def pull_messages(self, call: Call) -> dict[str, Any]:
        sub = self._subscription(call)
        now = self.broker.clock()
        limit = max(1, int(call.params.MessageLimit))
        wait_s = min(seconds(call.params.Timeout, now), MAX_PULL_S)
        if not sub.queue and wait_s > 0:
            sub.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), wait_s)
        messages = [sub.queue.popleft() for _ in range(min(limit, len(sub.queue)))]
        now = self.broker.clock()
        return {
            "CurrentTime": now.replace(microsecond=0),
            "TerminationTime": self._termination(sub, now),
            "NotificationMessage": [message_holder(self.cat, n) for n in messages],
        }

    async def set_synchronization_point(self, call: Call) -> dict[str, Any]:
        self.broker.synchronize(self._subscription(call))
        return {}

    async def renew(self, call: Call) -> dict[str, Any]:
        sub = self._subscription(call)
        now = self.broker.clock()
        lifetime = DEFAULT_TERMINATION_S
        if call.params.TerminationTime is not None:
            lifetime = (parse_time(call.params.TerminationTime, now) - now).total_seconds()
        sub.expires = time.monotonic() + max(lifetime, 0.0)
        return {"TerminationTime": self._termination(sub, now), "CurrentTime": now.replace(microsecond=0)}

    async def unsubscribe(self, call: Call) -> dict[str, Any]:
        self.broker.unsubscribe(self._subscription(call).token)
        return {}

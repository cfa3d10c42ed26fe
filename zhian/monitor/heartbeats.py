"""The heartbeat tracker: every MQTT device and gateway, judged live for the life of the service.

A device is up while its heartbeats keep coming within `misses x interval` (the N-of-M debounce of
`zhian run`, mqtt_common.judge_liveness) and its status does not say offline. It goes down the
moment a status says offline (a gateway's Last Will is published by the broker at once), or when
its silence passes the threshold: `stale_online` while the retained status still claims online,
`silent` otherwise. Deadlines sit in one insertion-ordered dict per threshold, so a heartbeat
costs O(1) and the oldest deadline is always first: a 50,000-device site is checked by looking at
a few dict heads, never by a scan. A broker whose subscription is lost is a gap: its devices keep
their last state (a broker restart is not every device going offline) and get a full threshold
again from the moment the subscription is back.

Silence is judged against what the subscription has read, not against the clock alone: a deadline
is acted on only once the follower has read everything the broker had sent by then
(`caught_up`). A process that reads late (a loaded machine, a burst of work) otherwise takes its
own backlog for devices gone quiet, flags them, and floods itself with changes that make it later
still: at 2,000 devices on a loaded machine, thousands of false `stale_online` a minute.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collectors.mqtt.profile import Matcher
from probes.finding import Finding
from probes.mqtt_common import OFFLINE, ONLINE, InventoryError, interval_of, matcher_of
from probes.targets import SiteView, Target

HELD_S = 0.02  # a deadline held for unread messages is looked at again this soon
MQTT_KINDS = {"gateway": "gateway_status", "mqtt_device": "heartbeat"}  # kind -> the probe it answers


@dataclass
class Device:
    """One device's expectation and what was last heard of it."""

    target: Target
    probe: str
    broker: str
    threshold_s: float
    interval_s: float
    matcher: Matcher  # its gateway's topic profile: which messages speak of it
    last_beat: float | None = None  # time.monotonic()
    last_beat_at: datetime | None = None
    status: str | None = None  # online | offline | ...
    status_reason: str | None = None
    up: bool | None = None  # None: not judged yet
    reason: str = "not_judged"
    facts: dict[str, object] = field(default_factory=dict)

    def age_s(self, now: float) -> float | None:
        return None if self.last_beat is None else now - self.last_beat


Change = Callable[[Device, Finding], None]
Route = tuple[tuple[Device, str], ...]  # what one topic says: (device, "heartbeat" | "status")


def expectations(site: SiteView, default_interval_s: float, misses: int) -> tuple[list[Device], list[str]]:
    """Every gateway and MQTT device with its broker and threshold; and what the inventory lacks."""
    devices: list[Device] = []
    problems: list[str] = []
    matchers: dict[str, Matcher] = {}  # one per gateway, shared by its children
    for target in site.targets:
        probe = MQTT_KINDS.get(target.kind)
        if probe is None:
            continue
        broker = target.params.get("broker")
        try:
            matcher = matchers.get(gateway_of(target)) or matcher_of(target)
        except InventoryError as exc:
            problems.append(str(exc))
            continue
        matchers[matcher.gateway] = matcher
        if not isinstance(broker, str):
            problems.append(f"{target.id}: no broker named (params.broker)")
            continue
        interval, _ = interval_of(target, default_interval_s)
        devices.append(Device(target, probe, broker, interval * misses, interval, matcher))
    return devices, problems


def gateway_of(target: Target) -> str:
    return target.id if target.kind == "gateway" else str(target.params.get("gateway"))


class HeartbeatTracker:
    """Fed every status and heartbeat message of a broker; tells each change of a device's up/down."""

    def __init__(self, devices: Iterable[Device], on_change: Change) -> None:
        self.devices = {d.target.id: d for d in devices}
        self._matchers = list({id(d.matcher): d.matcher for d in self.devices.values()}.values())
        self._discovery = [m for m in self._matchers if m.profile.discovery]
        # topic -> the (device, role) pairs it speaks of: every gateway's profile is asked once per
        # topic, not for every message (at 100 gateways that was 360 us a heartbeat); bounded, since
        # anyone allowed to publish under the filters can invent topics
        self._routes: dict[str, Route] = {}
        # a matcher whose every topic names its gateway as one level can match only a topic that
        # holds that id: on a routing miss only those are asked (500 gateways: 1 or 2, not 500)
        self._keyed: dict[str, list[Matcher]] = {}
        self._unkeyed: list[Matcher] = []
        for matcher in self._matchers:
            rules = matcher.profile.topics
            if rules and not matcher.profile.discovery and all("{gateway}" in r.pattern for r in rules):
                self._keyed.setdefault(matcher.gateway, []).append(matcher)
            else:
                self._unkeyed.append(matcher)
        self._routes_cap = 4 * len(self.devices) + 1024
        self._on_change = on_change
        self._deadlines: dict[float, OrderedDict[str, float]] = {}
        self._evidence: dict[str, str] = {}  # broker -> the exchange of its current subscription
        self.gaps: dict[str, float] = {}  # broker -> monotonic start of its gap
        self.read_up_to: dict[str, float] = {}  # broker -> when its subscription last had nothing unread
        self.judged = 0  # devices judged at least once (the warm-up is over when all are)

    def of_broker(self, broker: str) -> list[Device]:
        return [d for d in self.devices.values() if d.broker == broker]

    def subscribed(self, broker: str, exchange_id: str) -> None:
        """The broker's subscription is (back) up: every device of it gets a full threshold from now."""
        self._evidence[broker] = exchange_id
        self.gaps.pop(broker, None)
        now = time.monotonic()
        self.read_up_to[broker] = now
        for device in self.of_broker(broker):
            self._arm(device, now)

    def lost(self, broker: str) -> None:
        """The broker's subscription is gone: its devices keep their last state, unjudged, until it
        is back."""
        self.gaps.setdefault(broker, time.monotonic())
        self.read_up_to.pop(broker, None)
        for device in self.of_broker(broker):
            self._deadlines.get(device.threshold_s, OrderedDict()).pop(device.target.id, None)

    def message(self, topic: str, payload: bytes, retain: bool, at: datetime) -> None:
        """One message of the broker, read by each gateway's profile (collectors/mqtt/profile.py)."""
        now = time.monotonic()
        for matcher in self._discovery:
            if matcher.is_config(topic):
                matcher.learn({topic: payload})
                self._routes.clear()  # what the learnt topics say changed
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic)
        for device, role in route:
            if role == "heartbeat":
                if retain:
                    continue
                device.last_beat, device.last_beat_at = now, at
                self._arm(device, now)
            else:
                word = device.matcher.status_word(topic, payload)
                device.status, device.status_reason = word.state, word.reason
            self._judge(device, now, f"{role} message on {topic}")

    def _route(self, topic: str) -> Route:
        found: list[tuple[Device, str]] = []
        keyed = [m for level in set(topic.split("/")) for m in self._keyed.get(level, ())]
        for matcher in keyed + self._unkeyed:
            for signal in matcher.signals(topic):
                device = self.devices.get(signal.device)
                if device is not None and device.matcher is matcher and signal.role != "alarm":
                    found.append((device, signal.role))
        if len(self._routes) >= self._routes_cap:
            self._routes.clear()
        route = self._routes[topic] = tuple(found)
        return route

    def _arm(self, device: Device, now: float) -> None:
        queue = self._deadlines.setdefault(device.threshold_s, OrderedDict())
        queue.pop(device.target.id, None)
        queue[device.target.id] = now + device.threshold_s

    def caught_up(self, broker: str) -> None:
        """The broker's subscription has read everything sent to it so far."""
        if broker in self.read_up_to:
            self.read_up_to[broker] = time.monotonic()

    def behind_s(self, now: float) -> dict[str, float]:
        """Per subscribed broker, how long ago its subscription last had nothing unread."""
        return {b: max(0.0, now - t) for b, t in list(self.read_up_to.items())}  # read from other threads

    def expire(self) -> float:
        """Judge every device whose deadline has passed and whose broker's messages up to it have all
        been read; returns the seconds until the next look is due."""
        now = time.monotonic()
        read = min(self.read_up_to.values(), default=now)
        soonest = float("inf")
        for queue in self._deadlines.values():
            while queue:
                device_id, deadline = next(iter(queue.items()))
                if deadline > read:  # not due, or due but messages sent before it are still unread
                    soonest = min(soonest, deadline - now if deadline > now else HELD_S)
                    break
                queue.popitem(last=False)
                self._judge(self.devices[device_id], now, "silence past the threshold")
        return soonest

    def _judge(self, device: Device, now: float, cause: str) -> None:
        reference = device.last_beat
        fresh = reference is not None and now - reference <= device.threshold_s
        if device.status == OFFLINE:
            up, reason = False, "offline"
        elif fresh:
            up, reason = True, "alive" if device.status == ONLINE else "alive_no_status"
        elif device.target.id in self._deadlines.get(device.threshold_s, {}):
            return  # within the first threshold since the subscription: not judged yet
        else:
            up, reason = False, "stale_online" if device.status == ONLINE else "silent"
        if up == device.up and reason == device.reason:
            return
        if device.up is None:
            self.judged += 1
        device.up, device.reason = up, reason
        self._on_change(device, self.finding(device, now, cause))

    def finding(self, device: Device, now: float, cause: str) -> Finding:
        age = device.age_s(now)
        facts: dict[str, object] = {
            "status": device.status,
            "status_reason": device.status_reason,
            "last_seen": device.last_beat_at.isoformat() if device.last_beat_at else None,
            "heartbeat_age_s": round(age, 3) if age is not None else None,
            "heartbeat_interval_s": device.interval_s,
            "threshold_s": device.threshold_s,
            "broker": device.broker,
            "seen_by": "monitor",
            "cause": cause,
        }
        name = "The gateway" if device.probe == "gateway_status" else "The device"
        words = {
            "alive": "is online and sends heartbeats",
            "alive_no_status": "sends heartbeats but has no online status",
            "offline": "is reported offline"
            + (" (its Last Will)" if device.status_reason == "lwt" else f" ({device.status_reason})"),
            "stale_online": f"is reported online but sent no heartbeat for {device.threshold_s:g} s",
            "silent": f"sent no heartbeat for {device.threshold_s:g} s",
        }
        evidence = self._evidence.get(device.broker)
        return Finding(
            probe=device.probe,
            device=device.target.id,
            status="pass" if device.up else "fail",
            reason=device.reason,
            detail=f"{name} {words[device.reason]}.",
            facts=facts,
            evidence=(evidence,) if evidence else (),
            started_at=datetime.now(UTC),
            finished_at=datetime.now(UTC),
        )

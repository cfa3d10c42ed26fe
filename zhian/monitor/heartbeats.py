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
        self._on_change = on_change
        self._deadlines: dict[float, OrderedDict[str, float]] = {}
        self._evidence: dict[str, str] = {}  # broker -> the exchange of its current subscription
        self.gaps: dict[str, float] = {}  # broker -> monotonic start of its gap

    def of_broker(self, broker: str) -> list[Device]:
        return [d for d in self.devices.values() if d.broker == broker]

    def subscribed(self, broker: str, exchange_id: str) -> None:
        """The broker's subscription is (back) up: every device of it gets a full threshold from now."""
        self._evidence[broker] = exchange_id
        self.gaps.pop(broker, None)
        now = time.monotonic()
        for device in self.of_broker(broker):
            self._arm(device, now)

    def lost(self, broker: str) -> None:
        """The broker's subscription is gone: its devices keep their last state, unjudged, until it
        is back."""
        self.gaps.setdefault(broker, time.monotonic())
        for device in self.of_broker(broker):
            self._deadlines.get(device.threshold_s, OrderedDict()).pop(device.target.id, None)

    def message(self, topic: str, payload: bytes, retain: bool, at: datetime) -> None:
        """One message of the broker, read by each gateway's profile (collectors/mqtt/profile.py)."""
        now = time.monotonic()
        for matcher in self._matchers:
            if matcher.is_config(topic):
                matcher.learn({topic: payload})
            for signal in matcher.signals(topic):
                device = self.devices.get(signal.device)
                if device is None or device.matcher is not matcher:
                    continue
                if signal.role == "heartbeat" and not retain:
                    device.last_beat, device.last_beat_at = now, at
                    self._arm(device, now)
                elif signal.role == "status":
                    word = matcher.status_word(topic, payload)
                    device.status, device.status_reason = word.state, word.reason
                else:
                    continue
                self._judge(device, now, f"{signal.role} message on {topic}")

    def _arm(self, device: Device, now: float) -> None:
        queue = self._deadlines.setdefault(device.threshold_s, OrderedDict())
        queue.pop(device.target.id, None)
        queue[device.target.id] = now + device.threshold_s

    def expire(self) -> float:
        """Judge every device whose deadline has passed; returns the seconds until the next deadline."""
        now = time.monotonic()
        soonest = float("inf")
        for queue in self._deadlines.values():
            while queue:
                device_id, deadline = next(iter(queue.items()))
                if deadline > now:
                    soonest = min(soonest, deadline - now)
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

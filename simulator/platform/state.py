"""What the platform knows: device statuses, the alerts it raised and the log of everything it saw.

Times the platform writes are its own clock (ctx.now(), skewed by clock_skew) in Beijing time, as
the platform's operators see them; times that came with an event are kept beside them as
`source_time` so that a reader can tell the two clocks apart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from simulator.bus import SiteEvent
from simulator.faults import PlatformNoOfflineAlert
from simulator.runtime import DeviceContext

CHINA = timezone(timedelta(hours=8))
Status = Literal["online", "offline", "unknown"]

SEVERITY = {
    "fire_alarm": "critical",
    "emergency_button": "critical",
    "gas_alarm": "critical",
    "smoke_alarm": "critical",
    "device_offline": "major",
    "video_loss": "major",
    "door_forced": "major",
    "intrusion": "major",
    "charger_overload": "major",
    "water_level_low": "major",
    "pipe_pressure_low": "major",
    "door_held": "minor",
    "device_online": "info",
}
LOG_LIMIT = 20000


def iso(moment: datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="milliseconds")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class Alert:
    id: str
    type: str
    device: str
    area: str | None
    severity: str
    raised_at: datetime
    source_time: datetime | None
    data: dict[str, Any] = field(default_factory=dict)
    acknowledged: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "device": self.device,
            "area": self.area,
            "severity": self.severity,
            "raised_at": iso(self.raised_at),
            "source_time": iso(self.source_time) if self.source_time else None,
            "acknowledged": self.acknowledged,
            "data": self.data,
        }


@dataclass
class DeviceStatus:
    id: str
    kind: str
    protocol: str
    area: str
    status: Status = "unknown"
    last_seen: datetime | None = None
    via: str | None = None  # what last told the platform: mqtt, poll or bus
    poll_failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "protocol": self.protocol,
            "area": self.area,
            "status": self.status,
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "via": self.via,
        }


class PlatformState:
    """Shared by the engine, the MQTT link, the poller and the API."""

    def __init__(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.alerts: list[Alert] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.outbox: asyncio.Queue[Alert] = asyncio.Queue()  # alerts waiting for the MQTT link
        self.listeners: list[Callable[[Alert], None]] = []  # told of every alert raised (callbacks)
        self.devices: dict[str, DeviceStatus] = {}
        self._seq = itertools.count(1)
        self._alert_ids = itertools.count(1)
        for d in ctx.community.devices:
            if d.id == ctx.spec.id:
                continue
            self.devices[d.id] = DeviceStatus(d.id, d.kind, d.protocol, d.area)
            for child in d.gateway.devices if d.gateway else []:
                self.devices[child.id] = DeviceStatus(child.id, child.type, "mqtt", child.area)

    def now(self) -> datetime:
        return self.ctx.now()

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {"seq": next(self._seq), "at": iso(self.now()), "kind": kind, **fields}
        self.log.append(entry)
        return entry

    def raise_alert(
        self,
        type_: str,
        device: str,
        area: str | None,
        *,
        source_time: datetime | None = None,
        data: dict[str, Any] | None = None,
    ) -> Alert | None:
        if type_ == "device_offline" and self.ctx.spec.fault(PlatformNoOfflineAlert):
            return None
        alert = Alert(
            id=f"A{self.now().astimezone(CHINA):%Y%m%d}-{next(self._alert_ids):05d}",
            type=type_,
            device=device,
            area=area,
            severity=SEVERITY.get(type_, "major"),
            raised_at=self.now(),
            source_time=source_time,
            data=data or {},
        )
        self.alerts.append(alert)
        self.outbox.put_nowait(alert)
        for listener in self.listeners:
            listener(alert)
        self.record("alert_raised", alert=alert.to_json())
        self.ctx.bus.publish(SiteEvent("platform_alert", self.ctx.spec.id, area, {"alert": alert.to_json()}))
        return alert

    def seen(self, device_id: str, via: str) -> None:
        """Evidence the device is alive; a recovery raises device_online."""
        status = self.devices.get(device_id)
        if status is None:
            return
        was = status.status
        status.status, status.last_seen, status.via, status.poll_failures = "online", self.now(), via, 0
        if was != "online":
            self.record("device_status", device=device_id, status="online", via=via)
        if was == "offline":
            self.raise_alert("device_online", device_id, status.area, data={"via": via})

    def lost(self, device_id: str, via: str, reason: str) -> None:
        status = self.devices.get(device_id)
        if status is None or status.status == "offline":
            return
        status.status, status.via = "offline", via
        self.record("device_status", device=device_id, status="offline", via=via, reason=reason)
        self.raise_alert("device_offline", device_id, status.area, data={"via": via, "reason": reason})

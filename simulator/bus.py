"""The site's internal wiring: device events and commands between simulated devices.

On a real site the platform, the fire panel and the access controllers are wired together by
integration the inspector does not see; only their protocol surfaces are observable. The bus plays
that hidden wiring in-process. zhian never touches it: it observes the effects over the wire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "fire_alarm",  # a panel zone went into alarm (data: zone, area, test_mode)
    "fire_reset",  # the panel was reset / zone restored
    "intrusion",  # perimeter intrusion detected by a camera rule (area)
    "video_loss",  # a camera lost its video signal
    "door_forced",  # a door opened without a grant
    "door_held",  # a door held open too long
    "door_state",  # a door changed state (data: mode, physical)
    "device_offline",  # a device stopped answering (raised by whoever notices)
    "device_online",
    "mqtt_alarm",  # an MQTT child device raised an alarm (smoke, gas, button, charger overload)
    "lighting",  # emergency / area lighting switched (data: on)
    "broadcast",  # emergency broadcast switched (data: on)
    "platform_alert",  # the platform raised an alert (data: alert dict)
    "hazard",  # a panel measurement crossed its threshold (data: kind water_low|pressure_low|
    # charger_overload, active, value, threshold, zone)
]

CommandHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class SiteEvent:
    type: EventType
    source: str  # device id
    area: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class SiteBus:
    """Fan-out of site events to subscribers, and commands addressed to devices by id."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[SiteEvent]] = []
        self._actuators: dict[str, CommandHandler] = {}
        self.history: list[SiteEvent] = []

    def publish(self, event: SiteEvent) -> None:
        self.history.append(event)
        for q in self._queues:
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[SiteEvent]:
        q: asyncio.Queue[SiteEvent] = asyncio.Queue()
        self._queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[SiteEvent]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def register(self, device_id: str, handler: CommandHandler) -> None:
        """A device accepts commands: doors 'unlock'/'lock', cameras 'alarm', relays 'switch'..."""
        self._actuators[device_id] = handler

    def has(self, device_id: str) -> bool:
        return device_id in self._actuators

    async def command(self, device_id: str, action: str, **params: Any) -> None:
        handler = self._actuators.get(device_id)
        if handler is None:
            raise KeyError(f"no device {device_id!r} takes commands")
        await handler(action, params)

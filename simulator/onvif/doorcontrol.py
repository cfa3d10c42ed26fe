"""Profile C: one door, its access point, and the DoorControl and AccessControl services.

The door's mode (Locked, Unlocked, Accessed...), physical state and alarm are ONVIF event
properties (tns1:Door/State/*), and each change is also told to the site bus ("door_state",
"door_forced", "door_held") the way the site's integration hears its controllers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from simulator.bus import EventType
from simulator.onvif import soap
from simulator.onvif.events import (
    ACCESS_DENIED,
    ACCESS_GRANTED,
    DOOR_ALARM,
    DOOR_MODE,
    DOOR_PHYSICAL,
    EventBroker,
)
from simulator.onvif.service import Call, Service, lookup, seconds

DOOR = "Door_1"
ACCESS_POINT = "AccessPoint_1"
DEFAULT_ACCESS_S = 5.0

Publish = Callable[[EventType, dict[str, Any]], None]


class Door:
    """The door's state; every change becomes an event property and a site-bus event."""

    def __init__(self, name: str, broker: EventBroker, publish: Publish) -> None:
        self.name = name
        self.broker = broker
        self.publish = publish
        self.mode = "Locked"
        self.physical = "Closed"
        self.alarm = "Normal"
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._sync()

    def _sync(self) -> None:
        source = {"DoorToken": DOOR}
        self.broker.set_property(DOOR_MODE, source, {"State": self.mode})
        self.broker.set_property(DOOR_PHYSICAL, source, {"State": self.physical})
        self.broker.set_property(DOOR_ALARM, source, {"State": self.alarm})

    def _changed(self, reason: str | None = None) -> None:
        self._sync()
        data: dict[str, Any] = {"mode": self.mode, "physical": self.physical, "alarm": self.alarm}
        if reason is not None:
            data["reason"] = reason
        self.publish("door_state", data)

    def set_mode(self, mode: str, reason: str | None = None) -> None:
        self._cancel("relock")
        if mode != self.mode:
            self.mode = mode
            self._changed(reason)

    def access(self, access_s: float) -> None:
        """A momentary unlock (AccessDoor): Accessed, then Locked again after access_s."""
        self.set_mode("Accessed")
        self._later("relock", access_s, self._relock)

    def _relock(self) -> None:
        if self.mode == "Accessed":
            self.set_mode("Locked")

    def force_open(self) -> None:
        self.physical, self.alarm = "Open", "DoorForcedOpen"
        self._changed()
        self.publish("door_forced", {"mode": self.mode})

    def hold_open(self, alarm_after_s: float) -> None:
        """Opened and left open: DoorOpenTooLong once alarm_after_s has passed with it still open."""
        if self.physical != "Open":
            self.physical = "Open"
            self._changed()
        self._later("held", alarm_after_s, self._held_too_long)

    def _held_too_long(self) -> None:
        if self.physical == "Open" and self.alarm == "Normal":
            self.alarm = "DoorOpenTooLong"
            self._changed()
            self.publish("door_held", {"mode": self.mode})

    def close(self) -> None:
        self._cancel("held")
        if (self.physical, self.alarm) != ("Closed", "Normal"):
            self.physical, self.alarm = "Closed", "Normal"
            self._changed()

    def credential(self, token: str, holder: str, granted: bool, reason: str) -> None:
        source = {"AccessPointToken": ACCESS_POINT}
        data = {"CredentialToken": token, "CredentialHolderName": holder}
        if granted:
            self.broker.pulse(ACCESS_GRANTED, source, data)
        else:
            self.broker.pulse(ACCESS_DENIED, source, {**data, "Reason": reason})

    def _later(self, name: str, delay_s: float, action: Callable[[], None]) -> None:
        self._cancel(name)
        if delay_s <= 0:
            action()
        else:
            self._timers[name] = asyncio.get_running_loop().call_later(delay_s, action)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def cancel_timers(self) -> None:
        for name in list(self._timers):
            self._cancel(name)


_DOOR_CAPABILITIES = {
    "Access": True,
    "AccessTimingOverride": True,
    "Lock": True,
    "Unlock": True,
    "Block": True,
    "DoubleLock": True,
    "LockDown": True,
    "LockOpen": True,
    "DoorMonitor": True,
    "LockMonitor": True,
    "Alarm": True,
}


class DoorControlService:
    """tdc: door information, state and the mode commands."""

    def __init__(self, door: Door, clock: Callable[[], Any]) -> None:
        self.door = door
        self.clock = clock

    def service(self) -> Service:
        modes = {
            "LockDoor": "Locked",
            "UnlockDoor": "Unlocked",
            "BlockDoor": "Blocked",
            "LockDownDoor": "LockedDown",
            "LockDownReleaseDoor": "Locked",
            "LockOpenDoor": "LockedOpen",
            "LockOpenReleaseDoor": "Locked",
            "DoubleLockDoor": "DoubleLocked",
        }
        handlers = {op: self._mode_command(mode) for op, mode in modes.items()}
        return Service(
            path="/onvif/doorcontrol_service",
            namespace=soap.TDC,
            bindings=("doorcontrol",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetDoorInfoList": self.get_door_info_list,
                "GetDoorInfo": self.get_door_info,
                "GetDoorState": self.get_door_state,
                "AccessDoor": self.access_door,
                **handlers,
            },
            capabilities=self.capabilities,
        )

    def capabilities(self) -> dict[str, Any]:
        return {"MaxLimit": 1}

    def _info(self) -> dict[str, Any]:
        return {"token": DOOR, "Name": self.door.name, "Description": "", "Capabilities": _DOOR_CAPABILITIES}

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_door_info_list(self, call: Call) -> dict[str, Any]:
        return {"DoorInfo": [self._info()]}

    async def get_door_info(self, call: Call) -> dict[str, Any]:
        tokens = call.params.Token or []
        return {"DoorInfo": [lookup({DOOR: self._info()}, t, "NotFound") for t in tokens]}

    async def get_door_state(self, call: Call) -> dict[str, Any]:
        lookup({DOOR: self.door}, call.params.Token, "NotFound")
        d = self.door
        locked = "Unlocked" if d.mode in ("Unlocked", "Accessed", "LockedOpen") else "Locked"
        return {
            "DoorState": {
                "DoorPhysicalState": d.physical,
                "LockPhysicalState": locked,
                "Alarm": d.alarm,
                "DoorMode": d.mode,
            }
        }

    async def access_door(self, call: Call) -> dict[str, Any]:
        lookup({DOOR: self.door}, call.params.Token, "NotFound")
        access = call.params.AccessTime
        self.door.access(DEFAULT_ACCESS_S if access is None else seconds(access, self.clock()))
        return {}

    def _mode_command(self, mode: str) -> Any:
        async def command(call: Call) -> dict[str, Any]:
            lookup({DOOR: self.door}, call.params.Token, "NotFound")
            self.door.set_mode(mode)
            return {}

        return command


class AccessControlService:
    """tac: the access point in front of the door and the areas it joins."""

    def __init__(self, door: Door, area_token: str, area_name: str) -> None:
        self.door = door
        self.area_token = area_token
        self.area_name = area_name

    def service(self) -> Service:
        return Service(
            path="/onvif/accesscontrol_service",
            namespace=soap.TAC,
            bindings=("accesscontrol",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetAccessPointInfoList": self.get_access_point_info_list,
                "GetAccessPointInfo": self.get_access_point_info,
                "GetAccessPointState": self.get_access_point_state,
                "GetAreaInfoList": self.get_area_info_list,
                "GetAreaInfo": self.get_area_info,
            },
            capabilities=self.capabilities,
        )

    def capabilities(self) -> dict[str, Any]:
        return {"MaxLimit": 1}

    def _access_point(self) -> dict[str, Any]:
        return {
            "token": ACCESS_POINT,
            "Name": f"{self.door.name} reader",
            "AreaTo": self.area_token,
            "EntityType": "tdc:Door",
            "Entity": DOOR,
            "Capabilities": {"DisableAccessPoint": False},
        }

    def _area(self) -> dict[str, Any]:
        return {"token": self.area_token, "Name": self.area_name[:64] or self.area_token}

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_access_point_info_list(self, call: Call) -> dict[str, Any]:
        return {"AccessPointInfo": [self._access_point()]}

    async def get_access_point_info(self, call: Call) -> dict[str, Any]:
        known = {ACCESS_POINT: self._access_point()}
        return {"AccessPointInfo": [lookup(known, t, "NotFound") for t in call.params.Token or []]}

    async def get_access_point_state(self, call: Call) -> dict[str, Any]:
        lookup({ACCESS_POINT: True}, call.params.Token, "NotFound")
        return {"AccessPointState": {"Enabled": True}}

    async def get_area_info_list(self, call: Call) -> dict[str, Any]:
        return {"AreaInfo": [self._area()]}

    async def get_area_info(self, call: Call) -> dict[str, Any]:
        known = {self.area_token: self._area()}
        return {"AreaInfo": [lookup(known, t, "NotFound") for t in call.params.Token or []]}

"""Profile C DoorControl: the doors a controller has, what each can sense, and its current state.

DoorCapabilities is a set of optional attributes: an absent one means "not supported", so every
flag here is False unless the device said true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collectors.errors import ProtocolViolation
from collectors.onvif_client import OnvifSession

_FLAGS = ("Access", "Lock", "Unlock", "DoorMonitor", "LockMonitor", "Alarm", "Tamper", "Fault")


@dataclass(frozen=True)
class DoorCapabilities:
    access: bool = False
    lock: bool = False
    unlock: bool = False
    door_monitor: bool = False  # a door contact: DoorPhysicalState and its event
    lock_monitor: bool = False
    alarm: bool = False  # DoorAlarm (DoorForcedOpen, DoorOpenTooLong) and its event
    tamper: bool = False
    fault: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {
            "access": self.access,
            "lock": self.lock,
            "unlock": self.unlock,
            "door_monitor": self.door_monitor,
            "lock_monitor": self.lock_monitor,
            "alarm": self.alarm,
            "tamper": self.tamper,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class DoorInfo:
    token: str
    name: str
    capabilities: DoorCapabilities


@dataclass(frozen=True)
class DoorList:
    doors: tuple[DoorInfo, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class DoorState:
    """GetDoorState; a field is None when the device left it out (it lacks that capability)."""

    token: str
    mode: str | None  # Locked, Unlocked, Accessed, Blocked, LockedDown, LockedOpen, DoubleLocked...
    physical: str | None  # Unknown, Open, Closed, Fault
    lock: str | None
    alarm: str | None  # Normal, DoorForcedOpen, DoorOpenTooLong
    exchange_id: str


def _flag(caps: Any, name: str) -> bool:
    return getattr(caps, name, None) is True


def parse_capabilities(caps: Any) -> DoorCapabilities:
    values = [_flag(caps, n) for n in _FLAGS]
    return DoorCapabilities(*values)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def door_info_list(session: OnvifSession, doorcontrol: Any, *, max_pages: int = 20) -> DoorList:
    """Every door, following NextStartReference over pages."""
    doors: list[DoorInfo] = []
    evidence: list[str] = []
    params: dict[str, Any] = {}
    for _ in range(max_pages):
        reply, exchange = await session.call(doorcontrol, "GetDoorInfoList", params)
        evidence.append(exchange)
        if reply is None:
            raise ProtocolViolation("GetDoorInfoList: empty reply", exchange_id=exchange)
        for info in reply.DoorInfo or []:
            doors.append(
                DoorInfo(str(info.token), str(info.Name or ""), parse_capabilities(info.Capabilities))
            )
        if not reply.NextStartReference:
            break
        params = {"StartReference": reply.NextStartReference}
    return DoorList(tuple(doors), tuple(evidence))


async def door_state(session: OnvifSession, doorcontrol: Any, token: str) -> DoorState:
    reply, exchange = await session.call(doorcontrol, "GetDoorState", {"Token": token})
    if reply is None:
        raise ProtocolViolation("GetDoorState: empty reply", exchange_id=exchange)
    return DoorState(
        token=token,
        mode=_text(reply.DoorMode),
        physical=_text(getattr(reply, "DoorPhysicalState", None)),
        lock=_text(getattr(reply, "LockPhysicalState", None)),
        alarm=_text(getattr(reply, "Alarm", None)),
        exchange_id=exchange,
    )

"""Reading ISAPI replies: times in the device's zone, ResponseStatus, and the alert stream
(multipart/mixed, its parts XML or JSON EventNotificationAlerts, a cut last part told apart).
Pure functions over bytes, so that the client (collectors/isapi.py) stays the protocol's calls."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from collectors.errors import DeviceRejected
from collectors.http import DecodeError, Refusal, decode_xml


@dataclass(frozen=True)
class AlertEvent:
    event_type: str
    state: str  # active | inactive
    time: datetime | None  # UTC
    channel: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def heartbeat(self) -> bool:
        """Devices send an inactive videoloss part every few seconds as a liveness signal."""
        return self.event_type == "videoloss" and self.state == "inactive"


@dataclass(frozen=True)
class AlertStreamRead:
    events: tuple[AlertEvent, ...]
    window_s: float
    truncated: bool  # the window closed in the middle of a part
    exchange_id: str


# -- parsing helpers --------------------------------------------------------------------------


def text_of(root: ET.Element, path: str) -> str | None:
    value = root.findtext(path)
    return value.strip() if value is not None else None


def int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


_POSIX_TZ = re.compile(r"^[A-Za-z]+([+-])(\d{1,2})(?::(\d{2}))?")


def posix_zone(text: str) -> timezone | None:
    """A POSIX TZ string's standard offset: `CST-8:00:00` is UTC+8 (POSIX counts west positive)."""
    m = _POSIX_TZ.match(text.strip())
    if m is None:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(timedelta(minutes=-minutes if m.group(1) == "+" else minutes))


def parse_time(text: str, zone: timezone) -> datetime:
    """An ISAPI time (Z, an offset, or naive in the device's zone) in UTC; ValueError if none."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)


def utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_status(body: bytes) -> ET.Element:
    """A ResponseStatus that must say statusCode 1; anything else is the device's refusal."""
    root = decode_xml(body)
    code = text_of(root, "statusCode")
    if root.tag != "ResponseStatus" or code is None:
        raise DecodeError("no ResponseStatus in the reply")
    if code != "1":
        sub = text_of(root, "subStatusCode") or code
        raise Refusal(DeviceRejected, f"device refused ({sub})", code=sub)
    return root


def _flat(root: ET.Element) -> dict[str, Any]:
    """Leaf children of an XML element by name (for alert parts)."""
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def multipart_parts(body: bytes, boundary: str) -> tuple[list[tuple[str, bytes]], bool]:
    """The complete parts of a (possibly cut) multipart body, and whether one was cut off."""
    marker = b"--" + boundary.encode()
    parts: list[tuple[str, bytes]] = []
    pos = body.find(marker)
    while pos >= 0:
        head_start = pos + len(marker)
        if body[head_start : head_start + 2] == b"--":
            return parts, False  # the closing boundary
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_end < 0:
            return parts, head_start < len(body.rstrip())
        headers = {}
        for line in body[head_start:head_end].decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        start = head_end + 4
        length = int_or_none(headers.get("content-length"))
        if length is not None:
            end = start + length
            if end > len(body):
                return parts, True
            nxt = body.find(marker, end)
        else:
            nxt = body.find(marker, start)
            if nxt < 0:
                return parts, True
            end = nxt
        parts.append((headers.get("content-type", ""), body[start:end].rstrip(b"\r\n")))
        pos = nxt
    return parts, False


def alert_event(content_type: str, body: bytes, zone: timezone) -> AlertEvent | None:
    """One alert-stream part as an event; None for a part that is neither XML nor JSON alert."""
    fields: dict[str, Any]
    if "json" in content_type:
        try:
            loaded = json.loads(body)
        except ValueError:
            return None
        if not isinstance(loaded, dict):
            return None
        fields = loaded
    else:
        try:
            root = decode_xml(body)
        except DecodeError:
            return None
        fields = _flat(root)
    event_type = str(fields.get("eventType", ""))
    if not event_type:
        return None
    moment: datetime | None = None
    try:
        moment = parse_time(str(fields["dateTime"]), zone) if fields.get("dateTime") else None
    except ValueError:
        moment = None
    channel = int_or_none(str(fields["channelID"])) if "channelID" in fields else None
    return AlertEvent(event_type, str(fields.get("eventState", "")), moment, channel, fields)

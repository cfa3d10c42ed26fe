"""Hikvision ISAPI (HTTP Digest, XML and JSON): identity, clock, recorded history, storage, doors,
the access-control log, the illegal-login lock and the alert stream, as typed data.

Shapes are those of the ISAPI developer guides as devices serve them: `ResponseStatus`
(statusCode 1 = OK, subStatusCode names the refusal), `CMSearchDescription` with
trackID = channel x 100 + 1 (several in one trackIDList: each match names its trackID) and the
position spelt `searchResultPostion` (sic, as firmware and its clients spell it), `AcsEventCond`
paged by searchResultPosition, and a multipart/mixed alert stream whose parts are XML or JSON
EventNotificationAlerts. Searches page until the device stops saying MORE, bounded by `max_pages`;
`complete` tells whether that bound cut a search short.

Device times without a zone are read in the zone the device's Time resource gives (POSIX
`CST-8:00:00` means UTC+8); until it is read, Beijing time, as on Chinese sites.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from xml.sax.saxutils import escape

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation
from collectors.http import DecodeError, HttpSession, Refusal, decode_json, decode_xml

CHINA = timezone(timedelta(hours=8))
SEARCH_PAGE = 40  # items asked per content-search page (devices cap pages at about this)
ACS_PAGE = 30  # access-control terminals cap a page at 30 records whatever is asked
DoorCommand = Literal["open", "close", "alwaysOpen", "alwaysClose"]


# -- typed results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    model: str
    serial: str
    firmware: str
    device_type: str
    mac: str
    exchange_id: str


@dataclass(frozen=True)
class Span:
    start: datetime  # UTC
    end: datetime


@dataclass(frozen=True)
class ChannelRecordings:
    """The recorded files of one channel in a searched window, oldest first."""

    channel: int
    track: int
    spans: tuple[Span, ...]
    complete: bool  # False: the page bound stopped the search
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Disk:
    id: str
    status: str
    capacity_mb: int | None
    free_mb: int | None
    property: str


@dataclass(frozen=True)
class Storage:
    disks: tuple[Disk, ...]
    work_mode: str | None
    exchange_id: str


@dataclass(frozen=True)
class DoorStatus:
    """AcsWorkStatus, per door (index 0 = door 1), as the device codes them."""

    lock_status: tuple[int, ...]  # 0 locked, 1 unlocked
    door_status: tuple[int, ...]  # 2 remain open, 3 remain closed, 4 ordinary
    magnetic_status: tuple[int, ...]  # 0 closed, 1 open
    exchange_id: str


@dataclass(frozen=True)
class AcsEvent:
    major: int
    minor: int
    time: datetime  # UTC
    serial: int | None
    door: int | None
    fields: Mapping[str, Any]  # the whole record as the device gave it


@dataclass(frozen=True)
class AcsEvents:
    events: tuple[AcsEvent, ...]
    complete: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class LoginLock:
    """/ISAPI/Security/illegalLoginLock: lock after max_failures failed logins, for lock_s seconds."""

    enabled: bool
    max_failures: int | None
    lock_s: int | None
    exchange_id: str


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


def _text(root: ET.Element, path: str) -> str | None:
    value = root.findtext(path)
    return value.strip() if value is not None else None


def _int(text: str | None) -> int | None:
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


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_status(body: bytes) -> ET.Element:
    """A ResponseStatus that must say statusCode 1; anything else is the device's refusal."""
    root = decode_xml(body)
    code = _text(root, "statusCode")
    if root.tag != "ResponseStatus" or code is None:
        raise DecodeError("no ResponseStatus in the reply")
    if code != "1":
        sub = _text(root, "subStatusCode") or code
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
        length = _int(headers.get("content-length"))
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
    channel = _int(str(fields["channelID"])) if "channelID" in fields else None
    return AlertEvent(event_type, str(fields.get("eventState", "")), moment, channel, fields)


# -- the client -------------------------------------------------------------------------------


class IsapiClient:
    """`async with IsapiClient(conn) as c:` one ISAPI device at conn.host:conn.port, Digest login."""

    def __init__(self, conn: Connection, *, max_pages: int = 500) -> None:
        self.conn = conn
        self.max_pages = max_pages
        self.zone = CHINA
        self._http = HttpSession(conn, protocol="isapi", digest=True)

    async def __aenter__(self) -> IsapiClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.__aexit__(*exc)

    async def _get_xml(self, path: str, operation: str) -> tuple[ET.Element, str]:
        reply = await self._http.request("GET", path, operation=operation, decode=decode_xml)
        return reply.data, reply.exchange_id

    async def device_info(self) -> DeviceInfo:
        root, xid = await self._get_xml("/ISAPI/System/deviceInfo", "deviceInfo")
        if root.tag != "DeviceInfo":
            raise ProtocolViolation(f"deviceInfo: a {root.tag} came back", exchange_id=xid)
        return DeviceInfo(
            name=_text(root, "deviceName") or "",
            model=_text(root, "model") or "",
            serial=_text(root, "serialNumber") or "",
            firmware=_text(root, "firmwareVersion") or "",
            device_type=_text(root, "deviceType") or "",
            mac=_text(root, "macAddress") or "",
            exchange_id=xid,
        )

    async def device_time(self) -> tuple[datetime, str]:
        """The device clock (UTC) and the exchange; also learns the device's time zone."""
        root, xid = await self._get_xml("/ISAPI/System/time", "time")
        zone = posix_zone(_text(root, "timeZone") or "")
        if zone is not None:
            self.zone = zone
        try:
            return parse_time(_text(root, "localTime") or "", self.zone), xid
        except ValueError:
            raise ProtocolViolation("time: no readable localTime", exchange_id=xid) from None

    async def recordings(self, channel: int, start: datetime, end: datetime) -> ChannelRecordings:
        """The recorded files of one channel overlapping [start, end] (content search, all pages)."""
        return (await self.recordings_of((channel,), start, end))[channel]

    async def recordings_of(
        self, channels: Sequence[int], start: datetime, end: datetime
    ) -> dict[int, ChannelRecordings]:
        """The recorded files of several channels overlapping [start, end]: one content search with
        every channel's track in its trackIDList, paged through to the end (max_pages per channel),
        each file given to its channel by the trackID it carries. Every channel cites all pages."""
        tracks = {channel * 100 + 1: channel for channel in dict.fromkeys(channels)}
        if not tracks:
            raise ValueError("a content search needs at least one channel")
        track_ids = "".join(f"<trackID>{t}</trackID>" for t in tracks)
        named = f"track {next(iter(tracks))}" if len(tracks) == 1 else f"tracks {','.join(map(str, tracks))}"
        search_id = str(uuid.uuid4()).upper()
        spans: dict[int, list[Span]] = {t: [] for t in tracks}
        evidence: list[str] = []
        position = 0
        complete = False
        for _ in range(self.max_pages * len(tracks)):
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<CMSearchDescription version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">'
                f"<searchID>{search_id}</searchID>"
                f"<trackIDList>{track_ids}</trackIDList>"
                f"<timeSpanList><timeSpan><startTime>{_utc_z(start)}</startTime>"
                f"<endTime>{_utc_z(end)}</endTime></timeSpan></timeSpanList>"
                f"<maxResults>{SEARCH_PAGE}</maxResults>"
                f"<searchResultPostion>{position}</searchResultPostion>"
                "<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor>"
                "</metadataList></CMSearchDescription>"
            )
            reply = await self._http.request(
                "POST",
                "/ISAPI/ContentMgmt/search",
                operation=f"ContentMgmt/search {named} from {position}",
                decode=decode_xml,
                body=body,
                headers={"Content-Type": "application/xml"},
            )
            evidence.append(reply.exchange_id)
            root = reply.data
            if root.tag != "CMSearchResult":
                raise ProtocolViolation(f"search: a {root.tag} came back", exchange_id=reply.exchange_id)
            items = root.findall("matchList/searchMatchItem")
            for item in items:
                self._add_match(item, spans, reply.exchange_id)
            status = (_text(root, "responseStatusStrg") or "").upper()
            if status != "MORE":
                complete = True
                break
            if not items:
                raise ProtocolViolation("search: MORE without any match", exchange_id=reply.exchange_id)
            position += len(items)
        cited = tuple(evidence)
        return {
            channel: ChannelRecordings(channel, track, _sorted(spans[track]), complete, cited)
            for track, channel in tracks.items()
        }

    def _add_match(self, item: ET.Element, spans: dict[int, list[Span]], exchange_id: str) -> None:
        """One searchMatchItem to its track's files: by its trackID (a lone track's file may omit it)."""
        track = _int(_text(item, "trackID"))
        if track is None and len(spans) == 1:
            track = next(iter(spans))
        if track not in spans:
            raise ProtocolViolation(
                f"search: a match of track {track}, not asked for", exchange_id=exchange_id
            )
        try:
            span = Span(
                parse_time(_text(item, "timeSpan/startTime") or "", self.zone),
                parse_time(_text(item, "timeSpan/endTime") or "", self.zone),
            )
        except ValueError:
            raise ProtocolViolation(
                "search: a match without readable times", exchange_id=exchange_id
            ) from None
        spans[track].append(span)

    async def storage(self) -> Storage:
        root, xid = await self._get_xml("/ISAPI/ContentMgmt/Storage", "ContentMgmt/Storage")
        disks = tuple(
            Disk(
                id=_text(hdd, "id") or "",
                status=_text(hdd, "status") or "",
                capacity_mb=_int(_text(hdd, "capacity")),
                free_mb=_int(_text(hdd, "freeSpace")),
                property=_text(hdd, "property") or "",
            )
            for hdd in root.iter("hdd")
        )
        return Storage(disks, _text(root, "workMode"), xid)

    async def door_control(self, door: int, command: DoorCommand) -> str:
        """Remote door control (an active operation); the exchange id of the accepted command."""
        body = f"<RemoteControlDoor><cmd>{escape(command)}</cmd></RemoteControlDoor>"
        reply = await self._http.request(
            "PUT",
            f"/ISAPI/AccessControl/RemoteControl/door/{door}",
            operation=f"RemoteControl/door/{door} {command}",
            decode=decode_status,
            body=body,
            headers={"Content-Type": "application/xml"},
            expect=(400,),
        )
        return reply.exchange_id

    async def door_status(self) -> DoorStatus:
        reply = await self._http.request(
            "GET",
            "/ISAPI/AccessControl/AcsWorkStatus?format=json",
            operation="AcsWorkStatus",
            decode=decode_json,
        )
        status = reply.data.get("AcsWorkStatus") if isinstance(reply.data, dict) else None
        if not isinstance(status, dict):
            raise ProtocolViolation("AcsWorkStatus: no AcsWorkStatus object", exchange_id=reply.exchange_id)

        def codes(name: str) -> tuple[int, ...]:
            values = status.get(name, [])
            if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
                raise ProtocolViolation(
                    f"AcsWorkStatus: {name} is not a list of codes", exchange_id=reply.exchange_id
                )
            return tuple(values)

        return DoorStatus(
            codes("doorLockStatus"), codes("doorStatus"), codes("magneticStatus"), reply.exchange_id
        )

    async def acs_events(
        self, start: datetime, end: datetime, *, major: int = 0, minor: int = 0
    ) -> AcsEvents:
        """The access-control log between start and end (all pages), oldest first."""
        search_id = uuid.uuid4().hex
        events: list[AcsEvent] = []
        evidence: list[str] = []
        position = 0
        for _ in range(self.max_pages):
            cond = {
                "searchID": search_id,
                "searchResultPosition": position,
                "maxResults": ACS_PAGE,
                "major": major,
                "minor": minor,
                "startTime": start.astimezone(self.zone).isoformat(timespec="seconds"),
                "endTime": end.astimezone(self.zone).isoformat(timespec="seconds"),
            }
            reply = await self._http.request(
                "POST",
                "/ISAPI/AccessControl/AcsEvent?format=json",
                operation=f"AcsEvent from {position}",
                decode=decode_json,
                json_body={"AcsEventCond": cond},
            )
            evidence.append(reply.exchange_id)
            result = reply.data.get("AcsEvent") if isinstance(reply.data, dict) else None
            if not isinstance(result, dict):
                raise ProtocolViolation("AcsEvent: no AcsEvent object", exchange_id=reply.exchange_id)
            rows = result.get("InfoList", [])
            try:
                page = [self._acs_event(row) for row in rows]
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ProtocolViolation(
                    "AcsEvent: a record without major, minor or time", exchange_id=reply.exchange_id
                ) from None
            events += page
            if str(result.get("responseStatusStrg", "")).upper() != "MORE":
                return AcsEvents(tuple(events), True, tuple(evidence))
            if not page:
                raise ProtocolViolation("AcsEvent: MORE without any record", exchange_id=reply.exchange_id)
            position += len(page)
        return AcsEvents(tuple(events), False, tuple(evidence))

    def _acs_event(self, row: Mapping[str, Any]) -> AcsEvent:
        serial, door = row.get("serialNo"), row.get("doorNo")
        return AcsEvent(
            major=int(row["major"]),
            minor=int(row["minor"]),
            time=parse_time(str(row["time"]), self.zone),
            serial=serial if isinstance(serial, int) else None,
            door=door if isinstance(door, int) else None,
            fields=dict(row),
        )

    async def login_lock(self) -> LoginLock:
        root, xid = await self._get_xml("/ISAPI/Security/illegalLoginLock", "illegalLoginLock")
        enabled = _text(root, "enabled")
        if root.tag != "IllegalLoginLock" or enabled not in ("true", "false"):
            raise ProtocolViolation("illegalLoginLock: no enabled flag", exchange_id=xid)
        return LoginLock(
            enabled == "true",
            _int(_text(root, "maxIllegalLoginTimes")),
            _int(_text(root, "maxIllegalLoginLockTime")),
            xid,
        )

    async def alert_stream(self, window_s: float) -> AlertStreamRead:
        """What the alert stream pushes within window_s (events and heartbeats), then hang up."""
        reply = await self._http.read_window(
            "/ISAPI/Event/notification/alertStream", operation="alertStream", window_s=window_s
        )
        content_type = reply.headers.get("content-type", "")
        m = re.search(r'boundary="?([^";]+)"?', content_type)
        if m is None:
            raise ProtocolViolation(
                f"alertStream: not multipart ({content_type})", exchange_id=reply.exchange_id
            )
        parts, truncated = multipart_parts(reply.data, m.group(1))
        found = (alert_event(ctype, body, self.zone) for ctype, body in parts)
        events = tuple(e for e in found if e is not None)
        return AlertStreamRead(events, window_s, truncated, reply.exchange_id)


def _sorted(spans: list[Span]) -> tuple[Span, ...]:
    return tuple(sorted(set(spans), key=lambda s: (s.start, s.end)))

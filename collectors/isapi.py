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

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from xml.sax.saxutils import escape

from collectors.connection import Connection
from collectors.errors import ProtocolViolation
from collectors.http import HttpSession, decode_json, decode_xml
from collectors.isapi_parse import (
    AlertStreamRead,
    alert_event,
    decode_status,
    int_or_none,
    multipart_parts,
    parse_time,
    posix_zone,
    text_of,
    utc_z,
)

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
            name=text_of(root, "deviceName") or "",
            model=text_of(root, "model") or "",
            serial=text_of(root, "serialNumber") or "",
            firmware=text_of(root, "firmwareVersion") or "",
            device_type=text_of(root, "deviceType") or "",
            mac=text_of(root, "macAddress") or "",
            exchange_id=xid,
        )

    async def device_time(self) -> tuple[datetime, str]:
        """The device clock (UTC) and the exchange; also learns the device's time zone."""
        root, xid = await self._get_xml("/ISAPI/System/time", "time")
        zone = posix_zone(text_of(root, "timeZone") or "")
        if zone is not None:
            self.zone = zone
        try:
            return parse_time(text_of(root, "localTime") or "", self.zone), xid
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
                f"<timeSpanList><timeSpan><startTime>{utc_z(start)}</startTime>"
                f"<endTime>{utc_z(end)}</endTime></timeSpan></timeSpanList>"
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
            status = (text_of(root, "responseStatusStrg") or "").upper()
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
        track = int_or_none(text_of(item, "trackID"))
        if track is None and len(spans) == 1:
            track = next(iter(spans))
        if track not in spans:
            raise ProtocolViolation(
                f"search: a match of track {track}, not asked for", exchange_id=exchange_id
            )
        try:
            span = Span(
                parse_time(text_of(item, "timeSpan/startTime") or "", self.zone),
                parse_time(text_of(item, "timeSpan/endTime") or "", self.zone),
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
                id=text_of(hdd, "id") or "",
                status=text_of(hdd, "status") or "",
                capacity_mb=int_or_none(text_of(hdd, "capacity")),
                free_mb=int_or_none(text_of(hdd, "freeSpace")),
                property=text_of(hdd, "property") or "",
            )
            for hdd in root.iter("hdd")
        )
        return Storage(disks, text_of(root, "workMode"), xid)

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
        enabled = text_of(root, "enabled")
        if root.tag != "IllegalLoginLock" or enabled not in ("true", "false"):
            raise ProtocolViolation("illegalLoginLock: no enabled flag", exchange_id=xid)
        return LoginLock(
            enabled == "true",
            int_or_none(text_of(root, "maxIllegalLoginTimes")),
            int_or_none(text_of(root, "maxIllegalLoginLockTime")),
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

"""A Hikvision NVR (DS-7716NI-like, Profile S only) whose recorded history is readable only over ISAPI.

Served: deviceInfo, time, illegalLoginLock, userCheck and alertStream (common.py), plus
GET /ISAPI/ContentMgmt/InputProxy/channels (and /status), GET /ISAPI/ContentMgmt/Storage and
POST /ISAPI/ContentMgmt/search (CMSearchDescription -> CMSearchResult).

The search takes the request as clients in the field send it: `trackList` or `trackIDList` with
trackID = channel * 100 + 1, `timeSpanList/timeSpan`, `maxResults` and the position spelt
`searchResultPostion` (sic, as firmware and its clients spell it; `searchResultPosition` is accepted
too). The reply carries responseStatus true and responseStatusStrg OK, MORE or "NO MATCHES",
numOfMatches and a matchList of searchMatchItem (trackID, timeSpan, mediaSegmentDescriptor with a
playbackURI, metadataMatches); several trackIDs are searched together, each track's files in turn.
A search's matches are fixed at its first page and kept by searchID, as the pages of one search
must agree while time moves on. Times are UTC with Z. A page holds at most 40 items (the cap the
vendor's web SDK documents); how far real firmware goes beyond that varies.

History per channel: the cameras whose camera.recorded_by is this NVR (channel = camera.channel).
It reaches back nvr.retention_days (a retention_short fault on the NVR or the camera overrides it)
and is cut into 1 h files; recording_gap and deleted_span faults (NVR-wide or on the camera) leave
holes. Uncertain: a real NVR also lists the deletion in its operation log (logSearch), not served.
Storage reports disks sized for the retained history at 4 Mbit/s per channel, full (overwriting).
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from simulator.faults import DeletedSpan, Offline, RecordingGap, RetentionShort
from simulator.isapi.common import (
    IsapiDevice,
    bad_xml,
    el,
    find_text,
    local_name,
    parse_time,
    response_status,
    utc_z,
    xml_response,
)
from simulator.model import DeviceSpec, NvrParams
from simulator.runtime import PORTS, DeviceContext

SEGMENT = timedelta(hours=1)
PAGE_CAP = 40
SEARCHES_KEPT = 32
DISK_MB = 3815447  # a 4 TB disk as the NVR reports it, in MB
MB_PER_CHANNEL_DAY = 4_000_000 / 8 * 86400 / 1_000_000  # 4 Mbit/s


@dataclass(frozen=True)
class Segment:
    track: int
    start: datetime
    end: datetime


def _track(camera: DeviceSpec) -> int:
    """A channel's main-stream track id (channel 3 -> 301), as the ISAPI search names it."""
    assert camera.camera is not None  # cameras() keeps only those
    return camera.camera.channel * 100 + 1


class IsapiNvr(IsapiDevice):
    device_type = "NVR"

    def __init__(self, ctx: DeviceContext) -> None:
        self.params = ctx.spec.nvr or NvrParams()
        self._searches: dict[
            tuple[str, tuple[int, ...], tuple[tuple[datetime, datetime], ...]], list[Segment]
        ] = {}
        super().__init__(ctx, self.params.model)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ISAPI/ContentMgmt/InputProxy/channels", self._channels),
            web.get("/ISAPI/ContentMgmt/InputProxy/channels/status", self._channels_status),
            web.get("/ISAPI/ContentMgmt/Storage", self._storage),
            web.post("/ISAPI/ContentMgmt/search", self._search),
        ]

    def cameras(self) -> list[DeviceSpec]:
        found = [
            d
            for d in self.ctx.community.devices
            if d.camera is not None and d.camera.recorded_by == self.ctx.spec.id
        ]
        return sorted(found, key=lambda d: d.camera.channel if d.camera else 0)

    def retention_days(self, camera: DeviceSpec) -> float:
        short = camera.fault(RetentionShort) or self.ctx.spec.fault(RetentionShort)
        return short.days if short else self.params.retention_days

    def segments(self, camera: DeviceSpec, now: datetime) -> list[Segment]:
        """The recorded files of one channel, oldest first."""
        track = _track(camera)
        earliest = now - timedelta(days=self.retention_days(camera))
        holes = [
            (now - timedelta(days=f.days_ago), now - timedelta(days=f.days_ago) + timedelta(hours=f.hours))
            for spec in (self.ctx.spec, camera)
            for f in spec.faults
            if isinstance(f, RecordingGap | DeletedSpan)
        ]
        cuts = {earliest, now}
        boundary = earliest.replace(minute=0, second=0, microsecond=0) + SEGMENT
        while boundary < now:
            cuts.add(boundary)
            boundary += SEGMENT
        for lo, hi in holes:
            cuts.update(t for t in (lo, hi) if earliest < t < now)
        edges = sorted(cuts)
        return [
            Segment(track, a, b)
            for a, b in itertools.pairwise(edges)
            if not any(lo <= a and b <= hi for lo, hi in holes)
        ]

    # -- resources ---------------------------------------------------------------------------

    def _camera_host(self, camera: DeviceSpec) -> str:
        endpoint = self.ctx.directory.get(camera.id)
        return endpoint.host if endpoint else "0.0.0.0"

    async def _channels(self, _request: web.Request) -> web.Response:
        items = []
        for cam in self.cameras():
            channel = cam.camera.channel if cam.camera else 1
            source = "".join(
                [
                    el("proxyProtocol", "HIKVISION"),
                    el("addressingFormatType", "ipaddress"),
                    el("ipAddress", self._camera_host(cam)),
                    el("managePortNo", PORTS["onvif"]),
                    el("srcInputPort", 1),
                    el("userName", "admin"),
                    el("streamType", "auto"),
                    el("deviceID", ""),
                ]
            )
            items.append(
                "<InputProxyChannel>"
                + el("id", channel)
                + el("name", cam.id)
                + f"<sourceInputPortDescriptor>{source}</sourceInputPortDescriptor>"
                + "</InputProxyChannel>"
            )
        return xml_response("InputProxyChannelList", "".join(items))

    async def _channels_status(self, _request: web.Request) -> web.Response:
        items = []
        for cam in self.cameras():
            channel = cam.camera.channel if cam.camera else 1
            source = el("ipAddress", self._camera_host(cam)) + el("managePortNo", PORTS["onvif"])
            items.append(
                "<InputProxyChannelStatus>"
                + el("id", channel)
                + f"<sourceInputPortDescriptor>{source}</sourceInputPortDescriptor>"
                + el("online", cam.fault(Offline) is None)
                + "</InputProxyChannelStatus>"
            )
        return xml_response("InputProxyChannelStatusList", "".join(items))

    async def _storage(self, _request: web.Request) -> web.Response:
        used = sum(math.ceil(self.retention_days(c) * MB_PER_CHANNEL_DAY) for c in self.cameras())
        disks = max(1, math.ceil(used / DISK_MB))
        hdds = []
        for i in range(1, disks + 1):
            on_this = min(DISK_MB, max(0, used - (i - 1) * DISK_MB))
            hdds.append(
                '<hdd version="2.0">'
                + "".join(
                    [
                        el("id", i),
                        el("hddName", f"hdd{i}"),
                        el("hddPath", ""),
                        el("hddType", "SATA"),
                        el("status", "ok"),
                        el("capacity", DISK_MB),
                        el("freeSpace", DISK_MB - on_this),
                        el("property", "RW"),
                    ]
                )
                + "</hdd>"
            )
        inner = f'<hddList version="2.0">{"".join(hdds)}</hddList><nasList version="2.0"></nasList>' + el(
            "workMode", "group"
        )
        return xml_response("storage", inner)

    async def _search(self, request: web.Request) -> web.Response:
        try:
            root = ET.fromstring(await request.read())
        except ET.ParseError:
            return bad_xml(request)
        if local_name(root) != "CMSearchDescription":
            return response_status(request, 6, "badXmlContent", 400)
        try:
            tracks = {int(n.text or "") for n in root.iter() if local_name(n) == "trackID"}
            spans = [
                (parse_time(find_text(s, "startTime") or ""), parse_time(find_text(s, "endTime") or ""))
                for s in root.iter()
                if local_name(s) == "timeSpan"
            ]
            wanted = int(find_text(root, "maxResults") or "40")
            position = int(find_text(root, "searchResultPostion", "searchResultPosition") or "0")
        except ValueError:
            return response_status(request, 6, "badParameters", 400)
        if not tracks or not spans or wanted <= 0 or position < 0:
            return response_status(request, 6, "badParameters", 400)
        matches = self._matches(find_text(root, "searchID") or "", tracks, spans)
        page = matches[position : position + min(wanted, PAGE_CAP)]
        status = "NO MATCHES" if not page else "MORE" if position + len(page) < len(matches) else "OK"
        items = "".join(self._match_item(seg) for seg in page)
        inner = (
            el("searchID", find_text(root, "searchID") or "")
            + el("responseStatus", True)
            + el("responseStatusStrg", status)
            + el("numOfMatches", len(page))
            + (f"<matchList>{items}</matchList>" if page else "")
        )
        return xml_response("CMSearchResult", inner)

    def _matches(
        self, search_id: str, tracks: set[int], spans: list[tuple[datetime, datetime]]
    ) -> list[Segment]:
        """The files a search finds, fixed when its first page is asked and kept by its searchID
        (the last SEARCHES_KEPT searches), so that the pages of one search agree while time moves on."""
        key = (search_id, tuple(sorted(tracks)), tuple(spans))
        found = self._searches.pop(key, None)
        if found is None:
            now = self.ctx.now()
            found = [
                seg
                for cam in self.cameras()
                if _track(cam) in tracks
                for seg in self.segments(cam, now)
                if any(seg.start < hi and seg.end > lo for lo, hi in spans)
            ]
        self._searches[key] = found
        while len(self._searches) > SEARCHES_KEPT:
            del self._searches[next(iter(self._searches))]
        return found

    def _match_item(self, seg: Segment) -> str:
        start, end = seg.start.astimezone(UTC), seg.end.astimezone(UTC)
        stamp = "%Y%m%dT%H%M%SZ"
        name = f"{start.strftime('%Y%m%d%H%M%S')}_{seg.track:05d}"
        size = round((seg.end - seg.start).total_seconds() * 500_000)
        uri = (
            f"rtsp://{self.ctx.host}/Streaming/tracks/{seg.track}/?starttime={start.strftime(stamp)}"
            f"&endtime={end.strftime(stamp)}&name={name}&size={size}"
        )
        media = el("contentType", "video") + el("codecType", "H.264-BP") + el("playbackURI", uri)
        return (
            "<searchMatchItem>"
            + el("sourceID", "{0000000000-0000-0000-0000-000000000000}")
            + el("trackID", seg.track)
            + f"<timeSpan>{el('startTime', utc_z(seg.start))}{el('endTime', utc_z(seg.end))}</timeSpan>"
            + f"<mediaSegmentDescriptor>{media}</mediaSegmentDescriptor>"
            + "<metadataMatches>"
            + el("metadataDescriptor", "recordType.meta.hikvision.com/timing")
            + "</metadataMatches>"
            + "</searchMatchItem>"
        )

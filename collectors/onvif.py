"""ONVIF client: device identity and clock, services, Profile G recordings, events, Profile C doors.

`async with OnvifClient(conn) as c:` one device. Every method makes its calls through one
OnvifSession (verified TLS, one redacted Exchange per call, errors translated to the collector
set) and returns typed data with the exchange ids it rests on.

Services are discovered with one GetServices call (authenticated). Only when the device refuses
that operation as such (a fault other than NotAuthorized) does the client fall back to
GetCapabilities: a refused login is never retried, so a probe counting logins sees exactly its own.
onvif-zeep-async's ONVIFCamera.update_xaddrs() is not used for that reason and because its
services cannot be given a verifying TLS context (see onvif_client).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lxml import etree

from collectors.connection import Connection
from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation, Unsupported
from collectors.exchange import now
from collectors.onvif_client import SERVICES, OnvifSession
from collectors.onvif_doors import DoorList, DoorState, door_info_list, door_state
from collectors.onvif_events import EventProperties, Opening, PullPoint, event_properties, open_pull_point
from collectors.onvif_recording import (
    RecordingHistory,
    Recordings,
    RecordingSummary,
    RetentionConfig,
    find_history,
    find_recordings,
    recording_summary,
    retention_config,
)

# A WS-Security timestamp this far off the device's clock is re-signed on the device's time.
CLOCK_TOLERANCE = timedelta(seconds=5)
_EVENT_BINDINGS = frozenset({"pullpoint", "subscription", "notification"})


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Services:
    """The services a device advertises: namespace -> XAddr as the device gave it."""

    xaddrs: dict[str, str]
    source: Literal["GetServices", "GetCapabilities"]
    evidence: tuple[str, ...]

    def xaddr(self, key: str) -> str | None:
        return self.xaddrs.get(SERVICES[key]["ns"])

    def has(self, key: str) -> bool:
        return self.xaddr(key) is not None

    @property
    def names(self) -> frozenset[str]:
        """Known service keys present: devicemgmt, media, events, recording, search, doorcontrol..."""
        return frozenset(k for k in SERVICES if k not in _EVENT_BINDINGS and self.has(k))


def _utc_date_time(reply: Any) -> datetime | None:
    value: Any = getattr(reply, "UTCDateTime", None)
    try:
        d, t = value.Date, value.Time
        return datetime(d.Year, d.Month, d.Day, t.Hour, t.Minute, t.Second, tzinfo=UTC)
    except (AttributeError, TypeError, ValueError):
        return None


def _capability_xaddrs(caps: Any) -> dict[str, str]:
    """XAddrs from GetCapabilities: top-level categories and those under Extension.

    zeep leaves Extension's Recording, Search... as XML in its leading xs:any (`_value_1`): the
    reason onvif-zeep never found them. They are read here from either form.
    """
    found: dict[str, str] = {}

    def take(category: str, xaddr: Any) -> None:
        key = "devicemgmt" if category.lower() == "device" else category.lower()
        if key in SERVICES and key not in _EVENT_BINDINGS and xaddr:
            found[SERVICES[key]["ns"]] = str(xaddr).strip()

    for name in caps or []:
        value = caps[name]
        if name == "Extension" and value is not None:
            for sub in value:
                if sub == "_value_1":
                    for el in value[sub] or []:
                        if isinstance(el, etree._Element) and isinstance(el.tag, str):
                            xaddr = next((c.text for c in el if etree.QName(c).localname == "XAddr"), None)
                            take(etree.QName(el).localname, xaddr)
                elif value[sub] is not None:
                    take(sub, getattr(value[sub], "XAddr", None))
        elif value is not None:
            take(name, getattr(value, "XAddr", None))
    return found


class OnvifClient:
    """One ONVIF device; see the module docstring."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.session = OnvifSession(conn)
        self._services: Services | None = None
        self._event_properties: EventProperties | None = None
        self._openings: list[PullPoint] = []  # shared subscriptions, ended at close if still open

    async def __aenter__(self) -> OnvifClient:
        await self.session.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        try:
            await self._end_openings()
        finally:
            await self.session.close()

    async def _device(self) -> Any:
        return await self.session.service("devicemgmt")

    async def _service(self, key: str) -> Any:
        services = await self.services()
        xaddr = services.xaddr(key)
        if xaddr is None:
            raise Unsupported(
                f"{self.conn.device} offers no {key} service", exchange_id=services.evidence[-1]
            )
        return await self.session.service(key, xaddr)

    # -- device management ----------------------------------------------------------------------

    async def device_info(self) -> DeviceInfo:
        reply, exchange = await self.session.call(await self._device(), "GetDeviceInformation")
        if reply is None:
            raise ProtocolViolation("GetDeviceInformation: empty reply", exchange_id=exchange)
        return DeviceInfo(
            str(reply.Manufacturer or ""),
            str(reply.Model or ""),
            str(reply.FirmwareVersion or ""),
            str(reply.SerialNumber or ""),
            str(reply.HardwareId or ""),
            (exchange,),
        )

    async def device_time(self) -> tuple[datetime, str]:
        """The device's UTC clock (GetSystemDateAndTime, without credentials first as ONVIF allows).

        A clock off ours by more than CLOCK_TOLERANCE makes later calls sign their WS-Security
        timestamps on the device's time, as devices refuse tokens created too far from their clock.
        """
        device = await self._device()
        try:
            reply, exchange = await self.session.call(
                device, "GetSystemDateAndTime", authless=True, device_time=_utc_date_time
            )
        except (AuthFailed, DeviceRejected):
            reply, exchange = await self.session.call(
                device, "GetSystemDateAndTime", device_time=_utc_date_time
            )
        when = _utc_date_time(reply)
        if when is None:
            raise ProtocolViolation("GetSystemDateAndTime: no valid UTCDateTime", exchange_id=exchange)
        offset = when - now()
        if abs(offset) > CLOCK_TOLERANCE:
            self.session.adjust_clock(offset)
        return when, exchange

    async def services(self) -> Services:
        if self._services is not None:
            return self._services
        device = await self._device()
        evidence: list[str] = []
        try:
            reply, exchange = await self.session.call(device, "GetServices", {"IncludeCapability": False})
            evidence.append(exchange)
            xaddrs = {str(s.Namespace): str(s.XAddr) for s in reply or [] if s.Namespace and s.XAddr}
        except (DeviceRejected, Unsupported) as exc:  # an old device without GetServices
            evidence.append(exc.exchange_id or "")
            xaddrs = {}
        source: Literal["GetServices", "GetCapabilities"] = "GetServices"
        if not xaddrs:
            caps, exchange = await self.session.call(device, "GetCapabilities", {"Category": "All"})
            evidence.append(exchange)
            xaddrs = _capability_xaddrs(caps)
            source = "GetCapabilities"
        self._services = Services(xaddrs, source, tuple(e for e in evidence if e))
        return self._services

    # -- Profile G: search and recording --------------------------------------------------------

    async def recording_summary(self) -> RecordingSummary:
        return await recording_summary(self.session, await self._service("search"))

    async def recordings(self) -> Recordings:
        return await find_recordings(self.session, await self._service("search"))

    async def retention_config(self, at: datetime | None = None) -> RetentionConfig:
        """MaximumRetentionTime per recording (durations in months count from `at`, default now)."""
        return await retention_config(self.session, await self._service("recording"), at or now())

    async def recording_history(
        self, start: datetime, end: datetime, recordings: Sequence[str] = (), *, max_pages: int = 50
    ) -> RecordingHistory:
        """RecordingHistory events of these recordings (all when none given), in one search."""
        search = await self._service("search")
        return await find_history(self.session, search, start, end, recordings, max_pages=max_pages)

    # -- events -----------------------------------------------------------------------------------

    async def event_properties(self) -> EventProperties:
        """The topics, asked once per client (like the services): the probes of one device each
        needed them, and the reply (every topic the device has) is the largest most of them parse.
        Each finding cites the one exchange; a refusal is not kept, the next caller asks again."""
        if self._event_properties is None:
            self._event_properties = await event_properties(self.session, await self._service("events"))
        return self._event_properties

    async def pull_point(self, termination_s: float = 60.0) -> PullPoint:
        """A PullPoint subscription to enter: `async with await c.pull_point() as pp:`."""
        return PullPoint(self.session, await self._service("events"), termination_s)

    async def opening(self, termination_s: float) -> Opening:
        """A subscription and its first pull, for probes to share (probes/event_common.py): the one
        that checks its life ends it; one nobody ends is unsubscribed when the client closes, unless
        its termination time has passed or the device stopped answering (it ends it itself)."""
        pp = await self.pull_point(termination_s)
        self._openings = [o for o in self._openings if o.alive]
        self._openings.append(pp)
        return await open_pull_point(pp)

    async def _end_openings(self) -> None:
        openings, self._openings = self._openings, []
        await asyncio.gather(*(pp.release() for pp in openings), return_exceptions=True)

    # -- Profile C: doors -------------------------------------------------------------------------

    async def doors(self) -> DoorList:
        return await door_info_list(self.session, await self._service("doorcontrol"))

    async def door_state(self, token: str) -> DoorState:
        return await door_state(self.session, await self._service("doorcontrol"), token)

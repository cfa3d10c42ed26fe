"""What every simulated Hikvision ISAPI device shares: the HTTP(S) server, Digest login, faults.

Vendor shapes (namespace http://www.hikvision.com/ver20/XMLSchema, `ResponseStatus` with requestURL,
statusCode, statusString, subStatusCode; `DeviceInfo`; `Time` with a POSIX-style `CST-8:00:00` zone;
`IllegalLoginLock` with maxIllegalLoginTimes / maxIllegalLoginLockTime as read from devices) follow
the ISAPI developer guides and captures of real devices. Statuses: 1 OK, 2 Device Busy, 3 Device
Error, 4 Invalid Operation, 5 Invalid XML Format, 6 Invalid XML Content, 7 Reboot Required.
Requests with `?format=json` get the JSON form of ResponseStatus; the numeric `errorCode` of the
JSON form is left out because its values per subStatusCode could not be confirmed.

Faults served here: offline (never listens), hung (accepts, TLS-handshakes, never answers; released
on stop), slow (drips every reply), malformed_xml (successful bodies cut in half), plain_http (the
site hands a None server_tls), weak_credentials / no_lockout (through ctx.guard), clock_skew
(ctx.now()). Real devices answer `Server: webs`; aiohttp's own banner is replaced to match.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from simulator.faults import ClockSkew, MalformedXml, Slow, WeakCredentials
from simulator.isapi.alertstream import AlertStream, Part
from simulator.isapi.digest import DigestAuth
from simulator.runtime import DeviceContext

NS = "http://www.hikvision.com/ver20/XMLSchema"
CHINA = timezone(timedelta(hours=8))  # devices on site run on Beijing time
STATUS_STRINGS = {
    1: "OK",
    2: "Device Busy",
    3: "Device Error",
    4: "Invalid Operation",
    5: "Invalid XML Format",
    6: "Invalid XML Content",
    7: "Reboot Required",
}
XML_TYPE = 'application/xml; charset="UTF-8"'
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER_KEY = web.RequestKey("isapi_user", str)  # who logged in, for logs and risk flags


def el(tag: str, value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"<{tag}>{escape(text)}</{tag}>"


def xml_doc(root: str, inner: str) -> str:
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" xmlns="{NS}">'
    return f"{head}\n{inner}\n</{root}>\n"


def xml_response(root: str, inner: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=xml_doc(root, inner), headers={"Content-Type": XML_TYPE})


def local_iso(moment: datetime) -> str:
    """Device-local time as ISAPI writes it: 2024-05-01T18:00:00+08:00."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def parse_time(text: str) -> datetime:
    """An ISAPI time: with Z, an offset, or naive (taken as device-local time)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def local_name(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def find_text(root: ET.Element, *names: str) -> str | None:
    """The text of the first descendant with one of these local names (namespace-agnostic)."""
    for node in root.iter():
        if local_name(node) in names and node.text is not None:
            return node.text.strip()
    return None


def response_status(
    request: web.Request, code: int, sub: str, http_status: int = 200, *, status_string: str | None = None
) -> web.Response:
    text = status_string or STATUS_STRINGS[code]
    if request.query.get("format") == "json":
        return web.json_response(
            {"requestURL": request.path, "statusCode": code, "statusString": text, "subStatusCode": sub},
            status=http_status,
        )
    inner = el("requestURL", request.path) + el("statusCode", code) + el("statusString", text)
    return xml_response("ResponseStatus", inner + el("subStatusCode", sub), http_status)


def bad_xml(request: web.Request) -> web.Response:
    return response_status(request, 5, "badXmlFormat", 400)


class IsapiDevice:
    """The server side shared by the door controller and the NVR; subclasses add their routes."""

    device_type: str
    firmware = "V4.30.0"
    firmware_date = "build 230613"

    def __init__(self, ctx: DeviceContext, model: str) -> None:
        self.ctx = ctx
        self.model = model
        self.port = ctx.port
        self.auth = DigestAuth(self.realm, ctx.guard)
        digest = hashlib.sha1(ctx.spec.id.encode()).digest()
        self.mac = "44:19:b6:" + ":".join(f"{b:02x}" for b in digest[:3])
        self.serial = f"{self.model}20230630CCRR{int.from_bytes(digest[3:7], 'big') % 10**9:09d}"
        self.device_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"isapi:{ctx.spec.id}")
        self.alerts = AlertStream(self._heartbeat_part)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._hung: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()

    @property
    def realm(self) -> str:
        return self.model

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.ctx.offline:
            await self._listen()

    async def stop(self) -> None:
        await self._close()

    async def unplug(self) -> None:
        await self._close()

    async def replug(self) -> None:
        if not self.ctx.offline and self._runner is None and self._hung is None:
            await self._listen()

    async def _listen(self) -> None:
        self._closing = asyncio.Event()
        if self.ctx.hung:
            self._hung = await asyncio.start_server(
                self._hold, self.ctx.host, self.port, ssl=self.ctx.server_tls
            )
            self.port = self._hung.sockets[0].getsockname()[1]
            return
        runner = web.AppRunner(self._build_app(), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.ctx.host, self.port, ssl_context=self.ctx.server_tls).start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _close(self) -> None:
        self._closing.set()
        self.alerts.close()
        if self._hung is not None:
            self._hung.close()
            for writer in list(self._held):
                writer.close()
            await self._hung.wait_closed()
            self._hung = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hold(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A hung device: the connection is accepted and never answered."""
        self._held.add(writer)
        try:
            await self._closing.wait()
        finally:
            self._held.discard(writer)
            writer.close()

    # -- the application ---------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_mw, self._latency_mw, self._auth_mw, self._errors_mw])
        app.add_routes(
            [
                web.get("/ISAPI/System/deviceInfo", self._device_info),
                web.get("/ISAPI/System/time", self._time),
                web.get("/ISAPI/Security/illegalLoginLock", self._get_login_lock),
                web.put("/ISAPI/Security/illegalLoginLock", self._put_login_lock),
                web.get("/ISAPI/Security/userCheck", self._user_check),
                web.get("/ISAPI/Event/notification/alertStream", self.alerts.serve),
                *self.routes(),
            ]
        )
        app.on_response_prepare.append(self._server_banner)
        return app

    @staticmethod
    async def _server_banner(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "webs"

    @web.middleware
    async def _faults_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.Response) or response.prepared:
            return response  # the alert stream writes its own parts
        body = response.body if isinstance(response.body, bytes) else b""
        if self.ctx.spec.fault(MalformedXml) and response.status == 200 and body:
            body = body[: len(body) // 2]
            response = web.Response(status=200, body=body, headers=self._headers_of(response))
        slow = self.ctx.spec.fault(Slow)
        if slow is None:
            return response
        drip = web.StreamResponse(status=response.status, headers=self._headers_of(response))
        drip.content_length = len(body)
        await drip.prepare(request)
        step = max(1, slow.bytes_per_second // 10)
        for i in range(0, len(body), step):
            await drip.write(body[i : i + step])
            await asyncio.sleep(step / slow.bytes_per_second)
        await drip.write_eof()
        return drip

    @staticmethod
    def _headers_of(response: web.Response) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k.lower() != "content-length"}

    @web.middleware
    async def _latency_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await self.ctx.latency.wait("isapi")
        return await handler(request)

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        outcome = self.auth.check(request)
        if isinstance(outcome, web.Response):
            return outcome
        request[USER_KEY] = outcome
        return await handler(request)

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            return response_status(request, 4, "methodNotAllowed", 405)
        except web.HTTPNotFound:
            return response_status(request, 4, "notSupport", 404)

    # -- shared resources --------------------------------------------------------------------

    def device_info_extra(self) -> str:
        return ""

    async def _device_info(self, _request: web.Request) -> web.Response:
        inner = "".join(
            [
                el("deviceName", self.ctx.spec.id),
                el("deviceID", self.device_uuid),
                el("model", self.model),
                el("serialNumber", self.serial),
                el("macAddress", self.mac),
                el("firmwareVersion", self.firmware),
                el("firmwareReleasedDate", self.firmware_date),
                el("deviceType", self.device_type),
                el("telecontrolID", 88),
                self.device_info_extra(),
            ]
        )
        return xml_response("DeviceInfo", inner)

    async def _time(self, _request: web.Request) -> web.Response:
        # A skewed clock is one nobody synchronises: such devices run in manual mode.
        mode = "manual" if self.ctx.spec.fault(ClockSkew) else "NTP"
        inner = el("timeMode", mode) + el("localTime", local_iso(self.ctx.now()))
        return xml_response("Time", inner + el("timeZone", "CST-8:00:00"))

    async def _get_login_lock(self, _request: web.Request) -> web.Response:
        guard = self.ctx.guard
        inner = (
            el("enabled", guard.lockout)
            + el("maxIllegalLoginTimes", guard.max_failures)
            + el("maxIllegalLoginLockTime", int(guard.lock_s))
        )
        return xml_response("IllegalLoginLock", inner)

    async def _put_login_lock(self, request: web.Request) -> web.Response:
        try:
            root = ET.fromstring(await request.read())
        except ET.ParseError:
            return bad_xml(request)
        enabled = find_text(root, "enabled")
        times = find_text(root, "maxIllegalLoginTimes")
        lock_time = find_text(root, "maxIllegalLoginLockTime")
        if enabled not in (None, "true", "false") or not all(
            v is None or (v.isdigit() and int(v) > 0) for v in (times, lock_time)
        ):
            return response_status(request, 6, "badParameters", 400)
        guard = self.ctx.guard
        if enabled is not None:
            guard.lockout = enabled == "true"
        if times is not None:
            guard.max_failures = int(times)
        if lock_time is not None:
            guard.lock_s = float(lock_time)
        return response_status(request, 1, "ok")

    async def _user_check(self, request: web.Request) -> web.Response:
        # Logged in with the weak account: the device flags its password as a risk, as firmware does.
        weak = self.ctx.spec.fault(WeakCredentials)
        risky = weak is not None and request[USER_KEY] == weak.username
        inner = el("statusValue", 200) + el("statusString", "OK") + el("isDefaultPassword", risky)
        return xml_response("userCheck", inner + el("isRiskPassword", risky))

    def stream_base(self) -> dict[str, Any]:
        """The header fields every EventNotificationAlert carries."""
        return {
            "ipAddress": self.ctx.host,
            "portNo": self.port,
            "protocol": "HTTPS" if self.ctx.server_tls else "HTTP",
            "macAddress": self.mac,
            "channelID": 1,
            "dateTime": local_iso(self.ctx.now()),
        }

    def _heartbeat_part(self) -> Part:
        fields = {
            **self.stream_base(),
            "activePostCount": 0,
            "eventType": "videoloss",
            "eventState": "inactive",
            "eventDescription": "videoloss alarm",
        }
        inner = "".join(el(k, v) for k, v in fields.items())
        return XML_TYPE, xml_doc("EventNotificationAlert", inner).encode()


def utc_z(moment: datetime) -> str:
    """ContentMgmt times: UTC with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

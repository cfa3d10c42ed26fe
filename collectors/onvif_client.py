"""The SOAP session under OnvifClient: verified TLS, one Exchange per call, library errors translated.

onvif-zeep-async builds every ONVIFService on an aiohttp connector that does not verify
certificates and offers no parameter to change that; ONVIFCamera builds its services itself, so a
caller cannot hand it another transport either. This session therefore keeps the library's WSDL
handling (cached documents, its date and time types, WS-Security digest, WS-Addressing plugin) and
builds the library's zeep clients the way `ONVIFService.setup` does; calls go over our own aiohttp
session whose connector carries `conn.tls` (the site's CA, verification on), per session and
nothing globally. The two clients of a binding (with and without WS-Security) are built once per
session and serve every address of that binding (each pull point is its own address): an
ONVIFService per address made and dropped an HTTP session and four clients for each subscription.
A call does what zeep's AsyncServiceProxy did, without its per-call layers (collectors/onvif_soap):
the request from a template zeep made, the reply parsed by zeep against the WSDL/XSD.
DoorControl and AccessControl, which `onvif.definition.SERVICES` does not list, are bindings like any
other.

Every URL a device advertises (XAddrs, pull-point addresses) is followed by its path only, on the
scheme, host and port of the connection: credentials never go where the device, rather than the
inventory, says, and never over plain HTTP when the site configured TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import onvif
import zeep.exceptions
from lxml import etree
from onvif.client import UsernameDigestTokenDtDiff, ZeepAsyncClient
from onvif.client import _cached_document as load_document
from onvif.definition import SERVICES as LIBRARY_SERVICES
from onvif.settings import DEFAULT_SETTINGS
from onvif.wsa import WsAddressingIfMissingPlugin

from collectors.bounded import Oversize, read_body
from collectors.connection import Connection
from collectors.errors import (
    AuthFailed,
    CollectorError,
    DeviceRejected,
    ProtocolViolation,
    ReplyTooLarge,
    Unreachable,
    Unsupported,
)
from collectors.exchange import EXCERPT_LIMIT, Exchange, excerpt, library_version, now, redact
from collectors.onvif_soap import Reply, Requests

WSDL_DIR = Path(onvif.__file__).parent / "wsdl"
DEVICE_PATH = "/onvif/device_service"
KEEPALIVE_S = 4.0  # idle connections closed after this (the library's own choice); devices keep 5-15 s

# WSDL documents being loaded, per event loop: the library caches a loaded document but lets every
# service set up meanwhile load it again (in a thread), which costs seconds when a thousand
# devices start at once. One load per document; the others wait for it.
_LOADING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _load_once(url: str) -> Any:
    loading = _LOADING.setdefault(asyncio.get_running_loop(), {})
    task = loading.get(url)
    if task is None:
        task = loading[url] = asyncio.ensure_future(load_document(url))
    return await asyncio.shield(task)


# The library's table plus the Profile C services it leaves out (a copy: the library's stays as is).
SERVICES: Mapping[str, Mapping[str, str]] = {
    **LIBRARY_SERVICES,
    "doorcontrol": {
        "ns": "http://www.onvif.org/ver10/doorcontrol/wsdl",
        "wsdl": "doorcontrol.wsdl",
        "binding": "DoorControlBinding",
    },
    "accesscontrol": {
        "ns": "http://www.onvif.org/ver10/accesscontrol/wsdl",
        "wsdl": "accesscontrol.wsdl",
        "binding": "PACSBinding",
    },
}

REQUESTS = Requests()  # request templates shared by every session of the process

# Prefixes for fault subcodes, as ONVIF documents write them.
_PREFIXES = {
    "http://www.onvif.org/ver10/error": "ter",
    "http://docs.oasis-open.org/wsrf/r-2": "wsrf-r",
    "http://docs.oasis-open.org/wsn/b-2": "wsnt",
    "http://www.w3.org/2003/05/soap-envelope": "env",
}
_UNSUPPORTED = frozenset({"ActionNotSupported", "NoSuchService"})


class SubscriptionLost(DeviceRejected):
    """The pull point is gone (wsrf-r:ResourceUnknownFault): expired, dropped or never renewed."""


@dataclass(frozen=True)
class Service:
    """One binding at one address, as `OnvifSession.call` uses it."""

    xaddr: str
    binding: Any  # zeep's SoapBinding
    signed: Any  # zeep's client whose requests carry WS-Security
    authless: Any  # the same, unsigned (GetSystemDateAndTime before the clock is known)


@dataclass
class _Capture:
    """What the transport saw of one call: filled in as the request goes out and the reply comes."""

    address: str
    request: str = ""
    status: int | None = None
    response: bytes | None = None


# The call in progress in this task; the transport writes into it (tasks copy contexts, so
# concurrent calls of one client each have their own).
_CAPTURE: ContextVar[_Capture | None] = ContextVar("onvif_capture", default=None)


class _RecordingTransport:
    """POSTs a request over the session's aiohttp session, reading each reply only up to the bound,
    and tells the current capture what went out and came back. Once more when a kept connection
    turns out closed before the request was written (RFC 9112 9.6 lets a server close an idle
    connection at any time), as the library's transport does; no other retry. zeep's clients hold
    it as their transport but never call it: OnvifSession.call posts through `send`."""

    def __init__(self, *, session: aiohttp.ClientSession, max_reply_bytes: int) -> None:
        self.session = session
        self.max_reply_bytes = max_reply_bytes

    async def send(
        self, address: str, message: str, headers: Mapping[str, str]
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        try:
            return await self._post(address, message, headers)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError):
            return await self._post(address, message, headers)

    async def _post(
        self, address: str, message: str, headers: Mapping[str, str]
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        capture = _CAPTURE.get()
        if capture is not None:
            capture.address, capture.request = address, message
        headers = {"Content-Type": 'text/xml; charset="utf-8"', **headers}
        async with self.session.post(address, data=message.encode("utf-8"), headers=headers) as response:
            if capture is not None:
                capture.status = response.status
            try:
                content = await read_body(response, self.max_reply_bytes)
            except Oversize as exc:
                if capture is not None:
                    capture.response = exc.head
                raise
        if capture is not None:
            capture.response = content
        return response, content


def utc(value: Any) -> datetime | None:
    """A zeep dateTime as an aware UTC datetime (ONVIF times without a zone are UTC)."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fault_code(qname: Any) -> str:
    """A fault (sub)code as `prefix:Local` when the namespace is a known one."""
    try:
        q = etree.QName(qname)
    except (TypeError, ValueError):
        return str(qname)
    prefix = _PREFIXES.get(q.namespace or "")
    return f"{prefix}:{q.localname}" if prefix else q.localname


def _translate(exc: Exception, capture: _Capture, operation: str) -> CollectorError | None:
    """The collector error for a library error; None for an error of ours (it propagates)."""
    answered = capture.status is not None
    if isinstance(exc, Oversize):
        return ReplyTooLarge(f"{operation}: {exc}")
    if isinstance(exc, zeep.exceptions.Fault):
        subcodes = [fault_code(s) for s in exc.subcodes or []]
        locals_ = {s.split(":")[-1] for s in subcodes}
        code = subcodes[-1] if subcodes else str(exc.code or "fault")
        message = f"{operation}: device answered fault {code}: {exc.message}"
        if "NotAuthorized" in locals_ or capture.status in (401, 403):
            return AuthFailed(message)
        if "ResourceUnknownFault" in locals_:
            return SubscriptionLost(message, code=code)
        if locals_ & _UNSUPPORTED:
            return Unsupported(message)
        return DeviceRejected(message, code=code)
    if isinstance(exc, zeep.exceptions.TransportError):
        if exc.status_code in (401, 403):
            return AuthFailed(f"{operation}: HTTP {exc.status_code}")
        if exc.content:
            return ProtocolViolation(f"{operation}: reply is not XML (HTTP {exc.status_code})")
        return DeviceRejected(
            f"{operation}: HTTP {exc.status_code} without a body", code=f"http:{exc.status_code}"
        )
    if isinstance(exc, TimeoutError):
        return Unreachable(f"{operation}: no reply in time", timed_out=True)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return ProtocolViolation(f"{operation}: TLS handshake failed: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ProtocolViolation(f"{operation}: reply cut short: {exc}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return Unreachable(f"{operation}: {type(exc).__name__}: {exc}")
    # A reply zeep could not make sense of: lenient parsing leaves a missing body as TypeError or
    # AttributeError deep in the library, an envelope cut short as IndexError. Before any reply,
    # such errors are ours.
    if answered and isinstance(
        exc, zeep.exceptions.Error | etree.XMLSyntaxError | TypeError | AttributeError | IndexError
    ):
        return ProtocolViolation(f"{operation}: malformed reply: {type(exc).__name__}: {exc}")
    return None


class OnvifSession:
    """One aiohttp session to one device; builds ONVIF services on it and makes recorded calls."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        scheme = "https" if conn.tls is not None else "http"
        host = f"[{conn.host}]" if ":" in conn.host else conn.host
        self.origin = f"{scheme}://{host}:{conn.port}"
        self.dt_diff: timedelta | None = None  # the device clock's offset, for WS-Security timestamps
        self._library = library_version("onvif-zeep-async")
        self._http: aiohttp.ClientSession | None = None
        self._transport: _RecordingTransport | None = None
        # one WS-Security token for every signed client: its digest is made per request (apply has
        # no await, so concurrent calls cannot mix their timestamps), and adjust_clock moves it
        self._wsse = UsernameDigestTokenDtDiff(conn.username, conn.password, use_digest=True)
        self._clients: dict[str, tuple[ZeepAsyncClient, ZeepAsyncClient]] = {}
        self._services: dict[tuple[str, str], Service] = {}

    async def open(self) -> None:
        # The session lives as long as the run's client of this device: its connections are kept
        # between calls (a TLS handshake costs more than most replies), but only for KEEPALIVE_S,
        # shorter than devices keep an idle connection, so that no call goes out on a socket the
        # camera has closed meanwhile.
        connector = aiohttp.TCPConnector(
            ssl=self.conn.tls if self.conn.tls is not None else True, keepalive_timeout=KEEPALIVE_S
        )
        self._http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.conn.timeout_s)
        )
        self._transport = _RecordingTransport(session=self._http, max_reply_bytes=self.conn.max_reply_bytes)

    async def close(self) -> None:
        self._services.clear()
        self._clients.clear()
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    def url(self, advertised: str | None = None) -> str:
        """Where to send a request for an advertised address: its path on the connection's origin."""
        if not advertised:
            return self.origin + (self.conn.path or DEVICE_PATH)
        parts = urlsplit(advertised)
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.origin}{parts.path or '/'}{query}"

    async def service(
        self, key: str, advertised: str | None = None, *, binding: str | None = None
    ) -> Service:
        """SERVICES[key] (or another binding of its WSDL) at an advertised address."""
        if self._transport is None:
            raise RuntimeError("OnvifSession used outside its context")
        spec = SERVICES[key]
        address = self.url(advertised)
        binding_name = f"{{{spec['ns']}}}{binding or spec['binding']}"
        cached = self._services.get((binding_name, address))
        if cached is not None:
            return cached
        clients = self._clients.get(binding_name)
        if clients is None:
            document = await _load_once(str(WSDL_DIR / spec["wsdl"]))
            # as ONVIFService.setup builds them: the library's settings and WS-Addressing plugin
            authless, signed = (
                ZeepAsyncClient(
                    wsdl=document,
                    wsse=wsse,
                    transport=self._transport,
                    settings=DEFAULT_SETTINGS,
                    plugins=[WsAddressingIfMissingPlugin()],
                )
                for wsse in (None, self._wsse)
            )
            clients = self._clients.setdefault(binding_name, (authless, signed))
        authless, signed = clients
        svc = Service(address, signed.wsdl.bindings[binding_name], signed, authless)
        self._services[(binding_name, address)] = svc
        return svc

    def adjust_clock(self, offset: timedelta) -> None:
        """Sign WS-Security timestamps on the device's clock from now on (skewed devices refuse ours)."""
        self.dt_diff = offset
        self._wsse.dt_diff = offset

    @contextlib.asynccontextmanager
    async def _gated(self) -> AsyncIterator[None]:
        if self.conn.gate is None:
            yield
        else:
            async with self.conn.gate:
                yield

    async def call(
        self,
        service: Any,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        authless: bool = False,
        wait_s: float = 0.0,
        device_time: Callable[[Any], datetime | None] | None = None,
        slot: bool = True,
    ) -> tuple[Any, str]:
        """Call one operation: (zeep result, exchange id); a CollectorError citing the exchange on failure.

        `wait_s` extends the bound for operations that wait on the device's side by request
        (PullMessages' Timeout, a search's WaitTime). `slot=False`: the call takes no slot of the
        connection's gate (a service's long poll that waits on the device for its whole life).
        """
        anonymous = authless or self.conn.username is None
        client = service.authless if anonymous else service.signed
        capture = _Capture(address=service.xaddr)
        async with self._gated() if slot else contextlib.nullcontext():
            token = _CAPTURE.set(capture)
            started, t0 = now(), time.monotonic()
            try:
                async with asyncio.timeout(self.conn.timeout_s + wait_s):
                    result = await self._send(client, service, operation, params or {})
            except asyncio.CancelledError:
                self._record(capture, operation, started, t0, error="cancelled")
                raise
            except Exception as exc:
                translated = _translate(exc, capture, operation)
                if translated is None:
                    raise
                exchange = self._record(capture, operation, started, t0, error=str(translated))
                translated.exchange_id = exchange.id
                raise translated from exc
            finally:
                _CAPTURE.reset(token)
        seen = device_time(result) if device_time is not None else None
        exchange = self._record(capture, operation, started, t0, device_time=seen)
        return result, exchange.id

    async def _send(self, client: Any, service: Service, operation: str, params: Mapping[str, Any]) -> Any:
        """What zeep's AsyncServiceProxy did: the request, the POST, the reply parsed against the
        WSDL/XSD by zeep (see onvif_soap)."""
        if self._transport is None:
            raise RuntimeError("OnvifSession used outside its context")
        binding = service.binding
        message, headers = REQUESTS.build(client, binding, operation, params, service.xaddr)
        response, content = await self._transport.send(service.xaddr, message, headers)
        reply = Reply(response.status, content, response.headers, response.charset)
        return binding.process_reply(client, binding.get(operation), reply)

    def _record(
        self,
        capture: _Capture,
        operation: str,
        started: datetime,
        t0: float,
        *,
        error: str | None = None,
        device_time: datetime | None = None,
    ) -> Exchange:
        secrets = self.conn.secrets()
        response = redact((capture.response or b"").decode("utf-8", "replace"), secrets)
        exchange = Exchange(
            device=self.conn.device,
            address=capture.address,
            protocol="onvif",
            operation=operation,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 4),
            request=excerpt(redact(capture.request, secrets)),
            response=excerpt(response),
            ok=error is None,
            error=error,
            device_time=device_time,
            library=self._library,
            facts={"http_status": capture.status, "tls": self.conn.tls is not None},
            raw=response.encode() if len(response) > EXCERPT_LIMIT else None,
        )
        self.conn.sink(exchange)
        return exchange

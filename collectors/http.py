"""The HTTP(S) session under the ISAPI, platform and ONVIF-login clients: one Exchange per request.

TLS comes from `conn.tls` and is always verified (the site's CA; no "insecure" switch exists).
Digest authentication is aiohttp's DigestAuthMiddleware; redirects are not followed, so
credentials never go where a device, rather than the inventory, points. Every request is bounded
by `conn.timeout_s`, runs under the per-host gate, and leaves exactly one Exchange whose request
and reply excerpts are redacted (passwords, digest responses, bearer tokens, and whatever else the
caller registers), also when it fails. Library errors become the collector's own:

    401                      -> AuthFailed
    other 4xx / 5xx, 3xx     -> DeviceRejected(code="HTTP nnn")   (unless the caller expects it)
    refused, reset, timeout  -> Unreachable (timed_out on timeout)
    certificate not trusted  -> ProtocolViolation, exchange facts {"tls": "certificate_verify_failed"}
    other TLS failure        -> ProtocolViolation, exchange facts {"tls": "handshake_failed"}
    undecodable body         -> ProtocolViolation (bad XML, bad JSON, truncated body)
    a refusal in the body    -> what the caller's decoder says (Refusal), e.g. a SOAP fault

    reply past the bound     -> ReplyTooLarge (its first bytes are the exchange's reply excerpt)

No reply is read past `conn.max_reply_bytes`. XML is parsed with defusedxml (no DTD, no entity,
nothing external: a device cannot make the parser expand or fetch anything) and namespaces are
stripped, since devices disagree on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import aiohttp
import defusedxml
import defusedxml.ElementTree as SafeET

from collectors.bounded import BoundedBody, Oversize, read_body
from collectors.connection import Connection
from collectors.errors import (
    AuthFailed,
    CollectorError,
    DeviceRejected,
    ProtocolViolation,
    ReplyTooLarge,
    Unreachable,
)
from collectors.exchange import Exchange, excerpt, library_version, now, redact

T = TypeVar("T")
Decoder = Callable[[bytes], T]


class DecodeError(ValueError):
    """A body that is not what the caller's decoder expects."""


class Refusal(Exception):
    """Raised by a decoder when the body is the device's refusal (a SOAP fault, a ResponseStatus
    with an error code): the request fails with `error`, its exchange marked failed."""

    def __init__(self, error: type[CollectorError], message: str, **extra: Any) -> None:
        super().__init__(message)
        self.error = error
        self.extra = extra


def decode_xml(body: bytes) -> ET.Element:
    """The document's root with namespaces stripped from every tag."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except ET.ParseError as exc:
        raise DecodeError(f"bad XML: {exc}") from exc
    except defusedxml.DefusedXmlException as exc:
        raise DecodeError(f"XML refused: {type(exc).__name__} ({exc})") from exc
    for node in root.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.rsplit("}", 1)[1]
    return root


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise DecodeError(f"bad JSON: {exc}") from exc


def decode_bytes(body: bytes) -> bytes:
    return body


@dataclass(frozen=True)
class Reply(Generic[T]):
    status: int
    headers: Mapping[str, str]  # names in lower case
    data: T
    exchange_id: str


@dataclass
class _Record:
    """What is known of one request so far; becomes its Exchange."""

    method: str
    url: str
    request_headers: str = ""
    request_body: str = ""
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _headers_text(headers: Mapping[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in headers.items())


def _body_text(body: bytes | str | None) -> str:
    if body is None:
        return ""
    return body if isinstance(body, str) else body.decode("utf-8", "replace")


class HttpSession:
    """`async with HttpSession(conn, protocol="isapi", digest=True) as s:` requests to one device."""

    def __init__(
        self,
        conn: Connection,
        *,
        protocol: str,
        digest: bool = False,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        self.conn = conn
        self.protocol = protocol
        self._digest = digest
        self._scrub = scrub
        self._secrets: list[str] = list(conn.secrets())
        self._session: aiohttp.ClientSession | None = None
        self._library = library_version("aiohttp")

    @property
    def base_url(self) -> str:
        host = f"[{self.conn.host}]" if ":" in self.conn.host else self.conn.host
        return f"{'https' if self.conn.tls else 'http'}://{host}:{self.conn.port}"

    def add_secret(self, secret: str) -> None:
        """A value learnt during the session (a bearer token) that evidence must never show."""
        self._secrets.append(secret)

    async def __aenter__(self) -> HttpSession:
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        if self._digest and self.conn.username is not None:
            middlewares = (aiohttp.DigestAuthMiddleware(self.conn.username, self.conn.password or ""),)
        self._session = aiohttp.ClientSession(
            middlewares=middlewares,
            timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout bounds each call instead
            connector=aiohttp.TCPConnector(limit_per_host=2),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "zhian"},
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        decode: Decoder[T],
        body: bytes | str | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        expect: Collection[int] = (),
    ) -> Reply[T]:
        """One request; statuses in `expect` are returned (decoded) rather than raised."""

        async def read(response: aiohttp.ClientResponse) -> bytes:
            return await read_body(response, self.conn.max_reply_bytes)

        return await self._call(method, path, operation, decode, body, json_body, headers, expect, read, 0.0)

    async def read_window(self, path: str, *, operation: str, window_s: float) -> Reply[bytes]:
        """GET a reply that never ends (an event stream) and keep what arrives within window_s (a
        stream past the bound is refused like any oversize reply)."""

        async def read(response: aiohttp.ClientResponse) -> bytes:
            body = BoundedBody(self.conn.max_reply_bytes)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(window_s):
                    async for chunk in response.content.iter_any():
                        body.add(chunk)
            return body.data()

        return await self._call("GET", path, operation, decode_bytes, None, None, None, (), read, window_s)

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        decode: Decoder[T],
        body: bytes | str | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        expect: Collection[int],
        read: Callable[[aiohttp.ClientResponse], Awaitable[bytes]],
        extra_s: float,
    ) -> Reply[T]:
        if self._session is None:
            raise RuntimeError("HttpSession used outside `async with`")
        url = self.base_url + path
        record = _Record(method, url, request_body=_body_text(body))
        if json_body is not None:
            record.request_body = json.dumps(json_body, ensure_ascii=False)
        started, t0 = now(), time.monotonic()
        gate = self.conn.gate or contextlib.nullcontext()

        def fail(kind: type[CollectorError], message: str, **extra: Any) -> CollectorError:
            return self._fail(record, operation, started, t0, kind, message, **extra)

        try:
            async with (
                gate,
                asyncio.timeout(self.conn.timeout_s + extra_s),
                self._session.request(
                    method,
                    url,
                    data=body,
                    json=json_body,
                    headers=headers,
                    ssl=self.conn.tls if self.conn.tls is not None else True,
                    allow_redirects=False,
                ) as response,
            ):
                record.request_headers = _headers_text(response.request_info.headers)
                record.status, record.reason = response.status, response.reason or ""
                record.response_headers = dict(response.headers)
                record.body = await read(response)
        except TimeoutError:
            raise fail(Unreachable, "no reply in time", timed_out=True) from None
        except Oversize as exc:
            record.body = exc.head
            limits = {"max_reply_bytes": exc.limit, "declared_length": exc.declared}
            raise fail(ReplyTooLarge, str(exc), facts=limits) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            facts = {"tls": "certificate_verify_failed", "tls_error": str(exc.certificate_error)}
            raise fail(ProtocolViolation, str(exc), facts=facts) from exc
        except aiohttp.ClientSSLError as exc:
            raise fail(
                ProtocolViolation, str(exc), facts={"tls": "handshake_failed", "tls_error": str(exc)}
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise fail(Unreachable, f"cannot connect to {self.conn.address}: {exc.os_error}") from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise fail(Unreachable, str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientError as exc:  # bad framing, truncated body, malformed challenge
            raise fail(ProtocolViolation, str(exc)) from exc
        status = record.status
        if not (200 <= status < 300 or status in expect):
            message = f"HTTP {status} {record.reason}".strip()
            if status == 401:
                raise fail(AuthFailed, message)
            raise fail(DeviceRejected, message, code=f"HTTP {status}")
        try:
            data = decode(record.body)
        except DecodeError as exc:
            raise fail(ProtocolViolation, str(exc)) from exc
        except Refusal as exc:
            raise fail(exc.error, str(exc), **exc.extra) from exc
        exchange = self._exchange(record, operation, started, t0, ok=True)
        self.conn.sink(exchange)
        headers_lower = {k.lower(): v for k, v in record.response_headers.items()}
        return Reply(status, headers_lower, data, exchange.id)

    def _fail(
        self,
        record: _Record,
        operation: str,
        started: datetime,
        t0: float,
        kind: type[CollectorError],
        message: str,
        *,
        facts: dict[str, Any] | None = None,
        **extra: Any,
    ) -> CollectorError:
        text = f"{self.conn.device} {operation}: {self._clean(message)}"
        exchange = self._exchange(record, operation, started, t0, ok=False, error=text, facts=facts)
        self.conn.sink(exchange)
        return kind(text, exchange_id=exchange.id, **extra)

    def _clean(self, text: str) -> str:
        text = redact(text, tuple(self._secrets))
        return self._scrub(text) if self._scrub else text

    def _exchange(
        self,
        record: _Record,
        operation: str,
        started: datetime,
        t0: float,
        *,
        ok: bool,
        error: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> Exchange:
        request = f"{record.method} {record.url}\n{record.request_headers}\n\n{record.request_body}"
        response = ""
        if record.status is not None:
            head = f"HTTP {record.status} {record.reason}\n{_headers_text(record.response_headers)}"
            response = f"{head}\n\n{record.body.decode('utf-8', 'replace')}"
        return Exchange(
            device=self.conn.device,
            address=self.conn.address,
            protocol=self.protocol,
            operation=operation,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 4),
            request=excerpt(self._clean(request)),
            response=excerpt(self._clean(response)),
            ok=ok,
            error=error,
            library=self._library,
            facts={"status": record.status, **(facts or {})},
        )

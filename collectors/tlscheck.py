"""A TLS look at one port: what it negotiates, what certificate it shows, whether that certificate
verifies against the site's trust (`conn.tls`), and whether the same port also answers plain HTTP.

One handshake, or two: the first verifies (chain, validity dates, name against the host) with
`conn.tls`, exactly as every other collector connects, and a verified handshake also shows the
version, cipher and certificate. Only when it fails does a second one, accepting any certificate
and any protocol version the local OpenSSL can still speak, see and describe what was refused (an
old protocol, an untrusted certificate). The server picks the version, the highest both sides
speak, so a verified handshake shows the version an observing one would. Nothing is sent inside
either session. Each handshake and the plain request leave one Exchange. The observing context is
made once per process, not per handshake (building one costs more than its use).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from collectors.connection import Connection, system_trust
from collectors.errors import Unreachable
from collectors.exchange import now

LIBRARY = f"ssl {ssl.OPENSSL_VERSION}"
PLAIN_READ = 4096
# A peer that resets or aborts the handshake is answering, just not with TLS.
_NOT_TLS = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError)


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    not_before: datetime  # UTC
    not_after: datetime
    sans: tuple[str, ...]  # DNS names and IP addresses
    sha256: str
    self_signed: bool


@dataclass(frozen=True)
class TlsReport:
    spoken: bool  # a TLS handshake completed (any certificate accepted)
    version: str | None  # TLSv1.3, TLSv1.2 ...
    cipher: str | None
    certificate: Certificate | None
    verified: bool  # the handshake with conn.tls succeeded: chain, dates and name
    verify_error: str | None  # OpenSSL's reason when it did not
    handshake_error: str | None  # why no TLS at all
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class PlainAnswer:
    answered: bool  # an HTTP status line came back in the clear
    status: int | None
    exchange_id: str


def describe(der: bytes) -> Certificate:
    cert = x509.load_der_x509_certificate(der)
    sans: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans += ext.get_values_for_type(x509.DNSName)
        sans += [str(a) for a in ext.get_values_for_type(x509.IPAddress)]
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=tuple(sans),
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        self_signed=cert.issuer == cert.subject,
    )


def name_matches(host: str, sans: tuple[str, ...]) -> bool:
    """The host is among the SANs (an IP exactly; a DNS name exactly or by a leftmost wildcard)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for san in sans:
        if ip is not None:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(san) == ip:
                    return True
            continue
        name, pattern = host.lower().rstrip("."), san.lower().rstrip(".")
        if name == pattern:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


@functools.cache
def _observing_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):  # builds without the old protocols
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _spoken(
    seen: tuple[str | None, str | None, bytes | None],
    verified: bool,
    verify_error: str | None,
    evidence: tuple[str, ...],
) -> TlsReport:
    version, cipher, der = seen
    return TlsReport(
        spoken=True,
        version=version,
        cipher=cipher,
        certificate=describe(der) if der else None,
        verified=verified,
        verify_error=verify_error,
        handshake_error=None,
        evidence=evidence,
    )


class TlsClient:
    """`async with TlsClient(conn) as t:` handshakes and a plain-HTTP knock on conn.host:conn.port."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> TlsClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def _record(
        self,
        operation: str,
        protocol: str,
        started: datetime,
        t0: float,
        request: str,
        response: str,
        *,
        ok: bool,
        error: str | None = None,
        facts: dict[str, Any] | None = None,
    ) -> str:
        return self.conn.record(
            protocol,
            operation,
            started,
            t0,
            request,
            response,
            ok=ok,
            error=error,
            library=LIBRARY,
            facts=facts,
        )

    async def _handshake(self, ctx: ssl.SSLContext) -> tuple[str | None, str | None, bytes | None]:
        """Version, cipher and peer certificate (DER) of one handshake; raises what it raised."""
        _, writer = await asyncio.open_connection(
            self.conn.host,
            self.conn.port,
            ssl=ctx,
            server_hostname=self.conn.host,
            ssl_handshake_timeout=self.conn.timeout_s,
        )
        try:
            tls = writer.get_extra_info("ssl_object")
            cipher = tls.cipher() if tls is not None else None
            return (
                tls.version() if tls is not None else None,
                cipher[0] if cipher else None,
                tls.getpeercert(binary_form=True) if tls is not None else None,
            )
        finally:
            writer.transport.abort()  # no close_notify wait: a hung peer must not hold us

    async def _attempt(
        self, ctx: ssl.SSLContext, operation: str
    ) -> tuple[tuple[str | None, str | None, bytes | None] | None, str | None, str]:
        """One bounded handshake and its exchange: (result, why it failed at the TLS level, exchange id)."""
        started, t0 = now(), time.monotonic()
        request = f"TLS ClientHello to {self.conn.address} (SNI {self.conn.host})"
        gate = self.conn.gate or contextlib.nullcontext()
        try:
            async with gate, asyncio.timeout(self.conn.timeout_s):
                result = await self._handshake(ctx)
        except TimeoutError:
            xid = self._record(
                operation, "tls", started, t0, request, "", ok=False, error="no answer in time"
            )
            raise Unreachable(
                f"{self.conn.device}: TLS handshake timed out", timed_out=True, exchange_id=xid
            ) from None
        except _NOT_TLS as exc:
            error = getattr(exc, "verify_message", None) or str(exc) or type(exc).__name__
            xid = self._record(operation, "tls", started, t0, request, "", ok=False, error=error)
            return None, error, xid
        except OSError as exc:
            xid = self._record(operation, "tls", started, t0, request, "", ok=False, error=str(exc))
            raise Unreachable(f"{self.conn.device}: {exc}", exchange_id=xid) from exc
        version, cipher, der = result
        cert = describe(der) if der else None
        facts: dict[str, Any] = {"version": version, "cipher": cipher}
        lines = [f"{version} {cipher}"]
        if cert is not None:
            facts |= {"subject": cert.subject, "issuer": cert.issuer, "sans": list(cert.sans),
                      "not_after": cert.not_after.isoformat(), "sha256": cert.sha256}  # fmt: skip
            lines += [
                f"subject: {cert.subject}",
                f"issuer: {cert.issuer}",
                f"SAN: {', '.join(cert.sans)}",
                f"valid: {cert.not_before.isoformat()} .. {cert.not_after.isoformat()}",
                f"sha256: {cert.sha256}",
            ]
        xid = self._record(operation, "tls", started, t0, request, "\n".join(lines), ok=True, facts=facts)
        return result, None, xid

    async def handshake(self) -> TlsReport:
        """Verify the port against conn.tls (the site's trust); only if that fails, observe what it
        offers with a handshake that accepts anything."""
        trust = self.conn.tls or system_trust()
        verified, verify_error, first = await self._attempt(trust, "TLS handshake (verify)")
        if verified is not None:
            return _spoken(verified, True, None, (first,))
        seen, failure, second = await self._attempt(_observing_context(), "TLS handshake (observe)")
        if seen is None:
            return TlsReport(False, None, None, None, False, None, failure, (first, second))
        return _spoken(seen, False, verify_error, (first, second))

    async def plain_http(self, path: str = "/") -> PlainAnswer:
        """Send a plain HTTP GET to the port: does an HTTP status line come back unencrypted?"""
        started, t0 = now(), time.monotonic()
        request = (
            f"GET {path or '/'} HTTP/1.1\r\nHost: {self.conn.host}:{self.conn.port}\r\n"
            "User-Agent: zhian\r\nConnection: close\r\n\r\n"
        )
        gate = self.conn.gate or contextlib.nullcontext()
        data = b""
        try:
            async with gate:
                async with asyncio.timeout(self.conn.timeout_s):
                    reader, writer = await asyncio.open_connection(self.conn.host, self.conn.port)
                try:
                    writer.write(request.encode())
                    with contextlib.suppress(TimeoutError, *_NOT_TLS):
                        async with asyncio.timeout(self.conn.timeout_s):
                            while len(data) < PLAIN_READ and b"\r\n\r\n" not in data:
                                chunk = await reader.read(PLAIN_READ)
                                if not chunk:
                                    break
                                data += chunk
                finally:
                    writer.transport.abort()
        except TimeoutError:
            xid = self._record(
                "plain HTTP GET", "http", started, t0, request, "", ok=False, error="no connection"
            )
            raise Unreachable(
                f"{self.conn.device}: no TCP connection in time", timed_out=True, exchange_id=xid
            ) from None
        except OSError as exc:
            xid = self._record("plain HTTP GET", "http", started, t0, request, "", ok=False, error=str(exc))
            raise Unreachable(f"{self.conn.device}: {exc}", exchange_id=xid) from exc
        status = None
        head = data.split(b"\r\n", 1)[0].decode("latin-1")
        if head.startswith("HTTP/"):
            with contextlib.suppress(IndexError, ValueError):
                status = int(head.split()[1])
        response = data.decode("utf-8", "replace") if data else "(no HTTP answer)"
        xid = self._record(
            "plain HTTP GET", "http", started, t0, request, response, ok=True, facts={"status": status}
        )
        return PlainAnswer(status is not None, status, xid)

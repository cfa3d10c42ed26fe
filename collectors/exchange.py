"""One request and its reply, as evidence: who was asked what, when, how, and what came back.

Collectors hand every exchange to a sink the caller gives them (the run's evidence ledger), with
secrets already removed: the sink must never see a password, a digest response, a WS-Security
token or a bearer token.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

EXCERPT_LIMIT = 16_384


@dataclass(frozen=True)
class Exchange:
    device: str  # the device id in the inventory
    address: str  # host:port (or URL) actually contacted
    protocol: str  # onvif | isapi | http | modbus | mqtt | tls
    operation: str  # GetRecordingSummary, read_input_registers(0, 46), subscribe(site/#) ...
    started_at: datetime  # by the collector's clock (UTC)
    duration_s: float
    request: str  # excerpt, redacted
    response: str  # excerpt, redacted (the whole raw reply is `raw` when kept)
    ok: bool
    error: str | None = None
    device_time: datetime | None = None  # the device's own clock when the reply told it
    library: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None  # a larger artefact (kept by sha256 in the ledger), redacted
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


Sink = Callable[[Exchange], None]


def discard(_: Exchange) -> None:
    """A sink for callers that keep no evidence (tests of a collector alone)."""


def now() -> datetime:
    return datetime.now(UTC)


def library_version(dist: str) -> str:
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist


# Each shape with the words (lower case) one of which a text must hold for the shape to match:
# most replies hold none, and a substring test is far cheaper than a case-blind regex scan.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # WS-Security UsernameToken (ONVIF): password digest and nonce
    (("password",), re.compile(r"(<(?:\w+:)?Password\b[^>]*>)[^<]*(</)", re.S), r"\1[redacted]\2"),
    (("nonce",), re.compile(r"(<(?:\w+:)?Nonce\b[^>]*>)[^<]*(</)", re.S), r"\1[redacted]\2"),
    # HTTP authorization headers (Basic, Digest, Bearer) and cookies
    (
        ("authorization", "cookie"),
        re.compile(r"(?im)^(authorization|proxy-authorization|cookie|set-cookie)\s*:.*$"),
        r"\1: [redacted]",
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    # JSON / form fields that carry secrets
    (
        ('"password"', '"passwd"', '"token"', '"access_token"', '"secret"'),
        re.compile(r'(?i)("(?:password|passwd|token|access_token|secret)"\s*:\s*)"[^"]*"'),
        r'\1"[redacted]"',
    ),
    (
        ("password=", "passwd=", "token="),
        re.compile(r"(?i)\b(password|passwd|token)=([^&\s]+)"),
        r"\1=[redacted]",
    ),
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove secrets: known shapes, and any literal secret value the caller knows of."""
    lower = text.lower()
    for words, pattern, repl in _PATTERNS:
        if any(word in lower for word in words):
            text = pattern.sub(repl, text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters]"

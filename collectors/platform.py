"""The management platform's HTTP API (docs/platform-api.md): bearer login, alerts, event log,
devices, clock and resident records, as typed data.

The bearer token lives in this object only: it is never returned, and the session redacts it
from every exchange. Personal data the platform may send unmasked (18-character resident ID
numbers, 11-digit mainland mobile numbers) is masked in every exchange too: evidence must not
become a copy of what it reports on. The values reach the caller in memory only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, urlencode

from collectors.connection import Connection
from collectors.errors import AuthFailed, ProtocolViolation
from collectors.http import HttpSession, Reply, decode_bytes, decode_json

DEFAULT_BASE = "/api/v1"
T = TypeVar("T")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_number_valid(text: str) -> bool:
    """GB 11643-1999: 17 digits and a check character from the ISO 7064 MOD 11-2 sum."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == text[17].upper()


def mask_personal(text: str) -> str:
    """Evidence-safe text: every ID-number-shaped and mobile-shaped run masked (valid or not)."""
    text = ID_NUMBER.sub(lambda m: m.group()[:6] + "*" * 8 + "****", text)
    return MOBILE.sub(lambda m: m.group()[:3] + "********", text)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else None


@dataclass(frozen=True)
class LoginAttempt:
    """One login try: accepted, refused (401) or refused because the peer is locked (429)."""

    status: int
    accepted: bool
    error: str | None
    remaining_attempts: int | None  # what the platform says is left before a lock
    retry_after_s: float | None  # while locked
    exchange_id: str


@dataclass(frozen=True)
class PlatformAlert:
    id: str
    type: str
    device: str
    area: str | None
    severity: str
    raised_at: datetime  # UTC, the platform's clock
    source_time: datetime | None
    acknowledged: bool
    data: Mapping[str, Any]
    exchange_id: str | None = None  # set when the alert came by itself (a callback to zhian)


class AlertFeed(Protocol):
    """Alerts the platform pushed to zhian (collectors/platform_receiver.py)."""

    def received(self, since: datetime | None, type: str | None) -> tuple[PlatformAlert, ...]: ...


@dataclass(frozen=True)
class PlatformEvent:
    seq: int
    at: datetime  # UTC, the platform's clock
    kind: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class PlatformDevice:
    id: str
    kind: str
    protocol: str
    area: str | None
    status: str
    last_seen: datetime | None
    via: str | None


@dataclass(frozen=True)
class Listing(Generic[T]):
    """Rows of a list route and the exchange that carried them."""

    rows: tuple[T, ...]
    exchange_id: str


@dataclass(frozen=True)
class RouteAnswer:
    status: int
    exchange_id: str


def merge_feed(
    listing: Listing[PlatformAlert], feed: AlertFeed | None, since: datetime | None, type: str | None
) -> Listing[PlatformAlert]:
    """The polled alerts and the pushed ones not among them (by id), oldest first."""
    if feed is None:
        return listing
    known = {a.id for a in listing.rows}
    pushed = [a for a in feed.received(since, type) if a.id not in known]
    if not pushed:
        return listing
    rows = sorted((*listing.rows, *pushed), key=lambda a: a.raised_at)
    return Listing(tuple(rows), listing.exchange_id)


class PlatformClient:
    """`async with PlatformClient(conn) as p:`; protected calls log in first when needed."""

    def __init__(self, conn: Connection, *, feed: AlertFeed | None = None) -> None:
        self.conn = conn
        self.feed = feed
        self.base = conn.path.rstrip("/") or DEFAULT_BASE
        self._http = HttpSession(conn, protocol="http", scrub=mask_personal)
        self._token: str | None = None

    async def __aenter__(self) -> PlatformClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._token = None
        await self._http.__aexit__(*exc)

    # -- login --------------------------------------------------------------------------------

    async def try_login(self, username: str, password: str) -> LoginAttempt:
        """One login with these credentials; a refusal is an answer here, not an error."""
        self._http.add_secret(password)
        reply = await self._http.request(
            "POST",
            f"{self.base}/login",
            operation=f"login as {username}",
            decode=decode_json,
            json_body={"username": username, "password": password},
            expect=(401, 429),
        )
        body = reply.data if isinstance(reply.data, dict) else {}
        token = body.get("token")
        if reply.status == 200:
            if not isinstance(token, str) or not token:
                raise ProtocolViolation("login: accepted without a token", exchange_id=reply.exchange_id)
            self._http.add_secret(token)
        remaining, retry = body.get("remaining_attempts"), body.get("retry_after_s")
        if retry is None and "retry-after" in reply.headers:
            retry = reply.headers["retry-after"]
        try:
            retry_s = float(retry) if retry is not None else None
        except (TypeError, ValueError):
            retry_s = None
        return LoginAttempt(
            status=reply.status,
            accepted=reply.status == 200,
            error=str(body["error"]) if "error" in body else None,
            remaining_attempts=remaining if isinstance(remaining, int) else None,
            retry_after_s=retry_s,
            exchange_id=reply.exchange_id,
        )

    async def login(self) -> str:
        """Log in with the connection's account; the exchange id. The token stays here."""
        self._token = None
        reply = await self._http.request(
            "POST",
            f"{self.base}/login",
            operation="login",
            decode=decode_json,
            json_body={"username": self.conn.username or "", "password": self.conn.password or ""},
        )
        token = reply.data.get("token") if isinstance(reply.data, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolViolation("login: accepted without a token", exchange_id=reply.exchange_id)
        self._http.add_secret(token)
        self._token = token
        return reply.exchange_id

    async def _get(self, route: str, operation: str, **query: Any) -> Reply[Any]:
        """A protected GET; an expired token (401 after a login) is renewed once."""
        params = {k: v for k, v in query.items() if v is not None}
        path = f"{self.base}{route}" + (f"?{urlencode(params, quote_via=quote)}" if params else "")
        renewed = self._token is None
        if self._token is None:
            await self.login()
        while True:
            try:
                return await self._http.request(
                    "GET",
                    path,
                    operation=operation,
                    decode=decode_json,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            except AuthFailed:
                if renewed:
                    raise
                renewed = True
                await self.login()

    def _listing(self, reply: Reply[Any], key: str, make: Callable[[Any], T]) -> Listing[T]:
        rows = reply.data.get(key) if isinstance(reply.data, dict) else None
        if not isinstance(rows, list):
            raise ProtocolViolation(f"{key}: no {key} list in the reply", exchange_id=reply.exchange_id)
        try:
            return Listing(tuple(make(row) for row in rows), reply.exchange_id)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ProtocolViolation(
                f"{key}: a row of unexpected shape", exchange_id=reply.exchange_id
            ) from None

    # -- views --------------------------------------------------------------------------------

    async def alerts(self, since: datetime | None = None, type: str | None = None) -> Listing[PlatformAlert]:
        """Alerts raised at or after `since` (all when None), of one type when given, oldest first."""
        reply = await self._get("/alerts", "alerts", since=since.isoformat() if since else None, type=type)
        return merge_feed(self._listing(reply, "alerts", alert_of), self.feed, since, type)

    async def subscribe(self, callback_url: str) -> str:
        """Ask the platform to POST every new alert to `callback_url`; the exchange id."""
        if self._token is None:
            await self.login()
        reply = await self._http.request(
            "POST", f"{self.base}/subscriptions", operation="subscribe alerts", decode=decode_json,
            json_body={"url": callback_url}, headers={"Authorization": f"Bearer {self._token}"},
        )  # fmt: skip
        return reply.exchange_id

    async def unsubscribe(self) -> str:
        if self._token is None:
            await self.login()
        reply = await self._http.request(
            "DELETE", f"{self.base}/subscriptions", operation="unsubscribe alerts", decode=decode_json,
            headers={"Authorization": f"Bearer {self._token}"},
        )  # fmt: skip
        return reply.exchange_id

    async def events(self, since: datetime | None = None, limit: int = 500) -> Listing[PlatformEvent]:
        """The platform's event log at or after `since`, oldest first, at most `limit` entries."""
        reply = await self._get("/events", "events", since=since.isoformat() if since else None, limit=limit)
        return self._listing(reply, "events", _event)

    async def devices(self) -> Listing[PlatformDevice]:
        return self._listing(await self._get("/devices", "devices"), "devices", _device)

    async def time(self) -> tuple[datetime, str]:
        """The platform clock (UTC) and the exchange."""
        reply = await self._get("/time", "time")
        moment = _time(reply.data.get("time")) if isinstance(reply.data, dict) else None
        if moment is None:
            raise ProtocolViolation("time: no readable time", exchange_id=reply.exchange_id)
        return moment, reply.exchange_id

    async def residents(self) -> Listing[Mapping[str, Any]]:
        """Resident records as the platform serves them (personal data: masked in the exchange)."""
        return self._listing(await self._get("/residents", "residents"), "residents", _mapping)

    async def status_of(self, method: str, route: str, *, authenticated: bool) -> RouteAnswer:
        """Only the HTTP status a route answers, with or without our token (access-control checks)."""
        headers = None
        if authenticated:
            if self._token is None:
                await self.login()
            headers = {"Authorization": f"Bearer {self._token}"}
        who = "with token" if authenticated else "without token"
        reply = await self._http.request(
            method,
            f"{self.base}{route}",
            operation=f"{method} {route} {who}",
            decode=decode_bytes,
            headers=headers,
            expect=range(100, 600),
        )
        return RouteAnswer(reply.status, reply.exchange_id)


def _mapping(row: Any) -> Mapping[str, Any]:
    if not isinstance(row, dict):
        raise TypeError("not an object")
    return row


def alert_of(row: Any) -> PlatformAlert:
    """One alert of the zhian API's shape (routes and callbacks alike)."""
    raised = _time(row["raised_at"])
    if raised is None:
        raise ValueError("raised_at")
    return PlatformAlert(
        id=str(row["id"]),
        type=str(row["type"]),
        device=str(row["device"]),
        area=row.get("area"),
        severity=str(row.get("severity", "")),
        raised_at=raised,
        source_time=_time(row.get("source_time")),
        acknowledged=bool(row.get("acknowledged", False)),
        data=_mapping(row.get("data") or {}),
    )


def _event(row: Any) -> PlatformEvent:
    at = _time(row["at"])
    if at is None:
        raise ValueError("at")
    fields = {k: v for k, v in row.items() if k not in ("seq", "at", "kind")}
    return PlatformEvent(int(row["seq"]), at, str(row["kind"]), fields)


def _device(row: Any) -> PlatformDevice:
    return PlatformDevice(
        id=str(row["id"]),
        kind=str(row.get("kind", "")),
        protocol=str(row.get("protocol", "")),
        area=row.get("area"),
        status=str(row["status"]),
        last_seen=_time(row.get("last_seen")),
        via=row.get("via"),
    )

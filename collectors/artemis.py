"""Hikvision's platform OpenAPI behind its artemis gateway (docs/platform-artemis.md), as typed data.

Every request is a JSON POST signed with the application's AppKey (the credential's username) and
AppSecret (its password): X-Ca-Signature = Base64(HmacSHA256(AppSecret, string-to-sign)), where
the string-to-sign is the method, then those of Accept, Content-MD5, Content-Type and Date that
the request carries, one a line; then every signed X-Ca-* header as `name:value` (lower-case
names, sorted), one a line; then the path (with its query, parameters sorted). X-Ca-Signature-
Headers lists the signed headers. The AppSecret never leaves this process: only the signature
travels, and the session redacts the secret from every exchange anyway.

The gateway's answers are `{"code": "0", "msg": "success", "data": ...}`; another code is the
platform's refusal. The platform's own ids (indexCode) are mapped to inventory ids through
`names`; what the map does not know keeps its platform id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from collectors.connection import Connection
from collectors.errors import DeviceRejected, ProtocolViolation
from collectors.http import DecodeError, HttpSession, Refusal, Reply, decode_bytes
from collectors.platform import (
    AlertFeed,
    Listing,
    PlatformAlert,
    PlatformDevice,
    RouteAnswer,
    mask_personal,
    merge_feed,
)
from collectors.platform_profile import PlatformProfile

ACCEPT = "application/json"
CONTENT_TYPE = "application/json;charset=UTF-8"
MAX_PAGES = 50  # a listing longer than this many pages is cut (and says so by its length)
SIGNED = ("x-ca-key", "x-ca-nonce", "x-ca-timestamp")


def string_to_sign(method: str, headers: Mapping[str, str], path: str) -> str:
    """The gateway's string-to-sign for a request with these headers (any case) and path."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = [method.upper()]
    lines += [lower[h] for h in ("accept", "content-md5", "content-type", "date") if h in lower]
    names = sorted(n.strip().lower() for n in lower.get("x-ca-signature-headers", "").split(",") if n.strip())
    lines += [f"{n}:{lower.get(n, '').strip()}" for n in names]
    base, _, query = path.partition("?")
    if query:
        pairs = sorted(p.partition("=")[::2] for p in query.split("&"))
        base += "?" + "&".join(f"{k}={v}" if v else k for k, v in pairs)
    return "\n".join(lines) + "\n" + base


def signature(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


def signed_headers(app_key: str, app_secret: str, path: str, body: bytes) -> dict[str, str]:
    headers = {
        "Accept": ACCEPT,
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        "Content-Type": CONTENT_TYPE,
        "X-Ca-Key": app_key,
        "X-Ca-Nonce": str(uuid.uuid4()),
        "X-Ca-Timestamp": str(int(time.time() * 1000)),
        "X-Ca-Signature-Headers": ",".join(SIGNED),
    }
    headers["X-Ca-Signature"] = signature(app_secret, string_to_sign("POST", headers, path))
    return headers


def decode_envelope(body: bytes) -> Any:
    """The `data` of a gateway answer; a code other than "0" is the platform's refusal."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise DecodeError(f"bad JSON: {exc}") from exc
    if not isinstance(doc, dict) or "code" not in doc:
        raise DecodeError("not an artemis answer (no code)")
    if str(doc["code"]) != "0":
        raise Refusal(DeviceRejected, f"code {doc['code']}: {doc.get('msg', '')}", code=str(doc["code"]))
    return doc.get("data")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _stamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and offset, as the API's times are written."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class ArtemisClient:
    """`async with ArtemisClient(conn, profile, names=...) as p:` the same views as PlatformClient."""

    def __init__(
        self,
        conn: Connection,
        profile: PlatformProfile,
        *,
        names: Mapping[str, str] | None = None,
        feed: AlertFeed | None = None,
    ) -> None:
        self.conn = conn
        self.profile = profile
        self.names = dict(names or {})
        self.feed = feed
        self._http = HttpSession(conn, protocol="http", scrub=mask_personal)

    async def __aenter__(self) -> ArtemisClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.__aexit__(*exc)

    async def _post(self, route: str, payload: Mapping[str, Any], operation: str) -> Reply[Any]:
        path = self.profile.route(route)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(self.conn.username or "", self.conn.password or "", path, body)
        return await self._http.request(
            "POST", path, operation=operation, decode=decode_envelope, body=body, headers=headers
        )

    async def _pages(self, route: str, payload: Mapping[str, Any], operation: str) -> tuple[list[Any], str]:
        """Every row of a paged listing (at most MAX_PAGES pages) and the first page's exchange."""
        rows: list[Any] = []
        first = ""
        size = self.profile.page_size
        for page in range(1, MAX_PAGES + 1):
            reply = await self._post(route, {**payload, "pageNo": page, "pageSize": size}, operation)
            first = first or reply.exchange_id
            data = reply.data if isinstance(reply.data, dict) else {}
            batch = data.get("list")
            if not isinstance(batch, list):
                raise ProtocolViolation(f"{operation}: no list in the answer", exchange_id=reply.exchange_id)
            rows += batch
            total = data.get("total")
            if len(batch) < size or (isinstance(total, int) and len(rows) >= total):
                break
        return rows, first

    def _name(self, index_code: Any) -> str:
        return self.names.get(str(index_code), str(index_code))

    # -- views --------------------------------------------------------------------------------

    async def devices(self) -> Listing[PlatformDevice]:
        """Cameras' and encoding devices' online status as the platform last collected it."""
        out: list[PlatformDevice] = []
        first = ""
        for route, kind in (("cameras_online", "camera"), ("encoders_online", "encoder")):
            rows, xid = await self._pages(route, {}, f"{kind} online status")
            first = first or xid
            try:
                out += [self._device(row, kind) for row in rows]
            except (KeyError, TypeError, ValueError):
                raise ProtocolViolation(
                    f"{kind} online status: a row of unexpected shape", exchange_id=xid
                ) from None
        return Listing(tuple(out), first)

    def _device(self, row: Any, kind: str) -> PlatformDevice:
        online = str(row["online"])
        return PlatformDevice(
            id=self._name(row["indexCode"]),
            kind=str(row.get("deviceType") or kind),
            protocol="artemis",
            area=row.get("regionIndexCode"),
            status={"1": "online", "0": "offline"}.get(online, "unknown"),
            last_seen=_time(row.get("collectTime")),
            via="platform",
        )

    async def alerts(self, since: datetime | None = None, type: str | None = None) -> Listing[PlatformAlert]:
        """The platform's event records (联动事件) at or after `since`, as zhian's alert types."""
        start = since or datetime.now(UTC) - timedelta(days=1)
        payload = {"startTime": _stamp(start), "endTime": _stamp(datetime.now(UTC) + timedelta(days=1))}
        rows, xid = await self._pages("events", payload, "event records")
        alerts: list[PlatformAlert] = []
        try:
            for row in rows:
                alerts += self._alerts_of(row)
        except (KeyError, TypeError, ValueError):
            raise ProtocolViolation("event records: a row of unexpected shape", exchange_id=xid) from None
        kept = [
            a for a in alerts if (type is None or a.type == type) and (since is None or a.raised_at >= since)
        ]
        kept.sort(key=lambda a: a.raised_at)
        return merge_feed(Listing(tuple(kept), xid), self.feed, since, type)

    def _alerts_of(self, row: Any) -> list[PlatformAlert]:
        out = []
        for src in row.get("eventLogSrcList") or []:
            kind = self.profile.event_types.get(int(src["eventType"]))
            raised = _time(src.get("startTime")) or _time(row.get("startTime"))
            if kind is None or raised is None:
                continue
            out.append(
                PlatformAlert(
                    id=str(src.get("eventLogId") or row["id"]),
                    type=kind,
                    device=self._name(src["resIndexCode"]),
                    area=src.get("regionName"),
                    severity={1: "minor", 2: "major", 3: "critical"}.get(row.get("eventLevel"), ""),
                    raised_at=raised,
                    source_time=None,
                    acknowledged=row.get("handleStatus") == 1,
                    data={"eventType": int(src["eventType"]), "ruleName": row.get("ruleName")},
                )
            )
        return out

    async def time(self) -> tuple[datetime, str]:
        """The gateway's clock, from its Date header (whole seconds): the API has no clock route."""
        reply = await self._post("cameras_online", {"pageNo": 1, "pageSize": 1}, "clock (Date header)")
        try:
            return parsedate_to_datetime(reply.headers["date"]).astimezone(UTC), reply.exchange_id
        except (KeyError, TypeError, ValueError):
            raise ProtocolViolation("no readable Date header", exchange_id=reply.exchange_id) from None

    async def subscribe(self, callback_url: str) -> str:
        """Ask the platform to POST every mapped event type to `callback_url`; the exchange id."""
        payload = {"eventTypes": self.profile.codes_for(None), "eventDest": callback_url}
        return (await self._post("subscribe", payload, "subscribe events")).exchange_id

    async def unsubscribe(self) -> str:
        payload = {"eventTypes": self.profile.codes_for(None)}
        return (await self._post("unsubscribe", payload, "unsubscribe events")).exchange_id

    async def status_of(self, method: str, route: str, *, authenticated: bool) -> RouteAnswer:
        """The HTTP status a route answers signed or unsigned (access-control checks)."""
        path = self.profile.base + route
        body = b"{}"
        headers = (
            signed_headers(self.conn.username or "", self.conn.password or "", path, body)
            if authenticated
            else {"Content-Type": CONTENT_TYPE}
        )
        who = "signed" if authenticated else "unsigned"
        reply = await self._http.request(
            method, path, operation=f"{method} {route} {who}", decode=decode_bytes, body=body,
            headers=headers, expect=range(100, 600),
        )  # fmt: skip
        return RouteAnswer(reply.status, reply.exchange_id)

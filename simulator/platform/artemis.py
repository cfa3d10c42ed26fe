"""The platform as Hikvision's OpenAPI gateway (artemis) shows it: a twin built from the public
documentation (docs/platform-artemis.md), sharing no code with zhian's client.

Every route is a JSON POST under /artemis. A request must carry X-Ca-Key (an account of the
platform: the AppKey), X-Ca-Signature-Headers and X-Ca-Signature, the Base64 HmacSHA256 of the
string-to-sign under the AppSecret (the account's password); Content-MD5, when sent, must match
the body, and X-Ca-Timestamp, when sent, must be within 15 minutes. A refused signature is 401
with X-Ca-Error-Message and counts as a failed login in the platform's guard (lockout: 429).
Answers are `{"code": "0", "msg": "success", "data": ...}`.

Devices are known by their indexCode, a 32-hex id the platform made (`index_code`), not by the
site's names; the platform's event types are numbers (EVENT_CODES).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from simulator.platform.callbacks import Callbacks
from simulator.platform.middleware import Handler, latency
from simulator.platform.state import CHINA, Alert, PlatformState, iso

BASE = "/artemis"
TIMESTAMP_WINDOW_S = 900
MISSING = "Missing Signature"
# zhian's alert type -> (eventType, 事件类型名称), as this twin's platform is configured
EVENT_CODES: dict[str, tuple[int, str]] = {
    "video_loss": (131329, "视频丢失"),
    "intrusion": (131588, "区域入侵"),
    "door_forced": (198657, "门被外力开启"),
    "door_held": (198913, "门打开超时"),
    "fire_alarm": (192513, "火警"),
    "smoke_alarm": (192514, "烟感报警"),
    "gas_alarm": (192515, "可燃气体报警"),
    "emergency_button": (192516, "紧急按钮"),
    "charger_overload": (192517, "充电桩过载"),
    "water_level_low": (192518, "消防水箱液位低"),
    "pipe_pressure_low": (192519, "消防管网压力低"),
    "device_offline": (889196545, "设备离线"),
    "device_online": (889196546, "设备上线"),
}
LEVEL = {"critical": 3, "major": 2, "minor": 1, "info": 1}


def index_code(device_id: str) -> str:
    """The platform's own id for a device (stable for a device id)."""
    return hashlib.md5(f"isc:{device_id}".encode()).hexdigest()


def _sts(request: web.Request, body: bytes) -> str:
    """The string-to-sign the gateway computes for this request."""
    h = request.headers
    parts = [request.method]
    for name in ("Accept", "Content-MD5", "Content-Type", "Date"):
        if name in h:
            parts.append(h[name])
    signed = sorted({n.strip().lower() for n in h.get("X-Ca-Signature-Headers", "").split(",") if n.strip()})
    for name in signed:
        parts.append(f"{name}:{h.get(name, '').strip()}")
    url = request.path
    if request.query_string:
        url += "?" + "&".join(sorted(request.query_string.split("&")))
    return "\n".join(parts) + "\n" + url


class ArtemisApi:
    def __init__(self, state: PlatformState) -> None:
        self.state = state
        self.guard = state.ctx.guard
        self.callbacks = Callbacks(state, self._notification)
        community = state.ctx.community
        self._specs = {d.id: d for d in community.devices}
        self._by_code = {index_code(d.id): d.id for d in community.devices}
        self._areas = {a.id: a.name_zh or a.id for a in community.areas}
        self._subscribed: dict[str, list[int]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[latency(self.state), self._sign_mw])
        routes = {
            "/api/nms/v1/online/camera/get": self._cameras,
            "/api/nms/v1/online/encode_device/get": self._encoders,
            "/api/els/v1/events/search": self._events,
            "/api/eventService/v1/eventSubscriptionByEventTypes": self._subscribe,
            "/api/eventService/v1/eventUnSubscriptionByEventTypes": self._unsubscribe,
            "/api/eventService/v1/eventSubscriptionView": self._view,
        }
        app.add_routes([web.post(BASE + path, handler) for path, handler in routes.items()])
        return app

    @web.middleware
    async def _sign_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote or "?"
        if self.guard.locked(peer):
            wait = max(1, round(self.guard.unlock_in(peer)))
            return web.json_response(
                {"code": "429", "msg": "locked"}, status=429, headers={"Retry-After": str(wait)}
            )
        body = await request.read()
        problem = self._check(request, body)
        if problem is not None:
            if problem != MISSING:  # a request without a signature is no login attempt
                self.guard.record(peer, False)
                self.state.record("login_failed", user=request.headers.get("X-Ca-Key", ""), peer=peer)
            return web.json_response(
                {"code": "401", "msg": problem}, status=401, headers={"X-Ca-Error-Message": problem}
            )
        self.guard.record(peer, True)
        return await handler(request)

    def _check(self, request: web.Request, body: bytes) -> str | None:
        h = request.headers
        key, given = h.get("X-Ca-Key"), h.get("X-Ca-Signature")
        if not key or not given or "X-Ca-Signature-Headers" not in h:
            return MISSING
        secret = self.guard.password(key)
        if secret is None:
            return "Invalid AppKey"
        if "Content-MD5" in h and h["Content-MD5"] != base64.b64encode(hashlib.md5(body).digest()).decode():
            return "Invalid Content-MD5"
        stamp = h.get("X-Ca-Timestamp")
        if stamp is not None and (
            not stamp.isdigit() or abs(int(stamp) / 1000 - time.time()) > TIMESTAMP_WINDOW_S
        ):
            return "Invalid Timestamp"
        expected = base64.b64encode(
            hmac.new(secret.encode(), _sts(request, body).encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected.decode(), given):
            return "Invalid Signature"
        return None

    # -- routes ------------------------------------------------------------------------------

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            doc = json.loads(await request.read() or b"{}")
        except ValueError:
            raise web.HTTPBadRequest(
                text='{"code":"400","msg":"bad json"}', content_type="application/json"
            ) from None
        return doc if isinstance(doc, dict) else {}

    async def _cameras(self, request: web.Request) -> web.Response:
        return _page(await self._json(request), self._online_rows("camera"))

    async def _encoders(self, request: web.Request) -> web.Response:
        return _page(await self._json(request), self._online_rows("nvr"))

    def _online_rows(self, kind: str) -> list[dict[str, Any]]:
        rows = []
        for status in self.state.devices.values():
            if status.kind != kind:
                continue
            spec = self._specs[status.id]
            rows.append(
                {
                    "indexCode": index_code(status.id),
                    "cn": status.id,
                    "deviceType": "IPC" if kind == "camera" else "NVR",
                    "deviceIndexCode": index_code(status.id),
                    "regionIndexCode": spec.area,
                    "manufacturer": "hikvision",
                    "online": {"online": 1, "offline": 0}.get(status.status, 0),
                    "collectTime": iso(status.last_seen or self.state.now()),
                }
            )
        return rows

    async def _events(self, request: web.Request) -> web.Response:
        query = await self._json(request)
        try:
            start = _when(query.get("startTime"))
            end = _when(query.get("endTime"))
        except ValueError:
            return web.json_response({"code": "400", "msg": "bad time"}, status=400)
        wanted = query.get("eventType")
        rows = [
            self._event_row(a)
            for a in self.state.alerts
            if a.type in EVENT_CODES
            and (start is None or a.raised_at >= start)
            and (end is None or a.raised_at <= end)
            and (not wanted or str(EVENT_CODES[a.type][0]) == str(wanted))
        ]
        return _page(query, rows)

    def _event_row(self, alert: Alert) -> dict[str, Any]:
        code, name = EVENT_CODES[alert.type]
        spec = self._specs.get(alert.device)
        stamp = iso(alert.raised_at)
        return {
            "id": alert.id,
            "eventRuleId": f"rule-{code}",
            "ruleName": name,
            "startTime": stamp,
            "endTime": stamp,
            "eventLevel": LEVEL.get(alert.severity, 2),
            "eventTypeName": name,
            "handleStatus": 1 if alert.acknowledged else 0,
            "remark": "",
            "eventLogSrcList": [
                {
                    "id": "1",
                    "eventLogId": alert.id,
                    "eventType": str(code),
                    "eventTypeName": name,
                    "resIndexCode": index_code(alert.device),
                    "resType": spec.kind if spec else "device",
                    "resName": alert.device,
                    "regionIndexCode": alert.area or "",
                    "regionName": self._areas.get(alert.area or "", ""),
                    "startTime": stamp,
                    "data": json.dumps(alert.data, ensure_ascii=False),
                }
            ],
        }

    async def _subscribe(self, request: web.Request) -> web.Response:
        query = await self._json(request)
        dest, types = query.get("eventDest"), query.get("eventTypes")
        if (
            not isinstance(dest, str)
            or not dest
            or len(dest) > 1024
            or not isinstance(types, list)
            or not types
        ):
            return web.json_response(
                {"code": "400", "msg": "eventDest and eventTypes are required"}, status=400
            )
        codes = sorted({int(t) for t in types} | set(self._subscribed.get(dest, [])))
        self.callbacks.subscribe(dest, _wants(codes))
        self._subscribed[dest] = codes
        return _ok(None)

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        types = (await self._json(request)).get("eventTypes")
        if not isinstance(types, list) or not types:
            return web.json_response({"code": "400", "msg": "eventTypes are required"}, status=400)
        gone = {int(t) for t in types}
        for dest, codes in list(self._subscribed.items()):
            left = [c for c in codes if c not in gone]
            if left:
                self._subscribed[dest] = left
                self.callbacks.subscribe(dest, _wants(left))
            else:
                del self._subscribed[dest]
                self.callbacks.unsubscribe(dest)
        return _ok(None)

    async def _view(self, _request: web.Request) -> web.Response:
        detail = [{"eventTypes": types, "eventDest": dest} for dest, types in self._subscribed.items()]
        return _ok({"detail": detail})

    def _notification(self, alert: Alert) -> dict[str, Any]:
        code, _ = EVENT_CODES[alert.type]
        spec = self._specs.get(alert.device)
        return {
            "method": "OnEventNotify",
            "params": {
                "ability": "event_zhian_sim",
                "sendTime": iso(self.state.now()),
                "events": [
                    {
                        "eventId": alert.id,
                        "eventType": code,
                        "happenTime": iso(alert.raised_at),
                        "srcIndex": index_code(alert.device),
                        "srcName": alert.device,
                        "srcType": spec.kind if spec else "device",
                        "status": 0,
                        "timeout": 0,
                        "data": alert.data,
                    }
                ],
            },
        }


def _wants(codes: list[int]) -> Callable[[Alert], bool]:
    return lambda alert: alert.type in EVENT_CODES and EVENT_CODES[alert.type][0] in codes


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def _ok(data: Any) -> web.Response:
    return web.json_response({"code": "0", "msg": "success", "data": data}, dumps=_dumps)


def _page(query: dict[str, Any], rows: list[dict[str, Any]]) -> web.Response:
    try:
        page, size = max(1, int(query.get("pageNo", 1))), min(1000, max(1, int(query.get("pageSize", 20))))
    except (TypeError, ValueError):
        return web.json_response({"code": "400", "msg": "bad page"}, status=400)
    chunk = rows[(page - 1) * size : page * size]
    return _ok({"total": len(rows), "pageNo": page, "pageSize": size, "list": chunk})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)

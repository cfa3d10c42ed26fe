"""The platform's HTTP API (docs/platform-api.md): bearer-token login, alerts, event log, devices.

Operators authenticate (C5.1.4): POST /api/v1/login with a JSON user name and password returns a
bearer token, the usual shape of such platforms' open APIs; every other route but /api/v1/health
needs `Authorization: Bearer <token>`. Wrong passwords and unknown tokens count as failures in
ctx.guard; a locked peer gets 429 with Retry-After, even with the right password.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from simulator.platform.callbacks import Callbacks
from simulator.platform.linkage import LinkageEngine
from simulator.platform.middleware import Handler, latency
from simulator.platform.state import CHINA, PlatformState, iso

TOKEN_TTL_S = 1800
PUBLIC = {"/api/v1/login", "/api/v1/health"}
USER_KEY = web.RequestKey("platform_user", str)


def _parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


def residents(seed: int, buildings: list[str]) -> list[dict[str, Any]]:
    """Resident records as the platform shows them: ID numbers, phones and names already masked."""
    rng = random.Random(seed)
    surnames = "张王李赵刘陈杨黄周吴"
    regions = ["110101", "110105", "310115", "440305", "330106", "510107"]
    mobiles = ["138", "139", "150", "186", "177"]
    rows = []
    for i in range(1, 25):
        given = rng.choice(["*", "*明", "*华", "*婷", "*强"])
        last4 = f"{rng.randrange(0, 1000):03d}{rng.choice('0123456789X')}"
        rows.append(
            {
                "id": f"R{i:04d}",
                "name": rng.choice(surnames) + given,
                "building": rng.choice(buildings or ["1号楼"]),
                "unit": rng.randrange(1, 4),
                "room": f"{rng.randrange(1, 19)}{rng.randrange(1, 5):02d}",
                "id_number": f"{rng.choice(regions)}********{last4}",
                "mobile": f"{rng.choice(mobiles)}****{rng.randrange(0, 10000):04d}",
            }
        )
    return rows


class PlatformApi:
    def __init__(self, state: PlatformState, linkage: LinkageEngine) -> None:
        self.state = state
        self.linkage = linkage
        self.guard = state.ctx.guard
        self._tokens: dict[str, tuple[str, float]] = {}
        self.callbacks = Callbacks(state, lambda alert: {"alerts": [alert.to_json()]})
        community = state.ctx.community
        self._residents = residents(community.seed, [b.name_zh for b in community.buildings])

    def app(self) -> web.Application:
        app = web.Application(middlewares=[latency(self.state), self._auth_mw])
        app.add_routes(
            [
                web.post("/api/v1/login", self._login),
                web.get("/api/v1/health", self._health),
                web.get("/api/v1/alerts", self._alerts),
                web.post("/api/v1/alerts/{id}/ack", self._ack),
                web.get("/api/v1/events", self._events),
                web.get("/api/v1/devices", self._devices),
                web.get("/api/v1/linkages", self._linkages),
                web.get("/api/v1/time", self._time),
                web.get("/api/v1/residents", self._residents_route),
                web.post("/api/v1/subscriptions", self._subscribe),
                web.delete("/api/v1/subscriptions", self._unsubscribe),
            ]
        )
        return app

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC:
            return await handler(request)
        peer = request.remote or "?"
        if self.guard.locked(peer):
            return self._locked(peer)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("missing_token")
        owner = self._tokens.get(token)
        if owner is None or owner[1] < time.monotonic():
            self._tokens.pop(token, None)
            self.guard.record(peer, False)
            return _unauthorized("invalid_token")
        request[USER_KEY] = owner[0]
        return await handler(request)

    def _locked(self, peer: str) -> web.Response:
        wait = max(1, round(self.guard.unlock_in(peer)))
        return web.json_response(
            {"error": "locked", "message": "too many failed logins", "retry_after_s": wait},
            status=429,
            headers={"Retry-After": str(wait)},
        )

    async def _login(self, request: web.Request) -> web.Response:
        peer = request.remote or "?"
        if self.guard.locked(peer):
            return self._locked(peer)
        try:
            body = await request.json()
            user, password = str(body["username"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad_request"}, status=400)
        expected = self.guard.password(user)
        if expected is None or not secrets.compare_digest(expected, password):
            self.guard.record(peer, False)
            self.state.record("login_failed", user=user, peer=peer)
            if self.guard.locked(peer):
                return self._locked(peer)
            answer: dict[str, Any] = {"error": "invalid_credentials"}
            if self.guard.lockout:
                answer["remaining_attempts"] = self.guard.remaining(peer)
            return web.json_response(answer, status=401)
        self.guard.record(peer, True)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (user, time.monotonic() + TOKEN_TTL_S)
        self.state.record("login", user=user, peer=peer)
        return web.json_response({"token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _alerts(self, request: web.Request) -> web.Response:
        try:
            since = _parse_since(request.query.get("since"))
        except ValueError:
            return web.json_response({"error": "bad_since"}, status=400)
        kind = request.query.get("type")
        rows = [
            a.to_json()
            for a in self.state.alerts
            if (since is None or a.raised_at >= since) and (kind is None or a.type == kind)
        ]
        return web.json_response({"alerts": rows}, dumps=_dumps)

    async def _ack(self, request: web.Request) -> web.Response:
        alert = next((a for a in self.state.alerts if a.id == request.match_info["id"]), None)
        if alert is None:
            return web.json_response({"error": "not_found"}, status=404)
        alert.acknowledged = True
        self.state.record("alert_acknowledged", alert=alert.id, user=request[USER_KEY])
        return web.json_response(alert.to_json(), dumps=_dumps)

    async def _events(self, request: web.Request) -> web.Response:
        try:
            since = _parse_since(request.query.get("since"))
            limit = min(5000, max(1, int(request.query.get("limit", "500"))))
        except ValueError:
            return web.json_response({"error": "bad_query"}, status=400)
        rows = [e for e in self.state.log if since is None or datetime.fromisoformat(e["at"]) >= since]
        return web.json_response({"events": rows[:limit]}, dumps=_dumps)

    async def _devices(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"devices": [d.to_json() for d in self.state.devices.values()]}, dumps=_dumps
        )

    async def _linkages(self, _request: web.Request) -> web.Response:
        return web.json_response({"linkages": self.linkage.rules()}, dumps=_dumps)

    async def _time(self, _request: web.Request) -> web.Response:
        now = self.state.now()
        return web.json_response({"time": iso(now), "timezone": "Asia/Shanghai", "epoch": now.timestamp()})

    async def _residents_route(self, _request: web.Request) -> web.Response:
        return web.json_response({"residents": self._residents}, dumps=_dumps)

    async def _subscribe(self, request: web.Request) -> web.Response:
        try:
            url = (await request.json())["url"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad_request"}, status=400)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 1024:
            return web.json_response({"error": "bad_url"}, status=400)
        self.callbacks.subscribe(url, lambda _alert: True)
        return web.json_response({"subscribed": url})

    async def _unsubscribe(self, _request: web.Request) -> web.Response:
        self.callbacks.unsubscribe()
        return web.json_response({"subscribed": None})


def _unauthorized(error: str) -> web.Response:
    return web.json_response(
        {"error": error}, status=401, headers={"WWW-Authenticate": 'Bearer realm="platform"'}
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)

"""zhian's receiver for alerts the platform pushes (webhook / event subscription callback).

An aiohttp server on the configured listen address takes POSTs on the profile's callback path:
the zhian API's alerts (`{"alerts": [Alert, ...]}` or one Alert) or artemis' event notifications
(`{"method": "OnEventNotify", "params": {"events": [...]}}`). Each POST is one exchange of
evidence (personal data masked), whether it was understood or not; bodies over `max_body` bytes
are refused with 413 and recorded as such. What was understood is kept in memory for the probes
(`received`), at most `keep` alerts. The callback needs no authentication (the platform's
subscription carries none), so the receiver accepts nothing but alerts and answers nothing else.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from collectors.exchange import Exchange, Sink, excerpt, library_version, now
from collectors.platform import PlatformAlert, alert_of, mask_personal
from collectors.platform_profile import PlatformProfile

MAX_BODY = 256 * 1024
KEEP = 10_000


class AlertReceiver:
    """`async with AlertReceiver(host, port, profile=..., device=..., sink=...) as r:` r.url."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        profile: PlatformProfile,
        device: str,
        sink: Sink,
        names: Mapping[str, str] | None = None,
        public_url: str | None = None,
        max_body: int = MAX_BODY,
        keep: int = KEEP,
    ) -> None:
        self.host, self.port = host, port
        self.profile = profile
        self.device = device  # the platform's inventory id, carried into every exchange
        self.sink = sink
        self.names = dict(names or {})
        self.public_url = public_url
        self.max_body = max_body
        self._alerts: deque[PlatformAlert] = deque(maxlen=keep)
        self._runner: web.AppRunner | None = None
        self._library = library_version("aiohttp")

    @property
    def url(self) -> str:
        """Where the platform must POST: the configured public URL, else the listen address."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.profile.callback_path}"

    async def __aenter__(self) -> AlertReceiver:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.profile.callback_path, self._post)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def received(self, since: datetime | None, type: str | None) -> tuple[PlatformAlert, ...]:
        return tuple(
            a
            for a in self._alerts
            if (since is None or a.raised_at >= since) and (type is None or a.type == type)
        )

    async def _post(self, request: web.Request) -> web.Response:
        started, t0 = now(), time.monotonic()
        body = await request.content.read(self.max_body + 1)
        status, error, alerts = 200, None, []
        if len(body) > self.max_body:
            status, error = 413, f"body over {self.max_body} bytes"
        else:
            try:
                alerts = self._parse(json.loads(body))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                status, error = 400, f"not an alert notification: {type(exc).__name__}"
        answer = {"code": "0", "msg": "success"} if status == 200 else {"code": str(status), "msg": error}
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        text = body[: self.max_body].decode("utf-8", "replace")
        exchange = Exchange(
            device=self.device,
            address=f"{request.remote or '?'} -> {self.host}:{self.port}",
            protocol="http",
            operation="alert callback",
            started_at=started,
            duration_s=round(time.monotonic() - t0, 4),
            request=excerpt(mask_personal(f"POST {request.path}\n{headers}\n\n{text}")),
            response=excerpt(f"HTTP {status}\n\n{json.dumps(answer)}"),
            ok=status == 200,
            error=error,
            library=self._library,
            facts={"status": status, "alerts": len(alerts)},
        )
        self.sink(exchange)
        for alert in alerts:
            self._alerts.append(replace(alert, exchange_id=exchange.id))
        return web.json_response(answer, status=status)

    def _parse(self, doc: Any) -> list[PlatformAlert]:
        if self.profile.api == "artemis":
            if doc["method"] != "OnEventNotify":
                raise ValueError("method")
            return [a for e in doc["params"]["events"] if (a := self._event(e)) is not None]
        rows = doc["alerts"] if isinstance(doc, dict) and "alerts" in doc else [doc]
        return [alert_of(row) for row in rows]

    def _event(self, event: Mapping[str, Any]) -> PlatformAlert | None:
        kind = self.profile.event_types.get(int(event["eventType"]))
        raised = datetime.fromisoformat(str(event["happenTime"]).replace("Z", "+00:00"))
        if kind is None or raised.tzinfo is None:
            return None
        source = str(event["srcIndex"])
        return PlatformAlert(
            id=str(event["eventId"]),
            type=kind,
            device=self.names.get(source, source),
            area=None,
            severity="",
            raised_at=raised.astimezone(UTC),
            source_time=None,
            acknowledged=False,
            data={"eventType": int(event["eventType"]), "srcType": event.get("srcType")},
        )

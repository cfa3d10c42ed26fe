"""MqttClient: the operations zhian runs on a site's broker, each one MQTT session of its own.

- `observe(filters, window_s)`: a bounded observation window (collectors.mqtt.window).
- `follow(filters, on_message, on_subscribed)`: the monitor's subscription (collectors.mqtt.follow).
- `try_login(username, password)` and `try_anonymous()` make one connection attempt each and
  report the broker's CONNACK: a refusal is an answer here, not an error. Nothing retries, so a
  broker that locks accounts sees exactly one failed login per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from aiomqtt.exceptions import MqttConnectError

from collectors.exchange import now
from collectors.mqtt import follow, window
from collectors.mqtt.errors import AUTH_REFUSED, code, code_name
from collectors.mqtt.messages import LoginResult, Observation
from collectors.mqtt.session import Session


class MqttClient(Session):
    """`async with MqttClient(conn) as c:` the broker at conn.host:conn.port, TLS when conn.tls is set."""

    async def __aenter__(self) -> MqttClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        """Nothing to close: every operation ends its own session, also when cancelled."""

    async def observe(
        self,
        filters: Sequence[str],
        window_s: float,
        *,
        qos: int = 1,
        whole: Callable[[str], bool] | None = None,
    ) -> Observation:
        """Subscribe to `filters` and tally every message for `window_s` seconds after the SUBACK
        (`whole`: the topics whose payloads are kept whole, up to a megabyte)."""
        return await window.observe(self, filters, window_s, qos, whole)

    async def follow(
        self,
        filters: Sequence[str],
        on_message: Callable[[str, bytes, bool, datetime], None],
        on_subscribed: Callable[[str], None],
        *,
        qos: int = 1,
        on_caught_up: Callable[[], None] | None = None,
    ) -> None:
        """Hand every message on `filters` to `on_message` until cancelled or lost (see follow.follow)."""
        await follow.follow(self, filters, on_message, on_subscribed, qos, on_caught_up)

    async def try_login(self, username: str, password: str) -> LoginResult:
        """One login with these credentials; the broker's refusal is returned, not raised."""
        return await self._login(username, password)

    async def try_anonymous(self) -> LoginResult:
        """One login with neither username nor password."""
        return await self._login(None, None)

    async def _login(self, username: str | None, password: str | None) -> LoginResult:
        secrets = (password,) if password else ()
        operation = f"connect({'anonymous' if username is None else f'username={username}'})"
        request = self.connect_line(username, with_password=password is not None)
        started, t0 = now(), time.monotonic()
        try:
            async with self.session(username, password):
                pass
        except MqttConnectError as exc:
            rc = code(exc.rc)
            if rc in AUTH_REFUSED:
                name = code_name(exc.rc)
                facts = {"accepted": False, "reason_code": rc, "reason": name}
                response = f"CONNACK {rc} {name}"
                ex_id = self.record(
                    operation, request, response, started, t0, ok=True, facts=facts, secrets=secrets
                )
                return LoginResult(False, rc, name, ex_id)
            raise self.failed(exc, operation, request, "", started, t0, secrets)  # noqa: B904
        except BaseException as exc:
            raise self.failed(exc, operation, request, "", started, t0, secrets)  # noqa: B904
        facts = {"accepted": True, "reason_code": 0, "reason": "Success"}
        ex_id = self.record(
            operation, request, "CONNACK 0 Success", started, t0, ok=True, facts=facts, secrets=secrets
        )
        return LoginResult(True, 0, "Success", ex_id)

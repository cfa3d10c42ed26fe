"""Broker authentication: the site's MQTT broker refuses anonymous clients and wrong passwords.

Gateways must authenticate (A2.2.2): a broker that lets anyone in lets anyone publish a fake
"online" or a fake alarm. The probe makes, once per run (shared, whatever asks for it):

1. one login with the inspector's own account (the control: a broker that refuses everyone would
   otherwise look secure, and the wrong-password trial would test an account that does not exist);
2. one anonymous login;
3. one login to the same account with a random wrong password: exactly one failed attempt, never
   a list, so a broker (or an auth plugin) that locks accounts after N failures is not harmed;
4. one anonymous login on the plaintext port (the inventory's plain_port, else 1883) when the
   broker offers TLS: it shows whether plain MQTT is open beside TLS without sending any
   credential in clear.

Weak or default credential trials are a separate, active, opt-in probe.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError, Unreachable
from collectors.mqtt.client import MqttClient
from collectors.mqtt.messages import LoginResult
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, Status, collector_finding
from probes.targets import Target

PROBE = "broker_auth"
MQTT_PLAIN_PORT = 1883


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class PlainListener:
    """What an anonymous CONNECT to the plaintext port found."""

    port: int
    declared: bool  # the inventory names the port (else the standard 1883 was tried)
    login: LoginResult | None  # the broker's CONNACK: a plain MQTT listener is open
    error: CollectorError | None  # closed (Unreachable) or not MQTT


@dataclass(frozen=True)
class AuthTrials:
    account: str | None
    control: LoginResult | None  # None: the inventory gives no account for the broker
    anonymous: LoginResult
    wrong_password: LoginResult | None  # None: no account, or the control was refused
    plain: PlainListener | None  # None: the broker offers no TLS (plain MQTT is its only listener)


async def fetch(ctx: ProbeContext, target: Target) -> AuthTrials:
    conn = ctx.connection(target)
    control = wrong = None
    async with MqttClient(conn) as client:
        if conn.username and conn.password:
            control = await client.try_login(conn.username, conn.password)
        anonymous = await client.try_anonymous()
        if conn.username and control is not None and control.accepted:
            wrong = await client.try_login(conn.username, f"zhian-wrong-{secrets.token_urlsafe(16)}")
    plain = await plain_listener(ctx, target) if target.tls else None
    return AuthTrials(conn.username, control, anonymous, wrong, plain)


async def plain_listener(ctx: ProbeContext, target: Target) -> PlainListener | None:
    declared = target.params.get("plain_port")
    port = declared if isinstance(declared, int) and not isinstance(declared, bool) else MQTT_PLAIN_PORT
    if port == target.port:
        return None
    # No credential ever goes over the plain port: an anonymous CONNECT is enough to see a listener.
    conn = dataclasses.replace(ctx.connection(target), port=port, tls=None, username=None, password=None)
    try:
        async with MqttClient(conn) as client:
            return PlainListener(port, declared is not None, await client.try_anonymous(), None)
    except CollectorError as exc:
        return PlainListener(port, declared is not None, None, exc)


def judge(device: str, tls: bool, trials: AuthTrials, started_at: datetime, finished_at: datetime) -> Finding:
    """Pass when anonymous logins (on every listener) and the wrong password are refused while the
    inspector's own account is accepted."""
    anon, wrong, control, plain = trials.anonymous, trials.wrong_password, trials.control, trials.plain
    plain_login = plain.login if plain is not None else None
    facts: dict[str, Any] = {
        "account": trials.account,
        "control_accepted": control.accepted if control else None,
        "anonymous_accepted": anon.accepted,
        "anonymous_reason_code": anon.reason_code,
        "wrong_password_accepted": wrong.accepted if wrong else None,
        "wrong_password_reason_code": wrong.reason_code if wrong else None,
        "failed_logins_made": sum(not r.accepted for r in (anon, wrong, plain_login) if r is not None),
        "tls_offered": tls,
        "plain_port": plain.port if plain else None,
        "plain_port_declared": plain.declared if plain else None,
        "plain_listener_open": (plain_login is not None) if plain else (not tls),
        "plain_anonymous_accepted": plain_login.accepted if plain_login else None,
    }
    if plain is not None and plain.error is not None and not isinstance(plain.error, Unreachable):
        facts["plain_listener_open"] = None  # something answered, not as MQTT
        facts["plain_error"] = str(plain.error)
    cited = [r.exchange_id for r in (control, anon, wrong, plain_login) if r is not None]
    if plain is not None and plain.error is not None and plain.error.exchange_id:
        cited.append(plain.error.exchange_id)

    def finding(status: Status, reason: str, detail: str) -> Finding:
        return Finding(
            probe=PROBE,
            device=device,
            status=status,
            reason=reason,
            detail=detail,
            facts=facts,
            evidence=tuple(cited),
            started_at=started_at,
            finished_at=finished_at,
        )

    if anon.accepted:
        return finding("fail", "anonymous_allowed", "The broker accepts anonymous clients.")
    if plain is not None and plain_login is not None and plain_login.accepted:
        return finding(
            "fail",
            "anonymous_allowed",
            f"The broker refuses anonymous clients over TLS but accepts them on plain port {plain.port}.",
        )
    if wrong is not None and wrong.accepted:
        return finding(
            "fail",
            "wrong_password_accepted",
            f"The broker accepted account {trials.account!r} with a wrong password.",
        )
    if control is None:
        return finding(
            "not_assessed",
            "no_account",
            "The broker refuses anonymous clients, but the inventory gives no account to try a wrong "
            "password on.",
        )
    if not control.accepted:
        return finding(
            "error",
            "auth_failed",
            f"The broker refused the inspector's own account {trials.account!r} "
            f"([{control.reason_code}] {control.reason}), so its refusals prove nothing.",
        )
    return finding(
        "pass",
        "auth_enforced",
        f"The broker refused an anonymous client ([{anon.reason_code}] {anon.reason}) and a wrong "
        f"password for {trials.account!r}, and accepted the right one.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    try:
        # Once per run whoever asks: a second wrong password could count towards a lockout.
        trials: AuthTrials = await ctx.shared(("mqtt.broker_auth", target.id), lambda: fetch(ctx, target))
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    return judge(target.id, target.tls, trials, started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="MQTT broker refuses anonymous clients and wrong passwords (one attempt each)",
    mode="passive",
    applies_to=("broker",),
    params=Params,
    timeout_s=120.0,  # the per-host gate may be held by an observation window of the same broker
    run=run,
)

"""Default credentials refused (C2.3.2, B2.3.2): a device must not accept a vendor's factory password.

ACTIVE (permission "credentials"): a few logins with well-known factory accounts (admin/12345 on
older Hikvision, admin/admin, admin/888888 on Dahua ...), spaced by `try_interval_s`, and never as
many as the device's lockout threshold: at most `max_tries`, and on ISAPI, whose threshold is
readable, at most one less than it; on the platform, no try once it says one attempt is left.
The inventory's own account is tried first: if it is refused, a refused default proves nothing.
After the tries the own account logs in again, which clears the device's failure count, so the
site's lockout state is left as it was found. The first accepted default stops the probe.

Evidence never shows a password: exchanges are redacted by the collectors, and facts name only
the user whose default password was accepted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.login_common import Attempt, Login, cannot_try
from probes.targets import Target

PROBE = "weak_credentials"
TEST = "credentials"
DEFAULTS: tuple[tuple[str, str], ...] = (
    ("admin", "12345"),
    ("admin", "admin"),
    ("admin", "888888"),
    ("admin", "123456"),
    ("admin", "admin123"),
)


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: tuple[tuple[str, str], ...] = Field(default=DEFAULTS, min_length=1, max_length=5)
    max_tries: int = Field(default=3, ge=1, le=5)
    try_interval_s: float = Field(default=1.0, ge=0)


def safe_tries(max_tries: int, candidates: int, threshold: int | None) -> int:
    """How many defaults may be tried: never reaching a known lockout threshold."""
    limit = min(max_tries, candidates)
    return limit if threshold is None else max(0, min(limit, threshold - 1))


def judge(
    device: str,
    accepted_user: str | None,
    tried: list[str],
    limit: int,
    threshold: int | None,
    stopped: str | None,
    evidence: tuple[str, ...],
    started: datetime,
    finished: datetime,
) -> Finding:
    """Fail on an accepted default; pass when every default tried was refused."""
    facts: dict[str, Any] = {"tried_users": tried, "tries": len(tried), "limit": limit}
    if threshold is not None:
        facts["lockout_threshold"] = threshold
    if stopped is not None:
        facts["stopped"] = stopped
    if accepted_user is not None:
        facts["accepted_user"] = accepted_user
        detail = f"A default password was accepted for user {accepted_user}."
        return Finding(
            PROBE,
            device,
            "fail",
            "default_credentials_accepted",
            detail,
            facts,
            evidence,
            None,
            started,
            finished,
        )
    if not tried:
        detail = (
            "The device had locked this address out, so no default could be tried."
            if stopped == "device_locked"
            else "No default could be tried without risking the device's lockout."
        )
        return Finding(
            PROBE, device, "not_assessed", "no_safe_tries", detail, facts, evidence, None, started, finished
        )
    detail = f"The device refused all {len(tried)} default credentials tried."
    return Finding(
        PROBE, device, "pass", "defaults_refused", detail, facts, evidence, None, started, finished
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    refused = cannot_try(ctx, target, PROBE, TEST, "Trying logins")
    if refused is not None:
        return refused
    conn = ctx.connection(target)
    login = Login(target, conn)
    evidence: list[str] = []

    def cite(attempt: Attempt) -> Attempt:
        if attempt.exchange_id:
            evidence.append(attempt.exchange_id)
        return attempt

    try:
        if (xid := await login.prepare()) is not None:
            evidence.append(xid)
        threshold = None
        if target.protocol == "isapi":
            async with IsapiClient(conn) as isapi:
                lock = await isapi.login_lock()
            evidence.append(lock.exchange_id)
            threshold = lock.max_failures if lock.enabled else None
        if not cite(await login.own()).accepted:
            return Finding(
                PROBE, target.id, "error", "auth_failed",
                "The inventory's own account was refused, so a refused default would prove nothing.",
                evidence=tuple(evidence), started_at=started, finished_at=ctx.clock(),
            )  # fmt: skip
        limit = safe_tries(params.max_tries, len(params.candidates), threshold)
        tried: list[str] = []
        accepted_user = None
        stopped = None
        for username, password in params.candidates[:limit]:
            await asyncio.sleep(params.try_interval_s)
            attempt = cite(await login.attempt(username, password))
            if attempt.locked:  # refused for the lock, not for the password: not a tried default
                stopped = "device_locked"
                break
            tried.append(username)
            if attempt.accepted:
                accepted_user = username
                break
            if attempt.remaining is not None and attempt.remaining <= 1:
                stopped = "lockout_near"  # one more failure would lock the address
                break
        if accepted_user is None and tried:
            await asyncio.sleep(params.try_interval_s)
            cite(await login.own())  # clears the failure count the tries left
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=tuple(evidence)
        )
    return judge(
        target.id, accepted_user, tried, limit, threshold, stopped, tuple(evidence), started, ctx.clock()
    )


SPEC = ProbeSpec(
    id=PROBE,
    title="Devices refuse vendor default credentials (a few spaced tries, below the lockout threshold)",
    mode="active",
    applies_to=("camera", "nvr", "door", "platform"),
    params=Params,
    timeout_s=60.0,
    run=run,
    active_test=TEST,
)

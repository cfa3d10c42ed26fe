"""Failed-login handling (C2.3.3): after repeated failures a device locks the caller out or slows down.

ACTIVE (permission "lockout"). The trade-off: a live test that works also locks zhian's own
address out of the device for the device's lock time (typically 60 s or more): nothing can
shorten that, and every later call of the run to that device is refused until it passes. So:

* ISAPI devices expose the policy (GET /ISAPI/Security/illegalLoginLock): it is read, not tried.
  Pass when enabled with a threshold of at most `max_failures_allowed`.
* ONVIF devices and the platform expose no such setting: `attempts` failed logins are made with a
  user name that exists nowhere (`probe_username`), so no real account is locked, then the
  inventory's own account logs in. Locked out (the platform's 429, or the correct login refused
  right after the failures) or slowed down (a failure answered `backoff_s` later than the first)
  passes; the correct login still accepted after all failures fails. The own account is tried
  first too: if it is refused already, a refusal afterwards proves nothing.

Run this probe last on a device (the orchestration's job): after a pass the device refuses
zhian's address for its lock time.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collectors.errors import CollectorError
from collectors.isapi import IsapiClient, LoginLock
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.login_common import Attempt, Login, cannot_try
from probes.targets import Target

PROBE = "login_lockout"
TEST = "lockout"


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=6, ge=2, le=20)  # more than the usual threshold of 5
    probe_username: str = Field(default="zhian-lockout-probe", min_length=1)
    max_failures_allowed: int = Field(default=5, ge=1)  # a configured threshold above this fails
    try_interval_s: float = Field(default=0.2, ge=0)
    backoff_s: float = Field(default=2.0, gt=0)  # a failure this much slower than the first is back-off


def judge_settings(
    device: str, lock: LoginLock, allowed: int, started: datetime, finished: datetime
) -> Finding:
    """ISAPI: the illegal-login lock must be on, locking after at most `allowed` failures."""
    facts: dict[str, Any] = {
        "source": "settings",
        "enabled": lock.enabled,
        "max_failures": lock.max_failures,
        "lock_s": lock.lock_s,
        "max_failures_allowed": allowed,
    }
    evidence = (lock.exchange_id,)
    if not lock.enabled:
        detail = "The device's illegal-login lock is disabled: failed logins are never locked out."
        return Finding(PROBE, device, "fail", "no_lockout", detail, facts, evidence, None, started, finished)
    if lock.max_failures is None or lock.max_failures > allowed:
        detail = (
            f"The device locks only after {lock.max_failures} failed logins; at most {allowed} are allowed."
        )
        return Finding(
            PROBE, device, "fail", "lockout_lenient", detail, facts, evidence, None, started, finished
        )
    detail = f"The device locks a caller out after {lock.max_failures} failed logins for {lock.lock_s} s."
    return Finding(
        PROBE, device, "pass", "lockout_configured", detail, facts, evidence, None, started, finished
    )


def judge_live(
    device: str,
    failures: Sequence[Attempt],
    after: Attempt | None,
    backoff_s: float,
    evidence: tuple[str, ...],
    started: datetime,
    finished: datetime,
) -> Finding:
    """Live: locked (signalled, or the correct login refused after the failures), slowed, or neither.

    `failures` are the tries with the non-existent user; `after` the own login that followed
    (None when the device signalled the lock during the failures)."""
    durations = [round(a.duration_s, 3) for a in failures]
    facts: dict[str, Any] = {"source": "live", "failed_logins": len(failures), "durations_s": durations}
    if any(a.accepted for a in failures):
        detail = "The device accepted a login for a user that does not exist."
        return Finding(
            PROBE, device, "fail", "any_login_accepted", detail, facts, evidence, None, started, finished
        )
    signalled = next((i for i, a in enumerate(failures, start=1) if a.locked), None)
    if signalled is not None or (after is not None and not after.accepted):
        lock = failures[signalled - 1] if signalled is not None else after
        facts |= {"locked_after": signalled, "retry_after_s": lock.retry_after_s if lock else None}
        detail = (
            f"The device locked this address out after {signalled} failed logins."
            if signalled is not None
            else f"After {len(failures)} failed logins the device refused even the correct login."
        )
        return Finding(
            PROBE, device, "pass", "lockout_enforced", detail, facts, evidence, None, started, finished
        )
    slowest = max(durations[1:], default=0.0)
    if durations and slowest - durations[0] >= backoff_s:
        facts["slowdown_s"] = round(slowest - durations[0], 3)
        detail = f"The device slowed its answers by {facts['slowdown_s']} s after repeated failed logins."
        return Finding(
            PROBE, device, "pass", "backoff_observed", detail, facts, evidence, None, started, finished
        )
    detail = (
        f"{len(failures)} failed logins in a row were neither locked out nor slowed down: the correct "
        "login was still accepted right after."
    )
    return Finding(PROBE, device, "fail", "no_lockout", detail, facts, evidence, None, started, finished)


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    refused = cannot_try(ctx, target, PROBE, TEST, "Failed-login handling")
    if refused is not None:
        return refused
    conn = ctx.connection(target)
    evidence: list[str] = []
    try:
        if target.protocol == "isapi":
            async with IsapiClient(conn) as isapi:
                lock = await isapi.login_lock()
            return judge_settings(target.id, lock, params.max_failures_allowed, started, ctx.clock())
        login = Login(target, conn)
        if (xid := await login.prepare()) is not None:
            evidence.append(xid)
        baseline = await login.own()
        evidence += [baseline.exchange_id] if baseline.exchange_id else []
        if not baseline.accepted:
            return Finding(
                PROBE, target.id, "error", "auth_failed",
                "The inventory's own account was refused before the test, so a refusal after it would "
                "prove nothing.", evidence=tuple(evidence), started_at=started, finished_at=ctx.clock(),
            )  # fmt: skip
        wrong = secrets.token_urlsafe(12)
        failures: list[Attempt] = []
        for _ in range(params.attempts):
            await asyncio.sleep(params.try_interval_s)
            attempt = await login.attempt(params.probe_username, wrong)
            failures.append(attempt)
            evidence += [attempt.exchange_id] if attempt.exchange_id else []
            if attempt.locked or attempt.accepted:
                break
        after = None
        if not any(a.locked or a.accepted for a in failures):
            await asyncio.sleep(params.try_interval_s)
            after = await login.own()
            evidence += [after.exchange_id] if after.exchange_id else []
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=tuple(evidence)
        )
    return judge_live(target.id, failures, after, params.backoff_s, tuple(evidence), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="Devices lock out or slow down a caller after repeated failed logins",
    mode="active",
    applies_to=("camera", "nvr", "door", "platform"),
    params=Params,
    timeout_s=90.0,
    run=run,
    active_test=TEST,
)

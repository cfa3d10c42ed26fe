"""What the credential probes share: one login attempt on a device, whatever its protocol.

A try is exactly one authenticated operation, so that the device counts exactly one failure:
ONVIF GetDeviceInformation with a UsernameToken (never the library's update_xaddrs, which logs in
twice after a refusal), ISAPI deviceInfo with Digest, and the platform's login route.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors.connection import Connection
from collectors.errors import AuthFailed
from collectors.isapi import IsapiClient
from collectors.onvif_auth import OnvifAuthClient
from collectors.platform import PlatformClient
from probes.base import ProbeContext
from probes.finding import Finding
from probes.targets import Target

LOGIN_PROTOCOLS = ("onvif", "isapi", "http")


@dataclass(frozen=True)
class Attempt:
    accepted: bool
    exchange_id: str | None
    duration_s: float
    locked: bool = False  # the device said this address is locked out (platform 429)
    remaining: int | None = None  # tries left before a lock, when the device tells
    retry_after_s: float | None = None  # how long a lock lasts, when the device tells


class Login:
    """Login attempts on one target: `await login.attempt(user, password)`."""

    def __init__(self, target: Target, conn: Connection) -> None:
        self.target = target
        self.conn = conn
        self.clock_offset = timedelta(0)  # device clock minus ours (ONVIF tokens carry a time)

    async def prepare(self) -> str | None:
        """Read what a fair try needs (the ONVIF device clock); the exchange id, if any."""
        if self.target.protocol != "onvif":
            return None
        async with OnvifAuthClient(self.conn) as client:
            device_now, xid = await client.device_time()
        self.clock_offset = device_now - datetime.now(UTC)
        return xid

    async def attempt(self, username: str, password: str) -> Attempt:
        """One try; refusals are answers, other collector errors propagate."""
        conn = dataclasses.replace(self.conn, username=username, password=password)
        t0 = time.monotonic()
        protocol = self.target.protocol
        try:
            if protocol == "http":
                async with PlatformClient(conn) as platform:
                    tried = await platform.try_login(username, password)
                return Attempt(
                    tried.accepted,
                    tried.exchange_id,
                    time.monotonic() - t0,
                    locked=tried.status == 429,
                    remaining=tried.remaining_attempts,
                    retry_after_s=tried.retry_after_s,
                )
            if protocol == "isapi":
                async with IsapiClient(conn) as isapi:
                    xid = (await isapi.device_info()).exchange_id
            elif protocol == "onvif":
                async with OnvifAuthClient(conn) as onvif:
                    xid = (await onvif.device_information(self.clock_offset)).exchange_id
            else:
                raise ValueError(f"no login check for protocol {protocol!r}")
        except AuthFailed as exc:
            return Attempt(False, exc.exchange_id, time.monotonic() - t0)
        return Attempt(True, xid, time.monotonic() - t0)

    async def own(self) -> Attempt:
        """A try with the inventory's account (the baseline, and what clears the failure count)."""
        return await self.attempt(self.conn.username or "", self.conn.password or "")


def cannot_try(ctx: ProbeContext, target: Target, probe: str, test: str, what: str) -> Finding | None:
    """The `not_assessed` finding when logins cannot be tried here: a protocol without a login
    check, or an active test the run does not allow. None when the probe may go on."""
    started = ctx.clock()
    if target.protocol not in LOGIN_PROTOCOLS:
        reason, detail = "protocol_not_covered", f"No login check for {target.protocol} devices."
    elif not ctx.allowed(test):
        reason, detail = "active_not_allowed", f"{what} is an active test; the run does not allow {test!r}."
    else:
        return None
    return Finding(
        probe, target.id, "not_assessed", reason, detail, started_at=started, finished_at=ctx.clock()
    )

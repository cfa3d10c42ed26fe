"""What the offline-alert probes share: finding devices that are down, and waiting for the alert."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from collectors.platform import PlatformAlert
from probes.base import ProbeContext
from probes.platform_common import platform_client
from probes.targets import Target

OFFLINE_ALERT = "device_offline"
POLL_S = 1.0


@dataclass(frozen=True)
class AlertWait:
    """The platform's offline alerts for the awaited devices, and when we first saw each."""

    found: dict[str, PlatformAlert]
    seen_at: dict[str, datetime]
    evidence: tuple[str, ...]


async def tcp_down(ctx: ProbeContext, target: Target, timeout_s: float) -> bool:
    """A device whose port refuses or never accepts a connection is down (hung ones still accept).

    The connection takes the device's per-host slot like any collector's: a fire panel that
    serves one Modbus client must never see this check collide with a probe's session."""
    async with ctx.host_gate(target):
        return await _tcp_down(target, timeout_s)


async def _tcp_down(target: Target, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(target.host, target.port)
    except (OSError, TimeoutError):
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


async def wait_for_alerts(
    ctx: ProbeContext,
    platform: Target,
    devices: Iterable[str],
    window_s: float,
    since: datetime | None = None,
) -> AlertWait:
    """Poll the platform's device_offline alerts until every device has one or the window ends."""
    wanted = set(devices)
    found: dict[str, PlatformAlert] = {}
    seen_at: dict[str, datetime] = {}
    evidence: list[str] = []
    deadline = asyncio.get_running_loop().time() + window_s
    async with platform_client(ctx, platform) as api:
        while True:
            listing = await api.alerts(since=since, type=OFFLINE_ALERT)
            evidence.append(listing.exchange_id)
            for alert in listing.rows:
                if alert.device in wanted and alert.device not in found:
                    found[alert.device] = alert
                    seen_at[alert.device] = ctx.clock()
            if wanted <= set(found) or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(POLL_S)
    # Only the first and the last poll are worth keeping as evidence; the rest repeat them.
    kept = (evidence[0], evidence[-1]) if len(evidence) > 1 else tuple(evidence)
    return AlertWait(found, seen_at, kept)

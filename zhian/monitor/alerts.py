"""The platform's alerts as an observer: for each outage the monitor sees, did the platform raise
its device_offline alert, and how long after?

An outage opens when a device's heartbeat or gateway status turns fail, or a check finds it
unreachable (as the period report counts them). From then on the platform's offline alerts are
polled every `alert_poll_s` (one listing for every outage waiting; alerts the platform pushes come
in too when the config gives its receiver, `inventory.platform.receiver`) until each outage has its alert or
`thresholds.offline_alert_window_s` has passed. An alert counts for the outage when it names the
device and was raised after the device was last known up (the platform may well notice before the
monitor does), on the platform's own clock, whose offset was read at start. Each outage gets one
`outage_alert` record: alert yes with its id, when the platform says it raised it and when zhian
first saw it (`after_s` from the outage's start, an upper bound), or no once the window is over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from collectors.errors import CollectorError
from collectors.platform import PlatformAlert
from probes.offline_common import OFFLINE_ALERT
from probes.platform_common import platform_client
from probes.targets import Target
from zhian.engine.alert_feed import alert_feed
from zhian.monitor.period import OUTAGE_PROBES

if TYPE_CHECKING:
    from zhian.monitor.service import Monitor


def is_outage(probe: str, reason: str) -> bool:
    """A finding that speaks of the device being down (the period report's outages)."""
    return probe in OUTAGE_PROBES or reason == "unreachable"


def seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


@dataclass
class Outage:
    device: str
    started_at: datetime  # when the monitor flagged it (zhian's clock)
    up_until: datetime  # the device was last known up then (zhian's clock)
    reason: str
    ended_at: datetime | None = None
    evidence: list[str] = field(default_factory=list)


class OutageAlerts:
    def __init__(self, monitor: Monitor) -> None:
        self.m = monitor
        self.platform: Target | None = monitor.site.platform
        self.pending: dict[str, Outage] = {}
        self.last_up: dict[str, datetime] = {}  # device -> the end of its last outage
        self.offset = timedelta(0)  # the platform's clock minus zhian's
        self.wake = asyncio.Event()

    # -- told by the monitor ------------------------------------------------------------------------
    def opened(self, device: str, at: datetime, reason: str, last_seen: datetime | None) -> None:
        if self.platform is None or device in self.pending:
            return
        window = timedelta(seconds=self.m.config.thresholds.offline_alert_window_s)
        floor = max(x for x in (self.last_up.get(device), last_seen, at - window) if x is not None)
        self.pending[device] = Outage(device, at, min(floor, at), reason)
        self.wake.set()

    def closed(self, device: str, at: datetime) -> None:
        self.last_up[device] = at
        outage = self.pending.get(device)
        if outage is not None and outage.ended_at is None:
            outage.ended_at = at

    # -- watching the platform ----------------------------------------------------------------------
    async def run(self) -> None:
        if self.platform is None:
            await asyncio.Event().wait()  # no platform to hold to account; ends with the service
        assert self.platform is not None
        poll_s = self.m.config.monitor.alert_poll_s
        # the platform's pushed alerts too, when the config gives a receiver (ctx.platform_feed)
        async with alert_feed(self.m.ctx, self.m.config), platform_client(self.m.ctx, self.platform) as api:
            with contextlib.suppress(CollectorError):  # then the offset stays zero
                platform_now, _ = await api.time()
                self.offset = platform_now - self.m.ctx.clock()
            while True:
                if not self.pending:
                    self.wake.clear()
                    await self.wake.wait()
                rows: Sequence[PlatformAlert] = ()
                evidence: str | None = None
                try:
                    earliest = min(o.up_until for o in self.pending.values()) + self.offset
                    listing = await api.alerts(since=earliest, type=OFFLINE_ALERT)
                    rows, evidence = listing.rows, listing.exchange_id
                except CollectorError as exc:
                    evidence = exc.exchange_id
                self.settle(rows, evidence)
                await asyncio.sleep(poll_s)

    def settle(self, alerts: Sequence[PlatformAlert], evidence: str | None) -> None:
        now = self.m.ctx.clock()
        window = self.m.config.thresholds.offline_alert_window_s
        for device, outage in list(self.pending.items()):
            if evidence:
                outage.evidence[1:] = [evidence]  # the first poll and the latest
            found = next(
                (a for a in alerts if a.device == device and a.raised_at - self.offset >= outage.up_until),
                None,
            )
            if found is not None:
                self.record(outage, found, now)
            elif (now - outage.started_at).total_seconds() >= window:
                self.record(outage, None, now)

    def record(self, outage: Outage, alert: PlatformAlert | None, now: datetime) -> None:
        del self.pending[outage.device]
        fields: dict[str, Any] = {
            "run_id": self.m.monitor_id,
            "device": outage.device,
            "reason": outage.reason,
            "outage_started_at": outage.started_at.isoformat(),
            "outage_ended_at": outage.ended_at.isoformat() if outage.ended_at else None,
            "alert": alert is not None,
            "window_s": self.m.config.thresholds.offline_alert_window_s,
            "evidence": [e for e in (*outage.evidence, alert.exchange_id if alert else None) if e],
            "at": now.isoformat(),
        }
        if alert is not None:
            fields |= {
                "alert_id": alert.id,
                "raised_at": alert.raised_at.isoformat(),
                "seen_at": now.isoformat(),
                "after_s": seconds(outage.started_at, now),
                # negative: the platform knew before the monitor flagged the device
                "raised_after_s": round(
                    (alert.raised_at - self.offset - outage.started_at).total_seconds(), 3
                ),
            }
        self.m.ledger.append("outage_alert", fields)
        said = f"after {fields['after_s']:g} s" if alert else f"none within {fields['window_s']:g} s"
        self.m.console.note(f"{outage.device}: outage, platform alert {said}")

"""The probes that look at the platform's side: video signal and its alarm, clocks, offline alerts."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SiteFactory
from linkage_helpers import SiteOperator
from site_probe import site_context

from collectors.exchange import Exchange
from probes import clock_skew, offline_alert, offline_alert_test, video_loss_alert, video_signal
from probes.base import ProbeContext
from probes.finding import Finding

pytestmark = pytest.mark.peers

# 6 missed heartbeats of 0.5 s make an outage: a loaded machine delays some by seconds
WINDOWS = {
    "observe_s": 4.0,
    "heartbeat_interval_s": 0.5,
    "heartbeat_misses": 6,
    "offline_alert_window_s": 6.0,
}


async def probe(ctx: ProbeContext, module: Any, device: str, **params: Any) -> Finding:
    finding: Finding = await module.run(ctx, ctx.site.get(device), module.Params(**params))
    return finding


@pytest.mark.slow
async def test_faulty_site(community_site: SiteFactory) -> None:
    ledger: list[Exchange] = []
    async with community_site("faulty") as site:
        ctx = site_context(site, ledger.append)
        try:
            lost = await probe(ctx, video_signal, "cam-perimeter-02")
            assert (lost.status, lost.reason) == ("fail", "video_signal_lost") and lost.evidence
            ok = await probe(ctx, video_signal, "cam-gate-01")
            assert (ok.status, ok.reason) == ("pass", "video_signal_present")
            alarm = await probe(ctx, video_loss_alert, "cam-perimeter-02")
            assert (alarm.status, alarm.reason) == ("pass", "alert_raised") and alarm.facts["platform_alerts"]
            offered = await probe(ctx, video_loss_alert, "cam-gate-01")
            assert (offered.status, offered.reason) == ("pass", "video_loss_event_offered")

            skewed = await probe(ctx, clock_skew, "panel-b2", clock_skew_max_s=10)
            assert (skewed.status, skewed.reason) == ("fail", "clock_skew")
            assert 590 < skewed.facts["skew_s"] < 610
            for device in ("panel-b1", "cam-gate-01", "door-pump-room"):
                in_sync = await probe(ctx, clock_skew, device, clock_skew_max_s=10)
                assert in_sync.status == "pass", (device, in_sync.reason, in_sync.detail)
            broken = await probe(ctx, clock_skew, "cam-roof-b1")
            assert broken.status == "error"

            silent = await probe(ctx, offline_alert, "platform", **WINDOWS)
            assert (silent.status, silent.reason) == ("fail", "alert_missing")
            assert {"cam-roof-b1", "smoke-b1-0102"} <= set(silent.facts["missing"])

            ctx.operator = SiteOperator(site)
            tested = await probe(ctx, offline_alert_test, "intercom-b1-01", offline_alert_window_s=4)
            assert (tested.status, tested.reason) == ("fail", "alert_missing")
        finally:
            await ctx.close()


@pytest.mark.slow
async def test_small_site(community_site: SiteFactory) -> None:
    ledger: list[Exchange] = []
    async with community_site("small") as site:
        operator = SiteOperator(site)
        ctx = site_context(site, ledger.append, operator=operator)
        try:
            quiet = await probe(ctx, offline_alert, "platform", **WINDOWS)
            assert (quiet.status, quiet.reason) == ("not_assessed", "nothing_offline")
            tested = await probe(ctx, offline_alert_test, "intercom-b1-01", offline_alert_window_s=8)
            assert (tested.status, tested.reason) == ("pass", "alert_in_time"), tested.detail
            assert 0 < tested.facts["alert_seen_after_s"] < 8
            assert [action for _, action, _ in operator.told] == ["child_offline", "child_online"]  # restored
        finally:
            await ctx.close()
    secrets = [ep.password for ep in site.directory.values()]
    for exchange in ledger:
        for secret in secrets:
            assert secret not in exchange.request + exchange.response

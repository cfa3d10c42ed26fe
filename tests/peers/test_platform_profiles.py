"""The platform in both profiles: zhian's API and Hikvision's artemis gateway (the simulated twin),
through the probes, the signed client and zhian's alert receiver."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import pytest
from conftest import SiteFactory
from site_probe import site_context

from collectors.artemis import ArtemisClient
from collectors.errors import AuthFailed
from collectors.exchange import Exchange
from collectors.platform_receiver import AlertReceiver
from probes import offline_alert, platform_auth, privacy_masking, video_loss_alert
from probes.base import ProbeContext
from probes.finding import Finding
from probes.platform_common import platform_client, platform_profile

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


def assert_no_secrets(ledger: list[Exchange], secrets: list[str]) -> None:
    for exchange in ledger:
        for secret in secrets:
            assert secret not in exchange.request + exchange.response + (exchange.error or "")


@pytest.mark.slow
async def test_artemis_twin_through_the_probes(community_site: SiteFactory) -> None:
    ledger: list[Exchange] = []
    async with community_site("faulty", platform_profile="hikvision-artemis") as site:
        ctx = site_context(site, ledger.append)
        platform = ctx.site.get("platform")
        assert platform.protocol == "artemis" and platform_profile(platform).api == "artemis"
        try:
            alarm = await probe(ctx, video_loss_alert, "cam-perimeter-02")
            assert (alarm.status, alarm.reason) == ("pass", "alert_raised"), alarm.detail
            silent = await probe(ctx, offline_alert, "platform", **WINDOWS)
            assert (silent.status, silent.reason) == ("fail", "alert_missing")
            auth = await probe(ctx, platform_auth, "platform")
            assert (auth.status, auth.reason) == ("pass", "authentication_enforced"), auth.facts
            assert set(auth.facts["unauthenticated"].values()) == {401}
            assert 401 not in auth.facts["authenticated"].values()  # signed: answered (200, or 400 for {})
            privacy = await probe(ctx, privacy_masking, "platform")
            assert (privacy.status, privacy.reason) == ("not_assessed", "not_offered")

            async with platform_client(ctx, platform) as api:
                assert isinstance(api, ArtemisClient)
                devices = {d.id: d for d in (await api.devices()).rows}
                clock, _ = await api.time()
            assert {"cam-gate-01", "cam-perimeter-02", "nvr-01"} <= set(devices)  # indexCodes mapped back
            assert devices["cam-gate-01"].kind == "IPC" and devices["nvr-01"].kind == "NVR"
            assert clock.tzinfo is not None

            wrong = dataclasses.replace(ctx.connection(platform), password="not-the-app-secret")
            async with ArtemisClient(wrong, platform_profile(platform)) as bad:
                with pytest.raises(AuthFailed):
                    await bad.alerts()
        finally:
            await ctx.close()
    assert_no_secrets(ledger, [ep.password for ep in site.directory.values()])
    signed = [x for x in ledger if "x-ca-signature:" in x.request.lower()]
    assert signed and all("x-ca-key:" in x.request.lower() for x in signed)


@pytest.mark.parametrize("profile", ["zhian", "hikvision-artemis"])
async def test_alerts_pushed_to_the_receiver(community_site: SiteFactory, profile: str) -> None:
    ledger: list[Exchange] = []
    async with community_site("small", platform_profile=profile) as site:
        ctx = site_context(site, ledger.append)
        platform = ctx.site.get("platform")
        receiver = AlertReceiver(
            "127.0.0.1", 0, profile=platform_profile(platform), device="platform", sink=ledger.append,
            names=platform.params.get("platform_ids") or {}, max_body=4096,
        )  # fmt: skip
        try:
            async with receiver:
                ctx.platform_feed = receiver
                async with platform_client(ctx, platform) as api:
                    await api.subscribe(receiver.url)
                    await site.operator("door-b2-unit1", "force_open")
                    for _ in range(100):
                        if receiver.received(None, "door_forced"):
                            break
                        await asyncio.sleep(0.05)
                    pushed = receiver.received(None, "door_forced")
                    assert [a.device for a in pushed] == ["door-b2-unit1"]
                    listing = await api.alerts(type="door_forced")  # polled and pushed, once each
                    assert [a.id for a in listing.rows] == [pushed[0].id]
                    await api.unsubscribe()
                async with aiohttp.ClientSession() as http:
                    async with http.post(receiver.url, data=b"x" * 5000) as big:
                        assert big.status == 413
                    async with http.post(receiver.url, data=b"not json") as garbage:
                        assert garbage.status == 400
        finally:
            await ctx.close()
    callbacks = [x for x in ledger if x.operation == "alert callback"]
    assert [x.facts["status"] for x in callbacks][-2:] == [413, 400]
    assert pushed[0].exchange_id == callbacks[0].id and callbacks[0].ok
    assert_no_secrets(ledger, [ep.password for ep in site.directory.values()])

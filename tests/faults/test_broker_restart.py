"""The site's MQTT broker restarts in the middle of the heartbeat window: zhian subscribes again, the
window's exchange records the gap, what was heard before it is kept, and no device is judged on
the silence the restart caused (not every device offline)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from exchange_sink import Ledger
from site_probe import site_view

from collectors.mqtt import window
from probes import gateway_status, heartbeat
from probes.base import ProbeContext
from tests.faults.conftest import SiteFactory

pytestmark = pytest.mark.peers

OBSERVE_S = 12.0
DOWN_S = 2.0


@pytest.mark.slow
async def test_a_broker_restart_mid_window_is_a_gap_not_every_device_offline(
    community_site: SiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed = threading.Event()  # the window runs on its own loop, in a thread (probes.base.apart)
    collect = window._collect

    async def collecting(*args: Any) -> Exception | None:
        subscribed.set()
        return await collect(*args)

    monkeypatch.setattr(window, "_collect", collecting)
    async with community_site("small", heartbeat_s=0.5) as site:
        ledger = Ledger()
        trust = site.tls.client_context() if site.tls else None
        ctx = ProbeContext(site=site_view(site), sink=ledger, trust=trust, call_timeout_s=5.0)
        hb = heartbeat.Params(observe_s=OBSERVE_S, heartbeat_misses=5)
        gs = gateway_status.Params(observe_s=OBSERVE_S, heartbeat_misses=5)
        jobs = [heartbeat.SPEC.run(ctx, t, hb) for t in ctx.site.targets if t.kind == "mqtt_device"]
        jobs += [gateway_status.SPEC.run(ctx, t, gs) for t in ctx.site.targets if t.kind == "gateway"]
        running = asyncio.gather(*jobs)
        try:
            assert await asyncio.to_thread(subscribed.wait, 60), "the window never subscribed"
            await site.restart_broker(down_s=DOWN_S)
            found = await asyncio.wait_for(running, 120)
        finally:
            await ctx.close()
    [observed] = [e for e in ledger if e.operation.startswith("observe(")]
    assert observed.ok, observed.error
    [gap] = observed.facts["gaps"]
    assert gap["s"] >= DOWN_S * 0.9, gap
    assert "subscribing again" in observed.response
    states = {f.device: (f.status, f.reason) for f in found}
    assert len(states) == 21  # 20 devices and their gateway
    assert {s for s, _ in states.values()} == {"pass"}, {d: s for d, s in states.items() if s[0] != "pass"}
    assert all(f.facts["broker_gap_s"] >= DOWN_S * 0.9 for f in found if f.probe == "heartbeat")
    assert all(f.facts["heartbeat_count"] > 0 for f in found if f.probe == "heartbeat")

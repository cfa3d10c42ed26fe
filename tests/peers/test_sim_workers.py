"""A site split over worker processes (`Site(workers=N)`, `zhian sim up --workers N`).

The cameras, NVRs and doors run in other processes; what crosses the split must still work: their
TLS endpoints, their events reaching the platform through the bus relay, the operator's hand and
bus commands reaching a device another process holds, and a clean stop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import COMMUNITIES, fast
from nets import claim_net
from onvif_helpers import soap_request

from simulator.model import load_community
from simulator.runtime import Endpoint
from simulator.site import Site
from simulator.workers import WORKER_KINDS, partition

pytestmark = pytest.mark.peers


def listening(ep: Endpoint) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((ep.host, ep.port)) == 0


async def until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.1)


async def post_soap(session: aiohttp.ClientSession, ep: Endpoint) -> int:
    body = soap_request("<tds:GetSystemDateAndTime/>")
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    async with session.post(ep.url(), data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def alerts(session: aiohttp.ClientSession, ep: Endpoint, kind: str) -> list[dict[str, Any]]:
    login = {"username": ep.username, "password": ep.password}
    async with session.post(f"{ep.url()}/login", json=login) as resp:
        token = (await resp.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{ep.url()}/alerts", params={"type": kind}, headers=headers) as resp:
        assert resp.status == 200
        return list((await resp.json())["alerts"])


def test_partition_deals_only_http_devices_round_robin() -> None:
    community = load_community(COMMUNITIES / "small.yaml")
    shares = partition(community.devices, 3)
    dealt = [i for share in shares for i in share]
    expected = [d.id for d in community.devices if d.kind in WORKER_KINDS]
    assert sorted(dealt) == sorted(expected) and len(dealt) == len(set(dealt))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.slow
async def test_a_site_split_over_two_workers(tmp_path: Path) -> None:
    with claim_net() as net:  # held until nothing listens on it any more
        community = fast(load_community(COMMUNITIES / "faulty.yaml"), net)
        async with Site(community, tmp_path, latency_scale=0, workers=2) as site:
            assert site.tls is not None
            remote = [ep for ep in site.endpoints() if ep.kind in WORKER_KINDS]
            assert remote and not any(ep.id in site.devices for ep in remote)  # held by the workers
            connector = aiohttp.TCPConnector(ssl=site.tls.client_context())
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                camera = site.directory["cam-gate-01"]
                assert await post_soap(session, camera) == 200  # the site CA's certificate, another process
                platform = site.directory["platform"]

                async def video_loss() -> bool:  # a worker camera's event, relayed to the platform
                    found = await alerts(session, platform, "video_loss")
                    return [a["device"] for a in found] == ["cam-perimeter-02"]

                await until(video_loss, 30, "the worker camera's video loss at the platform")
                door = site.directory["door-b2-unit1"]
                await site.operator(door.id, "force_open")  # a bus command into a worker

                async def forced() -> bool:
                    return any(a["device"] == door.id for a in await alerts(session, platform, "door_forced"))

                await until(forced, 30, "the forced door's alert at the platform")
                await site.operator(camera.id, "unplug")
                assert not listening(camera)
                await site.operator(camera.id, "replug")
                await until(lambda: listening(camera), 30, "the replugged camera listening")
                with pytest.raises(KeyError):
                    await site.operator(camera.id, "no-such-action")
        assert not any(listening(ep) for ep in remote)

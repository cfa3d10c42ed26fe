"""Start the large community (simulator/communities/large.yaml) in one process: how long, how much memory.

Measures the wall time of Site.start() (every device listening, every gateway connected to the
broker, the platform up) and the peak resident memory of this process and of the mosquitto broker
it runs, then checks a small sample over the real protocols so that a fast start of a site that
does not answer cannot pass: every device port accepts TCP, random cameras answer
GetSystemDateAndTime over verified TLS, a fire panel answers a Modbus read, the broker holds a
retained status for every gateway and MQTT device. The platform's device list, counted by status,
is reported beside them: how much of the site its first health-poll round reached.

Prints one JSON line and exits 1 when a target of the issue is missed (start within 60 s; peak
RSS of the simulator plus its broker under 2 GB) or the sample fails.
Usage: .venv/bin/python bench/bench_large_start.py [--help]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import ssl
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from pymodbus.client import AsyncModbusTcpClient

from simulator.model import load_community
from simulator.runtime import Endpoint
from simulator.site import Site

COMMUNITY = Path(__file__).resolve().parents[1] / "simulator" / "communities" / "large.yaml"
START_TARGET_S = 60.0
RSS_TARGET_MB = 2048.0
DATE_AND_TIME = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss, in KiB on Linux, where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """The largest peak RSS of a waited-for child: the broker, once the site has stopped it."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def listening(endpoints: list[Endpoint], concurrency: int = 200) -> list[str]:
    """The ids of devices whose port refuses a TCP connection."""
    gate = asyncio.Semaphore(concurrency)

    async def check(ep: Endpoint) -> str | None:
        async with gate:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), 5)
            except (OSError, TimeoutError):
                return ep.id
            writer.close()
            return None

    return [i for i in await asyncio.gather(*(check(e) for e in endpoints)) if i is not None]


async def cameras_answer(cameras: list[Endpoint], trust: ssl.SSLContext | None) -> int:
    """How many of these cameras answer GetSystemDateAndTime (a pre-auth ONVIF call) with a time."""
    timeout = aiohttp.ClientTimeout(total=10)
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(ssl=trust or True)
    ) as http:

        async def ask(ep: Endpoint) -> bool:
            try:
                async with http.post(ep.url(), data=DATE_AND_TIME, headers=headers) as resp:
                    return resp.status == 200 and b"UTCDateTime" in await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                return False

        return sum(await asyncio.gather(*(ask(c) for c in cameras)))


async def panel_answers(panel: Endpoint) -> bool:
    """A read of the generic panel's status block (input registers 0-3)."""
    for _ in range(3):  # one client at a time: the platform's poll may hold the slot a moment
        client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=3, retries=0, reconnect_delay=0)
        try:
            if await client.connect():
                reply = await client.read_input_registers(0, count=4, device_id=int(panel.extra["unit_id"]))
                if not reply.isError():
                    return True
        except Exception:  # pymodbus raises several types for a dropped connection
            pass
        finally:
            client.close()
        await asyncio.sleep(0.3)
    return False


async def retained_statuses(
    broker: Endpoint, gateways: list[Endpoint], trust: ssl.SSLContext | None, window_s: float
) -> int:
    """How many gateways and gateway children have a retained status on the broker (window_s to
    collect them; the platform's own retained status is not counted)."""
    wanted = {g.id for g in gateways} | {c["id"] for g in gateways for c in g.extra["children"]}
    topic = f"{gateways[0].extra['topic_root']}/{gateways[0].extra['site']}/+/+/status"
    seen: set[str] = set()
    async with aiomqtt.Client(
        broker.host, broker.port, username=broker.username, password=broker.password, tls_context=trust
    ) as mqtt:
        await mqtt.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(window_s):
                async for message in mqtt.messages:
                    if message.retain:
                        seen.add(str(message.topic).split("/")[-2])
        except TimeoutError:
            pass
    return len(seen & wanted)


async def platform_view(ep: Endpoint, trust: ssl.SSLContext | None) -> dict[str, int]:
    """The platform's device list counted by status (online / offline / unknown), after a login."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(ssl=trust or True)
    ) as http:
        login = {"username": ep.username, "password": ep.password}
        async with http.post(f"{ep.url()}/login", json=login) as resp:
            token = (await resp.json())["token"]
        async with http.get(f"{ep.url()}/devices", headers={"Authorization": f"Bearer {token}"}) as resp:
            devices = (await resp.json())["devices"]
    counts: dict[str, int] = {}
    for device in devices:
        counts[device["status"]] = counts.get(device["status"], 0) + 1
    return counts


async def run(args: argparse.Namespace) -> dict[str, Any]:
    community = load_community(args.community)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="zhian-bench-") as workdir:
        site = Site(community, Path(workdir), latency_scale=args.latency_scale, broker_impl="mosquitto")
        began = time.perf_counter()
        try:
            await site.start()
            start_s = time.perf_counter() - began
            rss_started = peak_rss_mb()
            trust = site.tls.client_context() if site.tls else None
            eps = list(site.endpoints())
            own = [e for e in eps if e.kind not in ("gateway", "broker") and "offline" not in e.faults]
            cameras = [e for e in own if e.kind == "camera"]
            panels = [e for e in own if e.kind == "panel"]
            gateways = [e for e in eps if e.kind == "gateway"]
            children = sum(len(g.extra["children"]) for g in gateways)
            sample_began = time.perf_counter()
            deaf = await listening(own)
            answered = await cameras_answer(rng.sample(cameras, min(args.cameras, len(cameras))), trust)
            panel_ok = await panel_answers(rng.choice(panels)) if panels else True
            retained = await retained_statuses(site.directory["broker"], gateways, trust, args.mqtt_window)
            seen_by_platform = await platform_view(site.directory["platform"], trust)
            sample_s = time.perf_counter() - sample_began
        finally:
            stop_began = time.perf_counter()
            await site.stop()
            stop_s = time.perf_counter() - stop_began
    rss_mb = peak_rss_mb()
    broker_mb = children_peak_rss_mb()
    sample = {
        "devices_listening": len(own) - len(deaf),
        "devices_expected": len(own),
        "not_listening": deaf[:10],
        "cameras_answered": answered,
        "cameras_asked": min(args.cameras, len(cameras)),
        "panel_answered": panel_ok,
        "retained_statuses": retained,
        "retained_expected": len(gateways) + children,
        "platform_device_status": seen_by_platform,
    }
    ok = (
        not deaf
        and answered == sample["cameras_asked"]
        and panel_ok
        and retained == sample["retained_expected"]
    )
    counts: dict[str, int] = {}
    for spec in community.devices:
        counts[spec.kind] = counts.get(spec.kind, 0) + 1
    counts["mqtt_children"] = children
    return {
        "bench": "large_start",
        "date": datetime.now(UTC).date().isoformat(),
        "community": community.name,
        "devices": counts,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "latency_scale": args.latency_scale,
        "start_s": round(start_s, 2),
        "start_target_s": START_TARGET_S,
        "rss_peak_mb": round(rss_mb, 1),
        "rss_at_start_mb": round(rss_started, 1),
        "broker_rss_peak_mb": round(broker_mb, 1),
        "rss_total_peak_mb": round(rss_mb + broker_mb, 1),
        "rss_target_mb": RSS_TARGET_MB,
        "sample_s": round(sample_s, 2),
        "stop_s": round(stop_s, 2),
        "sample": sample,
        "sample_ok": ok,
        "targets_met": start_s <= START_TARGET_S and rss_mb + broker_mb <= RSS_TARGET_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--community", type=Path, default=COMMUNITY, help="community file (large.yaml)")
    parser.add_argument("--latency-scale", type=float, default=1.0, help="reply latency factor (1 = real)")
    parser.add_argument("--cameras", type=int, default=20, help="cameras sampled over ONVIF")
    parser.add_argument("--mqtt-window", type=float, default=5.0, help="seconds to collect retained statuses")
    parser.add_argument("--seed", type=int, default=7, help="seed of the camera and panel sample")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["targets_met"] and result["sample_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

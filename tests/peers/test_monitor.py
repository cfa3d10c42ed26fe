"""`zhian monitor` against the simulated community (mosquitto, the simulator's gateway), as its own
process: live heartbeats in /metrics and the ledger, a broker restart as a gap, SIGKILL and restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from simulator.site import Site
from tests.peers.conftest import SiteFactory
from zhian.cli.simconfig import site_config
from zhian.evidence.segments import SEGMENT_FILE, read_json, segment_dirs

pytestmark = pytest.mark.peers

STARTED: list[int] = []  # monitor pids, killed after the test whatever its outcome
THRESHOLD_S = 1.5  # the fast community: heartbeats every 0.5 s, 3 missed make an outage
MARGIN_S = 1.0  # the bound: flagged within threshold + 1 s


@pytest.fixture(autouse=True)
def no_service_left() -> Iterator[None]:
    yield
    for pid in STARTED:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    STARTED.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(site: Site, tmp: Path) -> tuple[Path, dict[str, str]]:
    """The site's config with only what MQTT liveness needs (broker, gateway, platform), so the
    scheduled checks stay few on a loaded test machine."""
    config, secrets = site_config(site, None)
    inventory = config["inventory"]
    for kind in ("cameras", "nvrs", "doors", "panels"):
        inventory.pop(kind, None)
    config["monitor"] = {"default_interval_s": 600, "reconnect_min_s": 0.2, "reconnect_max_s": 1}
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, secrets


class Service:
    def __init__(self, config: Path, state: Path, env: dict[str, str]) -> None:
        self.config, self.state, self.env = config, state, env
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zhian.cli", "monitor", "--config", str(self.config), "--state",
            str(self.state), "--listen", f"127.0.0.1:{self.port}",
            env={**os.environ, "ZHIAN_KEY_DIR": str(self.state.parent / "keys"), **self.env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        STARTED.append(self.proc.pid)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
            return str(reply.read().decode())

    async def metrics(self) -> dict[str, float]:
        """zhian_device_up per device, and the ledger's record count."""
        try:
            text = await asyncio.to_thread(self.get, "/metrics")
        except OSError:
            return {}
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "zhian_device_up":
                    out[sample.labels["device"]] = sample.value
                elif sample.name == "zhian_ledger_records_total":
                    out["_records"] = sample.value
        return out

    async def until(self, check: Callable[[dict[str, float]], bool], timeout_s: float = 90) -> float:
        """Poll /metrics every 0.05 s until check holds; the monotonic time it first held."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if check(await self.metrics()):
                return time.monotonic()
            assert self.proc is not None and self.proc.returncode is None, await self.output()
            await asyncio.sleep(0.05)
        health = await asyncio.to_thread(self.get, "/healthz")
        raise AssertionError(f"not seen within {timeout_s} s: {await self.metrics()} {health}")

    async def output(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        if self.proc.returncode is None:
            return "(still running)"
        return (await self.proc.stderr.read()).decode()

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.communicate(), timeout=120)
        assert self.proc.returncode is not None
        return self.proc.returncode


def ledger_records(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for segment in segment_dirs(state):
        db = sqlite3.connect(segment / "ledger.sqlite")
        out += [json.loads(body) for (body,) in db.execute("SELECT body FROM records ORDER BY seq")]
        db.close()
    return out


def changes(records: list[dict[str, Any]], device: str) -> list[tuple[str, str, str]]:
    return [
        (r["change"]["from"], r["change"]["to"], r["reason"])
        for r in records
        if r["kind"] == "finding" and r["device"] == device
    ]


async def test_monitor_sees_outages_in_time_keeps_gaps_and_survives_a_kill(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    async with community_site("small", broker="mosquitto") as site:
        config, env = write_config(site, tmp_path)
        state = tmp_path / "state"
        service = Service(config, state, env)
        await service.start()
        children = [c.id for d in site.community.devices if d.gateway for c in d.gateway.devices]
        await service.until(lambda m: m.get("gw-01") == 1 and all(m.get(c) == 1 for c in children))

        # a child gone quiet (its status still says online): down within threshold + 1 s
        quiet_at, wall = time.monotonic(), datetime.now(UTC)
        await site.operator("intercom-b1-01", "child_quiet")
        seen = await service.until(lambda m: m.get("intercom-b1-01") == 0)
        assert seen - quiet_at <= THRESHOLD_S + MARGIN_S

        # the gateway unplugged: its Will at once, its children within threshold + 1 s
        unplugged = time.monotonic()
        await site.operator("gw-01", "unplug")
        gateway_down = await service.until(lambda m: m.get("gw-01") == 0)
        children_down = await service.until(lambda m: all(m.get(c) == 0 for c in children))
        assert gateway_down - unplugged <= MARGIN_S
        assert children_down - unplugged <= THRESHOLD_S + MARGIN_S
        await site.operator("gw-01", "replug")
        await service.until(lambda m: m.get("gw-01") == 1 and m.get("smoke-b1-0101") == 1)

        # a broker restart is a gap, not every device going offline
        await site.restart_broker(down_s=0.5)
        await service.until(lambda m: m.get("gw-01") == 1 and m.get("smoke-b1-0101") == 1)
        health = json.loads(await asyncio.to_thread(service.get, "/healthz"))
        assert health["ok"] and health["brokers"] == {"broker": "subscribed"}

        # killed mid-segment, then restarted on the same state
        before_kill = (await service.metrics())["_records"]
        assert await service.stop(signal.SIGKILL) == -signal.SIGKILL
        service = Service(config, state, env)
        await service.start()
        await service.until(lambda m: m.get("gw-01") == 1 and m.get("_records", 0) > before_kill)
        assert await service.stop(signal.SIGTERM) == 0

    keys = {**os.environ, "ZHIAN_KEY_DIR": str(state.parent / "keys")}  # trusted: this machine's key
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "zhian.cli", "verify", str(state), stdout=asyncio.subprocess.PIPE, env=keys
    )
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out.decode()
    segments = segment_dirs(state)
    assert [read_json(s / SEGMENT_FILE)["recovered"] for s in segments] == [True, False]

    records = ledger_records(state)
    quiet = [r for r in records if r["kind"] == "finding" and r["device"] == "intercom-b1-01"]
    assert (quiet[1]["change"]["to"], quiet[1]["reason"]) == ("fail", "stale_online")
    flagged = datetime.fromisoformat(quiet[1]["finished_at"])
    assert (flagged - wall).total_seconds() <= THRESHOLD_S + MARGIN_S + 0.5  # + the bus hop
    gateway = changes(records, "gw-01")
    assert gateway[:3] == [
        ("unknown", "pass", "alive"),
        ("pass", "fail", "offline"),
        ("fail", "pass", "alive"),
    ]
    # the restart found the statuses the killed service had recorded: nothing recorded twice
    firsts = [
        (r["probe"], r["device"])
        for r in records
        if r["kind"] == "finding" and r["change"]["from"] == "unknown"
    ]
    assert len(firsts) == len(set(firsts))
    kinds = [r["kind"] for r in records]
    assert "gap" in kinds and "gap_end" in kinds and "recovered" in kinds

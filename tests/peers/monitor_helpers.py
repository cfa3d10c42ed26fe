"""What the tests of `zhian monitor` as its own process share: its config on a simulated site,
the service started and stopped, its metrics and its ledger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from simulator.site import Site
from zhian.cli.simconfig import site_config
from zhian.evidence.segments import segment_dirs

STARTED: list[int] = []  # monitor pids, killed after the test whatever its outcome


def kill_started() -> None:
    for pid in STARTED:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    STARTED.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    site: Site,
    tmp: Path,
    keep: Collection[str] = (),
    monitor: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> tuple[Path, dict[str, str]]:
    """The site's config with only what MQTT liveness needs (broker, gateway, platform) and the
    devices named in `keep`, so the scheduled checks stay few on a loaded test machine."""
    config, secrets = site_config(site, None)
    inventory = config["inventory"]
    for kind in ("cameras", "nvrs", "doors", "panels"):
        kept = [d for d in inventory.pop(kind, []) if d["id"] in keep]
        if kept:
            inventory[kind] = kept
    config["monitor"] = {"default_interval_s": 600, "reconnect_min_s": 0.2, "reconnect_max_s": 1}
    config["monitor"] |= dict(monitor or {})
    config["thresholds"] = config.get("thresholds", {}) | dict(thresholds or {})
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, secrets


class Terminal:
    """A pseudo-terminal for the service's stderr, read as it writes (a full one would block it)."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the service's side closed
                return
            if not data:
                return
            self.chunks.append(data)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def close(self) -> None:
        self.reader.join(timeout=5)
        os.close(self.master)


class Service:
    def __init__(self, config: Path, state: Path, env: dict[str, str]) -> None:
        self.config, self.state, self.env = config, state, env
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = ""  # what it said, once stopped (on a pipe)

    async def start(self, terminal: Terminal | None = None) -> None:
        """Its stderr on a pipe, or on the terminal given."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "zhian.cli", "monitor", "--config", str(self.config), "--state",
            str(self.state), "--listen", f"127.0.0.1:{self.port}",
            env={**os.environ, "ZHIAN_KEY_DIR": str(self.state.parent / "keys"), **self.env},
            stdout=asyncio.subprocess.PIPE, stderr=terminal.slave if terminal else asyncio.subprocess.PIPE,
        )  # fmt: skip
        if terminal is not None:
            os.close(terminal.slave)  # the service holds it now: its exit ends the reader
        STARTED.append(self.proc.pid)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
            return str(reply.read().decode())

    async def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of one metric: (labels, value)."""
        text = await asyncio.to_thread(self.get, "/metrics")
        return [
            (s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]

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

    async def until(
        self,
        check: Callable[[Any], bool],
        timeout_s: float = 90,
        read: Callable[[], Awaitable[Any]] | None = None,
    ) -> float:
        """Poll /metrics (or `read`) every 0.05 s until check holds; the monotonic time it first held."""
        end = time.monotonic() + timeout_s
        value: Any = None
        while time.monotonic() < end:
            try:
                value = await (read or self.metrics)()
            except OSError:  # not listening yet
                value = None
            if value is not None and check(value):
                return time.monotonic()
            assert self.proc is not None and self.proc.returncode is None, await self.output()
            await asyncio.sleep(0.05)
        health = await asyncio.to_thread(self.get, "/healthz")
        raise AssertionError(f"not seen within {timeout_s} s: {value} {health}")

    async def health(self) -> dict[str, Any]:
        return dict(json.loads(await asyncio.to_thread(self.get, "/healthz")))

    async def subscribed(self, devices: Collection[str]) -> None:
        """Until every one of these devices has its live event subscription."""
        await self.until(
            lambda h: all(h["event_subscriptions"].get(d) == "subscribed" for d in devices), read=self.health
        )

    async def first_round(self) -> None:
        """Until every scheduled check has run once."""

        async def checks() -> tuple[float, int]:
            done = sum(v for _, v in await self.samples("zhian_check_duration_seconds_count"))
            starts = [r for r in await records_now(self.state) or [] if r["kind"] == "monitor_start"]
            return done, starts[0]["scheduled_jobs"] if starts else 1 << 30

        await self.until(lambda c: c[0] >= c[1], read=checks, timeout_s=180)

    async def output(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        if self.proc.returncode is None:
            return "(still running)"
        return (await self.proc.stderr.read()).decode()

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout=120)
        self.stderr = err.decode() if err is not None else ""
        assert self.proc.returncode is not None
        return self.proc.returncode


async def records_now(state: Path) -> list[dict[str, Any]] | None:
    """The ledger as the running service has written it so far (None while a write holds it)."""
    try:
        return await asyncio.to_thread(ledger_records, state)
    except sqlite3.OperationalError:
        return None


def ledger_records(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for segment in segment_dirs(state):
        db = sqlite3.connect(segment / "ledger.sqlite")
        out += [json.loads(body) for (body,) in db.execute("SELECT body FROM records ORDER BY seq")]
        db.close()
    return out

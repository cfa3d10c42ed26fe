"""Discovery of what is not HTTP: MQTT gateways and their devices heard on a broker for a window,
and Modbus units answering a fire panel profile's registers.

MQTT: every topic heard is offered to each known topic shape (`SHAPES`); the first that reads it
names the gateway, the device and the leaf. Only zhian's own tree ships here
(`{root}/{site}/{gateway}/{device}/{leaf}`, docs/mqtt-topics.md); the gateway profiles of issue
13 (zigbee2mqtt, Home Assistant discovery, site templates) add their readers to SHAPES. A child's
type is guessed from its telemetry fields and marked TODO when nothing told it.

Modbus: each shipped profile reads the unit; a profile "answers" when its zone count is within
its map and, where it maps them, the heartbeat runs and the clock reads as a date. The best
answer is drafted; a tie is marked TODO.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.connection import Connection
from collectors.errors import CollectorError
from collectors.modbus import ModbusClient, PanelReading
from collectors.modbus_profile import PROFILE_DIR, PanelProfile, ProfileError, load_profile
from collectors.mqtt.client import MqttClient
from collectors.mqtt.messages import TopicSummary
from zhian.discover.found import device_id, port_open

LEAVES = frozenset({"status", "heartbeat", "telemetry", "alarm", "state", "cmd", "ack"})


@dataclass(frozen=True)
class Heard:
    root: str
    site: str
    gateway: str
    device: str
    leaf: str


def zhian_shape(topic: str) -> Heard | None:
    parts = topic.split("/")
    if len(parts) < 5 or parts[-1] not in LEAVES or not all(parts[-4:]):
        return None
    return Heard("/".join(parts[:-4]), parts[-4], parts[-3], parts[-2], parts[-1])


# profile name -> reader of one topic; issue 13's gateway profiles plug in here
SHAPES: dict[str, Callable[[str], Heard | None]] = {"zhian": zhian_shape}


@dataclass
class Gateway:
    id: str
    profile: str
    topic_root: str
    site: str
    heartbeat_s: float | None = None
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # child id -> telemetry fields


def child_type(fields: dict[str, Any]) -> str | None:
    """The child's type by what its telemetry carries (docs/mqtt-topics.md); None: unknown."""
    if "lel_pct" in fields:
        return "gas_detector"
    if "load_pct" in fields or "power_w" in fields:
        return "charger"
    if "on" in fields:
        return "lighting_relay"
    if "battery_pct" in fields:
        return "smoke_detector" if "alarm" in fields else "emergency_button"
    return None


def _fields(summary: TopicSummary) -> dict[str, Any]:
    latest = summary.latest
    try:
        doc = json.loads(latest.payload) if latest is not None else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


async def mqtt_gateways(conn: Connection, window_s: float) -> list[Gateway]:
    async with MqttClient(conn) as client:
        seen = await client.observe(["#"], window_s)
    gateways: dict[tuple[str, str, str], Gateway] = {}
    beats: dict[tuple[str, str, str], list[float]] = {}
    for topic, summary in seen.topics.items():
        for profile, read in SHAPES.items():
            heard = read(topic)
            if heard is None:
                continue
            key = (heard.root, heard.site, heard.gateway)
            gw = gateways.setdefault(key, Gateway(heard.gateway, profile, heard.root, heard.site))
            if heard.device != heard.gateway:
                fields = gw.devices.setdefault(heard.device, {})
                if heard.leaf in ("telemetry", "state"):
                    fields.update(_fields(summary))
            elif heard.leaf == "heartbeat" and summary.first_live and summary.last_live and summary.live > 1:
                span = (summary.last_live.at - summary.first_live.at).total_seconds()
                beats.setdefault(key, []).append(span / (summary.live - 1))
            break
    for key, spans in beats.items():
        gateways[key].heartbeat_s = round(min(spans), 1) or None
    # a gateway beats or has children; a lone retained status (the platform's own) is no gateway
    return [g for key, g in gateways.items() if g.devices or key in beats]


@dataclass
class Panel:
    id: str
    host: str
    port: int
    unit_id: int
    profile: str
    zones: int
    todo: str = ""


def shipped_profiles() -> list[PanelProfile]:
    out = []
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        try:
            out.append(load_profile(path.stem))
        except ProfileError:
            continue
    return out


def _score(profile: PanelProfile, reading: PanelReading) -> int:
    zones = reading.zone_count
    if zones is None or not 0 < zones <= profile.max_zones:
        return 0
    score = 1 + (1 if reading.heartbeat_s else 0)
    if reading.device_time is not None and 2000 <= reading.device_time.year <= 2100:
        score += 1
    return score


async def modbus_panels(
    hosts: Sequence[str],
    ports: Sequence[int],
    unit_ids: Sequence[int],
    make: Callable[[str, int], Connection],
) -> list[Panel]:
    profiles = shipped_profiles()
    gate = asyncio.Semaphore(16)

    async def one(host: str, port: int) -> list[Panel]:
        found: list[Panel] = []
        async with gate:
            if not await port_open(host, port, 2.0):
                return found
            for unit in unit_ids:
                scores: list[tuple[int, PanelProfile, PanelReading]] = []
                for profile in profiles:
                    try:
                        async with ModbusClient(make(host, port)) as client:
                            reading = await client.read_panel(profile, unit, ())
                    except CollectorError:
                        if not scores:
                            return found  # nobody there (or not Modbus): no more tries
                        continue
                    scores.append((_score(profile, reading), profile, reading))
                best = max((s for s in scores if s[0] > 0), key=lambda s: s[0], default=None)
                if best is None:
                    continue
                ties = [p.name for s, p, _ in scores if s == best[0] and p is not best[1]]
                todo = f"profile: also answers {', '.join(ties)}" if ties else ""
                panel_id = device_id("panel", None, f"{host}-{unit}" if unit != 1 else host)
                found.append(Panel(panel_id, host, port, unit, best[1].name, best[2].zone_count or 0, todo))
        return found

    results = await asyncio.gather(*(one(h, p) for h in hosts for p in ports))
    return [panel for batch in results for panel in batch]

"""Discovery of Modbus units answering a fire panel profile's registers (MQTT gateways:
zhian/discover/gateways.py).

Each shipped profile reads the unit; a profile "answers" when its zone count is within its map
and, where it maps them, the heartbeat runs and the clock reads as a date. The best answer is
drafted; a tie is marked TODO.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collectors.connection import Connection
from collectors.errors import CollectorError
from collectors.modbus.client import ModbusClient
from collectors.modbus.profile import PROFILE_DIR, PanelProfile, ProfileError, load_profile
from collectors.modbus.readings import PanelReading
from zhian.discover.found import device_id, port_open


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

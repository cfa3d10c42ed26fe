"""What the panel probes share: the inventory's view of a panel, one reading per panel and run
(fetch once, judge many; a panel often serves a single client), and failures as findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collectors.errors import CollectorError
from collectors.modbus.client import ModbusClient
from collectors.modbus.profile import PanelProfile, load_profile, load_profile_file
from collectors.modbus.readings import PanelReading
from probes.base import ProbeContext
from probes.finding import Finding, collector_finding, inventory_finding
from probes.targets import Target


@dataclass(frozen=True)
class PanelSite:
    """What the inventory says about a panel: the maker's register map, unit id and zones."""

    profile: PanelProfile
    unit_id: int
    zones: tuple[int, ...]
    charger_zones: frozenset[int]  # zones the inventory marks `charger: true`


class InventoryError(ValueError):
    """The inventory's panel entry cannot be used (no or unknown profile, zones off the panel)."""


def panel_site(target: Target) -> PanelSite:
    params = target.params
    if params.get("profile_file"):
        profile = load_profile_file(Path(str(params["profile_file"])))
    elif "profile" in params:
        profile = load_profile(str(params["profile"]))
    else:
        raise InventoryError(f"{target.id}: no register profile named (params.profile)")
    zones: list[int] = []
    chargers: set[int] = set()
    for entry in params.get("zones", ()):
        try:
            zone = int(entry["id"] if isinstance(entry, Mapping) else entry)
        except (KeyError, TypeError, ValueError):
            raise InventoryError(f"{target.id}: zone {entry!r} has no zone number") from None
        if not 1 <= zone <= profile.max_zones:
            raise InventoryError(
                f"{target.id}: zone {zone} is not on a {profile.name} (1..{profile.max_zones})"
            )
        zones.append(zone)
        if isinstance(entry, Mapping) and entry.get("charger") is True:
            chargers.add(zone)
    return PanelSite(profile, int(params.get("unit_id", 1)), tuple(sorted(set(zones))), frozenset(chargers))


async def shared_reading(ctx: ProbeContext, target: Target, site: PanelSite) -> PanelReading:
    """One full reading of the panel per run, shared by every panel probe."""

    async def fetch() -> PanelReading:
        async with ModbusClient(ctx.connection(target)) as client:
            return await client.read_panel(site.profile, site.unit_id, site.zones)

    reading: PanelReading = await ctx.shared(("modbus.read_panel", target.id), fetch)
    return reading


Judge = Callable[[PanelSite, PanelReading, datetime, datetime], Finding]


async def judge_reading(ctx: ProbeContext, target: Target, probe: str, judge: Judge) -> Finding:
    """A passive panel probe: the panel's shared reading, judged; an unusable inventory entry or an
    unreadable panel becomes an `error` finding (we could not judge)."""
    started = ctx.clock()
    try:
        site = panel_site(target)
    except ValueError as exc:
        return inventory_finding(probe, target.id, exc, started_at=started, finished_at=ctx.clock())
    try:
        reading = await shared_reading(ctx, target, site)
    except CollectorError as exc:
        return collector_finding(probe, target.id, exc, started_at=started, finished_at=ctx.clock())
    return judge(site, reading, started, ctx.clock())

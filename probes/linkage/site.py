"""What the inventory says a linkage must move: a panel's zones and their areas, the doors,
cameras and relays of an area, the zones a fire test covers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes.linkage.params import Effect, FireParams
from probes.panel_common import PanelSite, panel_site
from probes.targets import SiteView, Target


def zone_areas(panel: Target) -> dict[int, str]:
    """Zone number -> area, from the inventory's panel entry (zones without an area are left out)."""
    out: dict[int, str] = {}
    for entry in panel.params.get("zones", ()):
        if isinstance(entry, Mapping) and "id" in entry and isinstance(entry.get("area"), str):
            out[int(entry["id"])] = str(entry["area"])
    return out


def doors_of(site: SiteView, area: str, zone: int | None = None) -> tuple[Target, ...]:
    """Doors a fire in `area` must unlock: those in the area, or whose fire_zone names it (or the zone)."""
    names = {area} | ({str(zone)} if zone is not None else set())
    return tuple(
        d for d in site.of_kind("door") if d.area == area or str(d.params.get("fire_zone") or "") in names
    )


def intrusion_cameras(site: SiteView, camera: Target) -> tuple[Target, ...]:
    """The cameras an intruder before `camera` must alarm: its area's, itself among them."""
    cameras = site.in_area(camera.area, "camera")
    return cameras if camera.id in {c.id for c in cameras} else (camera, *cameras)


def relays_of(site: SiteView, area: str) -> tuple[Target, ...]:
    return tuple(t for t in site.in_area(area, "mqtt_device") if t.params.get("type") == "lighting_relay")


def expected_effects(site: SiteView, panel: PanelSite, zone: int, area: str) -> tuple[Effect, ...]:
    """What a fire in the zone must visibly do besides the platform alert: unlock its area's doors,
    raise its cameras' alarms, switch its lighting relays on, and the panel's own emergency lighting
    and broadcast wherever the panel's register map shows them."""
    values, per_zone = panel.profile.values, panel.profile.zone_values
    shown: dict[Effect, bool] = {
        "doors": bool(doors_of(site, area, zone)),
        "video": bool(site.in_area(area, "camera")),
        "lighting": bool(relays_of(site, area)) or "lighting_on" in values,
        "broadcast": "broadcast_on" in values or "broadcast" in per_zone,
    }
    return tuple(effect for effect, expected in shown.items() if expected)


def fire_zones(site: SiteView, panel: PanelSite, zones: Mapping[int, str]) -> list[tuple[int, str]]:
    """The zones a panel's fire test covers: every zone with an expected effect; the first zone when
    none has one (its platform alert is still due)."""
    if not zones:
        raise ValueError("the panel has no zone with an area in the inventory")
    covered = [
        (zone, area) for zone, area in sorted(zones.items()) if expected_effects(site, panel, zone, area)
    ]
    first = min(zones)
    return covered or [(first, zones[first])]


def zone_members(site: SiteView, panel: Target) -> tuple[str, ...]:
    """The fire probes' ProbeSpec.members: the zones the test covers, for the run to sample by 7.4."""
    try:
        return tuple(str(zone) for zone, _ in fire_zones(site, panel_site(panel), zone_areas(panel)))
    except ValueError:
        return ()  # the test itself reports what is wrong with the inventory


def chosen_zones(
    site: SiteView, panel: Target, ps: PanelSite, params: FireParams
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """The zones to test, in order, and how they were chosen: the one `zone` names, the run's pick
    among the covered zones, or every covered zone."""
    zones = zone_areas(panel)
    if params.zone is not None:
        if params.zone not in zones:
            raise ValueError(
                f"zone {params.zone} is not among the panel's zones with an area ({sorted(zones)})"
            )
        return [(params.zone, zones[params.zone])], {"mode": "asked", "picked": [params.zone]}
    covered = fire_zones(site, ps, zones)
    members = [zone for zone, _ in covered]
    if params.sample is None:
        return covered, {"mode": "every", "members": members, "picked": members}
    picked = [(zone, area) for zone, area in covered if str(zone) in params.sample.picked]
    if not picked:
        raise ValueError(f"the run's sample {list(params.sample.picked)} names none of zones {members}")
    sample = params.sample.model_dump() | {"members": members, "picked": [zone for zone, _ in picked]}
    return picked, sample


def relay_topics(relay: Target) -> tuple[str, str]:
    """The relay's state and telemetry topics (docs/mqtt-topics.md)."""
    p = relay.params
    root, site, gateway = p.get("topic_root"), p.get("site"), p.get("gateway")
    if not all(isinstance(v, str) and v for v in (root, site, gateway)):
        raise ValueError(f"{relay.id}: no topic_root, site or gateway in the inventory")
    base = f"{str(root).strip('/')}/{site}/{gateway}/{relay.id}"
    return f"{base}/state", f"{base}/telemetry"

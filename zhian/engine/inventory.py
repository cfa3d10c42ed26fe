"""From the configuration to what probes see: targets with their secrets resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.platform_profile import PlatformProfile, ProfileError, load_profile
from probes.targets import Secret, SiteView, Target, TargetKind
from zhian.config import Config, Device, Platform, resolve_secret
from zhian.errors import UsageError


def build_site(config: Config, base: Path) -> SiteView:
    """Resolve every credential reference now, so that a missing secret stops the run at once."""
    resolved: dict[str, tuple[str, Secret]] = {}
    for name, cred in config.credentials.items():
        resolved[name] = (cred.username, Secret(resolve_secret(cred.password, base)))
    inv = config.inventory
    targets: list[Target] = []

    def add(kind: TargetKind, device: Device, protocol: str, **params: Any) -> None:
        user, secret = resolved[device.credentials] if device.credentials else (None, None)
        targets.append(
            Target(
                id=device.id,
                kind=kind,
                protocol=protocol,
                host=device.host,
                port=device.port,
                area=device.area,
                tags=dict(device.tags),
                tls=getattr(device, "tls", False) is not False,  # auto: TLS until the device says otherwise
                tls_auto=getattr(device, "tls", None) == "auto",
                path=str(getattr(device, "path", "")),
                username=user,
                password=secret,
                params=params,
            )
        )

    for cam in inv.cameras:
        add("camera", cam, cam.protocol, recorded_by=cam.recorded_by, channel=cam.channel)
    for nvr in inv.nvrs:
        add("nvr", nvr, nvr.protocol)
    for door in inv.doors:
        add("door", door, door.protocol, fire_zone=door.fire_zone, door=door.door)
    for panel in inv.panels:
        zones = [z.model_dump() for z in panel.zones]
        own = str(base / panel.profile_file) if panel.profile_file is not None else None
        add(
            "panel",
            panel,
            "modbus",
            unit_id=panel.unit_id,
            profile=panel.profile,
            profile_file=own,
            zones=zones,
        )
    for broker in inv.brokers:
        add("broker", broker, "mqtt", plain_port=broker.plain_port)
    brokers = {t.id: t for t in targets if t.kind == "broker"}
    for gw in inv.gateways:
        via = brokers[gw.broker]
        common = {
            "broker": gw.broker,
            "profile": gw.profile,
            "profile_file": str(base / gw.profile_file) if gw.profile_file is not None else None,
            "topic_root": gw.topic_root,
            "site": gw.site,
            "heartbeat_s": gw.heartbeat_s,
        }
        targets.append(
            Target(
                id=gw.id,
                kind="gateway",
                protocol="mqtt",
                host=via.host,
                port=via.port,
                area=gw.area,
                tls=via.tls,
                params=common | {"children": [c.id for c in gw.devices]},
            )
        )
        for child in gw.devices:
            targets.append(
                Target(
                    id=child.id,
                    kind="mqtt_device",
                    protocol="mqtt",
                    host=via.host,
                    port=via.port,
                    area=child.area,
                    tags=dict(child.tags),
                    tls=via.tls,
                    params=common | {"gateway": gw.id, "type": child.type},
                )
            )
    if inv.platform is not None:
        p = inv.platform
        profile = load_platform_profile(p, base)
        add(
            "platform", p, "artemis" if profile.api == "artemis" else "http",
            broker=p.broker, alert_topic_root=p.alert_topic_root, profile=p.profile,
            profile_file=str(base / p.profile_file) if p.profile_file else None,
            platform_ids=platform_ids(config),
        )  # fmt: skip
    return SiteView(config.community.name, tuple(targets))


def load_platform_profile(platform: Platform, base: Path) -> PlatformProfile:
    """The platform's profile, shipped or the site's own file; a bad one is a config error."""
    path = base / platform.profile_file if platform.profile_file else None
    try:
        return load_profile(platform.profile, path)
    except ProfileError as exc:
        raise UsageError(f"inventory.platform: {exc}") from None


def platform_ids(config: Config) -> dict[str, str]:
    """The platform's own id of a device (its `platform_id` tag) -> the inventory id."""
    inv = config.inventory
    devices = [*inv.cameras, *inv.nvrs, *inv.doors, *inv.panels]
    return {str(d.tags["platform_id"]): d.id for d in devices if "platform_id" in d.tags}


def area_kinds(config: Config) -> dict[str, str]:
    return {a.id: a.kind for a in config.areas}


def inventory_summary(site: SiteView) -> list[dict[str, Any]]:
    """The devices a run looked at, for the report's site overview (no credentials)."""
    return [
        {
            "id": t.id,
            "kind": t.kind,
            "protocol": t.protocol,
            "address": t.address,
            "area": t.area,
            "tls": t.tls,
            "tls_auto": t.tls_auto,
            "tags": dict(t.tags),
            "type": t.params.get("type"),
        }
        for t in site.targets
    ]

"""A zhian config that inventories a running simulated community (`zhian sim up --write-config`).

Credentials are written as environment references only; their values go to a separate file
(`<config>.env`, mode 0600, shell syntax) that the operator sources before `zhian run`.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from simulator.model import CameraParams, Community, GatewayParams, PanelParams, PlatformParams
from simulator.mqtt.dialect import HA_PREFIX
from simulator.platform.artemis import index_code
from simulator.site import BROKER_ID, Site


def env_name(device_id: str) -> str:
    return "ZHIAN_PW_" + re.sub(r"[^A-Z0-9]", "_", device_id.upper())


def site_config(site: Site, operator_hook: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The config document and the secret values it references."""
    community = site.community
    doc = site.endpoints_document()
    rows = {row["id"]: row for row in doc["devices"]}
    secrets: dict[str, str] = {}
    credentials: dict[str, dict[str, str]] = {}

    def cred(row: dict[str, Any]) -> str:
        name: str = row["id"]
        secrets[env_name(name)] = row["password"]
        credentials[name] = {"username": row["username"], "password": f"env:{env_name(name)}"}
        return name

    def http(row: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {
            "id": row["id"], "host": row["host"], "port": row["port"], "area": row["area"],
            "tags": row["tags"], "credentials": cred(row), "tls": "auto", "path": row["path"], **more,
        }  # fmt: skip

    area_kind = {a.id: a.kind for a in community.areas}
    inventory: dict[str, Any] = {
        "cameras": [],
        "nvrs": [],
        "doors": [],
        "panels": [],
        "brokers": [],
        "gateways": [],
    }
    for spec in community.devices:
        row = rows[spec.id]
        if spec.kind == "camera":
            cam = spec.camera or CameraParams()
            inventory["cameras"].append(http(row, recorded_by=cam.recorded_by, channel=cam.channel))
        elif spec.kind == "nvr":
            inventory["nvrs"].append(http(row, protocol=spec.protocol))
        elif spec.kind == "door":
            fire_zone = spec.door.fire_zone if spec.door else None
            inventory["doors"].append(http(row, protocol=spec.protocol, fire_zone=fire_zone))
        elif spec.kind == "panel":
            panel = spec.panel or PanelParams()
            zones = [
                {"id": z.id, "area": z.area, "charger": area_kind[z.area] == "charging_area"}
                for z in panel.zones
            ]
            inventory["panels"].append(
                {"id": spec.id, "host": row["host"], "port": row["port"], "area": spec.area,
                 "unit_id": panel.unit_id, "profile": panel.profile, "zones": zones}
            )  # fmt: skip
        elif spec.kind == "gateway":
            gateway = spec.gateway or GatewayParams()
            inventory["gateways"].append(
                {
                    "id": spec.id, "broker": BROKER_ID, "area": spec.area, "profile": gateway.mqtt_profile,
                    # Home Assistant's root is its discovery prefix, where the configs name the rest
                    "topic_root": HA_PREFIX if gateway.mqtt_profile == "homeassistant" else row["topic_root"],
                    "site": row["site"], "heartbeat_s": gateway.heartbeat_s,
                    "devices": [{"id": c.id, "type": c.type, "area": c.area, "tags": dict(c.tags)}
                                for c in gateway.devices],
                }
            )  # fmt: skip
        elif spec.kind == "platform":
            root = spec_root(site)
            profile = (spec.platform or PlatformParams()).profile
            # zhian's receiver on loopback, any free port: the platform calls it with every alert
            receiver = {"listen": "127.0.0.1", "port": 0}
            inventory["platform"] = http(
                row, broker=BROKER_ID, alert_topic_root=root, profile=profile, receiver=receiver
            )
    if inventory.get("platform", {}).get("profile") == "hikvision-artemis":
        for kind in ("cameras", "nvrs", "doors", "panels"):  # the platform knows them by its own ids
            for device in inventory[kind]:
                device["tags"] = {**device.get("tags", {}), "platform_id": index_code(device["id"])}
    broker = rows[BROKER_ID]
    inventory["brokers"].append(
        {"id": BROKER_ID, "host": broker["host"], "port": broker["port"], "area": broker["area"],
         "credentials": cred(broker), "tls": broker["tls"], "plain_port": broker.get("plain_port")}
    )  # fmt: skip
    config: dict[str, Any] = {
        "version": 1,
        "community": {"name": community.name_zh or community.name, "operator": "", "target_level": "A"},
        # absolute: a config's paths are read relative to the config, the site's from where it started
        "ca_file": str(Path(doc["ca_file"]).resolve()) if doc.get("ca_file") else None,
        "areas": [{"id": a.id, "kind": a.kind, "name": a.name_zh} for a in community.areas],
        "credentials": credentials,
        "inventory": inventory,
        "thresholds": site_thresholds(community),
        # the simulated site clears camera alarms by itself but never switches a light off: the
        # operator (the simulator's hook) is asked soon rather than after a real site's 10 s
        "active": {"allow": [], "guided": True, "operator_hook": operator_hook, "restore_settle_s": 2},
        "monitor": MONITOR,
    }
    return config, secrets


MISSES = 3
# `zhian monitor` on the simulated site: checks minutes apart rather than hours, a lost broker retried soon
MONITOR = {
    "default_interval_s": 300,
    "schedule": {"panel_liveness": 15, "fire_water": 15, "recording_alive": 60, "retention": 120},
    "reconnect_min_s": 0.5,
    "reconnect_max_s": 5,
    "event_pull_s": 2,
    "event_termination_s": 30,
    "event_check_s": 20,
    "alert_poll_s": 1,
    "linkage_poll_s": 1,
}


def site_thresholds(community: Community) -> dict[str, float | int]:
    """Observation windows that fit the site's own timings (an inspector reads them off the
    gateway and platform settings): long enough to judge silence, no longer. The platform calls a
    device offline after offline_after_s without a heartbeat (MQTT) or after two failed polls
    (cameras, NVRs, doors), whichever is longer, and may notice it one poll later; 5 s more for
    a loaded machine."""
    beats = [d.gateway.heartbeat_s for d in community.devices if d.gateway is not None] or [30.0]
    platform = next((d.platform for d in community.devices if d.platform is not None), None)
    offline_after = platform.offline_after_s if platform else 90.0
    poll = platform.poll_interval_s if platform else 30.0
    return {
        "heartbeat_interval_s": min(beats),
        "heartbeat_misses": MISSES,
        "observe_s": MISSES * max(beats) + 3,
        "offline_alert_window_s": max(offline_after, 2 * poll) + poll + 5,
    }


def spec_root(site: Site) -> str:
    """The platform's alert topic prefix: `{root}/{site}` of the gateways' tree."""
    gateway = next((e for e in site.endpoints() if e.kind == "gateway"), None)
    root = gateway.extra["topic_root"] if gateway else "zhian-sim"
    level = gateway.extra["site"] if gateway else site.community.name
    return f"{root}/{level}"


def write_site_config(
    site: Site,
    path: Path,
    operator_hook: str | None,
    allow: list[str] | None = None,
    sampling: str = "inspection",
) -> Path:
    """Write the config and then `<path>.env` (so a waiting script may start once the env file
    exists); returns the env file's path. `allow` lists the active tests the config permits,
    `sampling` is inspection (7.4 samples) or monitoring (every device)."""
    config, secrets = site_config(site, operator_hook)
    config["active"]["allow"] = allow or []
    config["sampling"] = {"mode": sampling}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = path.with_name(path.name + ".env")
    partial = env.with_name(env.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for name, value in sorted(secrets.items()):
            out.write(f"export {name}={shlex.quote(value)}\n")
    os.replace(partial, env)
    return env

"""`zhian discover --mqtt` on a broker carrying three gateway shapes at once: the small site's
gateway in zhian's tree, one speaking zigbee2mqtt and one Home Assistant discovery (the
simulator's dialects, mosquitto as the broker). Each is found under its own profile with its
devices and their types, and the draft passes `zhian config check`; the simulated platform hears
the three alike."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import _NETS, COMMUNITIES, fast

from simulator.model import load_community
from simulator.platform import Platform
from simulator.site import BROKER_ID, Site
from zhian.cli.discover import scan
from zhian.configcheck import check_config
from zhian.discover.draft import draft_config

pytestmark = pytest.mark.peers
BROKER = "mosquitto" if shutil.which("mosquitto") else "amqtt"

CHILDREN = {
    "gw-z2m": [
        ("z-smoke-1", "smoke_detector"), ("z-gas-1", "gas_detector"), ("z-sos-1", "emergency_button"),
        ("z-charger-1", "charger"), ("z-light-1", "lighting_relay"), ("z-intercom-1", "intercom"),
    ],
    "gw-ha": [
        ("h-smoke-1", "smoke_detector"), ("h-gas-1", "gas_detector"), ("h-sos-1", "emergency_button"),
        ("h-charger-1", "charger"), ("h-light-1", "lighting_relay"),
    ],
}  # fmt: skip
DIALECTS = {"gw-z2m": ("zigbee2mqtt", "zigbee2mqtt"), "gw-ha": ("homeassistant", "ha-b3")}


def _community(tmp_path: Path) -> Path:
    doc = yaml.safe_load((COMMUNITIES / "small.yaml").read_text(encoding="utf-8"))
    for gw, children in CHILDREN.items():
        dialect, root = DIALECTS[gw]
        doc["devices"].append(
            {"id": gw, "kind": "gateway", "protocol": "mqtt", "area": "control-room",
             "gateway": {"mqtt_profile": dialect, "topic_root": root, "heartbeat_s": 5,
                         "devices": [{"id": c, "type": t, "area": "b1-homes"} for c, t in children]}}
        )  # fmt: skip
    path = tmp_path / "three-shapes.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def test_discover_hears_every_gateway_shape(tmp_path: Path) -> None:
    community = fast(load_community(_community(tmp_path)), next(_NETS))
    async with Site(community, tmp_path / "site", latency_scale=0, broker_impl=BROKER) as site:  # type: ignore[arg-type]
        broker = site.directory[BROKER_ID]
        os.environ["ZHIAN_TEST_MQTT_PW"] = broker.password
        args = argparse.Namespace(
            range=None, mqtt=f"{broker.host}:{broker.port}", mqtt_tls=broker.tls, listen=3.0,
            mqtt_login=f"{broker.username}:ZHIAN_TEST_MQTT_PW", mqtt_profile_file=[], timeout=10.0,
            ca_file=site.tls.ca_file if site.tls else None,
        )  # fmt: skip
        result = await scan(args, [])
    found = {g.id: g for g in result.gateways}
    # zigbee2mqtt names no gateway: the bridge is drafted after its base topic
    assert set(found) == {"gw-01", "zigbee2mqtt", "gw-ha"}, found
    zhian, z2m, ha = found["gw-01"], found["zigbee2mqtt"], found["gw-ha"]
    assert (zhian.profile, z2m.profile, ha.profile) == ("zhian", "zigbee2mqtt", "homeassistant")
    assert (z2m.topic_root, ha.topic_root) == ("zigbee2mqtt", "homeassistant") and not ha.todo
    spec = {d.id: d for d in community.devices}
    assert spec["gw-01"].gateway is not None
    assert set(zhian.devices) == {c.id for c in spec["gw-01"].gateway.devices}
    assert zhian.heartbeat_s is not None and zhian.heartbeat_s <= 1.0  # the test site beats every 0.5 s
    for gw, drafted in (("gw-z2m", z2m), ("gw-ha", ha)):
        assert set(drafted.devices) == {c for c, _ in CHILDREN[gw]}, (gw, drafted.devices)

    draft = tmp_path / "site.yaml"
    text = draft_config([], [("mqtt", broker.username, "ZHIAN_TEST_MQTT_PW")], "a test", broker=result.broker,
                        gateways=result.gateways)  # fmt: skip
    draft.write_text(text, encoding="utf-8")
    config = check_config(draft, secrets=False).config
    rows = {g.id: g for g in config.inventory.gateways}
    assert (rows["zigbee2mqtt"].profile, rows["gw-ha"].profile, rows["gw-01"].profile) == (
        "zigbee2mqtt",
        "homeassistant",
        "zhian",
    )
    types = {c.id: c.type for g in config.inventory.gateways for c in g.devices}
    for gw, children in CHILDREN.items():
        for child, kind in children:
            assert types[child] == kind, (gw, child)


async def _until(predicate: Callable[[], bool], within_s: float = 30.0) -> None:
    """Wait for the site to get there; the deadline is room for a loaded machine, not a target."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_the_platform_hears_every_gateway_shape(tmp_path: Path) -> None:
    """The platform reads zigbee2mqtt and Home Assistant gateways through their dialect: their devices
    stay online while they report (no heartbeat silence it cannot hear), their alarms raise alerts,
    a lost child goes offline."""
    community = fast(load_community(_community(tmp_path)), next(_NETS))
    ours = ["gw-z2m", "gw-ha", *(c for children in CHILDREN.values() for c, _ in children)]
    async with Site(community, tmp_path / "site", latency_scale=0, broker_impl=BROKER) as site:  # type: ignore[arg-type]
        platform = site.devices["platform"]
        assert isinstance(platform, Platform)
        state = platform.state

        def offline_alerts() -> list[str]:
            return [a.device for a in state.alerts if a.type == "device_offline" and a.device in ours]

        await _until(lambda: all(state.devices[d].status == "online" for d in ours))
        quiet_from = len(offline_alerts())
        # several times the platform's offline_after_s (2 s here): silence would have shown by now
        await asyncio.sleep(3 * community_offline_after(community))
        assert offline_alerts()[quiet_from:] == [] and all(state.devices[d].status == "online" for d in ours)

        def alerted(kind: str, device: str) -> bool:
            return any(a.type == kind and a.device == device for a in state.alerts)

        await site.operator("gw-z2m", "smoke", device="z-smoke-1")
        await site.operator("gw-ha", "gas", device="h-gas-1")
        await site.operator("gw-z2m", "press", device="z-sos-1")
        await site.operator("gw-ha", "charger_load", device="h-charger-1", percent=130)
        await _until(lambda: alerted("smoke_alarm", "z-smoke-1") and alerted("gas_alarm", "h-gas-1"))
        await _until(
            lambda: alerted("emergency_button", "z-sos-1") and alerted("charger_overload", "h-charger-1")
        )
        await site.operator("gw-z2m", "child_offline", device="z-gas-1")
        await site.operator("gw-ha", "child_offline", device="h-smoke-1")
        await _until(
            lambda: state.devices["z-gas-1"].status == "offline" == state.devices["h-smoke-1"].status
        )


def community_offline_after(community: Any) -> float:
    platform = next(d.platform for d in community.devices if d.platform is not None)
    return float(platform.offline_after_s)

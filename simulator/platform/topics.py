"""The MQTT topics as the platform reads and writes them, on the site tree of simulator.mqtt.topics.

Gateways publish `{root}/{site}/{gateway}/{device}/{leaf}` (the gateway itself with its own id as
device); the platform listens to the status, heartbeat, telemetry, alarm, state and ack leaves
with JSON payloads (docs/mqtt-topics.md) and sends `cmd` to switch relays. It publishes its
alerts on `{root}/{site}/platform/alerts/{type}` (QoS 1, not retained) and its own retained status,
in the tree's shape, on `{root}/{site}/platform/platform/status` ({"state": "online"}, or
"offline" as its last will).
"""

from __future__ import annotations

import json
from typing import Any

from simulator.mqtt import topics as tree

HEARD: tuple[tree.Leaf, ...] = ("status", "heartbeat", "telemetry", "alarm", "state", "ack")
PLATFORM = "platform"


def site_level(community_name: str) -> str:
    return tree.site_level(community_name)


def subscriptions(root: str, site: str) -> list[str]:
    return [tree.site_filter(root, site, leaf) for leaf in HEARD]


def parse(topic: str, root: str, site: str) -> tree.TopicParts | None:
    """A gateway or child topic; None for the platform's own topics and anything else."""
    parts = tree.parse(root, site, topic)
    return parts if parts is not None and parts.gateway != PLATFORM else None


def command_topic(root: str, site: str, gateway: str, device: str) -> str:
    return tree.GatewayTopics(root, site, gateway).topic(device, "cmd")


def alert_topic(root: str, site: str, alert_type: str) -> str:
    return f"{root}/{site}/{PLATFORM}/alerts/{alert_type}"


def status_topic(root: str, site: str) -> str:
    return f"{root}/{site}/{PLATFORM}/{PLATFORM}/status"


def decode(payload: bytes) -> dict[str, Any]:
    """A JSON object payload, or a plain one wrapped as {"value": text}."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


def status_of(payload: dict[str, Any]) -> str | None:
    """'online' / 'offline' from a status payload ({"state": ...}; a bare string is read too)."""
    for key in ("state", "status", "value"):
        value = payload.get(key)
        if isinstance(value, str) and value.lower() in ("online", "offline"):
            return value.lower()
    return None

"""The site's MQTT topic tree: every topic a gateway publishes or listens to is built here.

    {root}/{site}/{gateway}/{device}/{leaf}

The gateway reports for itself with its own id as `device`, so one filter with the same number of
levels (`{root}/{site}/+/+/status`) sees gateways and their children alike. docs/mqtt-topics.md
documents the tree and its payloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

Leaf = Literal["status", "heartbeat", "telemetry", "alarm", "state", "cmd", "ack"]
LEAVES: Final[tuple[Leaf, ...]] = get_args(Leaf)

# Retained leaves hold the last word on a device for anyone who subscribes later.
RETAINED: Final[frozenset[Leaf]] = frozenset({"status", "state"})
QOS: Final[dict[Leaf, int]] = {
    "status": 1,
    "heartbeat": 0,
    "telemetry": 0,
    "alarm": 1,
    "state": 1,
    "cmd": 1,
    "ack": 1,
}

_LEAF: Final[dict[str, Leaf]] = {leaf: leaf for leaf in LEAVES}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def site_level(name: str) -> str:
    """A community name as one topic level (no '/', wildcards or spaces)."""
    level = _UNSAFE.sub("-", name).strip("-")
    if not level:
        raise ValueError(f"community name {name!r} gives an empty topic level")
    return level


def _check_level(value: str, what: str) -> str:
    if not value or any(c in value for c in "/+#\x00"):
        raise ValueError(f"{what} {value!r} cannot be an MQTT topic level")
    return value


def site_filter(root: str, site: str, leaf: Leaf | None = None) -> str:
    """Everything of the site (`#`), or one leaf of every gateway and child."""
    return f"{root}/{site}/#" if leaf is None else f"{root}/{site}/+/+/{leaf}"


@dataclass(frozen=True)
class TopicParts:
    gateway: str
    device: str
    leaf: Leaf


def parse(root: str, site: str, topic: str) -> TopicParts | None:
    """The gateway, device and leaf of a site topic; None for anything outside the tree."""
    prefix = f"{root}/{site}/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    leaf = _LEAF.get(parts[-1])
    if len(parts) != 3 or leaf is None:
        return None
    return TopicParts(parts[0], parts[1], leaf)


@dataclass(frozen=True)
class GatewayTopics:
    """The topics of one gateway and its children."""

    root: str
    site: str
    gateway: str

    def __post_init__(self) -> None:
        if not self.root or self.root.startswith("/") or self.root.endswith("/") or "+" in self.root:
            raise ValueError(f"topic root {self.root!r} is not a clean topic prefix")
        if "#" in self.root:
            raise ValueError(f"topic root {self.root!r} contains a wildcard")
        _check_level(self.site, "site")
        _check_level(self.gateway, "gateway id")

    @classmethod
    def of(cls, root: str, community_name: str, gateway_id: str) -> GatewayTopics:
        return cls(root, site_level(community_name), gateway_id)

    def topic(self, device: str, leaf: Leaf) -> str:
        return f"{self.root}/{self.site}/{self.gateway}/{_check_level(device, 'device id')}/{leaf}"

    @property
    def subtree(self) -> str:
        """Everything this gateway may publish (its broker account's ACL)."""
        return f"{self.root}/{self.site}/{self.gateway}/#"

    @property
    def commands(self) -> str:
        """The filter the gateway subscribes to: commands for itself and each child."""
        return f"{self.root}/{self.site}/{self.gateway}/+/cmd"

    def device_of_command(self, topic: str) -> str | None:
        parts = parse(self.root, self.site, topic)
        if parts is None or parts.gateway != self.gateway or parts.leaf != "cmd":
            return None
        return parts.device

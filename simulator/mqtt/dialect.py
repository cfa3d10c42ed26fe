"""How a simulated gateway says what it says: zhian's own tree (simulator/mqtt/topics.py), or the
shape of zigbee2mqtt or of Home Assistant MQTT discovery, chosen per gateway in the community
file (`gateway.mqtt_profile`).

The gateway always reports in zhian's terms (a device, a leaf, a JSON body); a dialect turns each
report into the messages that gateway would publish. Written from the two projects' public
documentation, separately from zhian's collectors:

- zigbee2mqtt (base topic = the gateway's topic_root): `bridge/state` retained `{"state": ...}`,
  also the Last Will; a child's retained `<id>/availability` `{"state": "online"|"offline"}`; a
  child's state at `<id>` as JSON, on every heartbeat (with `last_seen`) and every change
  (`smoke`, `gas`, `action`, `battery`, `state`). The bridge itself has no heartbeat.
- Home Assistant discovery (prefix `homeassistant`): a retained config per device at
  `homeassistant/binary_sensor/<id>/status/config` with `~` = `<root>/<id>`, `stat_t` `~/state`
  and `avty_t` `~/availability`; availability as bare `online`/`offline`, state as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from simulator.mqtt.topics import GatewayTopics, Leaf

Dialect = Literal["zhian", "zigbee2mqtt", "homeassistant"]
HA_PREFIX = "homeassistant"
Message = tuple[str, bytes, bool]  # topic, payload, retained


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _state(body: dict[str, Any]) -> str:
    return "online" if body.get("state") == "online" else "offline"


@dataclass(frozen=True)
class Speaker:
    """One gateway's dialect: each report as the messages it publishes."""

    dialect: Dialect
    topics: GatewayTopics

    @property
    def root(self) -> str:
        return self.topics.root

    def will(self) -> tuple[str, bytes]:
        if self.dialect == "zigbee2mqtt":
            return f"{self.root}/bridge/state", _json({"state": "offline"})
        if self.dialect == "homeassistant":
            return f"{self.root}/{self.topics.gateway}/availability", b"offline"
        return self.topics.topic(self.topics.gateway, "status"), _json({"state": "offline", "reason": "lwt"})

    @property
    def subtrees(self) -> tuple[str, ...]:
        """What the gateway may publish (its broker account)."""
        if self.dialect == "zhian":
            return (self.topics.subtree,)
        extra = (f"{HA_PREFIX}/#",) if self.dialect == "homeassistant" else ()
        return (f"{self.root}/#", *extra)

    def announce(self, devices: list[str]) -> list[Message]:
        """Retained messages published once on (re)connect before any status: HA discovery configs."""
        if self.dialect != "homeassistant":
            return []
        out = []
        for device in devices:
            config = {
                "~": f"{self.root}/{device}",
                "name": device,
                "stat_t": "~/state",
                "avty_t": "~/availability",
            }
            out.append((f"{HA_PREFIX}/binary_sensor/{device}/status/config", _json(config), True))
        return out

    def render(self, device: str, leaf: Leaf, body: dict[str, Any]) -> list[Message]:
        """A report in another dialect (zhian's own tree is published as is by the gateway)."""
        own = device == self.topics.gateway
        if self.dialect == "zigbee2mqtt":
            return self._zigbee2mqtt(device, own, leaf, body)
        return self._homeassistant(device, leaf, body)

    def _zigbee2mqtt(self, device: str, own: bool, leaf: Leaf, body: dict[str, Any]) -> list[Message]:
        if leaf == "status":
            topic = f"{self.root}/bridge/state" if own else f"{self.root}/{device}/availability"
            return [(topic, _json({"state": _state(body)}), True)]
        if own or leaf in ("cmd", "ack"):
            return []  # the bridge has no heartbeat of its own
        state: dict[str, Any] = {"last_seen": _iso(body.get("ts"))}
        if leaf == "alarm":
            alarm = body.get("alarm")
            key = {"smoke": "smoke", "gas": "gas"}.get(str(alarm))
            state |= {key: bool(body.get("active"))} if key else {"action": "emergency"}
        elif leaf in ("telemetry", "state"):
            state |= {k: v for k, v in body.items() if k != "ts"}
            if "battery_pct" in state:
                state["battery"] = state.pop("battery_pct")
        return [(f"{self.root}/{device}", _json(state), False)]

    def _homeassistant(self, device: str, leaf: Leaf, body: dict[str, Any]) -> list[Message]:
        if leaf == "status":
            return [(f"{self.root}/{device}/availability", _state(body).encode(), True)]
        if leaf in ("cmd", "ack"):
            return []
        return [(f"{self.root}/{device}/state", _json({k: v for k, v in body.items() if k != "seq"}), False)]


def _iso(ts: Any) -> str:
    """zigbee2mqtt's last_seen (ISO 8601) from the device clock's epoch milliseconds."""
    if not isinstance(ts, int | float):
        return datetime.now(UTC).isoformat(timespec="milliseconds")
    return datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")

"""How a simulated gateway says what it says: zhian's own tree (simulator/mqtt/topics.py), or the
shape of zigbee2mqtt or of Home Assistant MQTT discovery, chosen per gateway in the community
file (`gateway.mqtt_profile`).

The gateway always reports in zhian's terms (a device, a leaf, a JSON body); a dialect turns each
report into the messages that gateway would publish. Written from the two projects' public
documentation, separately from zhian's collectors:

- zigbee2mqtt (base topic = the gateway's topic_root): `bridge/state` retained `{"state": ...}`,
  also the Last Will; the retained `bridge/devices`, an array of the coordinator and each child
  (`friendly_name`, `type`, `definition.exposes`: the features it reports, `smoke`, `gas`,
  `action`, `power`, a switch's `state`; null for a device zigbee2mqtt does not support); a
  child's retained `<id>/availability` `{"state": "online"|"offline"}`; a
  child's state at `<id>` as JSON, on every heartbeat (with `last_seen`) and every change
  (`smoke`, `gas`, `action`, `battery`, `state`). The bridge itself has no heartbeat.
- Home Assistant discovery (prefix `homeassistant`): a retained config per device at
  `homeassistant/binary_sensor/<id>/status/config` with `~` = `<root>/<id>`, `stat_t` `~/state`
  and `avty_t` `~/availability`, its `device` (`identifiers`; a child's `via_device`, the
  gateway it is reached through) and `device_class` (smoke, gas, safety, power, light);
  availability as bare `online`/`offline`, state as JSON.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from simulator.mqtt.topics import GatewayTopics, Leaf

Dialect = Literal["zhian", "zigbee2mqtt", "homeassistant"]
HA_PREFIX = "homeassistant"
Message = tuple[str, bytes, bool]  # topic, payload, retained
Report = tuple[str, Leaf, dict[str, Any]]  # device, leaf, body: a message read back in zhian's terms


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# what a zigbee2mqtt device of each type exposes (zigbee2mqtt.io, "Exposes"); None: not supported
EXPOSES: dict[str, list[dict[str, Any]] | None] = {
    "smoke_detector": [{"type": "binary", "name": "smoke", "property": "smoke"}],
    "gas_detector": [{"type": "binary", "name": "gas", "property": "gas"}],
    "emergency_button": [{"type": "enum", "name": "action", "property": "action"}],
    "charger": [{"type": "numeric", "name": "power", "property": "power", "unit": "W"}],
    "lighting_relay": [
        {"type": "switch", "features": [{"type": "binary", "name": "state", "property": "state"}]}
    ],
    "intercom": None,
}
# Home Assistant binary_sensor device classes (home-assistant.io, "Binary sensor") by child type
DEVICE_CLASSES = {
    "smoke_detector": "smoke",
    "gas_detector": "gas",
    "emergency_button": "safety",
    "charger": "power",
    "lighting_relay": "light",
}
BATTERY = {"type": "numeric", "name": "battery", "property": "battery", "unit": "%"}


def _z2m_device(device: str, kind: str) -> dict[str, Any]:
    exposes = EXPOSES.get(kind)
    powered = kind in ("charger", "lighting_relay")
    row: dict[str, Any] = {
        "friendly_name": device,
        "ieee_address": f"0x{zlib.crc32(device.encode()):016x}",
        "type": "Router" if powered else "EndDevice",
        "supported": exposes is not None,
        "definition": None,
    }
    if exposes is not None:
        row["definition"] = {"exposes": exposes if powered else [*exposes, BATTERY]}
    return row


def _body(payload: bytes) -> dict[str, Any]:
    """A JSON object payload, or a bare word as {"state": word} (Home Assistant's availability)."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return {"state": text}
    return value if isinstance(value, dict) else {"state": str(value)}


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

    def announce(self, devices: dict[str, str | None]) -> list[Message]:
        """Retained messages published once on (re)connect before any status: zigbee2mqtt's device
        list, Home Assistant's discovery configs. `devices`: id -> child type (None: the gateway)."""
        if self.dialect == "zigbee2mqtt":
            rows = [
                {"friendly_name": "Coordinator", "ieee_address": "0x0000000000000000", "type": "Coordinator"}
            ]
            rows += [_z2m_device(d, kind) for d, kind in devices.items() if kind is not None]
            return [(f"{self.root}/bridge/devices", json.dumps(rows).encode(), True)]
        if self.dialect != "homeassistant":
            return []
        out = []
        gateway = self.topics.gateway
        for device in devices:
            via = {"via_device": gateway} if device != gateway else {}
            config = {
                "~": f"{self.root}/{device}",
                "name": device,
                "stat_t": "~/state",
                "avty_t": "~/availability",
                "device": {"identifiers": [device], "name": device, **via},
            }
            kind = devices[device]
            if kind in DEVICE_CLASSES:
                config["device_class"] = DEVICE_CLASSES[kind]
            out.append((f"{HA_PREFIX}/binary_sensor/{device}/status/config", _json(config), True))
        return out

    def hear(self, topic: str, payload: bytes, devices: frozenset[str]) -> list[Report]:
        """A message of this dialect read back in zhian's terms, as the platform hears it: the
        availability as a status, every state message as a heartbeat (on zigbee2mqtt also the
        bridge's: it has none of its own) and an alarm where the state carries one. Only the
        `devices` of this gateway; [] for zhian's tree (read as is) and anything else."""
        if self.dialect == "zhian" or not topic.startswith(self.root + "/"):
            return []
        parts = topic[len(self.root) + 1 :].split("/")
        body = _body(payload)
        gateway = self.topics.gateway
        out: list[Report] = []
        if self.dialect == "zigbee2mqtt":
            if parts == ["bridge", "state"]:
                out = [(gateway, "status", body)]
            elif len(parts) == 2 and parts[1] == "availability":
                out = [(parts[0], "status", body)]
            elif len(parts) == 1:
                out = [(parts[0], "heartbeat", body), (gateway, "heartbeat", {})]
                alarm = next((k for k in ("smoke", "gas", "action") if k in body), None)
                if alarm is not None:
                    active = body[alarm] if isinstance(body[alarm], bool) else True
                    named = {"alarm": alarm} if alarm != "action" else {}  # an action: the device's type says
                    out.append((parts[0], "alarm", {**named, "active": active}))
        elif len(parts) == 2 and parts[1] == "availability":
            out = [(parts[0], "status", body)]
        elif len(parts) == 2 and parts[1] == "state":
            out = [(parts[0], "heartbeat", body)]
            if "active" in body:
                out.append((parts[0], "alarm", body))
        return [r for r in out if r[0] in devices]

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

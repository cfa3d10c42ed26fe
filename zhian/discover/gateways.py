"""MQTT gateways and their devices heard on a broker for a window, under every known topic shape.

Everything is heard at once (one subscription to `#`), then each profile (a site's own files first,
then the shipped ones: collectors/mqtt/profiles/) finds its gateways: zhian's tree and zigbee2mqtt
by the topics a gateway publishes about itself (`gateway_finders`: zhian's `{gateway}/{gateway}/
status`, zigbee2mqtt's `bridge/state`), Home Assistant by its retained discovery configs, grouped by
the hub each device is reached through (`via_device`). Each gateway found is then read with the
probes' own matcher (the profile compiled for its root, site and gateway), so that the draft names
the devices a run will look for, the way it will look. A topic read by one gateway is not offered
to the next: a Home Assistant entity's `<id>/availability` is not also a zigbee2mqtt device.

A child's type is guessed from what it sends (or, on zigbee2mqtt, what its `bridge/devices` entry
exposes) and marked TODO when nothing told it.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.connection import Connection
from collectors.mqtt.client import MqttClient
from collectors.mqtt.messages import TopicSummary
from collectors.mqtt.profile import (
    Matcher,
    MqttProfile,
    discovery_nodes,
    finder,
    gateway_finders,
    load_profile,
    load_profile_file,
    matcher,
    shipped_profiles,
)


@dataclass
class Gateway:
    id: str
    profile: str
    topic_root: str
    site: str
    heartbeat_s: float | None = None
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # child id -> what it reported
    exposes: dict[str, frozenset[str]] = field(default_factory=dict)  # child id -> features it lists
    profile_file: Path | None = None  # a site's own profile, as given to discover
    todo: str = ""


def child_type(fields: Mapping[str, Any], exposes: Iterable[str] = ()) -> str | None:
    """The child's type by what it reports (docs/mqtt-topics.md), what zigbee2mqtt says it exposes
    or the device classes Home Assistant's configs give; None: unknown."""
    listed = set(exposes)
    if "smoke" in listed or "smoke" in fields:
        return "smoke_detector"
    if "gas" in listed or "lel_pct" in fields or "gas" in fields:
        return "gas_detector"
    if "load_pct" in fields or "power_w" in fields or "power" in listed:
        return "charger"
    if "on" in fields or listed & {"state", "light"}:
        return "lighting_relay"
    if listed & {"action", "safety"}:
        return "emergency_button"
    if "battery_pct" in fields or "battery" in fields:
        return "smoke_detector" if "alarm" in fields else "emergency_button"
    return None


def profiles_to_try(files: Sequence[Path] = ()) -> list[tuple[MqttProfile, Path | None]]:
    """A site's own profiles first (they were written for this site), then every shipped one."""
    own: list[tuple[MqttProfile, Path | None]] = [(load_profile_file(p), p) for p in files]
    return own + [(load_profile(name), None) for name in shipped_profiles()]


def _object(summary: TopicSummary | None) -> Any:
    latest = summary.latest if summary is not None else None
    if latest is None or latest.truncated:
        return None
    try:
        return json.loads(latest.payload)
    except ValueError:
        return None


def _interval(summary: TopicSummary) -> float | None:
    if summary.first_live is None or summary.last_live is None or summary.live < 2:
        return None
    return (summary.last_live.at - summary.first_live.at).total_seconds() / (summary.live - 1)


def _name(root: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", root.lower()).strip("-") or "gateway"


def _found(profile: MqttProfile, topics: Mapping[str, TopicSummary]) -> list[tuple[Matcher, set[str] | None]]:
    """The gateways of this shape on the broker: each its matcher, and (Home Assistant) its nodes."""
    if profile.discovery:
        prefix = profile.topic_root
        configs = {
            t: s.latest.payload
            for t, s in topics.items()
            if t.startswith(prefix + "/") and t.endswith("/config") and s.latest is not None
        }
        nodes = discovery_nodes(prefix, configs)
        hubs = {node.via for node in nodes.values() if node.via}
        groups = {hub: {hub} | {n for n, node in nodes.items() if node.via == hub} for hub in hubs}
        orphans = {n for n, node in nodes.items() if node.via is None and n not in hubs}
        if orphans:  # nothing says which hub reaches them: one gateway named after the prefix
            groups[prefix] = orphans
        out: list[tuple[Matcher, set[str] | None]] = []
        for hub, members in sorted(groups.items()):
            m = matcher(profile, prefix, None, hub)
            m.learn(configs)
            out.append((m, members))
        return out
    keys: dict[tuple[str, str, str], None] = {}
    finders = gateway_finders(profile)
    for topic in topics:
        for find in finders:
            hit = find.match(topic)
            if hit is not None:
                places = hit.groupdict()
                root = places["root"]
                keys[(root, places.get("site") or "", places.get("gateway") or _name(root))] = None
    return [(matcher(profile, root, site or None, gw), None) for root, site, gw in keys]


def _read(
    m: Matcher,
    nodes: set[str] | None,
    topics: Mapping[str, TopicSummary],
    claimed: set[str],
) -> Gateway:
    gw = Gateway(m.gateway, m.profile.name, m.root, m.site)
    if nodes is not None:  # Home Assistant: the device classes its configs give
        configs = {t: s.latest.payload for t, s in topics.items() if m.is_config(t) and s.latest}
        for name, node in discovery_nodes(m.root, configs).items():
            if name in nodes and name != m.gateway and node.classes:
                gw.exposes[name] = frozenset(node.classes)
    own: list[float] = []
    children: dict[str, list[float]] = {}
    for topic, summary in topics.items():
        if topic in claimed:
            continue
        signals = [s for s in m.signals(topic) if nodes is None or s.device in nodes]
        if not signals:
            continue
        claimed.add(topic)
        every = _interval(summary)
        for signal in signals:
            if signal.device != m.gateway:
                fields = gw.devices.setdefault(signal.device, {})
                body = _object(summary)
                if signal.role != "status" and isinstance(body, dict):
                    fields.update(body)
                if signal.role == "heartbeat" and every:
                    children.setdefault(signal.device, []).append(every)
            elif signal.role == "heartbeat" and every and all(x.device == m.gateway for x in signals):
                own.append(every)
    _subtrees(gw, m, topics)
    _listed(gw, m, topics)
    per_child = [min(v) for v in children.values()]
    beat = min(own) if own else statistics.median(per_child) if per_child else None
    gw.heartbeat_s = round(beat, 1) if beat else None
    return gw


def _subtrees(gw: Gateway, m: Matcher, topics: Mapping[str, TopicSummary]) -> None:
    """A topic level named after a device holds that device's other topics (zhian's telemetry
    beside its heartbeat): what they report tells the device's type."""
    for topic, summary in topics.items():
        parent, _, _ = topic.rpartition("/")
        device = parent.rpartition("/")[2]
        if device in gw.devices and parent.startswith(m.root + "/"):
            body = _object(summary)
            if isinstance(body, dict) and not any(s.role == "status" for s in m.signals(topic)):
                gw.devices[device].update(body)


def _listed(gw: Gateway, m: Matcher, topics: Mapping[str, TopicSummary]) -> None:
    """zigbee2mqtt's retained `bridge/devices`: devices silent in the window, and what each exposes."""
    spec = m.profile.device_list
    if spec is None:
        return
    rows = _object(topics.get(spec.topic.format(root=m.root, site=m.site)))
    for row in rows if isinstance(rows, list) else ():
        device = row.get(spec.id_field) if isinstance(row, dict) else None
        if not isinstance(device, str) or not device or device in m.profile.reserved:
            continue
        if any(row.get(key) in values for key, values in spec.skip.items()):
            continue
        gw.devices.setdefault(device, {})
        if spec.exposes_field:
            gw.exposes[device] = frozenset(_features(_at(row, spec.exposes_field)))


def _at(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _features(value: Any) -> Iterable[str]:
    """Every feature's `property` (else `name`), nested composites included."""
    if isinstance(value, list):
        for item in value:
            yield from _features(item)
    elif isinstance(value, dict):
        word = value.get("property", value.get("name"))
        if isinstance(word, str):
            yield word
        yield from _features(value.get("features"))


def gateways_heard(
    topics: Mapping[str, TopicSummary], profiles: Sequence[tuple[MqttProfile, Path | None]]
) -> list[Gateway]:
    """Every gateway the topics show, under the first profile that finds it (discovery profiles,
    whose configs name their topics outright, before those found by a topic's shape)."""
    claimed: set[str] = set()
    out: list[Gateway] = []
    for profile, file in sorted(profiles, key=lambda p: not p[0].discovery):
        for m, nodes in _found(profile, topics):
            gw = _read(m, nodes, topics, claimed)
            gw.profile_file = file
            if nodes is not None and m.gateway == profile.topic_root:
                gw.todo = (
                    f"no {profile.name} config names the hub these devices are reached through (via_device)"
                )
            # a gateway has devices or beats; a lone retained status (the platform's own) is no gateway
            if gw.devices or gw.heartbeat_s:
                out.append(gw)
    return out


def kept_whole(profiles: Sequence[tuple[MqttProfile, Path | None]]) -> Callable[[str], bool]:
    """The topics read in full, past the window's usual 512 bytes: discovery configs and device lists."""
    prefixes = tuple(p.topic_root + "/" for p, _ in profiles if p.discovery)
    lists = [finder(p.device_list.topic) for p, _ in profiles if p.device_list is not None]

    def whole(topic: str) -> bool:
        if topic.startswith(prefixes) and topic.endswith("/config"):
            return True
        return any(f.match(topic) for f in lists)

    return whole


async def mqtt_gateways(
    conn: Connection, window_s: float, profiles: Sequence[tuple[MqttProfile, Path | None]]
) -> list[Gateway]:
    async with MqttClient(conn) as client:
        seen = await client.observe(["#"], window_s, whole=kept_whole(profiles))
    return gateways_heard(seen.topics, profiles)

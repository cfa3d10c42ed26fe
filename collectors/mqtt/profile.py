"""An MQTT gateway's topic shape as data: which topics carry a device's status, its signs of life
and its alarms, where the device id sits in them, and what their payloads mean.

Gateways disagree: zhian's own tree (`{root}/{site}/{gateway}/{device}/{leaf}`), zigbee2mqtt
(`{root}/{friendly_name}` state, retained `{root}/{friendly_name}/availability`,
`{root}/bridge/state`), Home Assistant MQTT discovery (retained
`{prefix}/{component}/[{node_id}/]{object_id}/config` naming each entity's state and availability
topics), and vendor shapes. A profile (collectors/mqtt/profiles/<name>.yaml, or a site's own file)
is validated at load and compiled into a matcher: a function from a topic (and, for a status, its
payload) to the device it is about and what it says. It works on any subscription, one window
per gateway or one per broker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collectors.profile_file import parse_profile_text, read_profile_text

PROFILE_DIR = Path(__file__).parent / "profiles"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
Role = Literal["status", "heartbeat", "alarm"]
ROLES: tuple[Role, ...] = ("status", "heartbeat", "alarm")
_PLACES = ("root", "site", "gateway", "device")
_PLACE = re.compile(r"\{(\w+)\}")


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the place named."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicRule(_Strict):
    """Topics of one shape: `{root}` and `{site}` are the inventory's, `{gateway}` and `{device}`
    one topic level each, taken from the topic. Without `{device}` the topic is the gateway's own
    (`of: gateway`); `of: gateway` on a device's topic also counts it towards its gateway."""

    pattern: str
    role: Role
    of: Literal["device", "gateway", "both"] = "device"

    @model_validator(mode="after")
    def _places_known(self) -> TopicRule:
        unknown = set(_PLACE.findall(self.pattern)) - set(_PLACES)
        if unknown:
            raise ValueError(f"pattern {self.pattern!r}: unknown place {{{sorted(unknown)[0]}}}")
        if "{device}" not in self.pattern and self.of == "device":
            raise ValueError(f"pattern {self.pattern!r} names no {{device}}: give of: gateway")
        if any(c in self.pattern for c in "+#"):
            raise ValueError(f"pattern {self.pattern!r}: wildcards go in subscribe, not in patterns")
        return self


class StatusWords(_Strict):
    """How a status payload reads: a JSON field (the first of `fields` present) or the bare
    payload, compared case-insensitively with the words for online and offline."""

    fields: tuple[str, ...] = ("state",)
    online: tuple[str, ...] = ("online",)
    offline: tuple[str, ...] = ("offline",)
    reason_field: str | None = None


class AlarmWords(_Strict):
    """JSON fields of a device's messages that raise an alarm, and the values that do."""

    fields: dict[str, tuple[str | bool | int, ...]] = Field(default_factory=dict)


class DeviceList(_Strict):
    """A retained topic on which the gateway lists its devices (zigbee2mqtt's `bridge/devices`): a
    JSON array of objects, each naming a device in `id_field`; entries whose `skip` field holds one
    of its values are not devices (the coordinator). What a device can report is read from the
    `name`/`property` of the features under `exposes_field` (a dotted path)."""

    topic: str
    id_field: str
    skip: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    exposes_field: str | None = None


class MqttProfile(_Strict):
    name: str
    document: str  # where the shape was taken from
    topic_root: str  # the base topic when the inventory gives none
    needs_site: bool = False  # the tree has a {site} level (the inventory must give it)
    subscribe: tuple[str, ...]  # filters; {root} and {site} filled in
    topics: tuple[TopicRule, ...] = ()
    reserved: tuple[str, ...] = ()  # {device} values that are not devices (zigbee2mqtt's `bridge`)
    status: StatusWords = Field(default_factory=StatusWords)
    alarm: AlarmWords = Field(default_factory=AlarmWords)
    last_seen_field: str | None = None
    # Home Assistant MQTT discovery: the entities' topics come from the retained config messages
    # under the discovery prefix (the inventory's topic_root)
    discovery: bool = False
    device_list: DeviceList | None = None

    @model_validator(mode="after")
    def _usable(self) -> MqttProfile:
        if not self.topics and not self.discovery:
            raise ValueError("topics: a profile needs topic patterns, or discovery")
        if not self.subscribe:
            raise ValueError("subscribe: at least one filter")
        return self


def parse_profile(text: str, source: str = "<profile>") -> MqttProfile:
    return parse_profile_text(text, source, MqttProfile, ProfileError)


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> MqttProfile:
    """The profile shipped as profiles/<name>.yaml."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not _NAME.match(name) or not path.is_file():
        shipped = ", ".join(shipped_profiles())
        raise ProfileError(
            f"no MQTT profile {name!r} shipped (shipped: {shipped}); a site's own goes in profile_file:"
        )
    profile = parse_profile(path.read_text(encoding="utf-8"), str(path))
    if profile.name != name:
        raise ProfileError(f"{path}: names itself {profile.name!r}")
    return profile


def load_profile_file(path: Path) -> MqttProfile:
    text = read_profile_text(path, "an MQTT profile", ProfileError)
    return parse_profile(text, str(path))


# -- the matcher ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signal:
    """What one topic says about one device: its status, a sign of life, or an alarm."""

    device: str
    role: Role


@dataclass(frozen=True)
class StatusWord:
    state: str | None  # "online", "offline", another word, or None (unreadable)
    reason: str | None


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _word(
    body: Any, payload: bytes, words: StatusWords, online: Iterable[str], offline: Iterable[str]
) -> StatusWord:
    reason = None
    if isinstance(body, dict):
        raw = next((body[f] for f in words.fields if f in body), None)
        if words.reason_field and isinstance(body.get(words.reason_field), str):
            reason = body[words.reason_field]
    else:
        raw = payload.decode(errors="replace").strip()
    if not isinstance(raw, str):
        return StatusWord(None, reason)
    text = raw.strip().lower()
    if text in {w.lower() for w in online}:
        return StatusWord("online", reason)
    if text in {w.lower() for w in offline}:
        return StatusWord("offline", reason)
    return StatusWord(text, reason)


@dataclass(frozen=True)
class _Entity:
    """A Home Assistant entity's availability payloads, learnt from its discovery config."""

    device: str
    online: tuple[str, ...]
    offline: tuple[str, ...]


def _ha_topic(value: Any, base: str) -> str | None:
    """A discovery topic value with `~` (the config's base topic) expanded at either end."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("~"):
        return base + value[1:]
    if value.endswith("~"):
        return value[:-1] + base
    return value


@dataclass
class Matcher:
    """A profile compiled for one gateway: `signals(topic)` and `status_word(topic, payload)`."""

    profile: MqttProfile
    root: str
    site: str
    gateway: str
    _rules: list[tuple[re.Pattern[str], TopicRule]] = field(default_factory=list)
    _learnt: dict[str, list[Signal]] = field(default_factory=dict)
    _availability: dict[str, _Entity] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.profile.topics:
            self._rules.append((self._compile(rule.pattern), rule))

    def _compile(self, pattern: str) -> re.Pattern[str]:
        out, last = [], 0
        for m in _PLACE.finditer(pattern):
            out.append(re.escape(pattern[last : m.start()]))
            place = m.group(1)
            if place in ("root", "site"):
                out.append(re.escape(self.root if place == "root" else self.site))
            else:
                out.append(f"(?P<{place}>[^/]+)")
            last = m.end()
        out.append(re.escape(pattern[last:]))
        return re.compile("^" + "".join(out) + "$")

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(f.format(root=self.root, site=self.site) for f in self.profile.subscribe)

    def signals(self, topic: str) -> list[Signal]:
        """The devices a topic speaks of and in which role; [] for a topic of none."""
        found = list(self._learnt.get(topic, ()))
        for regex, rule in self._rules:
            m = regex.match(topic)
            if m is None:
                continue
            groups = m.groupdict()
            if groups.get("gateway", self.gateway) != self.gateway:
                continue
            device = groups.get("device")
            if device in self.profile.reserved:
                continue
            if device is not None and rule.of in ("device", "both"):
                found.append(Signal(device, rule.role))
            if device is None or rule.of in ("gateway", "both"):
                found.append(Signal(self.gateway, rule.role))
        return found

    def status_word(self, topic: str, payload: bytes) -> StatusWord:
        words = self.profile.status
        entity = self._availability.get(topic)
        online, offline = (entity.online, entity.offline) if entity else (words.online, words.offline)
        return _word(_json(payload), payload, words, online, offline)

    def alarm(self, payload: bytes) -> str | None:
        """The alarm a device's message raises (`smoke`, `gas`, `action:sos` ...), or None."""
        body = _json(payload)
        if not isinstance(body, dict):
            return None
        for name, values in self.profile.alarm.fields.items():
            value = body.get(name)
            if value is not None and value in values:
                return name if isinstance(value, bool) else f"{name}:{value}"
        return None

    def learn(self, configs: Mapping[str, bytes]) -> None:
        """Home Assistant discovery: each entity's state and availability topics, from the retained
        configs (`{prefix}/{component}/[{node_id}/]{object_id}/config`); the device is the node."""
        if not self.profile.discovery:
            return
        for device, body in _discovery_configs(self.root, configs):
            base = body.get("~", "")
            state = _ha_topic(body.get("state_topic", body.get("stat_t")), base)
            if state:
                self._learnt.setdefault(state, []).extend(
                    [Signal(device, "heartbeat"), Signal(device, "alarm")]
                )
            rows = body.get("availability", body.get("avty"))
            single = _ha_topic(body.get("availability_topic", body.get("avty_t")), base)
            entries = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            if single:
                entries.append({"topic": single})
            for row in entries:
                avail = _ha_topic(row.get("topic", row.get("t")), base)
                if not avail:
                    continue
                on = row.get(
                    "payload_available",
                    row.get("pl_avail", body.get("payload_available", body.get("pl_avail", "online"))),
                )
                off = row.get(
                    "payload_not_available",
                    row.get(
                        "pl_not_avail", body.get("payload_not_available", body.get("pl_not_avail", "offline"))
                    ),
                )
                self._availability[avail] = _Entity(device, (str(on),), (str(off),))
                self._learnt.setdefault(avail, []).append(Signal(device, "status"))

    def is_config(self, topic: str) -> bool:
        return self.profile.discovery and topic.startswith(self.root + "/") and topic.endswith("/config")


def _discovery_configs(prefix: str, configs: Mapping[str, bytes]) -> Iterable[tuple[str, dict[str, Any]]]:
    """Each readable config under the prefix, with the device it is about (the node_id, else the
    object_id of `{prefix}/{component}/[{node_id}/]{object_id}/config`)."""
    shape = re.compile("^" + re.escape(prefix) + r"/[^/]+/(?:(?P<node>[^/]+)/)?(?P<object>[^/]+)/config$")
    for topic, payload in configs.items():
        m = shape.match(topic)
        body = _json(payload) if m else None
        if m is not None and isinstance(body, dict):
            yield m.group("node") or m.group("object"), body


def matcher(profile: MqttProfile, root: str | None, site: str | None, gateway: str) -> Matcher:
    return Matcher(profile, (root or profile.topic_root).strip("/"), site or "", gateway)


# -- finding gateways nobody described (zhian discover) ----------------------------------------------------
def finder(pattern: str, same_device: bool = False) -> re.Pattern[str]:
    """A pattern with every place captured (`{root}` any number of levels, the others one each)."""
    out, last, seen = [], 0, set()
    for m in _PLACE.finditer(pattern):
        out.append(re.escape(pattern[last : m.start()]))
        place = m.group(1)
        if place == "device" and same_device:
            out.append("(?P=gateway)")
        elif place in seen:
            out.append(f"(?P={place})")
        else:
            out.append(f"(?P<{place}>.+)" if place == "root" else f"(?P<{place}>[^/]+)")
            seen.add(place)
        last = m.end()
    out.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(out) + "$")


def gateway_finders(profile: MqttProfile) -> list[re.Pattern[str]]:
    """Regexes of the topics a gateway of this shape publishes about itself, with `root`, `site` and
    `gateway` captured: how a gateway is found on a broker nobody described. A gateway's own topic
    is one without `{device}` (zigbee2mqtt's `bridge/state`) or one where the gateway reports with
    its own id as the device (zhian's tree); a pattern of places only (`{root}/{device}`) could be
    anything and finds nothing. Discovery profiles (Home Assistant) are found by their configs."""
    finders = []
    for rule in profile.topics:
        literal = _PLACE.sub("", rule.pattern).strip("/")
        if not literal:
            continue
        if "{device}" not in rule.pattern:
            finders.append(finder(rule.pattern, same_device=False))
        elif "{gateway}" in rule.pattern and rule.of in ("device", "both"):
            finders.append(finder(rule.pattern, same_device=True))
    return finders


@dataclass
class Node:
    """A Home Assistant discovery node: the hub it is reached through (`device.via_device`, None when
    no config names one) and the device classes of its entities (`smoke`, `gas` ...)."""

    via: str | None = None
    classes: set[str] = field(default_factory=set)


def discovery_nodes(prefix: str, configs: Mapping[str, bytes]) -> dict[str, Node]:
    """Home Assistant discovery: each node (the device a config is about, as Matcher.learn names it)."""
    nodes: dict[str, Node] = {}
    for name, body in _discovery_configs(prefix, configs):
        node = nodes.setdefault(name, Node())
        device = body.get("device", body.get("dev"))
        via = device.get("via_device") if isinstance(device, dict) else None
        if node.via is None and isinstance(via, str) and via:
            node.via = via
        kind = body.get("device_class", body.get("dev_cla"))
        if isinstance(kind, str) and kind:
            node.classes.add(kind)
    return nodes

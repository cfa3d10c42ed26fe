"""What a probe is pointed at: a device of the site, with its secret kept out of every repr."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

TargetKind = Literal[
    "camera", "nvr", "door", "panel", "broker", "gateway", "mqtt_device", "platform"
]  # fmt: skip


@dataclass(frozen=True)
class Secret:
    """A password that prints as *** wherever it ends up (logs, reprs, tracebacks)."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class Target:
    id: str
    kind: TargetKind
    protocol: str  # onvif | isapi | modbus | mqtt | http
    host: str
    port: int
    area: str
    tags: Mapping[str, str | bool | int] = field(default_factory=dict)
    tls: bool = False
    tls_auto: bool = False  # the inventory said `tls: auto`: `tls` is what the device answered
    path: str = ""
    username: str | None = None
    password: Secret | None = None
    # kind-specific facts from the inventory: recorded_by, channel, fire_zone, door, unit_id,
    # profile, zones, broker, topic_root, site, heartbeat_s, type, gateway, alert_topic_root ...
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key_location(self) -> bool:
        return self.tags.get("key_location") is True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def secrets(self) -> tuple[str, ...]:
        return (self.password.value,) if self.password else ()


@dataclass(frozen=True)
class SiteView:
    """The inventory as probes see it."""

    name: str
    targets: tuple[Target, ...]

    # Indexes built on first use: probes look devices up for every job, and a scan of a large
    # site's 6,000 targets per job made the lookups quadratic.
    @cached_property
    def _by_id(self) -> dict[str, Target]:
        return {t.id: t for t in reversed(self.targets)}  # the first of a repeated id, as a scan

    @cached_property
    def _by_kind(self) -> dict[str, tuple[Target, ...]]:
        kinds: dict[str, list[Target]] = {}
        for t in self.targets:
            kinds.setdefault(t.kind, []).append(t)
        return {kind: tuple(found) for kind, found in kinds.items()}

    def get(self, target_id: str) -> Target:
        try:
            return self._by_id[target_id]
        except KeyError:
            raise KeyError(f"no device {target_id!r} in the inventory") from None

    def of_kind(self, kind: TargetKind) -> tuple[Target, ...]:
        return self._by_kind.get(kind, ())

    def in_area(self, area: str, kind: TargetKind | None = None) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.area == area and (kind is None or t.kind == kind))

    @property
    def platform(self) -> Target | None:
        found = self.of_kind("platform")
        return found[0] if found else None

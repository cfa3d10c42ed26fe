"""The community file: areas, devices with their roles and faults, linkage timing.

Parsed strictly (unknown keys are errors) so that a community that does not say what it means
fails at load time with the device and key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.expand import ExpandError, expand_devices
from simulator.faults import Fault, FaultBase

DeviceKind = Literal["camera", "nvr", "door", "panel", "gateway", "platform"]
Protocol = Literal["onvif", "isapi", "modbus", "mqtt", "http"]
AreaKind = Literal[
    "perimeter",
    "unit_entrance",
    "garage",
    "rooftop_access",
    "pump_room",
    "charging_area",
    "monitoring_center",
    "public_space",
    "parcel_room",
    "fire_lane",
    "elevator",
    "power_room",
    "residence",
]
F = TypeVar("F", bound=FaultBase)

MqttDeviceType = Literal[
    "intercom", "smoke_detector", "gas_detector", "emergency_button", "charger", "lighting_relay"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencySpec(_Strict):
    """Reply latency of one protocol: lognormal around a median, as embedded devices behave."""

    median_ms: float = Field(ge=0)
    sigma: float = Field(default=0.5, ge=0)
    max_ms: float = Field(default=5000, ge=0)


def _default_latency() -> dict[str, LatencySpec]:
    return {
        "onvif": LatencySpec(median_ms=80, sigma=0.6),
        "onvif_search": LatencySpec(median_ms=400, sigma=0.5),
        "isapi": LatencySpec(median_ms=60, sigma=0.6),
        "modbus": LatencySpec(median_ms=20, sigma=0.4),
        "mqtt": LatencySpec(median_ms=10, sigma=0.4),
        "http": LatencySpec(median_ms=30, sigma=0.5),
    }


class Area(_Strict):
    id: str
    kind: AreaKind
    name_zh: str = ""
    building: str | None = None


class Building(_Strict):
    id: str
    name_zh: str
    units: int = Field(default=1, ge=1)
    floors: int = Field(default=6, ge=1)


class Credentials(_Strict):
    username: str
    password: str


class CameraParams(_Strict):
    """A camera with on-board (edge) storage or recorded by an NVR (recorded_by)."""

    retention_days: float = Field(default=35, ge=0)
    configured_retention_days: float | None = None  # MaximumRetentionTime; None = disk-bound (0)
    recorded_by: str | None = None
    channel: int = Field(default=1, ge=1)
    analytics: bool = True
    manufacturer: str = "Hikvision"
    model: str = "DS-2CD2T47G2-L"


class NvrParams(_Strict):
    retention_days: float = Field(default=35, ge=0)
    configured_retention_days: float | None = None
    profile_g: bool = True  # False: Profile S only, retention readable only over ISAPI
    manufacturer: str = "Hikvision"
    model: str = "DS-7716NI-K4"


class DoorParams(_Strict):
    fire_zone: str | None = None  # the fire zone whose alarm unlocks this door
    held_open_alarm_s: float = Field(default=30, gt=0)
    manufacturer: str = "Hikvision"
    model: str = "DS-K1T671M"


class PanelZone(_Strict):
    id: int = Field(ge=1)
    area: str


class PanelParams(_Strict):
    profile: str = "generic-fire-panel"
    unit_id: int = Field(default=1, ge=1, le=247)
    zones: list[PanelZone] = Field(default_factory=list)
    water_tank_level_cm: int = 320
    water_tank_low_cm: int = 150
    pipe_pressure_kpa: int = 450
    pipe_pressure_low_kpa: int = 250


class MqttDevice(_Strict):
    id: str
    type: MqttDeviceType
    area: str
    tags: dict[str, str | bool | int] = Field(default_factory=dict)
    faults: list[Fault] = Field(default_factory=list)


class GatewayParams(_Strict):
    heartbeat_s: float = Field(default=30, gt=0)
    keepalive_s: int = Field(default=60, gt=0)
    topic_root: str = "zhian-sim"
    # the topic shape it speaks (simulator/mqtt/dialect.py): zhian's tree, zigbee2mqtt's, or Home
    # Assistant discovery; only zhian's tree takes relay commands and is read by the platform
    mqtt_profile: Literal["zhian", "zigbee2mqtt", "homeassistant"] = "zhian"
    devices: list[MqttDevice] = Field(default_factory=list)


class PlatformParams(_Strict):
    # the API it speaks: zhian's (docs/platform-api.md) or Hikvision's artemis gateway
    # (docs/platform-artemis.md; the AppKey/AppSecret are the platform's credentials)
    profile: Literal["zhian", "hikvision-artemis"] = "zhian"
    offline_after_s: float = Field(default=90, gt=0)  # heartbeat silence before the offline alert
    poll_interval_s: float = Field(default=30, gt=0)  # camera / panel / door health polls


class DeviceSpec(_Strict):
    id: str
    kind: DeviceKind
    protocol: Protocol
    area: str
    tags: dict[str, str | bool | int] = Field(default_factory=dict)
    faults: list[Fault] = Field(default_factory=list)
    credentials: Credentials | None = None  # generated per device when absent
    camera: CameraParams | None = None
    nvr: NvrParams | None = None
    door: DoorParams | None = None
    panel: PanelParams | None = None
    gateway: GatewayParams | None = None
    platform: PlatformParams | None = None

    @model_validator(mode="after")
    def _params_match_kind(self) -> DeviceSpec:
        allowed = {
            "camera": {"onvif"},
            "nvr": {"onvif", "isapi"},
            "door": {"onvif", "isapi"},
            "panel": {"modbus"},
            "gateway": {"mqtt"},
            "platform": {"http"},
        }[self.kind]
        if self.protocol not in allowed:
            raise ValueError(f"a {self.kind} speaks {sorted(allowed)}, not {self.protocol!r}")
        for kind in ("camera", "nvr", "door", "panel", "gateway", "platform"):
            if kind != self.kind and getattr(self, kind) is not None:
                raise ValueError(f"'{kind}' parameters on a {self.kind}")
        return self

    def fault(self, kind: type[F]) -> F | None:
        """The first fault of this type, if injected."""
        return next((f for f in self.faults if isinstance(f, kind)), None)


class LinkageTiming(_Strict):
    """Seconds from the trigger to each effect, as the site's integration is set up."""

    fire_unlock_doors_s: float = Field(default=2.0, ge=0)
    fire_camera_alarm_s: float = Field(default=1.0, ge=0)
    fire_emergency_lighting_s: float = Field(default=2.0, ge=0)
    fire_broadcast_s: float = Field(default=3.0, ge=0)
    fire_platform_alert_s: float = Field(default=1.0, ge=0)
    intrusion_camera_alarm_s: float = Field(default=1.0, ge=0)
    intrusion_lighting_s: float = Field(default=2.0, ge=0)
    intrusion_platform_alert_s: float = Field(default=1.0, ge=0)

    def scaled(self, factor: float) -> LinkageTiming:
        return LinkageTiming(**{k: v * factor for k, v in self.model_dump().items()})


class Community(_Strict):
    name: str
    name_zh: str = ""
    address_base: str = Field(default="127.20", pattern=r"^127\.\d{1,3}$")
    tls: bool = True
    mqtt_plaintext_listener: bool = False  # plain MQTT offered beside TLS (itself a finding)
    seed: int = 20230630
    latency: dict[str, LatencySpec] = Field(default_factory=_default_latency)
    linkage: LinkageTiming = Field(default_factory=LinkageTiming)
    buildings: list[Building] = Field(default_factory=list)
    areas: list[Area]
    devices: list[DeviceSpec]

    @model_validator(mode="after")
    def _references_resolve(self) -> Community:
        area_ids = {a.id for a in self.areas}
        seen: set[str] = set()

        def check(dev_id: str, area: str) -> None:
            if dev_id in seen:
                raise ValueError(f"device {dev_id!r}: duplicate id")
            seen.add(dev_id)
            if area not in area_ids:
                raise ValueError(f"device {dev_id!r}: unknown area {area!r}")

        for d in self.devices:
            check(d.id, d.area)
            for child in d.gateway.devices if d.gateway else []:
                check(child.id, child.area)
            for zone in d.panel.zones if d.panel else []:
                if zone.area not in area_ids:
                    raise ValueError(f"device {d.id!r}: zone {zone.id} in unknown area {zone.area!r}")
        ids = {d.id for d in self.devices}
        for d in self.devices:
            if d.camera and d.camera.recorded_by and d.camera.recorded_by not in ids:
                raise ValueError(f"device {d.id!r}: recorded_by unknown device {d.camera.recorded_by!r}")
        if sum(1 for d in self.devices if d.kind == "platform") != 1:
            raise ValueError("a community has exactly one platform device")
        return self

    def area(self, area_id: str) -> Area:
        return next(a for a in self.areas if a.id == area_id)


class CommunityError(Exception):
    """A community file that cannot be used, with the file and the place named."""


def load_community(path: Path) -> Community:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CommunityError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CommunityError(f"{path}: a community file is a mapping")
    raw = _with_base(raw, path)
    try:
        raw["devices"] = expand_devices(raw.get("devices") or [])
    except ExpandError as exc:
        raise CommunityError(f"{path}: {exc}") from exc
    _inject(raw, raw.pop("inject", None) or {}, path)
    try:
        return Community.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CommunityError(f"{path}: {where}: {first['msg']}") from exc


def _with_base(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """`base: other.yaml` takes that community and overrides its top-level keys."""
    base = raw.pop("base", None)
    if base is None:
        return raw
    base_path = path.parent / str(base)
    try:
        base_raw = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CommunityError(f"{path}: base {base_path}: {exc}") from exc
    if not isinstance(base_raw, dict) or "base" in base_raw:
        raise CommunityError(f"{path}: base {base_path} must be a plain community file")
    return {**base_raw, **raw}


def _inject(raw: dict[str, Any], inject: dict[str, Any], path: Path) -> None:
    """`inject: {device_id: [faults]}` adds faults to devices and gateway children by id."""
    targets: dict[str, dict[str, Any]] = {}
    for device in raw["devices"]:
        targets[device["id"]] = device
        for child in (device.get("gateway") or {}).get("devices") or []:
            targets[child["id"]] = child
    for device_id, faults in inject.items():
        if device_id not in targets:
            raise CommunityError(f"{path}: inject.{device_id}: no such device")
        if not isinstance(faults, list):
            raise CommunityError(f"{path}: inject.{device_id}: expected a list of faults")
        targets[device_id]["faults"] = [*(targets[device_id].get("faults") or []), *faults]

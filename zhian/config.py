"""The run configuration: the community, its inventory, thresholds, and what may be done actively.

Parsed strictly: an unknown key, a wrong type or a dangling reference is an error that names the
file, the line and the key. Secrets are never written in the file, only referenced (`env:NAME` or
`file:PATH`), and resolved at the last moment so that they cannot leak into evidence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collectors.limits import DEFAULT_MAX_REPLY_BYTES
from zhian.errors import UsageError
from zhian.yamlsource import Loc, Problem

SecretRef = Annotated[str, StringConstraints(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")]
ActiveTest = Literal["fire_linkage", "intrusion_linkage", "offline_alert", "credentials", "lockout"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommunityInfo(_Strict):
    name: str
    operator: str = ""
    address: str = ""
    target_level: Literal["A", "B", "C"] = "C"
    timezone: str = "Asia/Shanghai"  # IANA name: the report shows every time in the site's zone

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value


AreaKind = Literal[
    "perimeter", "unit_entrance", "garage", "rooftop_access", "pump_room", "charging_area",
    "monitoring_center", "public_space", "parcel_room", "fire_lane", "elevator", "power_room",
    "residence",
]  # fmt: skip


class Area(_Strict):
    id: str
    kind: AreaKind
    name: str = ""


class CredentialSet(_Strict):
    username: str
    password: SecretRef


class Device(_Strict):
    id: str
    host: str
    port: int = Field(ge=1, le=65535)
    area: str
    tags: dict[str, str | bool | int] = Field(default_factory=dict)
    credentials: str | None = None  # a name in `credentials`

    @property
    def key_location(self) -> bool:
        return self.tags.get("key_location") is True


TlsMode = bool | Literal["auto"]  # auto: TLS when the device speaks it, else plain HTTP (once a run)


class HttpDevice(Device):
    tls: TlsMode = "auto"
    path: str = "/onvif/device_service"


class Camera(HttpDevice):
    protocol: Literal["onvif"] = "onvif"
    recorded_by: str | None = None  # an NVR id; None = the camera records on its own storage
    channel: int = Field(default=1, ge=1)


class Nvr(HttpDevice):
    protocol: Literal["onvif", "isapi"] = "onvif"


class Door(HttpDevice):
    protocol: Literal["onvif", "isapi"] = "onvif"
    fire_zone: str | None = None  # the area whose fire alarm must unlock this door
    door: str = "1"  # ONVIF door token or ISAPI door number


class PanelZone(_Strict):
    id: int = Field(ge=1)
    area: str
    charger: bool = False  # the zone monitors charging piles (maps without a per-zone flag need it)


class Panel(Device):
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=247)
    profile: str = "generic-fire-panel"  # a register map shipped in collectors/modbus/profiles/
    profile_file: Path | None = None  # the site's own register map (relative to the config)
    zones: list[PanelZone] = Field(default_factory=list)


class Broker(Device):
    port: int = Field(default=8883, ge=1, le=65535)
    tls: bool = True
    plain_port: int | None = None  # a plaintext listener the site also runs, if any


GatewayChildType = Literal[
    "intercom", "smoke_detector", "gas_detector", "emergency_button", "charger", "lighting_relay"
]


class GatewayChild(_Strict):
    id: str
    type: GatewayChildType
    area: str
    tags: dict[str, str | bool | int] = Field(default_factory=dict)


class Gateway(_Strict):
    id: str
    broker: str
    area: str
    # the topic shape: a profile shipped in collectors/mqtt/profiles/ (zhian, zigbee2mqtt,
    # homeassistant), or the site's own (profile_file, relative to the config)
    profile: str = "zhian"
    profile_file: Path | None = None
    topic_root: str | None = None  # the base topic; the profile's default when absent
    site: str | None = None  # the community's level in the topic tree (profiles with {site})
    heartbeat_s: float = Field(default=30, gt=0)
    devices: list[GatewayChild] = Field(default_factory=list)


class AlertReceiver(_Strict):
    """zhian's own HTTP endpoint the platform POSTs its alerts to (webhook / event callback)."""

    listen: str = "0.0.0.0"  # the address zhian listens on
    port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port (tests)
    public_url: str | None = None  # what the platform must call, when not http://listen:port/path
    max_body_kb: int = Field(default=256, ge=1, le=16384)
    subscribe: bool = True  # ask the platform to call zhian at the start of the run


class Platform(Device):
    tls: TlsMode = "auto"
    path: str = "/api/v1"  # the zhian profile's base path
    profile: str = "zhian"  # zhian | hikvision-artemis | the name inside profile_file
    profile_file: str | None = None  # a site's own platform profile, relative to the config
    receiver: AlertReceiver | None = None
    broker: str | None = None  # where it publishes its alerts
    alert_topic_root: str | None = None


class Inventory(_Strict):
    cameras: list[Camera] = Field(default_factory=list)
    nvrs: list[Nvr] = Field(default_factory=list)
    doors: list[Door] = Field(default_factory=list)
    panels: list[Panel] = Field(default_factory=list)
    brokers: list[Broker] = Field(default_factory=list)
    gateways: list[Gateway] = Field(default_factory=list)
    platform: Platform | None = None


class LinkageDeadlines(_Strict):
    doors_unlock_s: float = Field(default=10, gt=0)
    camera_alarm_s: float = Field(default=10, gt=0)
    emergency_lighting_s: float = Field(default=10, gt=0)
    broadcast_s: float = Field(default=15, gt=0)
    platform_alert_s: float = Field(default=10, gt=0)
    lighting_s: float = Field(default=10, gt=0)


class Thresholds(_Strict):
    retention_days: float = Field(default=30, gt=0)
    retention_days_key: float = Field(default=90, gt=0)
    recording_fresh_s: float = Field(default=600, gt=0)
    heartbeat_interval_s: float = Field(default=30, gt=0)
    heartbeat_misses: int = Field(default=3, ge=1)  # N missed intervals make an outage (debounce)
    observe_s: float = Field(default=100, gt=0)  # passive observation window: > misses x heartbeat
    offline_alert_window_s: float = Field(default=180, gt=0)
    clock_skew_max_s: float = Field(default=10, ge=0)
    linkage: LinkageDeadlines = Field(default_factory=LinkageDeadlines)


class Sampling(_Strict):
    mode: Literal["inspection", "monitoring"] = "inspection"  # monitoring covers every device
    seed: int | None = None


class Active(_Strict):
    allow: list[ActiveTest] = Field(default_factory=list)
    guided: bool = True  # the operator sets triggers off by hand; zhian waits and times effects
    operator_hook: str | None = None  # URL that plays the operator (the simulator's control plane)
    # after a test, how long zhian waits for the site to put back what it moved (doors relock,
    # alarms clear, lights go off) before it asks the operator to do it by hand
    restore_settle_s: float = Field(default=10, ge=0)


class Limits(_Strict):
    # Limits guard resources: a device's connections (per_host), the inspector's open connections
    # and handshakes (connections), the CPU (concurrency: call-bound jobs in flight, by default as
    # many as connections; 1 runs them one after another). Observation windows never wait for it.
    concurrency: int | None = Field(default=None, ge=1)
    connections: int = Field(default=256, ge=1)
    per_host: int = Field(default=2, ge=1)
    call_timeout_s: float = Field(default=10, gt=0)
    probe_timeout_s: float = Field(default=300, gt=0)
    # no device reply is read past this; a larger one is an `error` finding, reply_too_large
    max_reply_bytes: int = Field(default=DEFAULT_MAX_REPLY_BYTES, ge=1024)


# How often `zhian monitor` runs each scheduled passive probe (seconds); probes not named run every
# default_interval_s. The live observers (heartbeats, gateway status) are not scheduled: they never stop.
DEFAULT_SCHEDULE: dict[str, float] = {
    "retention": 6 * 3600,
    "isapi_retention": 6 * 3600,
    "recording_alive": 600,
    "video_signal": 600,
    "clock_skew": 3600,
    "panel_liveness": 60,
    "fire_water": 60,
    "transport_security": 86400,
}


class Monitor(_Strict):
    """`zhian monitor`: the schedule of its checks and the life of its evidence."""

    schedule: dict[str, float] = Field(default_factory=dict)  # over DEFAULT_SCHEDULE
    default_interval_s: float = Field(default=3600, gt=0)
    jitter: float = Field(default=0.1, ge=0, lt=1)  # each interval varies by up to this share
    still_holds_s: float = Field(default=86400, gt=0)  # an unchanged indicator is re-recorded this often
    reconnect_min_s: float = Field(default=1, gt=0)  # a lost broker: first retry, doubling up to max
    reconnect_max_s: float = Field(default=60, gt=0)
    segment_max_mb: float = Field(default=256, gt=0)  # a segment is also closed past this size
    # ONVIF event subscriptions (cameras and doors): PullMessages waits up to event_pull_s; the
    # subscription lives event_termination_s and is renewed at half of it; every event_check_s a
    # synchronization point must bring the device's states back, or the subscription died silently
    events: bool = True
    event_pull_s: float = Field(default=10, gt=0)
    event_termination_s: float = Field(default=120, gt=0)
    event_check_s: float = Field(default=600, gt=0)
    alert_poll_s: float = Field(default=10, gt=0)  # the platform's offline alerts, while an outage waits
    linkage_poll_s: float = Field(default=2, gt=0)  # fire panels read for real alarms (the trigger's bound)

    @model_validator(mode="after")
    def _positive_intervals(self) -> Monitor:
        bad = sorted(probe for probe, every in self.schedule.items() if every <= 0)
        if bad:
            raise ValueError(f"monitor.schedule: intervals must be positive ({', '.join(bad)})")
        return self

    def every(self, probe: str) -> float:
        return self.schedule.get(probe, DEFAULT_SCHEDULE.get(probe, self.default_interval_s))


class Config(_Strict):
    version: Literal[1] = 1
    community: CommunityInfo
    ca_file: Path | None = None  # trust anchor for the site's TLS; system store when absent
    areas: list[Area] = Field(default_factory=list)
    credentials: dict[str, CredentialSet] = Field(default_factory=dict)
    inventory: Inventory
    thresholds: Thresholds = Field(default_factory=Thresholds)
    sampling: Sampling = Field(default_factory=Sampling)
    active: Active = Field(default_factory=Active)
    limits: Limits = Field(default_factory=Limits)
    monitor: Monitor = Field(default_factory=Monitor)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> Config:
        """Refuse a dangling reference; the config check lists them all itself, with their lines."""
        if not (info.context or {}).get(ALL_PROBLEMS):
            problems = reference_problems(self)
            if problems:
                raise ValueError(problems[0].message)
        return self


ALL_PROBLEMS = "all_problems"  # validation context: leave cross-item checks to reference_problems


def devices_of(inv: Inventory) -> list[tuple[Loc, Any]]:
    """Every device of the inventory with where it sits in the file."""
    out: list[tuple[Loc, Any]] = []
    for kind in ("cameras", "nvrs", "doors", "panels", "brokers", "gateways"):
        out += [(("inventory", kind, i), d) for i, d in enumerate(getattr(inv, kind))]
    if inv.platform is not None:
        out.append((("inventory", "platform"), inv.platform))
    return out


def reference_problems(config: Config) -> list[Problem]:
    """Ids used twice and references to what is not there, each at the entry that holds it."""
    problems: list[Problem] = []
    inv = config.inventory
    devices = devices_of(inv)
    children = [
        ((*loc, "devices", j), child)
        for loc, gw in devices
        if isinstance(gw, Gateway)
        for j, child in enumerate(gw.devices)
    ]
    first: dict[str, Loc] = {}
    for loc, d in [*devices, *children]:
        if d.id in first:
            problems.append(Problem((*loc, "id"), f"device id {d.id!r} is used twice", other=first[d.id]))
        else:
            first[d.id] = loc
        cred = getattr(d, "credentials", None)
        if cred is not None and cred not in config.credentials:
            problems.append(Problem((*loc, "credentials"), f"credentials {cred!r} are not defined"))
    area_ids = {a.id for a in config.areas}
    for loc, d in [*devices, *children]:
        if d.area not in area_ids:
            problems.append(Problem((*loc, "area"), f"area {d.area!r} is not in areas"))
    nvr_ids = {n.id for n in inv.nvrs}
    broker_ids = {b.id for b in inv.brokers}
    for loc, d in devices:
        if isinstance(d, Camera) and d.recorded_by is not None and d.recorded_by not in nvr_ids:
            problems.append(Problem((*loc, "recorded_by"), f"recorded_by {d.recorded_by!r} is no NVR"))
        broker = getattr(d, "broker", None)
        if isinstance(d, Gateway | Platform) and broker is not None and broker not in broker_ids:
            problems.append(Problem((*loc, "broker"), f"broker {broker!r} is not in inventory.brokers"))
    return problems


def resolve_secret(ref: str, base: Path) -> str:
    """The value behind `env:NAME` or `file:PATH` (relative to the config file)."""
    kind, _, target = ref.partition(":")
    if kind == "env":
        value = os.environ.get(target)
        if value is None:
            raise UsageError(f"secret {ref}: environment variable {target} is not set")
        return value
    path = (base / target) if not Path(target).is_absolute() else Path(target)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"secret {ref}: {exc.strerror}") from None


def schema() -> dict[str, Any]:
    return Config.model_json_schema()

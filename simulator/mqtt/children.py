"""The devices behind a gateway: what the gateway knows of each and the telemetry it reports."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from simulator.faults import ClockSkew, HeartbeatMissing, Offline
from simulator.model import MqttDevice

GAS_ALARM_LEL_PCT = 25  # GB 15322: the alarm set point of a combustible gas detector is <= 25 % LEL
DEFAULT_CHARGER_W = 7000  # a 7 kW AC charging post; tag rated_w overrides
CHILD_FAULTS = frozenset({"offline", "heartbeat_missing", "clock_skew"})


@dataclass
class Child:
    """One device behind the gateway and what the gateway knows of it."""

    spec: MqttDevice
    skew: timedelta
    reachable: bool  # False: the gateway lost it (offline fault, child_offline) and says so
    silent: bool  # True: dead while the gateway still believes it online (heartbeat_missing)
    battery_pct: int
    seq: int = 0
    alarm: bool = False  # detector alarm state
    load_pct: float = 0.0  # charger
    overloaded: bool = False
    relay_on: bool = False

    @classmethod
    def of(cls, spec: MqttDevice) -> Child:
        unknown = {f.type for f in spec.faults} - CHILD_FAULTS
        if unknown:
            raise ValueError(f"MQTT device {spec.id!r}: faults {sorted(unknown)} do not apply to it")
        skew = next((f.seconds for f in spec.faults if isinstance(f, ClockSkew)), 0.0)
        return cls(
            spec=spec,
            skew=timedelta(seconds=skew),
            reachable=not any(isinstance(f, Offline) for f in spec.faults),
            silent=any(isinstance(f, HeartbeatMissing) for f in spec.faults),
            battery_pct=60 + zlib.crc32(spec.id.encode()) % 41,
        )

    @property
    def reports(self) -> bool:
        return self.reachable and not self.silent

    def telemetry(self, ts: int) -> dict[str, Any] | None:
        kind = self.spec.type
        if kind == "charger":
            rated = self.spec.tags.get("rated_w")
            rated_w = rated if isinstance(rated, int) and not isinstance(rated, bool) else DEFAULT_CHARGER_W
            return {"ts": ts, "load_pct": self.load_pct, "power_w": round(rated_w * self.load_pct / 100)}
        if kind == "lighting_relay":
            return {"ts": ts, "on": self.relay_on}
        if kind == "smoke_detector":
            return {"ts": ts, "battery_pct": self.battery_pct, "alarm": self.alarm}
        if kind == "gas_detector":
            lel = GAS_ALARM_LEL_PCT if self.alarm else 0
            return {"ts": ts, "battery_pct": self.battery_pct, "alarm": self.alarm, "lel_pct": lel}
        if kind == "emergency_button":
            return {"ts": ts, "battery_pct": self.battery_pct}
        return None  # an intercom is mains-powered and reports only status and heartbeats

"""What every simulated device gets from the site, and what it must offer back."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from simulator.auth import AuthGuard
from simulator.bus import SiteBus
from simulator.faults import ClockSkew, Hung, Offline, PlainHttp, WeakCredentials
from simulator.latency import Latency
from simulator.model import Community, Credentials, DeviceSpec

# Fixed ports per protocol: every device has its own loopback address, as on a real site.
PORTS = {"onvif": 8000, "isapi": 8000, "http": 8000, "modbus": 5020, "mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class Endpoint:
    """One row of the endpoints file: where a device listens and how to log in (test creds)."""

    id: str
    kind: str  # camera | nvr | door | panel | gateway | platform | broker
    protocol: str  # onvif | isapi | modbus | mqtt | http
    host: str
    port: int
    path: str
    username: str
    password: str
    area: str
    tags: dict[str, Any]
    faults: list[str]
    tls: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a gateway's children, topic root

    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path}"


@dataclass
class DeviceContext:
    """Everything a device needs; built by the site before any device starts."""

    spec: DeviceSpec
    community: Community
    host: str
    port: int
    credentials: Credentials
    bus: SiteBus
    latency: Latency
    server_tls: ssl.SSLContext | None  # None: plain (no TLS on the site, or plain_http fault)
    client_tls: ssl.SSLContext | None  # trusts the community CA, for device-to-device calls
    directory: dict[str, Endpoint]  # every device's endpoint by id (the platform uses it)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    guard: AuthGuard = field(init=False)

    def __post_init__(self) -> None:
        accounts = {self.credentials.username: self.credentials.password}
        weak = self.spec.fault(WeakCredentials)
        if weak is not None:
            accounts[weak.username] = weak.password
        self.guard = AuthGuard(accounts, lockout=not any(f.type == "no_lockout" for f in self.spec.faults))

    def now(self) -> datetime:
        """The device's own clock, skewed when the fault says so."""
        skew = self.spec.fault(ClockSkew)
        return datetime.now(UTC) + timedelta(seconds=skew.seconds if skew else 0.0)

    @property
    def offline(self) -> bool:
        return self.spec.fault(Offline) is not None

    @property
    def hung(self) -> bool:
        return self.spec.fault(Hung) is not None

    @property
    def plain_http(self) -> bool:
        return self.spec.fault(PlainHttp) is not None


class SimDevice(Protocol):
    """A simulated device: started and stopped by the site; offline devices never listen."""

    ctx: DeviceContext

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def unplug(self) -> None:
        """Stop answering as if its cable were pulled (the operator's hand in guided tests)."""
        ...

    async def replug(self) -> None: ...

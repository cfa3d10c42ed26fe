"""Start and stop a whole community: addresses, TLS, broker, devices, the operator's hand.

Every device gets its own loopback address ({address_base}.x.y, as devices on a real site have
their own IPs) and the fixed port of its protocol. The broker starts first, the platform last, so
that it sees every device it consumes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator.bus import SiteBus
from simulator.isapi import IsapiDoorController, IsapiNvr
from simulator.latency import Latency
from simulator.modbus import FirePanel
from simulator.model import Community, Credentials, DeviceSpec
from simulator.mqtt.broker import Broker, Impl, site_accounts
from simulator.mqtt.gateway import MqttGateway
from simulator.mqtt.topics import site_level
from simulator.onvif import OnvifCamera, OnvifDoorController, OnvifNvr
from simulator.platform import Platform
from simulator.runtime import PORTS, DeviceContext, Endpoint, SimDevice
from simulator.tls import SiteTls, make_site_tls
from simulator.workers import WorkerPool, partition

INSPECTOR = "inspector"  # the account the site gives zhian on every device
BROKER_ID = "broker"
START_CONCURRENCY = 64


def device_password(seed: int, device_id: str) -> str:
    """A strong, stable per-device password (the simulator's own test credentials)."""
    digest = hashlib.sha256(f"{seed}:{device_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:20]


def _host(base: str, index: int) -> str:
    return f"{base}.{index // 250}.{index % 250 + 1}"


def base_in_use(base: str) -> bool:
    """Another site holds this base: its broker listens on the base's first address."""
    for port in (PORTS["mqtts"], PORTS["mqtt"]):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((_host(base, 0), port))
            except OSError:
                return True
    return False


def free_address_base(preferred: str) -> str:
    """The preferred base (127.N) when no other site holds it, else the next free one, so that two
    sites of the same community can run side by side."""
    first = int(preferred.split(".")[1])
    for step in range(254):
        base = f"127.{(first - 1 + step) % 254 + 1}"
        if not base_in_use(base):
            return base
    raise OSError("every 127.N address base is taken by another site")


class Site:
    """A running community. Use as `async with Site(community, workdir) as site:`."""

    def __init__(
        self,
        community: Community,
        workdir: Path,
        *,
        latency_scale: float = 1.0,
        broker_impl: Impl = "auto",
        workers: int = 0,
    ) -> None:
        self.community = community
        self.workdir = workdir
        self.bus = SiteBus()
        self.latency_scale = latency_scale
        self.latency = Latency(community.latency, scale=latency_scale, seed=community.seed)
        self.broker_impl = broker_impl
        self.tls: SiteTls | None = None
        self.broker: Broker | None = None
        self.devices: dict[str, SimDevice] = {}
        self.directory: dict[str, Endpoint] = {}
        self.workers = workers
        self._pool: WorkerPool | None = None
        self._stack = AsyncExitStack()

    # -- addresses and credentials ------------------------------------------------------------

    def plan(self) -> None:
        """Every device's address and credentials, the same in every process of a split site."""
        base = self.community.address_base
        tls = self.community.tls
        for index, spec in enumerate(self.community.devices, start=1):
            # Gateways log in to the broker under their own id; everything else gives zhian an account.
            user = spec.id if spec.kind == "gateway" else INSPECTOR
            creds = spec.credentials or Credentials(
                username=user, password=device_password(self.community.seed, spec.id)
            )
            uses_tls = (
                tls
                and spec.protocol in ("onvif", "isapi", "http", "mqtt")
                and not any(f.type == "plain_http" for f in spec.faults)
            )
            extra: dict[str, Any] = {}
            if spec.gateway is not None:
                extra = {
                    "topic_root": spec.gateway.topic_root,
                    "site": site_level(self.community.name),
                    "heartbeat_s": spec.gateway.heartbeat_s,
                    "children": [
                        {"id": c.id, "type": c.type, "area": c.area, "tags": dict(c.tags),
                         "faults": [f.type for f in c.faults]}
                        for c in spec.gateway.devices
                    ],
                }  # fmt: skip
            if spec.panel is not None:
                extra = {"profile": spec.panel.profile, "unit_id": spec.panel.unit_id,
                         "zones": [z.model_dump() for z in spec.panel.zones]}  # fmt: skip
            # A gateway is reached through the broker: its row names the broker's address.
            via_broker = spec.kind == "gateway"
            self.directory[spec.id] = Endpoint(
                id=spec.id,
                kind=spec.kind,
                protocol=spec.protocol,
                host=_host(base, 0 if via_broker else index),
                port=(PORTS["mqtts"] if tls else PORTS["mqtt"]) if via_broker else PORTS[spec.protocol],
                path=_path(spec),
                username=creds.username,
                password=creds.password,
                area=spec.area,
                tags=dict(spec.tags),
                faults=[f.type for f in spec.faults],
                tls=uses_tls,
                extra=extra,
            )

    def _context(self, spec: DeviceSpec) -> DeviceContext:
        ep = self.directory[spec.id]
        server_tls = self.tls.server_context(ep.host) if (self.tls and ep.tls) else None
        return DeviceContext(
            spec=spec,
            community=self.community,
            host=ep.host,
            port=ep.port,
            credentials=Credentials(username=ep.username, password=ep.password),
            bus=self.bus,
            latency=self.latency,
            server_tls=server_tls,
            client_tls=self.tls.client_context() if self.tls else None,
            directory=self.directory,
        )

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.plan()
        tls_dir = self.workdir / "tls"
        if self.community.tls:
            hosts = [_host(self.community.address_base, 0)] + [e.host for e in self.directory.values()]
            name = self.community.name
            self.tls = await asyncio.to_thread(make_site_tls, tls_dir, name, hosts)
        await self._start_broker()
        specs = [s for s in self.community.devices if s.kind != "platform"]
        platform = [s for s in self.community.devices if s.kind == "platform"]
        shares = partition(specs, self.workers) if self.workers > 0 else []
        held = {i for share in shares for i in share}
        # The site's own devices first: a gateway must see its announcements acknowledged within
        # a deadline, which a machine busy starting the workers' 1,300 listeners can miss.
        await self.start_devices([s for s in specs if s.id not in held])
        if shares:
            pool = WorkerPool(self.bus, self.workdir / "workers", self.latency_scale)
            self._pool = pool
            self._stack.push_async_callback(pool.stop)
            await pool.start(self.community, shares, tls_dir if self.tls else None)
            await pool.wait_ready()
        await self.start_devices(platform)

    async def start_devices(self, specs: list[DeviceSpec]) -> None:
        """Start these devices, a bounded number at a time; each is stopped with the site."""
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def start_one(spec: DeviceSpec) -> None:
            device = device_class(spec)(self._context(spec))
            async with gate:
                await device.start()
            self.devices[spec.id] = device
            self._stack.push_async_callback(device.stop)

        async with asyncio.TaskGroup() as tg:
            for spec in specs:
                tg.create_task(start_one(spec))

    async def _start_broker(self) -> None:
        """The broker first: gateways and the platform log in to it as they start."""
        password = device_password(self.community.seed, BROKER_ID)
        gateways = [self._context(s) for s in self.community.devices if s.kind == "gateway"]
        platform = next(s for s in self.community.devices if s.kind == "platform")
        accounts = site_accounts(
            gateways,
            platform=Credentials(username=platform.id, password=self.directory[platform.id].password),
            inspector=Credentials(username=INSPECTOR, password=password),
        )
        broker = Broker(
            _host(self.community.address_base, 0),
            accounts=accounts,
            tls=self.tls,
            plaintext_listener=self.community.mqtt_plaintext_listener,
            impl=self.broker_impl,
            run_dir=self.workdir / "broker",
        )
        await broker.start()
        self.broker = broker
        self._stack.push_async_callback(broker.stop)
        area = next(
            (a.id for a in self.community.areas if a.kind == "monitoring_center"), self.community.areas[0].id
        )
        self.directory[BROKER_ID] = broker.endpoint(username=INSPECTOR, password=password, area=area)

    async def stop(self) -> None:
        await self._stack.aclose()

    async def __aenter__(self) -> Site:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- what tests and tools see -------------------------------------------------------------

    def endpoints(self) -> Iterator[Endpoint]:
        return iter(self.directory.values())

    def endpoints_document(self) -> dict[str, Any]:
        devices = []
        for ep in self.directory.values():
            row = asdict(ep)
            row.pop("extra")
            row |= ep.extra
            devices.append(row)
        doc: dict[str, Any] = {"community": self.community.name, "devices": devices}
        if self.tls is not None:
            doc["ca_file"] = str(self.tls.ca_file)
        return doc

    def write_endpoints(self, path: Path) -> None:
        path.write_text(json.dumps(self.endpoints_document(), ensure_ascii=False, indent=2), encoding="utf-8")

    async def restart_broker(self, down_s: float = 0.0) -> None:
        """Stop the site's broker and start it again after down_s (its clients reconnect by themselves)."""
        if self.broker is None:
            raise RuntimeError("the site is not started")
        await self.broker.stop()
        await asyncio.sleep(down_s)
        await self.broker.start()

    async def operator(self, device_id: str, action: str, **params: Any) -> None:
        """The operator's hand on site: unplug or replug a device, set off a detector, force a door."""
        if self._pool is not None and self._pool.owns(device_id):
            await self._pool.operate(device_id, action, params)
            return
        if action in ("unplug", "replug"):
            device = self.devices[device_id]
            await (device.unplug() if action == "unplug" else device.replug())
            return
        await self.bus.command(device_id, action, **params)


def _path(spec: DeviceSpec) -> str:
    return {"onvif": "/onvif/device_service", "isapi": "/ISAPI", "http": "/api/v1"}.get(spec.protocol, "")


DeviceFactory = Callable[[DeviceContext], SimDevice]

DEVICE_CLASSES: dict[tuple[str, str], DeviceFactory] = {
    ("camera", "onvif"): OnvifCamera,
    ("nvr", "onvif"): OnvifNvr,
    ("door", "onvif"): OnvifDoorController,
    ("nvr", "isapi"): IsapiNvr,
    ("door", "isapi"): IsapiDoorController,
    ("panel", "modbus"): FirePanel,
    ("gateway", "mqtt"): MqttGateway,
    ("platform", "http"): Platform,
}


def device_class(spec: DeviceSpec) -> DeviceFactory:
    """The simulated device for a kind and protocol."""
    return DEVICE_CLASSES[(spec.kind, spec.protocol)]

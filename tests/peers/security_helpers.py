"""For the HTTP collector and security probe tests: single ISAPI devices, whole-site targets, ledgers."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
from exchange_sink import Ledger

from collectors.connection import Connection
from collectors.exchange import Exchange
from probes.targets import Secret, Target
from simulator.bus import SiteBus
from simulator.isapi import IsapiDoorController, IsapiNvr
from simulator.isapi.common import IsapiDevice
from simulator.latency import Latency
from simulator.model import Community, Credentials
from simulator.runtime import DeviceContext
from simulator.site import Site

USER, PASSWORD = "inspector", "Isapi-Pass!42"


def texts(exchange: Exchange) -> Iterable[str]:
    return (exchange.request, exchange.response, exchange.error or "", repr(exchange.facts))


def assert_absent(ledger: Iterable[Exchange], *values: str) -> None:
    """None of these values (passwords, tokens, personal data) appears in any exchange."""
    seen = 0
    for exchange in ledger:
        seen += 1
        for text in texts(exchange):
            for value in values:
                assert value not in text, f"{exchange.device} {exchange.operation}: a secret in evidence"
    assert seen, "no exchange was recorded: the check checked nothing"


# -- single ISAPI devices ----------------------------------------------------------------------


def isapi_community(
    nvr: dict[str, Any] | None = None, cameras: list[dict[str, Any]] | None = None
) -> Community:
    """A door and an ISAPI NVR recording cam1 (channel 1) and cam2 (channel 2) unless told otherwise."""
    cams = cameras or [
        {"id": "cam1", "camera": {"recorded_by": "nvr1", "channel": 1}},
        {"id": "cam2", "camera": {"recorded_by": "nvr1", "channel": 2}},
    ]
    return Community.model_validate(
        {
            "name": "isapi-test",
            "areas": [{"id": "u1", "kind": "unit_entrance"}, {"id": "mc", "kind": "monitoring_center"}],
            "devices": [
                {"id": "door1", "kind": "door", "protocol": "isapi", "area": "u1"},
                {"id": "nvr1", "kind": "nvr", "protocol": "isapi", "area": "mc", **(nvr or {})},
                *({"kind": "camera", "protocol": "onvif", "area": "u1", **c} for c in cams),
                {"id": "plat", "kind": "platform", "protocol": "http", "area": "mc"},
            ],
        }
    )


Starter = Callable[..., Awaitable[Any]]


@pytest.fixture
async def isapi() -> AsyncIterator[Starter]:
    """`await isapi(IsapiNvr, community, tls=...)` starts that community's door or NVR on 127.0.0.1."""
    started: list[IsapiDevice] = []

    async def _start(
        cls: type[IsapiDoorController] | type[IsapiNvr],
        community: Community | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        bus: SiteBus | None = None,
    ) -> Any:
        comm = community or isapi_community()
        spec = next(d for d in comm.devices if d.kind == ("door" if cls is IsapiDoorController else "nvr"))
        ctx = DeviceContext(
            spec=spec,
            community=comm,
            host="127.0.0.1",
            port=0,
            credentials=Credentials(username=USER, password=PASSWORD),
            bus=bus or SiteBus(),
            latency=Latency({}, scale=0),
            server_tls=tls,
            client_tls=None,
            directory={},
        )
        device = cls(ctx)
        await device.start()
        started.append(device)
        return device

    yield _start
    for device in started:
        await device.stop()


def connection(
    device: IsapiDevice,
    sink: Ledger,
    *,
    tls: ssl.SSLContext | None = None,
    user: str = USER,
    password: str = PASSWORD,
    timeout_s: float = 5.0,
) -> Connection:
    return Connection(
        device=device.ctx.spec.id,
        host="127.0.0.1",
        port=device.port,
        tls=tls,
        username=user,
        password=password,
        path="/ISAPI",
        timeout_s=timeout_s,
        sink=sink,
    )


def isapi_targets(nvr: IsapiDevice, community: Community, *, tls: bool = False) -> tuple[Target, ...]:
    """The NVR and its cameras as the inventory lists them (cameras are not contacted)."""
    out = [
        Target("nvr1", "nvr", "isapi", "127.0.0.1", nvr.port, "mc", tls=tls, path="/ISAPI",
               username=USER, password=Secret(PASSWORD))
    ]  # fmt: skip
    for spec in community.devices:
        if spec.camera is not None:
            out.append(
                Target(spec.id, "camera", "onvif", "127.0.0.1", 1, spec.area, tags=dict(spec.tags),
                       params={"recorded_by": spec.camera.recorded_by, "channel": spec.camera.channel})
            )  # fmt: skip
    return tuple(out)


# -- whole sites -------------------------------------------------------------------------------


def site_secrets(site: Site) -> list[str]:
    return [ep.password for ep in site.directory.values()]

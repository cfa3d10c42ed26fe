"""Shared by the ONVIF peer tests: a one-off community, device starters and plain client helpers."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onvif
import pytest
from onvif import ONVIFCamera, ONVIFService

from simulator.bus import SiteBus
from simulator.latency import Latency
from simulator.model import Community, Credentials
from simulator.onvif import OnvifCamera, OnvifDoorController, OnvifNvr
from simulator.onvif.server import OnvifDevice
from simulator.runtime import DeviceContext, Endpoint

USER, PASSWORD = "operator", "S1te-Pass!"
WSDL_DIR = Path(onvif.__file__).parent / "wsdl"
DOORCONTROL_NS = "http://www.onvif.org/ver10/doorcontrol/wsdl"
ACCESSCONTROL_NS = "http://www.onvif.org/ver10/accesscontrol/wsdl"


def community(devices: list[dict[str, Any]]) -> Community:
    """The given devices plus the platform every community has, in two areas."""
    return Community.model_validate(
        {
            "name": "onvif-test",
            "areas": [
                {"id": "gate", "kind": "perimeter", "name_zh": "东门"},
                {"id": "mc", "kind": "monitoring_center"},
            ],
            "devices": [*devices, {"id": "plat", "kind": "platform", "protocol": "http", "area": "mc"}],
        }
    )


Starter = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start() -> AsyncIterator[Starter]:
    """Starts the first device of a one-off community as `cls`; stops every started device at the end."""
    started: list[OnvifDevice] = []

    async def _start(
        cls: type[OnvifDevice],
        devices: list[dict[str, Any]],
        *,
        tls: ssl.SSLContext | None = None,
        bus: SiteBus | None = None,
        directory: dict[str, Endpoint] | None = None,
        port: int = 0,
    ) -> Any:
        comm = community(devices)
        ctx = DeviceContext(
            spec=comm.devices[0],
            community=comm,
            host="127.0.0.1",
            port=port,
            credentials=Credentials(username=USER, password=PASSWORD),
            bus=bus or SiteBus(),
            latency=Latency(comm.latency, scale=0),
            server_tls=tls,
            client_tls=None,
            directory=directory or {},
        )
        device = cls(ctx)
        await device.start()
        started.append(device)
        return device

    yield _start
    for device in started:
        await device.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def camera(**extra: Any) -> dict[str, Any]:
    return {"id": "cam1", "kind": "camera", "protocol": "onvif", "area": "gate", **extra}


def door(**extra: Any) -> dict[str, Any]:
    return {"id": "door1", "kind": "door", "protocol": "onvif", "area": "gate", **extra}


def nvr(**extra: Any) -> dict[str, Any]:
    return {"id": "nvr1", "kind": "nvr", "protocol": "onvif", "area": "mc", **extra}


DEVICE_CLASSES = {"camera": OnvifCamera, "nvr": OnvifNvr, "door": OnvifDoorController}


def client(device: OnvifDevice, user: str = USER, password: str = PASSWORD, **kw: Any) -> ONVIFCamera:
    """A plain onvif-zeep-async client for a started device (https when the device serves TLS)."""
    host = "https://127.0.0.1" if device.scheme == "https" else "127.0.0.1"
    return ONVIFCamera(host, device.port, user, password, **kw)


async def profile_c_service(cam: ONVIFCamera, namespace: str) -> ONVIFService:
    """A DoorControl / AccessControl client, which onvif.definition.SERVICES does not list.

    The library allows any WSDL through ONVIFService(xaddr, user, pass, wsdl, binding_name=...):
    the XAddr comes from the device's own GetServices answer (after update_xaddrs()).
    """
    wsdl, binding = {
        DOORCONTROL_NS: ("doorcontrol.wsdl", "DoorControlBinding"),
        ACCESSCONTROL_NS: ("accesscontrol.wsdl", "PACSBinding"),
    }[namespace]
    service = ONVIFService(
        cam.xaddrs[namespace],
        cam.user,
        cam.passwd,
        str(WSDL_DIR / wsdl),
        binding_name=f"{{{namespace}}}{binding}",
    )
    await service.setup()
    return service


def soap_request(body: str, user: str | None = USER, password: str = PASSWORD, digest: bool = True) -> bytes:
    """A SOAP 1.2 request by hand, with a WS-Security UsernameToken (digest or text) when `user` is set."""
    header = ""
    if user is not None:
        nonce = os.urandom(16)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if digest:
            proof = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + password.encode()).digest()
            ).decode()
        else:
            proof = password
        kind = "PasswordDigest" if digest else "PasswordText"
        header = (
            f'<env:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{user}</wsse:Username>"
            f'<wsse:Password Type="{TOKEN_PROFILE}#{kind}">{proof}</wsse:Password>'
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
            "</wsse:UsernameToken></wsse:Security></env:Header>"
        )
    envelope = f"<env:Envelope {NAMESPACES}>{header}<env:Body>{body}</env:Body></env:Envelope>"
    return f'<?xml version="1.0" encoding="UTF-8"?>{envelope}'.encode()


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
NAMESPACES = " ".join(
    f'xmlns:{p}="{ns}"'
    for p, ns in {
        "env": "http://www.w3.org/2003/05/soap-envelope",
        "tds": "http://www.onvif.org/ver10/device/wsdl",
        "trt": "http://www.onvif.org/ver10/media/wsdl",
        "tev": "http://www.onvif.org/ver10/events/wsdl",
        "trc": "http://www.onvif.org/ver10/recording/wsdl",
        "tse": "http://www.onvif.org/ver10/search/wsdl",
        "tdc": DOORCONTROL_NS,
        "tac": ACCESSCONTROL_NS,
        "tt": "http://www.onvif.org/ver10/schema",
        "wsnt": "http://docs.oasis-open.org/wsn/b-2",
        "tns1": "http://www.onvif.org/ver10/topics",
    }.items()
)

"""Discovery on the network: ONVIF devices by WS-Discovery, then GetDeviceInformation and
GetServices each; an NVR's recordings mapped to the cameras they record; ISAPI devices by their
device info. Every exchange goes to the caller's sink; a device that refuses or fails is still
listed, with what could not be learnt."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from collectors.connection import Connection, system_trust
from collectors.errors import AuthFailed, CollectorError
from collectors.exchange import Sink
from collectors.isapi import IsapiClient
from collectors.onvif import OnvifClient
from collectors.wsdiscovery import ProbeMatch
from zhian.discover.found import Found, Kind, device_id, port_open

PARALLEL = 8


@dataclass(frozen=True)
class Login:
    name: str
    username: str
    password: str  # resolved from the environment; never written anywhere
    env: str  # the variable it came from, for the draft config


@dataclass(frozen=True)
class Reach:
    logins: Sequence[Login]
    trust: ssl.SSLContext | None
    sink: Sink
    timeout_s: float = 5.0

    def connection(
        self, device: str, host: str, port: int, tls: bool, path: str, login: Login | None
    ) -> Connection:
        context = (self.trust or system_trust()) if tls else None
        return Connection(
            device=device, host=host, port=port, tls=context,
            username=login.username if login else None, password=login.password if login else None,
            path=path, timeout_s=self.timeout_s, sink=self.sink,
        )  # fmt: skip


def _endpoint(match: ProbeMatch) -> tuple[str, int, bool, str] | None:
    for xaddr in match.xaddrs:
        url = urlsplit(xaddr)
        if url.hostname and url.scheme in ("http", "https"):
            port = url.port or (443 if url.scheme == "https" else 80)
            return url.hostname, port, url.scheme == "https", url.path or "/onvif/device_service"
    return None


async def onvif_devices(matches: Sequence[ProbeMatch], reach: Reach) -> list[Found]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(match: ProbeMatch) -> Found | None:
        where = _endpoint(match)
        if where is None:
            return None
        async with gate:
            return await _inspect(match, where, reach)

    found = [f for f in await asyncio.gather(*(one(m) for m in matches)) if f is not None]
    return _map_recordings(found)


async def _inspect(match: ProbeMatch, where: tuple[str, int, bool, str], reach: Reach) -> Found:
    host, port, tls, path = where
    video = any(t.endswith("NetworkVideoTransmitter") for t in match.types)
    kind: Kind = "camera" if video else "nvr"
    dev = Found(device_id(kind, match.scope("name"), host), kind, "onvif", host, port, tls, path)
    if hw := match.scope("hardware"):
        dev.tags["model"] = hw
    for login in [*reach.logins, None]:  # at most three logins (the CLI's limit): far from any lockout
        conn = reach.connection(dev.id, host, port, tls, path, login)
        try:
            async with OnvifClient(conn) as onvif:
                services = await onvif.services()
                names = services.names
                dev.kind = "door" if "doorcontrol" in names else dev.kind
                if "recording" in names or "search" in names:
                    sources = [r.source_id for r in (await onvif.recordings()).items]
                    own = f"{host}:{port}"
                    if any(own not in s for s in sources):
                        dev.kind, dev.tags["recorded_sources"] = "nvr", " ".join(sources)
                if login is not None:
                    info = await onvif.device_info()
                    dev.login = login.name
                    dev.tags |= {
                        "manufacturer": info.manufacturer,
                        "model": info.model,
                        "serial": info.serial,
                    }
                dev.id = device_id(dev.kind, match.scope("name"), host)
                if login is None:
                    dev.note = "no login given or none accepted: device information not read"
                return dev
        except AuthFailed:
            continue
        except CollectorError as exc:
            dev.note = f"not inspected: {exc}"
            return dev
    return dev


def _map_recordings(found: list[Found]) -> list[Found]:
    """An NVR's recordings name the cameras' device service URLs: those cameras are recorded_by
    the NVR, on the channel of the recording's place in the NVR's list (a draft: check it)."""
    cameras = {(f.host, f.port): f for f in found if f.kind == "camera"}
    for nvr in (f for f in found if f.kind == "nvr"):
        for number, source in enumerate(str(nvr.tags.pop("recorded_sources", "")).split(), start=1):
            url = urlsplit(source)
            camera = cameras.get((url.hostname or "", url.port or 80))
            if camera is not None:
                camera.recorded_by, camera.channel = nvr.id, number
    for f in found:
        f.tags.pop("recorded_sources", None)
    return found


async def isapi_devices(
    hosts: Sequence[str], ports: Sequence[int], reach: Reach, known: set[str]
) -> list[Found]:
    """Hikvision ISAPI devices answering /ISAPI/System/deviceInfo (digest) on the given ports."""
    gate = asyncio.Semaphore(PARALLEL * 4)

    async def one(host: str, port: int) -> Found | None:
        async with gate:
            if not await port_open(host, port, reach.timeout_s):
                return None
            for tls in (port == 443, port != 443):
                for login in reach.logins[:3]:
                    conn = reach.connection(f"isapi:{host}", host, port, tls, "/ISAPI", login)
                    try:
                        async with IsapiClient(conn) as isapi:
                            info = await isapi.device_info()
                    except AuthFailed:
                        continue
                    except CollectorError:
                        break
                    kind: Kind = "door" if info.device_type.upper() in ("ACS", "ACCESSCONTROL") else "nvr"
                    tags: dict[str, str | bool | int] = {"model": info.model, "serial": info.serial}
                    return Found(
                        device_id(kind, info.name, host),
                        kind,
                        "isapi",
                        host,
                        port,
                        tls,
                        "/ISAPI",
                        login.name,
                        tags=tags,
                    )
            return None

    jobs = [one(h, p) for h in hosts if h not in known for p in ports]
    return [f for f in await asyncio.gather(*jobs) if f is not None]

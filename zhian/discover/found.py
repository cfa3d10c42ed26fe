"""What discovery found, in the config's own terms, before it becomes a draft config."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from zhian.errors import UsageError

Kind = Literal["camera", "nvr", "door"]
MAX_HOSTS = 4096


@dataclass
class Found:
    id: str
    kind: Kind
    protocol: Literal["onvif", "isapi"]
    host: str
    port: int
    tls: bool
    path: str
    login: str | None = None  # the name of the login that worked, None: none did (a TODO)
    recorded_by: str | None = None
    channel: int | None = None
    tags: dict[str, str | bool | int] = field(default_factory=dict)
    note: str = ""  # what could not be learnt, for the draft's comments


def device_id(kind: str, name: str | None, host: str) -> str:
    """The device's own name when it gives one (a scope, a device name), else kind-and-address."""
    text = (name or "").strip().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:48] if text else f"{kind}-{host.replace('.', '-').replace(':', '-')}"


def hosts_of(spec: str) -> list[str]:
    """Addresses of `10.0.0.0/24`, `10.0.0.5-40`, `10.0.0.5` or a comma list of these."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            if "/" in part:
                net = ipaddress.ip_network(part, strict=False)
                out += [str(h) for h in (net.hosts() if net.num_addresses > 2 else net)]
            elif "-" in part:
                first, _, last = part.partition("-")
                start = ipaddress.ip_address(first)
                end = ipaddress.ip_address(last) if "." in last or ":" in last else None
                if end is None:
                    end = ipaddress.ip_address(f"{first.rsplit('.', 1)[0]}.{last}")
                if int(end) < int(start):
                    raise ValueError("the range ends before it starts")
                out += [str(ipaddress.ip_address(n)) for n in range(int(start), int(end) + 1)]
            else:
                out.append(str(ipaddress.ip_address(part)))
        except ValueError as exc:
            raise UsageError(f"--range {part}: {exc}") from None
        if len(out) > MAX_HOSTS:
            raise UsageError(f"--range {spec}: more than {MAX_HOSTS} addresses; scan in parts")
    return list(dict.fromkeys(out))


async def port_open(host: str, port: int, timeout_s: float) -> bool:
    """Something accepts TCP connections there (before any protocol is tried on it)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True

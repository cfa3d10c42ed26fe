"""For the ONVIF collector and probe tests: connections, targets and probe contexts on simulated devices.

Devices are started with onvif_helpers' `start` fixture (credentials USER / PASSWORD on 127.0.0.1).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable
from typing import Any

from exchange_sink import Ledger
from onvif_helpers import PASSWORD, USER
from site_probe import site_view

from collectors.connection import Connection
from collectors.exchange import Exchange
from probes.base import ProbeContext
from probes.targets import Secret, SiteView, Target, TargetKind
from simulator.onvif.server import OnvifDevice
from simulator.site import Site

NONCE = re.compile(r"<(?:\w+:)?Nonce\b[^>]*>([^<]*)</")
PASSWORD_ELEMENT = re.compile(r"<(?:\w+:)?Password\b[^>]*>([^<]*)</")


def connection(
    device: OnvifDevice,
    sink: Ledger,
    *,
    tls: ssl.SSLContext | None = None,
    password: str = PASSWORD,
    timeout_s: float = 5.0,
    device_id: str | None = None,
) -> Connection:
    return Connection(
        device=device_id or device.ctx.spec.id,
        host="127.0.0.1",
        port=device.port,
        tls=tls,
        username=USER,
        password=password,
        timeout_s=timeout_s,
        sink=sink,
    )


def target(
    device: OnvifDevice | None,
    kind: TargetKind,
    *,
    id: str | None = None,
    port: int = 1,
    tls: bool = False,
    tags: dict[str, str | bool | int] | None = None,
    protocol: str = "onvif",
    **params: Any,
) -> Target:
    """A Target for a started device (or, with device None, one nobody contacts: a camera on an NVR)."""
    return Target(
        id=id or (device.ctx.spec.id if device else "unnamed"),
        kind=kind,
        protocol=protocol,
        host="127.0.0.1",
        port=device.port if device else port,
        area="gate",
        tags=tags or {},
        tls=tls,
        username=USER,
        password=Secret(PASSWORD),
        params=params,
    )


def site_targets(site: Site) -> list[Target]:
    """The cameras, NVRs and doors of a running community, as the inventory would list them."""
    return [t for t in site_view(site).targets if t.kind in ("camera", "nvr", "door")]


def context(
    targets: Iterable[Target],
    sink: Ledger,
    *,
    trust: ssl.SSLContext | None = None,
    call_timeout_s: float = 5.0,
) -> ProbeContext:
    return ProbeContext(
        site=SiteView("onvif-test", tuple(targets)), sink=sink, trust=trust, call_timeout_s=call_timeout_s
    )


def assert_redacted(ledger: Iterable[Exchange]) -> None:
    """No exchange carries the password, a WS-Security nonce or password digest."""
    count = 0
    for e in ledger:
        for text in (e.request, e.response, (e.raw or b"").decode(), repr(e.facts), e.error or ""):
            assert PASSWORD not in text, f"{e.operation}: password in evidence"
            assert all(v == "[redacted]" for v in NONCE.findall(text)), f"{e.operation}: nonce in evidence"
            assert all(v == "[redacted]" for v in PASSWORD_ELEMENT.findall(text)), f"{e.operation}: digest"
            count += len(NONCE.findall(text))
    assert count > 0, "no WS-Security header was seen: the check checked nothing"

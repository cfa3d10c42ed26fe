"""ONVIF WS-Discovery (2005/04) Probe over SOAP-over-UDP, port 3702: unicast to each address of
a range, and to the multicast group 239.255.255.250 where the network allows it.

One UDP socket sends an empty Probe (it matches every ONVIF device: cameras, recorders, door
controllers) to every address, paced, then listens for ProbeMatches until `window_s` after the
last send. Each answer is one exchange of evidence. Replies are parsed with defusedxml and bounded
in size; a reply that is not a ProbeMatches for our MessageID is ignored. python-ws-discovery,
the maintained library of the field, runs threads around multicast and cannot probe a list of
addresses one by one, so this small client does it on asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from collectors.exchange import Exchange, Sink, discard, excerpt, now

PORT = 3702
MULTICAST = "239.255.255.250"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
MAX_DATAGRAM = 65_507
SEND_PER_S = 500  # unicast probes a second: a /22 takes about 2 s


@dataclass(frozen=True)
class ProbeMatch:
    host: str  # the address the answer came from
    endpoint: str  # the device's endpoint reference (urn:uuid:...)
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]  # device service URLs
    exchange_id: str

    def scope(self, kind: str) -> str | None:
        """The value of an onvif://www.onvif.org/<kind>/<value> scope (name, hardware, location)."""
        prefix = f"onvif://www.onvif.org/{kind}/"
        return next((s[len(prefix) :] for s in self.scopes if s.startswith(prefix)), None)


def probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}">'
        "<s:Header>"
        f'<a:Action s:mustUnderstand="1">{WSD}/Probe</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        f"<a:ReplyTo><a:Address>{WSA}/role/anonymous</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
        "</s:Header>"
        "<s:Body><d:Probe/></s:Body></s:Envelope>"
    ).encode()


def parse_matches(
    data: bytes, message_id: str
) -> list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """(endpoint, types, scopes, xaddrs) of each ProbeMatch answering `message_id`; [] otherwise."""
    try:
        root: Element = SafeET.fromstring(data)
    except (SafeET.ParseError, DefusedXmlException, ValueError):
        return []
    header = root.find(f"{{{SOAP}}}Header")
    if header is None or (header.findtext(f"{{{WSA}}}RelatesTo") or "").strip() != message_id:
        return []
    if (header.findtext(f"{{{WSA}}}Action") or "").strip() != f"{WSD}/ProbeMatches":
        return []
    out = []
    for match in root.iterfind(f"{{{SOAP}}}Body/{{{WSD}}}ProbeMatches/{{{WSD}}}ProbeMatch"):
        endpoint = (match.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address") or "").strip()
        words = {
            k: tuple((match.findtext(f"{{{WSD}}}{k}") or "").split()) for k in ("Types", "Scopes", "XAddrs")
        }
        out.append((endpoint, words["Types"], words["Scopes"], words["XAddrs"]))
    return out


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str, request: str, sink: Sink) -> None:
        self.message_id = message_id
        self.request = request
        self.sink = sink
        self.matches: list[ProbeMatch] = []
        self.sent_at: dict[str, tuple[datetime, float]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        host = addr[0]
        found = parse_matches(data[:MAX_DATAGRAM], self.message_id)
        started, t0 = self.sent_at.get(host, (now(), time.monotonic()))
        exchange = Exchange(
            device=f"discovered:{host}",
            address=f"{host}:{addr[1]}",
            protocol="ws-discovery",
            operation="Probe",
            started_at=started,
            duration_s=round(time.monotonic() - t0, 4),
            request=self.request,
            response=excerpt(data.decode("utf-8", "replace")),
            ok=bool(found),
            error=None if found else "not a ProbeMatches for this probe",
            library="asyncio",
            facts={"matches": len(found)},
        )
        self.sink(exchange)
        for endpoint, types, scopes, xaddrs in found:
            self.matches.append(ProbeMatch(host, endpoint, types, scopes, xaddrs, exchange.id))


async def probe(
    hosts: Iterable[str],
    *,
    window_s: float = 2.0,
    multicast: bool = False,
    port: int = PORT,
    sink: Sink = discard,
) -> list[ProbeMatch]:
    """Every ProbeMatch heard from `hosts` (and the multicast group), one per device endpoint."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    data = probe_message(message_id)
    collector = _Collector(message_id, excerpt(data.decode()), sink)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: collector, local_addr=("0.0.0.0", 0)
    )
    try:
        targets = [(h, port) for h in hosts] + ([(MULTICAST, PORT)] if multicast else [])
        for i, (host, to_port) in enumerate(targets):
            collector.sent_at[host] = (now(), time.monotonic())
            with contextlib.suppress(OSError):  # an unroutable address is simply silent
                transport.sendto(data, (host, to_port))
            if (i + 1) % 50 == 0:
                await asyncio.sleep(50 / SEND_PER_S)
        await asyncio.sleep(window_s)
    finally:
        transport.close()
    unique: dict[str, ProbeMatch] = {}
    for match in collector.matches:
        unique.setdefault(match.endpoint or match.host, match)
    return list(unique.values())

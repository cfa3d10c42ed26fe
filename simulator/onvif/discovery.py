"""WS-Discovery (2005/04, as ONVIF Core uses it) on the device's own address, UDP port 3702.

A Probe sent to the device is answered by one ProbeMatches to the sender: the device's endpoint
reference, its Types (dn:NetworkVideoTransmitter for cameras, tds:Device for all), its ONVIF
scopes and its XAddrs (the device service URL). A Probe whose Types or Scopes the device does not
match gets no answer, as the specification says; anything that is not a Probe is ignored.
The responder is up while the device listens (an unplugged device does not answer).
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import cast
from xml.sax.saxutils import escape

PORT = 3702
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
TDS = "http://www.onvif.org/ver10/device/wsdl"
ANONYMOUS = f"{WSA}/role/anonymous"
MAX_DATAGRAM = 8192


class DiscoveryResponder(asyncio.DatagramProtocol):
    def __init__(
        self,
        endpoint: str,
        types: Callable[[], tuple[str, ...]],
        scopes: Callable[[], tuple[str, ...]],
        xaddr: Callable[[], str],
    ) -> None:
        self.endpoint = endpoint  # urn:uuid:...
        self.types = types  # QNames with the dn: / tds: prefixes declared in the reply
        self.scopes = scopes
        self.xaddr = xaddr
        self.transport: asyncio.DatagramTransport | None = None
        self._sequence = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) > MAX_DATAGRAM or self.transport is None:
            return
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            return
        action = root.findtext(f"{{{SOAP}}}Header/{{{WSA}}}Action", "").strip()
        probe = root.find(f"{{{SOAP}}}Body/{{{WSD}}}Probe")
        if action != f"{WSD}/Probe" or probe is None:
            return
        wanted_types = (probe.findtext(f"{{{WSD}}}Types") or "").split()
        wanted_scopes = (probe.findtext(f"{{{WSD}}}Scopes") or "").split()
        types = self.types()
        if not all(t.rsplit(":", 1)[-1] in {x.rsplit(":", 1)[-1] for x in types} for t in wanted_types):
            return
        scopes = self.scopes()
        if not all(any(s.startswith(w) for s in scopes) for w in wanted_scopes):
            return
        relates = root.findtext(f"{{{SOAP}}}Header/{{{WSA}}}MessageID", "").strip()
        self._sequence += 1
        self.transport.sendto(self._matches(relates, types, scopes), addr)

    def _matches(self, relates: str, types: tuple[str, ...], scopes: tuple[str, ...]) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}" xmlns:tds="{TDS}">'
            "<s:Header>"
            f"<a:Action>{WSD}/ProbeMatches</a:Action>"
            f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>"
            f"<a:RelatesTo>{escape(relates)}</a:RelatesTo>"
            f"<a:To>{ANONYMOUS}</a:To>"
            f'<d:AppSequence InstanceId="1" MessageNumber="{self._sequence}"/>'
            "</s:Header>"
            "<s:Body><d:ProbeMatches><d:ProbeMatch>"
            f"<a:EndpointReference><a:Address>{escape(self.endpoint)}</a:Address></a:EndpointReference>"
            f"<d:Types>{' '.join(types)}</d:Types>"
            f"<d:Scopes>{escape(' '.join(scopes))}</d:Scopes>"
            f"<d:XAddrs>{escape(self.xaddr())}</d:XAddrs>"
            "<d:MetadataVersion>1</d:MetadataVersion>"
            "</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
        ).encode()


async def listen(host: str, responder: DiscoveryResponder) -> asyncio.DatagramTransport:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: responder, local_addr=(host, PORT)
    )
    return transport

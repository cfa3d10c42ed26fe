"""One ONVIF login, by hand: GetDeviceInformation with a WS-Security UsernameToken (PasswordDigest).

Credential and lockout checks need exactly one authenticated operation per try. The ONVIF library
cannot give that: `update_xaddrs()` falls back to GetCapabilities after an auth failure and so
sends two logins. So this builds the envelope itself (a few lines of the UsernameToken profile:
Base64(SHA-1(nonce + created + password))) on the shared HTTP session, and reads the clock with
GetSystemDateAndTime, which ONVIF serves without login, so that `Created` can be written on the
device's clock (devices refuse tokens too far from theirs).

Faults: ter:NotAuthorized (or HTTP 401/403) -> AuthFailed; any other SOAP fault -> DeviceRejected
with its innermost subcode. The nonce and digest are redacted from the exchange by the session.
"""

from __future__ import annotations

import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from collectors.connection import Connection
from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation
from collectors.http import DecodeError, HttpSession, Refusal, decode_xml

ENV = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
DEVICE_PATH = "/onvif/device_service"


@dataclass(frozen=True)
class DeviceInformation:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    exchange_id: str


def username_token(username: str, password: str, created: datetime, nonce: bytes) -> str:
    """The wsse:Security header of the UsernameToken profile with a PasswordDigest."""
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" s:mustUnderstand="1"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{TOKEN_PROFILE}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{BASE64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def envelope(operation: str, header: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{ENV}">'
        f"<s:Header>{header}</s:Header>"
        f'<s:Body><tds:{operation} xmlns:tds="{TDS}"/></s:Body></s:Envelope>'
    )


def decode_soap(body: bytes) -> ET.Element:
    """The first child of the SOAP Body; a Fault becomes the device's refusal."""
    root = decode_xml(body)  # namespaces stripped
    body_el = root.find("Body")
    payload = None if body_el is None else next(iter(body_el), None)
    if root.tag != "Envelope" or payload is None:
        raise DecodeError("not a SOAP envelope with a body")
    if payload.tag == "Fault":
        codes = [v.text.strip() for v in payload.iter("Value") if v.text]
        reason = (payload.findtext("Reason/Text") or "").strip()
        code = codes[-1] if codes else "fault"
        if any(c.split(":")[-1] == "NotAuthorized" for c in codes):
            raise Refusal(AuthFailed, f"device answered {code}: {reason}")
        raise Refusal(DeviceRejected, f"device answered {code}: {reason}", code=code)
    return payload


class OnvifAuthClient:
    """`async with OnvifAuthClient(conn) as c:` single-login ONVIF calls on the device service."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.path = conn.path or DEVICE_PATH
        self._http = HttpSession(conn, protocol="onvif")

    async def __aenter__(self) -> OnvifAuthClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.__aexit__(*exc)

    async def _call(self, operation: str, header: str = "") -> tuple[ET.Element, str]:
        reply = await self._http.request(
            "POST",
            self.path,
            operation=operation,
            decode=decode_soap,
            body=envelope(operation, header),
            headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{TDS}/{operation}"'},
            expect=(400, 500),
        )
        return reply.data, reply.exchange_id

    async def device_time(self) -> tuple[datetime, str]:
        """The device's UTC clock (GetSystemDateAndTime, no login) and the exchange."""
        payload, xid = await self._call("GetSystemDateAndTime")
        utc = payload.find(".//UTCDateTime")
        names = ("Date/Year", "Date/Month", "Date/Day", "Time/Hour", "Time/Minute", "Time/Second")
        try:
            if utc is None:
                raise ValueError("no UTCDateTime")
            y, mo, d, h, mi, sec = (int(utc.findtext(n) or "") for n in names)
            return datetime(y, mo, d, h, mi, sec, tzinfo=UTC), xid
        except ValueError:
            raise ProtocolViolation(
                "GetSystemDateAndTime: no readable UTCDateTime", exchange_id=xid
            ) from None

    async def device_information(self, clock_offset: timedelta = timedelta(0)) -> DeviceInformation:
        """One authenticated operation with the connection's account; AuthFailed when refused.

        `clock_offset` (device clock minus ours) places the token's Created on the device's clock.
        """
        created = datetime.now(UTC) + clock_offset
        header = username_token(self.conn.username or "", self.conn.password or "", created, os.urandom(16))
        payload, xid = await self._call("GetDeviceInformation", header)
        return DeviceInformation(
            manufacturer=(payload.findtext("Manufacturer") or "").strip(),
            model=(payload.findtext("Model") or "").strip(),
            firmware=(payload.findtext("FirmwareVersion") or "").strip(),
            serial=(payload.findtext("SerialNumber") or "").strip(),
            exchange_id=xid,
        )

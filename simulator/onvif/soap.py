"""SOAP 1.2 framing of ONVIF: envelopes, WS-Security UsernameToken checks and faults.

ONVIF binds every service to SOAP 1.2, authenticates with the WS-Security
UsernameToken profile (PasswordDigest = Base64(SHA-1(nonce + created + password)), PasswordText
also accepted) and reports errors as SOAP 1.2 faults with ONVIF `ter:` subcodes.  A Sender fault
travels with HTTP 400, any other with HTTP 500, as the SOAP 1.2 HTTP binding says and the ONVIF
Core error-handling chapter repeats (some devices answer 401 to bad credentials; the spec does not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from lxml import etree

from simulator.auth import AuthGuard

ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TER = "http://www.onvif.org/ver10/error"
TT = "http://www.onvif.org/ver10/schema"
TNS1 = "http://www.onvif.org/ver10/topics"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSTOP = "http://docs.oasis-open.org/wsn/t-1"
WSA = "http://www.w3.org/2005/08/addressing"
WSRF_R = "http://docs.oasis-open.org/wsrf/r-2"
WSRF_BF = "http://docs.oasis-open.org/wsrf/bf-2"
XS = "http://www.w3.org/2001/XMLSchema"
XML = "http://www.w3.org/XML/1998/namespace"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)

TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"
TRC = "http://www.onvif.org/ver10/recording/wsdl"
TSE = "http://www.onvif.org/ver10/search/wsdl"
TDC = "http://www.onvif.org/ver10/doorcontrol/wsdl"
TAC = "http://www.onvif.org/ver10/accesscontrol/wsdl"
PT = "http://www.onvif.org/ver10/pacs"

# Prefixes declared once on every reply envelope: QName-valued content (fault codes, topic
# expressions, SimpleItemDescription types) needs its prefixes in scope, as real devices emit them.
NSMAP = {
    "env": ENV,
    "ter": TER,
    "xs": XS,
    "tt": TT,
    "tns1": TNS1,
    "wsnt": WSNT,
    "wstop": WSTOP,
    "wsa": WSA,
    "wsrf-r": WSRF_R,
    "wsrf-bf": WSRF_BF,
    "tds": TDS,
    "trt": TRT,
    "tev": TEV,
    "trc": TRC,
    "tse": TSE,
    "tdc": TDC,
    "tac": TAC,
    "pt": PT,
}


@dataclass
class SoapFault(Exception):
    """A fault to answer with; `subcodes` are prefixed QNames nested outermost first."""

    code: str  # "Sender" | "Receiver" | "VersionMismatch"
    subcodes: tuple[str, ...]
    reason: str
    detail: etree._Element | None = field(default=None)

    @property
    def http_status(self) -> int:
        return 400 if self.code == "Sender" else 500


def not_authorized() -> SoapFault:
    return SoapFault("Sender", ("ter:NotAuthorized",), "Sender not Authorized")


def invalid_arg(subcode: str, reason: str) -> SoapFault:
    return SoapFault("Sender", ("ter:InvalidArgVal", f"ter:{subcode}"), reason)


def action_not_supported(operation: str) -> SoapFault:
    return SoapFault("Receiver", ("ter:ActionNotSupported",), f"{operation} is not supported by this service")


def new_envelope() -> tuple[etree._Element, etree._Element]:
    """An empty SOAP 1.2 envelope and its Body, with every reply prefix declared on the root."""
    env = etree.Element(f"{{{ENV}}}Envelope", nsmap=NSMAP)
    return env, etree.SubElement(env, f"{{{ENV}}}Body")


def serialize(env: etree._Element) -> bytes:
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def fault_envelope(fault: SoapFault) -> bytes:
    """The env:Fault reply (SOAP 1.2 part 1, 5.4) with the ONVIF subcodes nested in order."""
    env, body = new_envelope()
    el = etree.SubElement(body, f"{{{ENV}}}Fault")
    code = etree.SubElement(el, f"{{{ENV}}}Code")
    etree.SubElement(code, f"{{{ENV}}}Value").text = f"env:{fault.code}"
    parent = code
    for sub in fault.subcodes:
        parent = etree.SubElement(parent, f"{{{ENV}}}Subcode")
        etree.SubElement(parent, f"{{{ENV}}}Value").text = sub
    reason = etree.SubElement(el, f"{{{ENV}}}Reason")
    text = etree.SubElement(reason, f"{{{ENV}}}Text")
    text.set(f"{{{XML}}}lang", "en")
    text.text = fault.reason
    if fault.detail is not None:
        etree.SubElement(el, f"{{{ENV}}}Detail").append(fault.detail)
    return serialize(env)


@dataclass(frozen=True)
class Request:
    """A parsed SOAP request: its body element and the WS-Security header, if any."""

    body: etree._Element
    security: etree._Element | None


def parse_request(data: bytes) -> Request:
    """Parse an incoming envelope; anything that is not a SOAP 1.2 envelope is a Sender fault."""
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", ("ter:WellFormed",), f"not well-formed XML: {exc}") from exc
    if root.tag == f"{{{SOAP11_ENV}}}Envelope":
        raise SoapFault("VersionMismatch", (), "ONVIF speaks SOAP 1.2")
    if root.tag != f"{{{ENV}}}Envelope":
        raise SoapFault("Sender", ("ter:WellFormed",), "not a SOAP envelope")
    body = root.find(f"{{{ENV}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if not children:
        raise SoapFault("Sender", ("ter:WellFormed",), "empty SOAP body")
    security = root.find(f"{{{ENV}}}Header/{{{WSSE}}}Security")
    return Request(children[0], security)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


def authenticate(security: etree._Element | None, guard: AuthGuard, peer: str) -> str:
    """Check the UsernameToken against the device accounts; return the user or raise NotAuthorized.

    A locked-out peer is refused even with the right password, and every wrong proof counts
    towards the lockout, as the guard decides.
    """
    token = None if security is None else security.find(f"{{{WSSE}}}UsernameToken")
    if token is None or guard.locked(peer):
        raise not_authorized()
    username = token.findtext(f"{{{WSSE}}}Username") or ""
    password_el = token.find(f"{{{WSSE}}}Password")
    expected = guard.password(username)
    ok = expected is not None and password_el is not None and _proof_matches(token, password_el, expected)
    guard.record(peer, ok)
    if not ok:
        raise not_authorized()
    return username


def _proof_matches(token: etree._Element, password_el: etree._Element, expected: str) -> bool:
    given = (password_el.text or "").strip()
    if password_el.get("Type", "").endswith("#PasswordDigest"):
        nonce_text = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
        except ValueError:
            return False
        digest = hashlib.sha1(nonce + created.encode() + expected.encode()).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), given)
    return hmac.compare_digest(given.encode(), expected.encode())

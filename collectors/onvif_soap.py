"""One SOAP call through zeep without its per-call rebuilding: requests made once per shape and
filled in, replies parsed by zeep against the WSDL/XSD exactly as before.

zeep serialises every request from the XSD, then adds WS-Addressing and WS-Security headers with
lxml and writes the envelope out; on a large site that is a quarter of the SOAP layer's CPU for
envelopes that differ from call to call only in six values (WS-Addressing MessageID and To, the
UsernameToken's Username, Password digest, Nonce and Created). A request is therefore made by
zeep's own `SoapBinding._create` once per binding, operation, parameters and kind of signing, its
per-call values marked, and the serialised text kept in parts; each call joins the parts with
fresh values: the bytes zeep would have sent (a unit test compares them). Parameters other than
plain values (str, int, bool, None, timedelta) are not kept: such requests are made by zeep each
time.

The reply goes straight from the aiohttp response to zeep's `SoapBinding.process_reply` (typed
parsing against the XSD, SOAP faults), without the library's AsyncServiceProxy, retry decorator
and requests.Response copy in between.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from zeep import ns
from zeep.wsse.username import UsernameToken

_FIELDS = {
    f"{{{ns.WSA}}}MessageID": "message_id",
    f"{{{ns.WSA}}}To": "to",
    f"{{{ns.WSSE}}}Username": "username",
    f"{{{ns.WSSE}}}Password": "password",
    f"{{{ns.WSSE}}}Nonce": "nonce",
    f"{{{ns.WSU}}}Created": "created",
}
_MARK = "\ue000"  # a private-use character around each field's name in a template's text
_MARKED = re.compile(f"{_MARK}(\\w+){_MARK}")
_ZERO = timedelta()
_PLAIN = frozenset({str, int, bool, type(None), timedelta})
TEMPLATES_KEPT = 512  # least recently used dropped past this (parameters can vary per call)


@dataclass(frozen=True)
class Template:
    """A request's text in parts, with the name of the per-call value between each two."""

    parts: tuple[str, ...]
    fields: tuple[str, ...]
    headers: Mapping[str, str]

    def render(self, values: Mapping[str, str]) -> str:
        out = [self.parts[0]]
        for name, part in zip(self.fields, self.parts[1:], strict=True):
            out += (_escape(values[name]), part)
        return "".join(out)


def _text(envelope: etree._Element) -> str:
    """An envelope as zeep's `etree_to_string` writes it."""
    text: bytes = etree.tostring(envelope, pretty_print=False, xml_declaration=True, encoding="utf-8")
    return text.decode("utf-8")


def _escape(text: str) -> str:
    """Text content as libxml2 writes it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _signing(client: Any) -> tuple[Any, ...] | None:
    """What of a client's WS-Security a template depends on; None when it cannot be templated
    (a token other than a fresh-digest UsernameToken)."""
    wsse = client.wsse
    if wsse is None:
        return ()
    if (
        not isinstance(wsse, UsernameToken)
        or not wsse.use_digest
        or wsse.password_digest
        or wsse.hash_password
        or wsse.nonce
        or wsse.created
        or wsse.timestamp_token is not None
    ):
        return None
    return (type(wsse), wsse.password is None, bool(wsse.zulu_timestamp))


def _params_key(params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    if any(type(v) not in _PLAIN for v in params.values()):
        return None
    return tuple(sorted((k, type(v).__name__, v) for k, v in params.items()))


def _message_id(random: bytes) -> str:
    """A random (version 4) UUID URN, as zeep's `"urn:uuid:" + str(uuid.uuid4())` without the UUID object."""
    b = bytearray(random)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def values(client: Any, address: str) -> dict[str, str]:
    """Fresh per-call values, as zeep's WS-Addressing plugin and UsernameToken make them (the
    token's `dt_diff`, when set, moves Created onto the device's clock)."""
    random = os.urandom(32)
    found = {"message_id": _message_id(random[:16]), "to": address}
    wsse = client.wsse
    if wsse is None:
        return found
    found["username"] = wsse.username
    if wsse.password is not None:
        nonce = random[16:]
        created = datetime.now(UTC) + (getattr(wsse, "dt_diff", None) or _ZERO)
        stamp = created.isoformat(timespec="seconds")[:19] + ("Z" if wsse.zulu_timestamp else "+00:00")
        password = wsse.password.encode("utf-8") if isinstance(wsse.password, str) else wsse.password
        digest = hashlib.sha1(nonce + stamp.encode("utf-8") + password).digest()
        found["password"] = base64.b64encode(digest).decode("ascii")
        found["nonce"] = base64.b64encode(nonce).decode("ascii")
        found["created"] = stamp
    return found


def _make_template(
    client: Any, binding: Any, operation: str, params: Mapping[str, Any], address: str
) -> Template | None:
    envelope, headers = binding._create(
        operation, (), dict(params), client=client, options={"address": address}
    )
    header = envelope.find(f"{{{etree.QName(envelope).namespace}}}Header")
    marked: set[str] = set()
    for element in header.iter(*_FIELDS) if header is not None else ():
        name = _FIELDS[element.tag]
        if name in marked or len(element):
            return None
        if name == "password" and not str(element.get("Type", "")).endswith("#PasswordDigest"):
            return None
        element.text = f"{_MARK}{name}{_MARK}"
        marked.add(name)
    text = _text(envelope)
    pieces = _MARKED.split(text)
    fields = tuple(pieces[1::2])
    if text.count(_MARK) != 2 * len(marked) or set(fields) != marked:
        return None
    return Template(tuple(pieces[0::2]), fields, dict(headers))


class Requests:
    """Request texts for the clients of one process's sessions (every client is built alike by
    OnvifSession.service, so a template serves every device of a binding)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, ...], Template | None] = OrderedDict()

    def build(
        self, client: Any, binding: Any, operation: str, params: Mapping[str, Any], address: str
    ) -> tuple[str, Mapping[str, str]]:
        """The request's text and HTTP headers."""
        signing, key = _signing(client), _params_key(params)
        if signing is None or key is None:
            return self._by_zeep(client, binding, operation, params, address)
        cache_key = (binding, operation, signing, key)
        if cache_key in self._kept:
            template = self._kept[cache_key]
            self._kept.move_to_end(cache_key)
        else:
            template = self._kept[cache_key] = _make_template(client, binding, operation, params, address)
            if len(self._kept) > TEMPLATES_KEPT:
                self._kept.popitem(last=False)
        if template is None:
            return self._by_zeep(client, binding, operation, params, address)
        return template.render(values(client, address)), template.headers

    @staticmethod
    def _by_zeep(
        client: Any, binding: Any, operation: str, params: Mapping[str, Any], address: str
    ) -> tuple[str, Mapping[str, str]]:
        envelope, headers = binding._create(
            operation, (), dict(params), client=client, options={"address": address}
        )
        return _text(envelope), headers


@dataclass(frozen=True)
class Reply:
    """What zeep's process_reply reads of a response (it was given a requests.Response)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]  # aiohttp's, case-blind
    encoding: str | None

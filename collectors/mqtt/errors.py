"""How the MQTT collector's failures map onto the collectors' closed set of errors.

A CONNACK refusing the credentials ("bad username or password", "not authorized") is AuthFailed
with the reason code in its message and the Exchange's facts; any other refusal is
DeviceRejected(code). A refused or silent connection is Unreachable. A TLS certificate that does
not verify, or a failed TLS handshake, is ProtocolViolation (the closed set has no TLS error): the
Exchange's facts say `tls_verified: false` and why, a transport-security finding in itself.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from collectors.errors import AuthFailed, CollectorError, DeviceRejected, ProtocolViolation, Unreachable

# CONNACK codes (MQTT 5 numbering; paho maps 3.1.1's 4 and 5 onto them) that refuse the credentials.
AUTH_REFUSED = frozenset({134, 135})  # bad user name or password, not authorized
# A connection paho dropped for a protocol error: reason codes (MQTT 5 numbering), or paho's own codes.
_PROTOCOL_REASONS = frozenset({129, 130})  # malformed packet, protocol error


class ClosedBeforeConnack(Exception):
    def __init__(self, rc: ReasonCode) -> None:
        super().__init__(f"the connection closed before a CONNACK: {rc}")
        self.rc = rc


class SubscriptionRefused(Exception):
    def __init__(self, code: int, name: str) -> None:
        super().__init__(f"subscription refused: [{code}] {name}")
        self.code = code


def code(value: int | ReasonCode | None) -> int:
    if isinstance(value, ReasonCode):
        return int(value.value)
    return -1 if value is None else int(value)


def code_name(value: int | ReasonCode | None) -> str:
    return value.getName() if isinstance(value, ReasonCode) else str(value)


def _protocol_error(rc: int | ReasonCode | None) -> bool:
    if isinstance(rc, ReasonCode):
        return rc.value in _PROTOCOL_REASONS
    return rc == MQTTErrorCode.MQTT_ERR_PROTOCOL


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (aiomqtt raises `from None`, which keeps __context__)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def classify(exc: BaseException, address: str) -> tuple[CollectorError | None, dict[str, Any]]:
    """The typed error for a library exception, and facts for the exchange. None: not ours to type
    (cancellation, or a bug that the run must see as such)."""
    if isinstance(exc, asyncio.CancelledError):
        return None, {"cancelled": True}
    if isinstance(exc, MqttConnectError):
        rc, name = code(exc.rc), code_name(exc.rc)
        facts: dict[str, Any] = {"reason_code": rc, "reason": name}
        if rc in AUTH_REFUSED:
            return AuthFailed(f"{address} refused the login: [{rc}] {name}"), facts
        return DeviceRejected(f"{address} refused the connection: [{rc}] {name}", code=str(rc)), facts
    if isinstance(exc, SubscriptionRefused):
        return DeviceRejected(f"{address}: {exc}", code=str(exc.code)), {"reason_code": exc.code}
    if isinstance(exc, ClosedBeforeConnack):
        if _protocol_error(exc.rc):
            return ProtocolViolation(f"{address} answered CONNECT with something that is not MQTT"), {}
        return Unreachable(f"{address} closed the connection before answering CONNECT"), {}
    for link in _chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            why = link.verify_message or str(link)
            msg = f"the TLS certificate of {address} does not verify: {why}"
            return ProtocolViolation(msg), {"tls_verified": False, "tls_error": why}
        if isinstance(link, ssl.SSLError):
            why = link.reason or str(link)
            msg = f"the TLS handshake with {address} failed: {why}"
            return ProtocolViolation(msg), {"tls_verified": False, "tls_error": why}
        if isinstance(link, TimeoutError):
            return Unreachable(f"{address} did not answer in time", timed_out=True), {"timed_out": True}
        if isinstance(link, OSError):
            return Unreachable(f"{address} is unreachable: {link}"), {"timed_out": False}
        if isinstance(link, aiomqtt.MqttCodeError) and _protocol_error(link.rc):
            return ProtocolViolation(f"{address} broke the MQTT protocol: {link}"), {}
    if isinstance(exc, aiomqtt.MqttError):
        return Unreachable(f"{address}: the connection was lost: {exc}"), {"timed_out": False}
    return None, {}

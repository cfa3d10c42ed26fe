"""The small, closed set of errors every collector turns library errors into.

Probes decide on these types, never on library exceptions or message text, so that a change of
library cannot change a verdict.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base: something went wrong talking to a device. `exchange_id` points at the evidence."""

    reason = "collector_error"

    def __init__(self, message: str, *, exchange_id: str | None = None) -> None:
        super().__init__(message)
        self.exchange_id = exchange_id


class Unreachable(CollectorError):
    """No answer: connection refused, reset, or no reply in time (`timed_out`)."""

    reason = "unreachable"

    def __init__(self, message: str, *, timed_out: bool = False, exchange_id: str | None = None) -> None:
        super().__init__(message, exchange_id=exchange_id)
        self.timed_out = timed_out


class AuthFailed(CollectorError):
    """The device refused our credentials (or has locked the account)."""

    reason = "auth_failed"


class ProtocolViolation(CollectorError):
    """The device answered something the protocol does not allow (malformed XML, bad frame...)."""

    reason = "protocol_violation"


class ReplyTooLarge(ProtocolViolation):
    """The reply grew past the run's bound (`limits.max_reply_bytes`): reading stopped there, its
    first bytes are the evidence, and nothing larger was ever held in memory."""

    reason = "reply_too_large"


class DeviceRejected(CollectorError):
    """The device understood and refused (SOAP fault, Modbus exception, HTTP 4xx/5xx), with its code."""

    reason = "device_rejected"

    def __init__(self, message: str, *, code: str, exchange_id: str | None = None) -> None:
        super().__init__(message, exchange_id=exchange_id)
        self.code = code


class Unsupported(CollectorError):
    """The device does not offer the service or operation asked for."""

    reason = "unsupported"

"""What one ONVIF service endpoint of a simulated device offers to the HTTP front."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from simulator.onvif import soap

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: zeep-parsed parameters and the path it came to."""

    params: Any
    path: str


# An operation handler returns the values of its operation's output element.
Handler = Callable[[Call], Awaitable[dict[str, Any]]]


def _no_capabilities() -> dict[str, Any]:
    return {}


@dataclass
class Service:
    """One endpoint: the WSDL bindings it answers, its handlers and its GetServices entry.

    `capabilities` gives the values of the service's own Capabilities element, shared by
    GetServices (IncludeCapability) and GetServiceCapabilities so both answers agree.
    """

    path: str
    namespace: str
    bindings: tuple[str, ...]
    handlers: dict[str, Handler]
    capabilities: Callable[[], dict[str, Any]] = field(default=_no_capabilities)
    latency_key: str = "onvif"


def seconds(value: Any, now: datetime) -> float:
    """An xs:duration as zeep parses it (timedelta or isodate.Duration) in seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "totimedelta"):  # isodate.Duration: years or months need a start to count from
        return float(value.totimedelta(start=now).total_seconds())
    raise soap.invalid_arg("InvalidDuration", f"not a duration: {value!r}")


def lookup(known: dict[str, T], token: Any, subcode: str) -> T:
    """The object a ReferenceToken names, or env:Sender/ter:InvalidArgVal/ter:<subcode>."""
    if not isinstance(token, str) or token not in known:
        raise soap.invalid_arg(subcode, f"unknown token {token!r}")
    return known[token]

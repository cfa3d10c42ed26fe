"""How to reach one device: every collector is built from one of these, the same way."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectors.exchange import Exchange, Sink, discard, excerpt, redact
from collectors.limits import DEFAULT_MAX_REPLY_BYTES


class Gate:
    """The limits one connection is opened under, taken in order and given back together: the
    device's own connection slots first, then the run's (open sockets and handshakes cost the
    inspector's CPU and file descriptors whichever device they go to)."""

    def __init__(self, *limits: asyncio.Semaphore) -> None:
        self._limits = limits

    async def __aenter__(self) -> None:
        taken: list[asyncio.Semaphore] = []
        try:
            for limit in self._limits:
                await limit.acquire()
                taken.append(limit)
        except BaseException:
            for limit in reversed(taken):
                limit.release()
            raise

    async def __aexit__(self, *_: object) -> None:
        for limit in reversed(self._limits):
            limit.release()


@functools.cache
def system_trust() -> ssl.SSLContext:
    """A verifying context on the system's CA store, for a site that names no CA of its own: one
    per process, shared by every connection (loading the store costs milliseconds a context)."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class Connection:
    device: str  # the device id, carried into every exchange
    host: str
    port: int
    tls: ssl.SSLContext | None = None  # None: plain transport
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""
    timeout_s: float = 10.0  # every network call is bounded by this
    sink: Sink = discard  # where exchanges (evidence) go
    # per-host concurrency (a Semaphore, or a Gate of several limits)
    gate: contextlib.AbstractAsyncContextManager[Any] | None = field(default=None, compare=False)
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES  # reading stops (ReplyTooLarge) past this

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def record(
        self,
        protocol: str,
        operation: str,
        started: datetime,
        t0: float,
        request: str,
        response: str,
        *,
        ok: bool,
        library: str,
        error: str | None = None,
        facts: dict[str, Any] | None = None,
        raw: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> str:
        """One exchange with this device, cleared of its secrets, handed to the sink: its id.

        The one place a collector's evidence is cut and redacted, so no protocol can forget it."""
        hidden = self.secrets() + secrets
        exchange = Exchange(
            device=self.device,
            address=self.address,
            protocol=protocol,
            operation=operation,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 6),
            request=excerpt(redact(request, hidden)),
            response=excerpt(redact(response, hidden)),
            ok=ok,
            error=redact(error, hidden) if error is not None else None,
            library=library,
            facts=facts or {},
            raw=redact(raw, hidden).encode() if raw is not None else None,
        )
        self.sink(exchange)
        return exchange.id

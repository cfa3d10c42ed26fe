"""How to reach one device: every collector is built from one of these, the same way."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

from collectors.exchange import Sink, discard
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

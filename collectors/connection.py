"""How to reach one device: every collector is built from one of these, the same way."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from collectors.exchange import Sink, discard

DEFAULT_MAX_REPLY_BYTES = 4 << 20  # config limits.max_reply_bytes: no device reply zhian reads is larger


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
    gate: asyncio.Semaphore | None = field(default=None, compare=False)  # per-host concurrency
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES  # reading stops (ReplyTooLarge) past this

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

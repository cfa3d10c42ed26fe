"""What every probe declares, and the context it runs in (collectors come in through it)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from collectors.connection import DEFAULT_MAX_REPLY_BYTES, Connection
from collectors.exchange import Sink, now
from collectors.platform import AlertFeed
from probes.finding import Finding
from probes.targets import SiteView, Target, TargetKind

Mode = Literal["passive", "active"]


class Operator(Protocol):
    """The person on site during a guided active test (in tests and the demo, the simulator)."""

    async def instruct(
        self, instruction: str, *, device: str, action: str, params: Mapping[str, Any]
    ) -> None:
        """Tell the operator what to do by hand; returns once told (the probe then watches)."""
        ...


class Sample(BaseModel):
    """The run's pick among the members of one target (a panel's zones), handed to the probe in its
    params: probes sit left of the scorer, so the run applies clause 7.4 for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["inspection", "monitoring"]  # config sampling.mode; monitoring picks every member
    members: tuple[str, ...]
    picked: tuple[str, ...]
    rule: str | None = None  # the words of 7.4 that set the size (inspection)
    seed: int | None = None


@dataclass(frozen=True)
class ProbeSpec:
    id: str
    title: str
    mode: Mode
    applies_to: tuple[TargetKind, ...]
    params: type[BaseModel]
    timeout_s: float  # for one member when `members` is set: the run allows it per member picked
    run: Callable[[ProbeContext, Target, Any], Awaitable[Finding]]
    active_test: str | None = None  # the permission an active probe needs (config active.allow)
    # A homogeneous set inside each target that 7.4 samples on inspections (a panel's zones): the
    # probe works through the members one after another and gets the run's pick as params.sample.
    members: Callable[[SiteView, Target], Sequence[str]] | None = None


@dataclass
class ProbeContext:
    """Shared by all probes of a run; builds collectors for targets, bounded per host."""

    site: SiteView
    sink: Sink
    trust: ssl.SSLContext | None = None  # verifying context with the site's CA; None = system store
    call_timeout_s: float = 10.0
    per_host: int = 2
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    active: frozenset[str] = frozenset()
    operator: Operator | None = None
    clock: Callable[[], datetime] = now
    platform_feed: AlertFeed | None = None  # alerts the platform pushed to zhian's receiver
    # what each active test put back, by the device it tested (see note_restore)
    restores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _gates: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _shared: dict[tuple[str, ...], asyncio.Task[Any]] = field(default_factory=dict)

    def gate(self, host: str, size: int | None = None) -> asyncio.Semaphore:
        if host not in self._gates:
            self._gates[host] = asyncio.Semaphore(size or self.per_host)
        return self._gates[host]

    def host_gate(self, target: Target) -> asyncio.Semaphore:
        """The target host's connection slots: a fire panel often serves one Modbus client at a
        time, so zhian never opens two to it."""
        return self.gate(target.host, 1 if target.kind == "panel" else None)

    def tls_context(self, target: Target) -> ssl.SSLContext | None:
        if not target.tls:
            return None
        return self.trust or ssl.create_default_context()

    def connection(self, target: Target, *, timeout_s: float | None = None) -> Connection:
        return Connection(
            device=target.id,
            host=target.host,
            port=target.port,
            tls=self.tls_context(target),
            username=target.username,
            password=target.password.value if target.password else None,
            path=target.path,
            timeout_s=timeout_s or self.call_timeout_s,
            sink=self.sink,
            gate=self.host_gate(target),
            max_reply_bytes=self.max_reply_bytes,
        )

    def note_restore(self, device: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """An active test's restore steps and their outcome, kept as they are done: a test cut short
        by an interrupt returns no finding, so the run's `interrupted` finding lists these."""
        self.restores.setdefault(device, []).extend(dict(step) for step in steps)

    def allowed(self, test: str) -> bool:
        return test in self.active

    async def shared(self, key: tuple[str, ...], fetch: Callable[[], Awaitable[Any]]) -> Any:
        """Fetch once, judge many: the first caller starts `fetch`, later ones await its result."""
        task = self._shared.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._shared[key] = task
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel shared fetches nobody waits for any more (the run ended or was interrupted)."""
        for task in self._shared.values():
            task.cancel()
        await asyncio.gather(*self._shared.values(), return_exceptions=True)

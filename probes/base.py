"""What every probe declares, and the context it runs in (collectors come in through it)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from collectors.connection import Connection, Gate, system_trust
from collectors.exchange import Sink, now
from collectors.limits import DEFAULT_MAX_REPLY_BYTES
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


T = TypeVar("T")


async def apart(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` in a thread on an event loop of its own, so that its timing does not depend on how
    many jobs the run's loop is juggling: an observation window stamps each message when it
    arrives, and a loop busy with thousands of calls would stamp late, making heartbeats look
    missed. Cancelling the caller cancels the work."""
    started = threading.Event()
    inner: dict[str, Any] = {}

    def body() -> T:
        loop = asyncio.new_event_loop()
        try:
            inner["loop"], inner["task"] = loop, loop.create_task(_awaited(work))
            started.set()
            result: T = loop.run_until_complete(inner["task"])
            return result
        finally:
            started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = asyncio.ensure_future(asyncio.to_thread(body))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        await asyncio.to_thread(started.wait)
        if "task" in inner and not inner["loop"].is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                inner["loop"].call_soon_threadsafe(inner["task"].cancel)
        with contextlib.suppress(BaseException):
            await thread
        raise


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


async def to_the_end(work: Awaitable[None]) -> None:
    """Run `work` (a restore, which bounds itself) to its end even when the caller is cancelled
    meanwhile; a cancellation that came during it is passed on afterwards."""
    task = asyncio.ensure_future(work)
    interrupted = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError


class DeviceClient(Protocol):
    """A collector's client of one device: built from a Connection, opened and closed as a context."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...


C = TypeVar("C", bound=DeviceClient)


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
    # The probe judges its device from a window it shares with others (one MQTT subscription per
    # broker): it waits rather than calls, so it starts at once and takes no slot of the call-bound
    # jobs (limits.concurrency).
    window: bool = False


@dataclass
class ProbeContext:
    """Shared by all probes of a run; builds collectors for targets, bounded per host."""

    site: SiteView
    sink: Sink
    trust: ssl.SSLContext | None = None  # verifying context with the site's CA; None = system store
    call_timeout_s: float = 10.0
    per_host: int = 2
    connections: asyncio.Semaphore | None = None  # the run's connections open at once, all devices
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    active: frozenset[str] = frozenset()
    operator: Operator | None = None
    clock: Callable[[], datetime] = now
    platform_feed: AlertFeed | None = None  # alerts the platform pushed to zhian's receiver
    # what each active test put back, by the device it tested (see note_restore)
    restores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _gates: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _shared: dict[tuple[str, ...], _Fetch] = field(default_factory=dict)
    # each device's clients by kind, opened on first use (see client)
    _clients: dict[str, dict[Callable[..., Any], asyncio.Task[Any]]] = field(default_factory=dict)
    _users: dict[tuple[Callable[..., Any], str], int] = field(default_factory=dict)
    _remaining: dict[str, int] = field(default_factory=dict)  # planned jobs per device not yet ended
    _close_when_free: set[tuple[Callable[..., Any], str]] = field(default_factory=set)
    _closing: set[asyncio.Task[Any]] = field(default_factory=set)

    def gate(self, host: str, size: int | None = None) -> asyncio.Semaphore:
        if host not in self._gates:
            self._gates[host] = asyncio.Semaphore(size or self.per_host)
        return self._gates[host]

    def host_gate(self, target: Target) -> asyncio.Semaphore | Gate:
        """The target host's connection slots: a fire panel often serves one Modbus client at a
        time, so zhian never opens two to it."""
        host = self.gate(target.host, 1 if target.kind == "panel" else None)
        return host if self.connections is None else Gate(host, self.connections)

    def tls_context(self, target: Target) -> ssl.SSLContext | None:
        if not target.tls:
            return None
        return self.trust or system_trust()

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

    @contextlib.asynccontextmanager
    async def client(self, kind: Callable[[Connection], C], target: Target) -> AsyncIterator[C]:
        """The run's one client of this kind for the device, shared by every probe that reads it:
        one connection pool, services discovered once, the clock offset learnt once. Opened on
        first use; closed once the device's last planned job has ended (see plan), or at the end
        of the run, never by the probe that leaves the block."""
        key = (kind, target.id)
        clients = self._clients.setdefault(target.id, {})
        task = clients.get(kind)
        if task is None:

            async def open_client() -> C:
                client = kind(self.connection(target))
                return await client.__aenter__()

            task = asyncio.ensure_future(open_client())
            clients[kind] = task
        self._users[key] = self._users.get(key, 0) + 1
        try:
            client: C = await asyncio.shield(task)
            yield client
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                if key in self._close_when_free:
                    self._close_when_free.discard(key)
                    self._close_client(key)

    def plan(self, devices: Iterable[str]) -> None:
        """The devices of the jobs about to run, one entry per job: a device's clients (their
        sessions, connections, parsed services) are closed when its last job has ended, so that a
        large site does not hold every device's until the run ends. A client another device's
        job opens after that (a camera's job reading its recorder) stays until close()."""
        for device in devices:
            self._remaining[device] = self._remaining.get(device, 0) + 1

    def job_ended(self, device: str) -> None:
        left = self._remaining.get(device)
        if left is None:
            return
        if left > 1:
            self._remaining[device] = left - 1
            return
        del self._remaining[device]
        for kind in list(self._clients.get(device, {})):
            key = (kind, device)
            if key in self._users:
                self._close_when_free.add(key)  # in use by another device's job: closed when it leaves
            else:
                self._close_client(key)

    def _close_client(self, key: tuple[Callable[..., Any], str]) -> None:
        kind, device = key
        clients = self._clients.get(device, {})
        task = clients.pop(kind, None)
        if not clients:
            self._clients.pop(device, None)
        if task is not None:
            closing = asyncio.ensure_future(_close_opened(task))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def allowed(self, test: str) -> bool:
        return test in self.active

    async def shared(
        self,
        key: tuple[str, ...],
        fetch: Callable[[], Awaitable[Any]],
        end: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any:
        """Fetch once, judge many: the first caller starts `fetch`, later ones await its result.
        `end`: what the result holds on a device (an event subscription) is let go with it when
        the run or the round ends (close_shared), unless a probe did so before."""
        held = self._shared.get(key)
        if held is None:
            held = self._shared[key] = _Fetch(asyncio.ensure_future(fetch()), end)
        return await asyncio.shield(held.task)

    def fetched(self, key: tuple[str, ...]) -> Any | None:
        """What a shared fetch already brought (see shared), or None: not asked yet, still under
        way, or it failed. For a probe that can use an earlier answer but must not wait on one."""
        held = self._shared.get(key)
        if held is None:
            return None
        task = held.task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def close_shared(self) -> None:
        """Cancel the shared work still running and wait for its end (a round of checks ended, or
        the run was stopped): an active test shared by several probes (a panel's fire test)
        restores the site first and notes each restore step (note_restore), so that what the run
        records after this sees every step and its outcome. Then what the results hold is let go,
        and the results too: a long-lived context (the monitor's, between rounds) would otherwise
        hold a whole round's observations until the next."""
        fetches = list(self._shared.values())
        self._shared.clear()
        for held in fetches:
            held.task.cancel()
        results = await asyncio.gather(*(h.task for h in fetches), return_exceptions=True)
        done = zip(fetches, results, strict=True)
        ends = [f.end(r) for f, r in done if f.end is not None and not isinstance(r, BaseException)]
        await asyncio.gather(*ends, return_exceptions=True)

    async def close(self) -> None:
        """Cancel shared fetches nobody waits for any more (the run ended or was interrupted), then
        close every device's client."""
        await self.close_shared()
        tasks = [task for clients in self._clients.values() for task in clients.values()]
        self._clients.clear()
        self._close_when_free.clear()
        await asyncio.gather(*(_close_opened(task) for task in tasks), *self._closing, return_exceptions=True)


@dataclass(frozen=True)
class _Fetch:
    """A shared fetch (ProbeContext.shared) and how to let go of what its result holds."""

    task: asyncio.Task[Any]
    end: Callable[[Any], Awaitable[None]] | None


async def _close_opened(task: asyncio.Task[Any]) -> None:
    """Close a client once its opening has ended (one that failed to open has nothing to close; one
    that fails to close has nothing left to give)."""
    opened = (await asyncio.gather(task, return_exceptions=True))[0]
    if not isinstance(opened, BaseException):
        with contextlib.suppress(Exception):
            await opened.__aexit__(None, None, None)

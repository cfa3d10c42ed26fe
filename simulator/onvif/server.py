"""The HTTP(S) front of a simulated ONVIF device: dispatch, authentication and transport faults.

One aiohttp AppRunner per device (its own loopback address and port, as on a site), the zeep
machinery shared by all.  Transport faults are applied here, below the SOAP layer:

* offline: never listens (connection refused);
* hung: a raw TCP listener that accepts and holds connections without a byte of reply;
* slow: the correct reply dripped at bytes_per_second;
* malformed_xml: the reply cut in the middle of the document;
* soap_fault: the listed operations (all when empty) answer env:Receiver (ter:Action, or
  ter:ActionNotSupported with not_supported);
* plain_http: nothing to do here, the site gives such a device no TLS context, and XAddrs follow
  the scheme actually served.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from lxml import etree

from simulator import faults
from simulator.bus import EventType, SiteEvent
from simulator.onvif import discovery, soap
from simulator.onvif.device import PRE_AUTH, DeviceService, Identity
from simulator.onvif.events import PULLPOINT_PREFIX, EventBroker, EventServices, Topic
from simulator.onvif.recording import RecordedSource, Recorder, RecordingService, SearchService
from simulator.onvif.render import Catalog, load_catalog
from simulator.onvif.service import Call, Service
from simulator.runtime import DeviceContext

SOAP_CONTENT_TYPE = "application/soap+xml"
CommandAction = Callable[[dict[str, Any]], None]


class OnvifDevice(ABC):
    """Listening, dispatch and the site-bus plumbing shared by cameras, NVRs and door controllers.

    Subclasses say which topics they raise (`topics`), which services they serve (`build`) and
    which bus actions they take (`actions`, with `linked` naming those that linkage_slow delays).
    """

    linked: frozenset[str] = frozenset()

    def __init__(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.port = ctx.port
        deaf = ctx.spec.fault(faults.SubscriptionDiesSilently)
        self.broker = EventBroker(self.topics(), ctx.now, deaf.after_s if deaf else None)
        self.services: dict[str, Service] = {}
        self.pullpoints: Service | None = None  # the per-subscription endpoints
        self._cat: Catalog | None = None
        self._runner: web.AppRunner | None = None
        self._hung: asyncio.Server | None = None
        self._frozen = False  # "freeze": requests read and never answered
        self.recorder: Recorder | None = None  # a device that records: its recordings
        self._held: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._scopes: tuple[str, ...] = ()
        self._discovery: asyncio.DatagramTransport | None = None

    # -- what a subclass provides ---------------------------------------------------------------

    @abstractmethod
    def topics(self) -> list[Topic]: ...

    @abstractmethod
    def build(self, cat: Catalog, events: EventServices) -> list[Service]: ...

    def actions(self) -> dict[str, CommandAction]:
        return {}

    def recording_services(self, cat: Catalog, sources: list[RecordedSource]) -> list[Service]:
        """Profile G's recording and search services over these recordings (kept: "purge" acts on them)."""
        self.recorder = Recorder(sources, self.ctx.now, self.started_on_device_clock())
        return [RecordingService(self.recorder).service(), SearchService(cat, self.recorder).service()]

    def on_start(self) -> None:  # noqa: B027 - a hook most devices leave empty
        """Announce on the bus what the device shows from power-on (e.g. a lost video signal)."""

    def on_stop(self) -> None:  # noqa: B027
        """Drop timers the device state holds."""

    def device_service(self, cat: Catalog, ident: Identity) -> Service:
        self._scopes = ident.scopes
        return DeviceService(cat, self.ctx, ident, self._served, self.base_url).service()

    def _served(self) -> list[Service]:
        return list(self.services.values())

    # -- SimDevice ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (again, after a stop); the services are built once, on the first start."""
        if self.ctx.offline:
            return
        cat = await load_catalog()
        await self._listen()  # before building: with port 0 the XAddrs need the port actually bound
        if self._cat is None:
            events = EventServices(cat, self.broker, self.base_url)
            self.services = {s.path: s for s in self.build(cat, events)}
            self.pullpoints = events.pullpoint_service()
            self._cat = cat
            self.ctx.bus.register(self.ctx.spec.id, self._command)
            self.on_start()

    async def stop(self) -> None:
        await self._close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.on_stop()

    async def unplug(self) -> None:
        await self._close()

    async def replug(self) -> None:
        if self._cat is not None:
            await self._listen()

    # -- addressing -----------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.ctx.server_tls is not None else "http"

    def base_url(self) -> str:
        return f"{self.scheme}://{self.ctx.host}:{self.port}"

    def started_on_device_clock(self) -> datetime:
        """When the site started, on this device's (possibly skewed) clock."""
        skew = self.ctx.spec.fault(faults.ClockSkew)
        return self.ctx.started_at.astimezone(UTC) + timedelta(seconds=skew.seconds if skew else 0.0)

    def site_event(self, type_: EventType, data: dict[str, Any] | None = None) -> None:
        spec = self.ctx.spec
        self.ctx.bus.publish(SiteEvent(type_, spec.id, spec.area, data or {}))

    # -- listening ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._runner is not None or self._hung is not None:
            return
        if self.ctx.hung:
            self._hung = await asyncio.start_server(self._hold, self.ctx.host, self.port)
            self.port = self._hung.sockets[0].getsockname()[1]
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.ctx.host, self.port, ssl_context=self.ctx.server_tls)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        await self._answer_probes()

    async def _answer_probes(self) -> None:
        """WS-Discovery on UDP 3702 of the device's own address (a busy port: no discovery)."""
        endpoint = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'zhian-sim/{self.ctx.spec.id}')}"
        responder = discovery.DiscoveryResponder(
            endpoint, self._types, lambda: self._scopes, lambda: f"{self.base_url()}/onvif/device_service"
        )
        with contextlib.suppress(OSError):
            self._discovery = await discovery.listen(self.ctx.host, responder)

    def _types(self) -> tuple[str, ...]:
        if any(s.endswith("/type/Network_Video_Transmitter") for s in self._scopes):
            return ("dn:NetworkVideoTransmitter", "tds:Device")
        return ("tds:Device",)

    async def _close(self) -> None:
        if self._discovery is not None:
            self._discovery.close()
            self._discovery = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._hung is not None:
            server, self._hung = self._hung, None
            server.close()
            for writer in list(self._held):
                writer.close()
            await server.wait_closed()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept, read whatever comes, never answer; the connection ends when the client gives up."""
        self._held.add(writer)
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        finally:
            self._held.discard(writer)
            writer.close()

    # -- requests -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._cat is None:
            raise web.HTTPServiceUnavailable()  # still booting
        path = request.path
        service = self.services.get(path)
        if service is None and path.startswith(PULLPOINT_PREFIX):
            service = self.pullpoints
        if service is None:
            raise web.HTTPNotFound()
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        data = await request.read()
        if self._frozen:
            await asyncio.Event().wait()  # until the client gives up or the device stops
        try:
            status, body = 200, await self._answer(service, data, request.remote or "", path)
        except soap.SoapFault as fault:
            status, body = fault.http_status, soap.fault_envelope(fault)
        return await self._deliver(request, status, body)

    async def _answer(self, service: Service, data: bytes, peer: str, path: str) -> bytes:
        assert self._cat is not None
        req = soap.parse_request(data)
        op = self._cat.operation(service.bindings, str(req.body.tag))
        name = etree.QName(req.body).localname
        if op is None:
            raise soap.action_not_supported(name)
        await self.ctx.latency.wait(service.latency_key)
        if op.name not in PRE_AUTH:
            soap.authenticate(req.security, self.ctx.guard, peer)
        injected = self.ctx.spec.fault(faults.SoapFault)
        if injected is not None and (not injected.operations or op.name in injected.operations):
            if injected.not_supported:
                raise soap.action_not_supported(op.name)
            raise soap.SoapFault("Receiver", ("ter:Action",), f"{op.name} failed: internal error")
        handler = service.handlers.get(op.name)
        if handler is None:
            raise soap.action_not_supported(op.name)
        try:
            params = self._cat.parse(op, req.body)
        except Exception as exc:  # zeep raises a handful of unrelated types for bad input
            raise soap.SoapFault("Sender", ("ter:InvalidArgVal",), f"bad {op.name} request: {exc}") from exc
        return self._cat.reply(op, await handler(Call(params, path)))

    async def _deliver(self, request: web.Request, status: int, body: bytes) -> web.StreamResponse:
        if self.ctx.spec.fault(faults.MalformedXml) is not None:
            body = body[: len(body) // 2]
        slow = self.ctx.spec.fault(faults.Slow)
        if slow is None:
            return web.Response(status=status, body=body, content_type=SOAP_CONTENT_TYPE, charset="utf-8")
        response = web.StreamResponse(status=status)
        response.content_type = SOAP_CONTENT_TYPE
        response.charset = "utf-8"
        response.content_length = len(body)
        await response.prepare(request)
        step = max(1, slow.bytes_per_second // 10)
        try:
            for i in range(0, len(body), step):
                await response.write(body[i : i + step])
                await asyncio.sleep(step / slow.bytes_per_second)
            await response.write_eof()
        except ConnectionError:
            pass  # the client gave up waiting, as it should with a slow device
        return response

    # -- site bus -------------------------------------------------------------------------------

    async def _command(self, action: str, params: dict[str, Any]) -> None:
        if action == "forget_subscriptions":  # a reboot: the device forgets its pull points
            self.broker.forget()
            return
        if action == "freeze":
            self._frozen = True
            return
        if action == "purge" and self.recorder is not None:
            self.recorder.purge(float(params["days"]))
            return
        act = self.actions().get(action)
        if act is None:
            raise ValueError(f"{self.ctx.spec.id} does not take {action!r}")
        slow = self.ctx.spec.fault(faults.LinkageSlow)
        if slow is not None and action in self.linked:
            self._spawn(self._later(slow.delay_s, act, params))
        else:
            act(params)

    async def _later(self, delay_s: float, act: CommandAction, params: dict[str, Any]) -> None:
        await asyncio.sleep(delay_s)
        act(params)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

"""One MQTT session with a site's broker: connecting (TLS when the Connection carries a context)
under the per-host gate, the aiomqtt life cycle made cancellation-safe, the subscription that the
window and the follower share, and the Exchange every operation records.

Receive times are taken as paho reads each message off the socket (HandOn: no queue between),
within milliseconds of its arrival at the load of a large site.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, cast

import aiomqtt
from paho.mqtt.client import MQTTMessage
from paho.mqtt.reasoncodes import ReasonCode

from collectors.connection import Connection
from collectors.exchange import library_version, now
from collectors.mqtt.errors import ClosedBeforeConnack, SubscriptionRefused, classify, code, code_name
from collectors.mqtt.messages import Cut

KEEPALIVE_S = 30
CONNECT_ATTEMPTS = 2  # a CONNECT left unanswered is sent once more (see Session.session)


class Session:
    """The broker at conn.host:conn.port: sessions with it and the evidence they leave."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._library = f"{library_version('aiomqtt')}; {library_version('paho-mqtt')}"

    @contextlib.asynccontextmanager
    async def session(
        self,
        username: str | None,
        password: str | None,
        *,
        gated: bool = True,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
    ) -> AsyncIterator[aiomqtt.Client]:
        """One connection under the per-host gate: connected within the timeout, always closed.

        A CONNECT left unanswered is sent once more before the broker counts as unreachable: paho
        connects in a worker thread of a shared pool, and one unanswered attempt on a busy host is
        not an outage (the same debounce as heartbeats). The first attempt stays in the evidence."""
        async with (self.conn.gate if gated else None) or contextlib.nullcontext():
            for attempt in range(1, CONNECT_ATTEMPTS + 1):
                client = self._client(username, password, queue_type)
                started, t0 = now(), time.monotonic()
                try:
                    async with asyncio.timeout(self.conn.timeout_s):
                        await _enter(client)
                    break
                except TimeoutError:
                    if attempt == CONNECT_ATTEMPTS:
                        raise
                    request = self.connect_line(username, with_password=password is not None)
                    error = f"no CONNACK within {self.conn.timeout_s:g} s (attempt {attempt}); trying again"
                    self.record("connect", request, "", started, t0, ok=False, error=error)
            try:
                yield client
            finally:
                await _leave(client, self.conn.timeout_s)

    @contextlib.asynccontextmanager
    async def subscription(
        self,
        filters: Sequence[str],
        qos: int,
        lines: list[str],
        *,
        gated: bool = True,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
    ) -> AsyncIterator[tuple[aiomqtt.Client, list[int]]]:
        """A session with the site's credentials and `filters` subscribed: the client and the granted
        QoS per filter. CONNACK and SUBACK go to `lines`; a refused filter is SubscriptionRefused."""
        login = (self.conn.username, self.conn.password)
        async with self.session(*login, gated=gated, queue_type=queue_type) as client:
            lines.append("CONNACK 0 Success")
            async with asyncio.timeout(self.conn.timeout_s):
                codes = await client.subscribe([(f, qos) for f in filters])
            granted = [code(c) for c in codes]
            lines.append(f"SUBACK {granted}")
            refused = next((c for c in codes if code(c) >= 0x80), None)
            if refused is not None:
                raise SubscriptionRefused(code(refused), code_name(refused))
            yield client, granted

    def _client(
        self,
        username: str | None,
        password: str | None,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
    ) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.conn.host,
            self.conn.port,
            username=username,
            password=password,
            identifier=f"zhian-{uuid.uuid4().hex[:12]}",
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=True,
            keepalive=KEEPALIVE_S,
            timeout=self.conn.timeout_s,
            tls_context=self.conn.tls,
            queue_type=queue_type,
        )
        _cut_oversize(client, self.conn.max_reply_bytes)
        return client

    # -- evidence ---------------------------------------------------------------------------------
    def connect_line(self, username: str | None, *, with_password: bool = True) -> str:
        who = "anonymous" if username is None else f"username={username}"
        secret = " password=[redacted]" if with_password and username is not None else ""
        tls = "TLS" if self.conn.tls is not None else "plain TCP"
        return f"CONNECT {self.conn.address} ({tls}) {who}{secret} clean_session=1 keepalive={KEEPALIVE_S}"

    def subscribe_request(self, filters: Sequence[str], qos: int) -> str:
        """The request of a subscription with the site's credentials, as the evidence shows it."""
        connect = self.connect_line(self.conn.username, with_password=self.conn.password is not None)
        return f"{connect}\nSUBSCRIBE " + ", ".join(f"{f} qos={qos}" for f in filters)

    def record(
        self,
        operation: str,
        request: str,
        response: str,
        started: datetime,
        t0: float,
        *,
        ok: bool,
        error: str | None = None,
        facts: dict[str, Any] | None = None,
        raw: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> str:
        return self.conn.record(
            "mqtt",
            operation,
            started,
            t0,
            request,
            response,
            ok=ok,
            error=error,
            library=self._library,
            facts=facts,
            raw=raw,
            secrets=secrets,
        )

    def failed(
        self,
        exc: BaseException,
        operation: str,
        request: str,
        response: str,
        started: datetime,
        t0: float,
        secrets: tuple[str, ...] = (),
    ) -> BaseException:
        """Record the failed exchange; return the typed error to raise, or `exc` itself (cancellation,
        or a bug the run must see as such) with its traceback kept."""
        error, facts = classify(exc, self.conn.address)
        message = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        ex_id = self.record(
            operation, request, response, started, t0, ok=False, error=message, facts=facts, secrets=secrets
        )
        if error is None:
            return exc
        error.exchange_id = ex_id
        error.__cause__ = exc
        return error


class HandOn:
    """aiomqtt's queue, made to hand each message on the moment paho reads it: no task, no queue and
    no await per message (the queue and the async iterator cost most of a message's CPU at a large
    site's rate). A handler that raises stops the reader: its message is queued, which wakes it
    (`async for _ in client.messages: raise hand_on.error`)."""

    def __init__(self, on_message: Callable[[str, bytes, int, bool, datetime], None]) -> None:
        self.on_message = on_message  # (topic, payload, qos, retain, received at)
        self.after: Callable[[], object] | None = None
        self.error: BaseException | None = None
        self.received = 0
        self._early: (
            list[tuple[str, bytes, int, bool]] | None
        ) = []  # read before the subscription was reported
        self._closed = False
        outer = self

        class Queue(asyncio.Queue[aiomqtt.Message]):
            def put_nowait(self, item: aiomqtt.Message) -> None:
                if outer.error is None:
                    try:
                        outer.hand(item)
                        return
                    except Exception as exc:  # raised again by the reader
                        outer.error = exc
                super().put_nowait(item)

        self.queue_type = Queue

    def start(self) -> None:
        """The subscription is reported: hand on what came with it (the retained messages), then
        every message as it is read."""
        early, self._early = self._early or [], None
        for message in early:
            self.take(*message)

    def close(self) -> None:
        """Drop every message read from now on (a window that has ended)."""
        self._closed = True

    def hand(self, message: aiomqtt.Message) -> None:
        self.take(message.topic.value, body(message), message.qos, message.retain)

    def take(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self._closed:
            return
        if self._early is not None:
            self._early.append((topic, payload, qos, retain))
            return
        self.on_message(topic, payload, qos, retain, now())
        self.received += 1
        if self.after is not None:
            self.after()

    def read_directly(self, client: aiomqtt.Client, limit: int) -> None:
        """Have paho hand each PUBLISH it reads straight to `take`, past its own dispatch (a walk of
        its topic-filter tree and two locks a message), aiomqtt's Message and the queue: a sixth
        less CPU a message (bench_mqtt_window.py). paho delivers every PUBLISH through
        `_handle_on_message`; a paho that did not would still reach `hand` through the queue. A
        `take` that raises sends its message the usual way, to be queued: that wakes the reader."""
        paho = client._client
        usual = paho._handle_on_message

        def handle(message: MQTTMessage) -> None:
            if self.error is None:
                try:
                    payload = bytes(message.payload)  # paho's is bytes already: not copied
                    cut = Cut.of(payload) if len(payload) > limit else payload
                    self.take(message.topic, cut, message.qos, message.retain)
                    return
                except Exception as exc:  # raised again by the reader
                    self.error = exc
            usual(message)

        paho._handle_on_message = handle  # type: ignore[method-assign]


def body(message: aiomqtt.Message) -> bytes:
    """A message's payload as bytes, whatever type aiomqtt gave it (a Cut as it is)."""
    payload = message.payload
    if isinstance(payload, Cut):
        return payload
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()


def _cut_oversize(client: aiomqtt.Client, limit: int) -> None:
    """Cut every payload larger than `limit` to its first bytes as paho hands it over, before
    aiomqtt queues it: paho holds one packet at a time while reading it, the queue never holds more
    than the bound per message. (MQTT 3.1.1 has no way to ask the broker for smaller packets.)"""
    paho = client._client
    queue = cast(Callable[..., None], paho.on_message)

    def on_message(c: Any, userdata: Any, message: Any) -> None:
        if len(message.payload) > limit:
            message.payload = Cut.of(message.payload)
        queue(c, userdata, message)

    paho.on_message = on_message


# -- the aiomqtt life cycle, made cancellation-safe --------------------------------------------------
async def _enter(client: aiomqtt.Client) -> None:
    """Connect, until the CONNACK or the connection's end, whichever comes first.

    paho connects in a worker thread that cannot be interrupted: if we are cancelled (or time out)
    meanwhile, the connection is dropped as soon as that thread is done. aiomqtt itself only waits
    for a CONNACK; a peer that hangs up on our CONNECT (not an MQTT listener, a TLS port spoken to
    in plain) ends the wait here at once instead of at the timeout.
    """
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[ReasonCode] = loop.create_future()
    answered = False  # a CONNACK came (paho calls on_connect before on_disconnect for a refusal)
    paho = client._client
    chained_connect = cast(Callable[..., None], paho.on_connect)
    chained_disconnect = cast(Callable[..., None], paho.on_disconnect)

    def on_connect(*args: Any) -> None:
        nonlocal answered
        answered = True
        chained_connect(*args)

    def on_disconnect(*args: Any) -> None:
        if not answered:
            loop.call_soon_threadsafe(_settle, closed, args[3])  # (client, userdata, flags, rc, props)
        chained_disconnect(*args)

    paho.on_connect = on_connect
    paho.on_disconnect = on_disconnect
    entering = asyncio.ensure_future(client.__aenter__())
    try:
        await asyncio.wait((entering, closed), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        entering.add_done_callback(functools.partial(_abandon, client))
        raise
    if not entering.done():
        entering.cancel()  # the connection is gone: no CONNACK will come
        entering.add_done_callback(functools.partial(_abandon, client))
        raise ClosedBeforeConnack(closed.result())
    error = entering.exception()
    if error is not None:
        _drop(client)  # a refused CONNACK may leave the socket to the broker's hang-up
        raise error


def _settle(future: asyncio.Future[ReasonCode], rc: ReasonCode) -> None:
    if not future.done():
        future.set_result(rc)


async def _leave(client: aiomqtt.Client, timeout_s: float) -> None:
    """A clean DISCONNECT; if that cannot finish in time (or we are cancelled), drop the socket."""
    try:
        async with asyncio.timeout(timeout_s):
            await client.__aexit__(None, None, None)
    except BaseException:
        _drop(client)
        raise


def _abandon(client: aiomqtt.Client, entering: asyncio.Future[Any]) -> None:
    """The connect nobody waits for has finished: take its outcome and drop what it opened."""
    if not entering.cancelled():
        entering.exception()
    _drop(client)


def _drop(client: aiomqtt.Client) -> None:
    """Queue DISCONNECT; paho closes the socket once it is written (a no-op without a socket).

    aiomqtt has no public abort, hence its paho client. Its disconnect bookkeeping is moot for a
    client being dropped, and trips over a CONNACK wait that timed out (a cancelled future): off.
    """
    paho = client._client
    paho.on_disconnect = None
    paho.disconnect()

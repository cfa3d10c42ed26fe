"""MQTT client for a site's broker: passive observation windows and single login trials (aiomqtt/paho).

zhian only reads on MQTT. It never publishes: a message on a site's broker can switch a relay or
raise an alarm, so this client has no publish at all. Each operation is one MQTT session of its
own (connect, work, DISCONNECT) under the per-host gate, and leaves exactly one Exchange:

- `observe(filters, window_s)` subscribes and tallies what arrives for the window. A large site
  sends thousands of messages a minute, so memory stays bounded: per topic the counts, the retained
  message the broker replayed, the first and last live message and the longest silence between
  live messages; plus a small sample of raw messages for the evidence. The Exchange's facts
  summarise; `raw` holds the per-topic table and the sample (redacted).
- `try_login(username, password)` and `try_anonymous()` make one connection attempt each and
  report the broker's CONNACK: a refusal is an answer here, not an error. Nothing retries, so a
  broker that locks accounts sees exactly one failed login per call.

Errors: a CONNACK refusing the credentials ("bad username or password", "not authorized") is
AuthFailed with the reason code in its message and the Exchange's facts; any other refusal is
DeviceRejected(code). A refused or silent connection is Unreachable. A TLS certificate that does
not verify, or a failed TLS handshake, is ProtocolViolation (the closed set has no TLS error): the
Exchange's facts say `tls_verified: false` and why, a transport-security finding in itself.
Receive times are taken when the collector takes a message off the client's queue, within
milliseconds of its arrival at the load of a large site.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from collectors.connection import Connection
from collectors.errors import AuthFailed, CollectorError, DeviceRejected, ProtocolViolation, Unreachable
from collectors.exchange import Exchange, excerpt, library_version, now, redact

PAYLOAD_LIMIT = 512  # bytes of a payload kept per stored message (status and heartbeat JSON fit)
SAMPLE_LIMIT = 100  # raw messages kept per observation, for the evidence
MAX_TOPICS = 20_000  # topics tallied per observation (a 5,000-device site has 10,000); more are counted
KEEPALIVE_S = 30
CONNECT_ATTEMPTS = 2  # a CONNECT left unanswered is sent once more (see MqttClient._session)
# CONNACK codes (MQTT 5 numbering; paho maps 3.1.1's 4 and 5 onto them) that refuse the credentials.
AUTH_REFUSED = frozenset({134, 135})  # bad user name or password, not authorized
# A connection paho dropped for a protocol error: reason codes (MQTT 5 numbering), or paho's own codes.
_PROTOCOL_REASONS = frozenset({129, 130})  # malformed packet, protocol error


@dataclass(frozen=True)
class Received:
    """One message as it arrived: the collector's receive time and the first PAYLOAD_LIMIT bytes."""

    at: datetime
    payload: bytes
    size: int  # the whole payload's length
    qos: int
    retain: bool  # a stored message the broker replayed on subscribe, not one sent during the window

    @property
    def truncated(self) -> bool:
        return self.size > len(self.payload)


@dataclass(frozen=True)
class TopicSummary:
    """Everything kept of one topic over a window."""

    topic: str
    messages: int  # every delivery, retained replays included
    live: int  # published during the window
    retained: Received | None  # the broker's stored message, as replayed on subscribe
    first_live: Received | None
    last_live: Received | None
    max_live_gap_s: float | None  # the longest silence between two consecutive live messages

    @property
    def latest(self) -> Received | None:
        """The topic's last word: the newest live message, else the retained one."""
        return self.last_live or self.retained


@dataclass(frozen=True)
class Observation:
    """What a subscription saw in its window, with the exchange that carries it."""

    address: str
    filters: tuple[str, ...]
    started_at: datetime  # when the broker had acknowledged the subscription
    ended_at: datetime
    topics: Mapping[str, TopicSummary]
    messages: int
    untracked: int  # messages on topics beyond MAX_TOPICS: counted, not kept
    exchange_id: str

    @property
    def window_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def topic(self, name: str) -> TopicSummary | None:
        return self.topics.get(name)


@dataclass(frozen=True)
class LoginResult:
    """The broker's answer to one login attempt."""

    accepted: bool
    reason_code: int  # CONNACK reason code, MQTT 5 numbering (0 = accepted)
    reason: str
    exchange_id: str


@dataclass(slots=True)
class _Topic:
    messages: int = 0
    live: int = 0
    retained: Received | None = None
    first_live: Received | None = None
    last_live: Received | None = None
    max_gap_s: float | None = None

    def add(self, received: Received) -> None:
        self.messages += 1
        if received.retain:
            self.retained = received
            return
        if self.last_live is None:
            self.first_live = received
        else:
            gap = (received.at - self.last_live.at).total_seconds()
            self.max_gap_s = gap if self.max_gap_s is None else max(self.max_gap_s, gap)
        self.last_live = received
        self.live += 1

    def summary(self, topic: str) -> TopicSummary:
        return TopicSummary(
            topic, self.messages, self.live, self.retained, self.first_live, self.last_live, self.max_gap_s
        )


@dataclass
class _Tally:
    """The bounded record of a window: per-topic summaries and the first SAMPLE_LIMIT messages."""

    topics: dict[str, _Topic] = field(default_factory=dict)
    sample: list[tuple[str, Received]] = field(default_factory=list)
    messages: int = 0
    retained: int = 0
    untracked: int = 0

    def add(self, topic: str, payload: bytes, qos: int, retain: bool, at: datetime) -> None:
        self.messages += 1
        self.retained += retain
        received = Received(at, payload[:PAYLOAD_LIMIT], len(payload), qos, retain)
        if len(self.sample) < SAMPLE_LIMIT:
            self.sample.append((topic, received))
        entry = self.topics.get(topic)
        if entry is None:
            if len(self.topics) >= MAX_TOPICS:
                self.untracked += 1
                return
            entry = self.topics[topic] = _Topic()
        entry.add(received)


class _ClosedBeforeConnack(Exception):
    def __init__(self, rc: ReasonCode) -> None:
        super().__init__(f"the connection closed before a CONNACK: {rc}")
        self.rc = rc


class _SubscriptionRefused(Exception):
    def __init__(self, code: int, name: str) -> None:
        super().__init__(f"subscription refused: [{code}] {name}")
        self.code = code


class MqttClient:
    """`async with MqttClient(conn) as c:` the broker at conn.host:conn.port, TLS when conn.tls is set."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._library = f"{library_version('aiomqtt')}; {library_version('paho-mqtt')}"

    async def __aenter__(self) -> MqttClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        """Nothing to close: every operation ends its own session, also when cancelled."""

    # -- operations -------------------------------------------------------------------------------
    async def observe(self, filters: Sequence[str], window_s: float, *, qos: int = 1) -> Observation:
        """Subscribe to `filters` and tally every message for `window_s` seconds after the SUBACK."""
        wanted = tuple(filters)
        if not wanted or window_s <= 0:
            raise ValueError("an observation needs at least one filter and a positive window")
        subscribe = "SUBSCRIBE " + ", ".join(f"{f} qos={qos}" for f in wanted)
        connect = self._connect_line(self.conn.username, with_password=self.conn.password is not None)
        request = f"{connect}\n{subscribe}\nwindow {window_s:g} s"
        tally = _Tally()
        lines: list[str] = []
        window: list[datetime] = []
        granted: list[int] = []
        started, t0 = now(), time.monotonic()
        operation = f"observe({', '.join(wanted)}, {window_s:g} s)"
        try:
            async with self._session(self.conn.username, self.conn.password) as client:
                lines.append("CONNACK 0 Success")
                async with asyncio.timeout(self.conn.timeout_s):
                    codes = await client.subscribe([(f, qos) for f in wanted])
                granted += [_code(c) for c in codes]
                lines.append(f"SUBACK {granted}")
                refused = next((c for c in codes if _code(c) >= 0x80), None)
                if refused is not None:
                    raise _SubscriptionRefused(_code(refused), _code_name(refused))
                window.append(now())
                await _collect(client, tally, window_s)
                window.append(now())
        except BaseException as exc:
            raise self._failed(exc, operation, request, "\n".join(lines), started, t0)  # noqa: B904
        obs_facts = {
            "filters": list(wanted),
            "granted": granted,
            "window_s": round((window[1] - window[0]).total_seconds(), 3),
            "messages": tally.messages,
            "retained": tally.retained,
            "topics": len(tally.topics),
            "untracked": tally.untracked,
            "tls": self.conn.tls is not None,
        }
        lines.append(
            f"window {obs_facts['window_s']} s: {tally.messages} messages ({tally.retained} retained) "
            f"on {len(tally.topics)} topics"
        )
        summaries = {t: entry.summary(t) for t, entry in tally.topics.items()}
        lines += [_summary_line(s) for s in sorted(summaries.values(), key=lambda s: s.topic)]
        exchange_id = self._record(
            operation,
            request,
            "\n".join(lines),
            started,
            t0,
            ok=True,
            facts=obs_facts,
            raw=self._raw(wanted, window, summaries, tally),
        )
        return Observation(
            address=self.conn.address,
            filters=wanted,
            started_at=window[0],
            ended_at=window[1],
            topics=summaries,
            messages=tally.messages,
            untracked=tally.untracked,
            exchange_id=exchange_id,
        )

    async def follow(
        self,
        filters: Sequence[str],
        on_message: Callable[[str, bytes, bool, datetime], None],
        on_subscribed: Callable[[str], None],
        *,
        qos: int = 1,
    ) -> None:
        """Subscribe to `filters` and hand every message to `on_message(topic, payload, retain, at)`
        until cancelled, or until the connection is lost (then the typed error). A service's long-lived
        subscription: it does not take a slot of the per-host gate for its whole life. Two exchanges:
        the subscription granted (its id to `on_subscribed`) and, when it is lost, its end."""
        wanted = tuple(filters)
        if not wanted:
            raise ValueError("a subscription needs at least one filter")
        connect = self._connect_line(self.conn.username, with_password=self.conn.password is not None)
        request = f"{connect}\nSUBSCRIBE " + ", ".join(f"{f} qos={qos}" for f in wanted)
        operation = f"follow({', '.join(wanted)})"
        started, t0, lines, received = now(), time.monotonic(), [], 0
        try:
            async with self._session(self.conn.username, self.conn.password, gated=False) as client:
                lines.append("CONNACK 0 Success")
                async with asyncio.timeout(self.conn.timeout_s):
                    codes = await client.subscribe([(f, qos) for f in wanted])
                granted = [_code(c) for c in codes]
                lines.append(f"SUBACK {granted}")
                refused = next((c for c in codes if _code(c) >= 0x80), None)
                if refused is not None:
                    raise _SubscriptionRefused(_code(refused), _code_name(refused))
                facts = {"filters": list(wanted), "granted": granted, "tls": self.conn.tls is not None}
                on_subscribed(
                    self._record(operation, request, "\n".join(lines), started, t0, ok=True, facts=facts)
                )
                operation, started, t0 = f"{operation}: subscription lost", now(), time.monotonic()
                async for message in client.messages:
                    payload = message.payload
                    body = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
                    on_message(message.topic.value, body, message.retain, now())
                    received += 1
                raise ConnectionError("the broker closed the connection")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            lines.append(f"{received} messages received while subscribed")
            raise self._failed(exc, operation, request, "\n".join(lines), started, t0)  # noqa: B904

    async def try_login(self, username: str, password: str) -> LoginResult:
        """One login with these credentials; the broker's refusal is returned, not raised."""
        return await self._login(username, password)

    async def try_anonymous(self) -> LoginResult:
        """One login with neither username nor password."""
        return await self._login(None, None)

    async def _login(self, username: str | None, password: str | None) -> LoginResult:
        secrets = (password,) if password else ()
        operation = f"connect({'anonymous' if username is None else f'username={username}'})"
        request = self._connect_line(username, with_password=password is not None)
        started, t0 = now(), time.monotonic()
        try:
            async with self._session(username, password):
                pass
        except MqttConnectError as exc:
            code = _code(exc.rc)
            if code in AUTH_REFUSED:
                name = _code_name(exc.rc)
                facts = {"accepted": False, "reason_code": code, "reason": name}
                response = f"CONNACK {code} {name}"
                ex_id = self._record(
                    operation, request, response, started, t0, ok=True, facts=facts, secrets=secrets
                )
                return LoginResult(False, code, name, ex_id)
            raise self._failed(exc, operation, request, "", started, t0, secrets)  # noqa: B904
        except BaseException as exc:
            raise self._failed(exc, operation, request, "", started, t0, secrets)  # noqa: B904
        facts = {"accepted": True, "reason_code": 0, "reason": "Success"}
        ex_id = self._record(
            operation, request, "CONNACK 0 Success", started, t0, ok=True, facts=facts, secrets=secrets
        )
        return LoginResult(True, 0, "Success", ex_id)

    # -- sessions ---------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _session(
        self, username: str | None, password: str | None, *, gated: bool = True
    ) -> AsyncIterator[aiomqtt.Client]:
        """One connection under the per-host gate: connected within the timeout, always closed.

        A CONNECT left unanswered is sent once more before the broker counts as unreachable: paho
        connects in a worker thread of a shared pool, and one unanswered attempt on a busy host is
        not an outage (the same debounce as heartbeats). The first attempt stays in the evidence."""
        async with (self.conn.gate if gated else None) or contextlib.nullcontext():
            for attempt in range(1, CONNECT_ATTEMPTS + 1):
                client = self._client(username, password)
                started, t0 = now(), time.monotonic()
                try:
                    async with asyncio.timeout(self.conn.timeout_s):
                        await _enter(client)
                    break
                except TimeoutError:
                    if attempt == CONNECT_ATTEMPTS:
                        raise
                    request = self._connect_line(username, with_password=password is not None)
                    error = f"no CONNACK within {self.conn.timeout_s:g} s (attempt {attempt}); trying again"
                    self._record("connect", request, "", started, t0, ok=False, error=error)
            try:
                yield client
            finally:
                await _leave(client, self.conn.timeout_s)

    def _client(self, username: str | None, password: str | None) -> aiomqtt.Client:
        return aiomqtt.Client(
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
        )

    # -- evidence ---------------------------------------------------------------------------------
    def _connect_line(self, username: str | None, *, with_password: bool = True) -> str:
        who = "anonymous" if username is None else f"username={username}"
        secret = " password=[redacted]" if with_password and username is not None else ""
        tls = "TLS" if self.conn.tls is not None else "plain TCP"
        return f"CONNECT {self.conn.address} ({tls}) {who}{secret} clean_session=1 keepalive={KEEPALIVE_S}"

    def _secrets(self, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        return self.conn.secrets() + extra

    def _record(
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
        hidden = self._secrets(secrets)
        exchange = Exchange(
            device=self.conn.device,
            address=self.conn.address,
            protocol="mqtt",
            operation=operation,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 6),
            request=excerpt(redact(request, hidden)),
            response=excerpt(redact(response, hidden)),
            ok=ok,
            error=redact(error, hidden) if error is not None else None,
            library=self._library,
            facts=facts or {},
            raw=redact(raw, hidden).encode() if raw is not None else None,
        )
        self.conn.sink(exchange)
        return exchange.id

    def _failed(
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
        error, facts = _classify(exc, self.conn.address)
        message = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        ex_id = self._record(
            operation, request, response, started, t0, ok=False, error=message, facts=facts, secrets=secrets
        )
        if error is None:
            return exc
        error.exchange_id = ex_id
        error.__cause__ = exc
        return error

    def _raw(
        self,
        filters: tuple[str, ...],
        window: list[datetime],
        summaries: Mapping[str, TopicSummary],
        tally: _Tally,
    ) -> str:
        doc = {
            "filters": list(filters),
            "window": [w.isoformat() for w in window],
            "topics": [_summary_row(s) for s in sorted(summaries.values(), key=lambda s: s.topic)],
            "sample": [_message_row(topic, r) for topic, r in tally.sample],
        }
        return json.dumps(doc, ensure_ascii=False, indent=1)


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
        raise _ClosedBeforeConnack(closed.result())
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


async def _collect(client: aiomqtt.Client, tally: _Tally, window_s: float) -> None:
    try:
        async with asyncio.timeout(window_s) as window:
            async for message in client.messages:
                payload = message.payload
                body = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
                tally.add(message.topic.value, body, message.qos, message.retain, now())
    except TimeoutError:
        if not window.expired():
            raise


# -- error classification ------------------------------------------------------------------------------
def _code(value: int | ReasonCode | None) -> int:
    if isinstance(value, ReasonCode):
        return int(value.value)
    return -1 if value is None else int(value)


def _code_name(value: int | ReasonCode | None) -> str:
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


def _classify(exc: BaseException, address: str) -> tuple[CollectorError | None, dict[str, Any]]:
    """The typed error for a library exception, and facts for the exchange. None: not ours to type
    (cancellation, or a bug that the run must see as such)."""
    if isinstance(exc, asyncio.CancelledError):
        return None, {"cancelled": True}
    if isinstance(exc, MqttConnectError):
        code, name = _code(exc.rc), _code_name(exc.rc)
        facts: dict[str, Any] = {"reason_code": code, "reason": name}
        if code in AUTH_REFUSED:
            return AuthFailed(f"{address} refused the login: [{code}] {name}"), facts
        return DeviceRejected(f"{address} refused the connection: [{code}] {name}", code=str(code)), facts
    if isinstance(exc, _SubscriptionRefused):
        return DeviceRejected(f"{address}: {exc}", code=str(exc.code)), {"reason_code": exc.code}
    if isinstance(exc, _ClosedBeforeConnack):
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


def _summary_line(s: TopicSummary) -> str:
    gap = "-" if s.max_live_gap_s is None else f"{s.max_live_gap_s:.3f}"
    retained = int(s.retained is not None)
    return f"{s.topic} messages={s.messages} live={s.live} retained={retained} max_gap_s={gap}"


def _summary_row(s: TopicSummary) -> dict[str, Any]:
    latest = s.latest
    return {
        "topic": s.topic,
        "messages": s.messages,
        "live": s.live,
        "retained": s.retained is not None,
        "first_live_at": s.first_live.at.isoformat() if s.first_live else None,
        "last_live_at": s.last_live.at.isoformat() if s.last_live else None,
        "max_live_gap_s": s.max_live_gap_s,
        "latest": latest.payload.decode(errors="replace") if latest else None,
    }


def _message_row(topic: str, r: Received) -> dict[str, Any]:
    return {
        "topic": topic,
        "at": r.at.isoformat(),
        "qos": r.qos,
        "retain": r.retain,
        "size": r.size,
        "payload": r.payload.decode(errors="replace"),
    }

"""The gateway's MQTT session: one paho client driven by the asyncio loop, with its Last Will.

The loop runs paho through reader/writer callbacks, with no network thread, so a hung gateway is
simply a client whose loop stops: no PINGREQ, and the broker fires the Will after 1.5 x keepalive.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Collection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulator.mqtt.topics import QOS, RETAINED, Leaf

log = logging.getLogger(__name__)

# A large site starts 50 gateways at once, each with 100 retained statuses to be acknowledged, beside
# 1,300 TLS listeners: on a loaded 2-core machine that takes longer than a real gateway would wait.
CONNECT_TIMEOUT_S = 30.0
ACK_TIMEOUT_S = 30.0  # without any acknowledgement (see acknowledged)
CLOSE_TIMEOUT_S = 2.0


async def acknowledged(acks: Collection[asyncio.Future[None]], quiet_s: float = ACK_TIMEOUT_S) -> None:
    """Wait for every acknowledgement for as long as the broker keeps acknowledging: TimeoutError only
    after quiet_s with none. A deadline on the whole batch failed whole simulator processes on a
    loaded machine (50,000 devices: a broker working through 10,000 retained statuses, acknowledging
    steadily, past 30 s); a broker that stops answering is still noticed."""
    pending = set(acks)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=quiet_s)
        if not done:
            for ack in pending:
                ack.cancel()
            raise TimeoutError(f"no acknowledgement for {quiet_s:g} s ({len(pending)} outstanding)")
        for ack in done:
            ack.result()  # the connection's error, if it failed


class MqttGatewayError(ConnectionError):
    """The gateway could not reach the broker or was refused."""


class Link:
    """One MQTT connection: a paho client driven by the asyncio loop instead of its own thread."""

    def __init__(
        self,
        *,
        client_id: str,
        username: str,
        password: str,
        keepalive: int,
        will: tuple[str, bytes],
        tls: ssl.SSLContext | None,
        on_message: Callable[[str, bytes], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.username_pw_set(username, password)
        client.will_set(will[0], will[1], qos=QOS["status"], retain=True)
        if tls is not None:
            client.tls_set_context(tls)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_subscribe = self._subscribed
        client.on_message = lambda _c, _u, msg: on_message(msg.topic, bytes(msg.payload))
        self._client = client
        self._keepalive = keepalive
        self._on_lost = on_lost
        self._fd: int | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._gone: asyncio.Future[None] = self._loop.create_future()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self.connected = False
        self.frozen = False
        self._closing = False

    async def connect(self, host: str, port: int) -> None:
        # paho connects (TCP, TLS handshake, CONNECT) with blocking calls: run them off the loop,
        # which may host the broker itself. No socket callback is set yet, so paho calls none of
        # them from that thread; the loop takes the socket over once it is open.
        work = self._loop.run_in_executor(None, self._client.connect, host, port, self._keepalive)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(self._abandon)
            raise
        except OSError as exc:
            raise MqttGatewayError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
        self._watch()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                code = await self._connack
        except TimeoutError as exc:
            raise MqttGatewayError(f"no CONNACK from {host}:{port}") from exc
        if code.is_failure:
            raise MqttGatewayError(f"broker {host}:{port} refused the login: {code}")
        self.connected = True

    def _abandon(self, work: asyncio.Future[Any]) -> None:
        """The connect we stopped waiting for has finished in its thread: drop what it opened."""
        if not work.cancelled():
            work.exception()
        self.abort()

    @property
    def usable(self) -> bool:
        return self.connected and not self.frozen and not self._closing

    def publish(
        self, topic: str, payload: bytes, leaf: Leaf, retain: bool | None = None
    ) -> asyncio.Future[None] | None:
        """Queue a message; for QoS 1 the future completes on PUBACK."""
        qos = QOS[leaf]
        keep = leaf in RETAINED if retain is None else retain
        info = self._client.publish(topic, payload, qos=qos, retain=keep)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("publish %s failed: %s", topic, info.rc)
            return None
        if qos == 0:
            return None
        ack: asyncio.Future[None] = self._loop.create_future()
        self._acks[info.mid] = ack
        return ack

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttGatewayError(f"cannot subscribe to {topic_filter}: {rc}")
        ack: asyncio.Future[None] = self._loop.create_future()
        self._acks[mid] = ack
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await ack

    def freeze(self) -> None:
        """Stop all network work without a word to the broker: no reads, writes or PINGREQ."""
        self.frozen = True
        self._unwatch()

    def abort(self) -> None:
        """Drop the connection as a pulled cable would, without DISCONNECT: the broker sends the Will."""
        self._closing = True
        self.freeze()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._fail_pending(MqttGatewayError("connection aborted"))

    async def close(self) -> None:
        """A clean DISCONNECT (no Will), or an abort if the connection cannot say goodbye."""
        if not self.usable:
            self.abort()
            return
        self._closing = True
        self._client.disconnect()  # paho closes the socket once DISCONNECT is written
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._gone
        except TimeoutError:
            self.abort()

    # --- the loop drives paho ----------------------------------------------------------------

    def _watch(self) -> None:
        sock = self._client.socket()
        if sock is None or self.frozen:
            return
        self._fd = sock.fileno()
        self._client.on_socket_close = lambda _c, _u, _s: self._unwatch()
        self._client.on_socket_register_write = self._want_write
        self._client.on_socket_unregister_write = self._done_writing
        self._loop.add_reader(self._fd, self._readable)
        if self._client.want_write():
            self._loop.add_writer(self._fd, self._client.loop_write)
        self._misc = self._loop.create_task(self._misc_loop())

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if self._fd is not None:
            self._loop.add_writer(self._fd, self._client.loop_write)

    def _done_writing(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if self._fd is not None:
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        rc = self._client.loop_read()
        # TLS may hold whole packets already decrypted: the socket will not turn readable for them.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._fd is not None:
            sock = self._client.socket()
            if not isinstance(sock, ssl.SSLSocket) or sock.pending() == 0:
                break
            rc = self._client.loop_read()

    async def _misc_loop(self) -> None:
        """Keepalive bookkeeping (PINGREQ when due), polled as paho's own loop would."""
        interval = min(1.0, self._keepalive / 4)
        while True:
            if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(interval)

    # --- paho callbacks (on the loop thread) -------------------------------------------------

    def _connected(
        self, _c: mqtt.Client, _u: Any, _flags: Any, code: ReasonCode, _p: Properties | None
    ) -> None:
        if not self._connack.done():
            self._connack.set_result(code)

    def _disconnected(
        self, _c: mqtt.Client, _u: Any, _flags: Any, _code: ReasonCode, _p: Properties | None
    ) -> None:
        was_connected, self.connected = self.connected, False
        self._fail_pending(MqttGatewayError("connection lost"))
        if not self._gone.done():
            self._gone.set_result(None)
        if was_connected and not self._closing and not self.frozen:
            self._on_lost()

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, _code: ReasonCode, _p: Properties) -> None:
        ack = self._acks.pop(mid, None)
        if ack is not None and not ack.done():
            ack.set_result(None)

    def _subscribed(
        self, _c: mqtt.Client, _u: Any, mid: int, codes: list[ReasonCode], _p: Properties | None
    ) -> None:
        ack = self._acks.pop(mid, None)
        if ack is None or ack.done():
            return
        if any(code.is_failure for code in codes):
            ack.set_exception(MqttGatewayError(f"subscription refused: {codes}"))
        else:
            ack.set_result(None)

    def _fail_pending(self, exc: Exception) -> None:
        if not self._connack.done():
            self._connack.set_exception(exc)
            self._connack.exception()  # mark it retrieved: nobody may be waiting any more
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(exc)
                ack.exception()
        self._acks.clear()

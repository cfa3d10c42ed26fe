"""The monitor's long-lived subscription: every message handed on as it arrives, until cancelled.

A follower that reads late must not be mistaken for devices that went quiet: the service judges
silence only up to the last moment its follower had read everything the broker had sent
(`on_caught_up`), so a busy process delays its judgements instead of inventing outages.
"""

from __future__ import annotations

import asyncio
import fcntl
import ssl
import struct
import termios
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import aiomqtt

from collectors.exchange import now
from collectors.mqtt.session import HandOn, Session

IDLE_CHECK_S = 0.1  # how often a quiet follower says it has read everything


async def follow(
    session: Session,
    filters: Sequence[str],
    on_message: Callable[[str, bytes, bool, datetime], None],
    on_subscribed: Callable[[str], None],
    qos: int,
    on_caught_up: Callable[[], None] | None = None,
) -> None:
    """Subscribe to `filters` and hand every message to `on_message(topic, payload, retain, at)`
    until cancelled, or until the connection is lost (then the typed error). A service's long-lived
    subscription: it does not take a slot of the per-host gate for its whole life. Two exchanges:
    the subscription granted (its id to `on_subscribed`) and, when it is lost, its end.
    `on_caught_up()` is called whenever nothing the broker sent is left unread: after a message
    that leaves no other waiting, and every IDLE_CHECK_S while none come."""
    wanted = tuple(filters)
    if not wanted:
        raise ValueError("a subscription needs at least one filter")
    request = session.subscribe_request(wanted, qos)
    operation = f"follow({', '.join(wanted)})"
    lines: list[str] = []
    started, t0 = now(), time.monotonic()
    hand_on = HandOn(lambda topic, payload, _qos, retain, at: on_message(topic, payload, retain, at))
    try:
        async with session.subscription(wanted, qos, lines, gated=False, queue_type=hand_on.queue_type) as (
            client,
            granted,
        ):
            facts = {"filters": list(wanted), "granted": granted, "tls": session.conn.tls is not None}
            on_subscribed(
                session.record(operation, request, "\n".join(lines), started, t0, ok=True, facts=facts)
            )
            operation, started, t0 = f"{operation}: subscription lost", now(), time.monotonic()
            if on_caught_up is not None:
                hand_on.after = lambda: unread(client) or on_caught_up()
            hand_on.start()
            idle = asyncio.create_task(_tell_idle(client, on_caught_up)) if on_caught_up else None
            try:
                async for _ in client.messages:  # only a handler's error is ever queued
                    raise hand_on.error or RuntimeError("a message was queued, not handed on")
            finally:
                if idle is not None:
                    idle.cancel()
            raise ConnectionError("the broker closed the connection")
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        lines.append(f"{hand_on.received} messages received while subscribed")
        raise session.failed(exc, operation, request, "\n".join(lines), started, t0)  # noqa: B904


def unread(client: aiomqtt.Client) -> int:
    """Messages the client took off the socket but not handed on yet, plus bytes still in the socket
    (and, with TLS, decrypted but not read)."""
    waiting = len(client.messages)
    sock = client._client.socket()  # the paho client's socket (aiomqtt keeps no public handle)
    if sock is None:
        return waiting
    if isinstance(sock, ssl.SSLSocket):
        waiting += sock.pending()
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return waiting  # closed meanwhile: the read loop will say so
    return waiting + int(struct.unpack("i", raw)[0])


async def _tell_idle(client: aiomqtt.Client, on_caught_up: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(IDLE_CHECK_S)
        if not unread(client):
            on_caught_up()

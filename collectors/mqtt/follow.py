"""The monitor's long-lived subscription: every message handed on as it arrives, until cancelled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from collectors.exchange import now
from collectors.mqtt.session import Session, body


async def follow(
    session: Session,
    filters: Sequence[str],
    on_message: Callable[[str, bytes, bool, datetime], None],
    on_subscribed: Callable[[str], None],
    qos: int,
) -> None:
    """Subscribe to `filters` and hand every message to `on_message(topic, payload, retain, at)`
    until cancelled, or until the connection is lost (then the typed error). A service's long-lived
    subscription: it does not take a slot of the per-host gate for its whole life. Two exchanges:
    the subscription granted (its id to `on_subscribed`) and, when it is lost, its end."""
    wanted = tuple(filters)
    if not wanted:
        raise ValueError("a subscription needs at least one filter")
    request = session.subscribe_request(wanted, qos)
    operation = f"follow({', '.join(wanted)})"
    lines: list[str] = []
    started, t0, received = now(), time.monotonic(), 0
    try:
        async with session.subscription(wanted, qos, lines, gated=False) as (client, granted):
            facts = {"filters": list(wanted), "granted": granted, "tls": session.conn.tls is not None}
            on_subscribed(
                session.record(operation, request, "\n".join(lines), started, t0, ok=True, facts=facts)
            )
            operation, started, t0 = f"{operation}: subscription lost", now(), time.monotonic()
            async for message in client.messages:
                on_message(message.topic.value, body(message), message.retain, now())
                received += 1
            raise ConnectionError("the broker closed the connection")
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        lines.append(f"{received} messages received while subscribed")
        raise session.failed(exc, operation, request, "\n".join(lines), started, t0)  # noqa: B904

"""GET /ISAPI/Event/notification/alertStream: the long-lived multipart event push of ISAPI devices.

The reply is `multipart/mixed; boundary=boundary` and never ends; each part carries its own
Content-Type and Content-Length. Events go out as they happen; between events the device sends a
heartbeat part, an EventNotificationAlert of eventType `videoloss` with eventState `inactive`, every
few seconds (about 10 s on the devices seen), which clients use as a liveness signal.

Uncertain: access-control terminals on some firmware send JSON heartbeats rather than the XML
videoloss part; the XML form is the one documented for cameras and NVRs and is used for all here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import web

Part = tuple[str, bytes]  # content type, body


class AlertStream:
    """Fan-out of event parts to every open alertStream connection, with heartbeats."""

    def __init__(self, heartbeat: Callable[[], Part], heartbeat_s: float = 10.0) -> None:
        self._heartbeat = heartbeat
        self.heartbeat_s = heartbeat_s
        self._queues: set[asyncio.Queue[Part | None]] = set()

    def publish(self, part: Part) -> None:
        for q in self._queues:
            q.put_nowait(part)

    def close(self) -> None:
        """End every open stream (the device is stopping or unplugged)."""
        for q in self._queues:
            q.put_nowait(None)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/mixed; boundary=boundary", "Connection": "keep-alive"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[Part | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                try:
                    part = await asyncio.wait_for(queue.get(), timeout=self.heartbeat_s)
                except TimeoutError:
                    part = self._heartbeat()
                if part is None:
                    break
                content_type, body = part
                head = f"--boundary\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                await response.write(head.encode() + body + b"\r\n")
        except ConnectionError:
            pass  # the client went away
        finally:
            self._queues.discard(queue)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

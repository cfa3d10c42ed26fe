"""Small hostile HTTP peers on loopback: replies too large, dripping, malformed, entity bombs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from collectors.connection import Connection
from collectors.exchange import Exchange

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DeviceInfo><deviceName>&lol3;</deviceName></DeviceInfo>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><DeviceInfo><deviceName>&x;</deviceName></DeviceInfo>"""
HEAD = b"<first-bytes-of-the-flood/>"


class Sent:
    """How many requests a streaming handler served and bytes it wrote before the client hung up."""

    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0


def flood(sent: Sent, total: int, *, declare: bool = False) -> Handler:
    """A reply of `total` bytes per request, in 64 KiB chunks, with or without Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        sent.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        if declare:
            response.content_length = total
        await response.prepare(request)
        chunk = HEAD + b"x" * (65536 - len(HEAD))
        written = 0
        try:
            while written < total:
                await response.write(chunk)
                written += len(chunk)
                sent.bytes += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    return handler


def drip(every_s: float) -> Handler:
    """One byte at a time, forever: the device that never finishes its reply."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await response.prepare(request)
        try:
            for byte in b"<DeviceInfo>" * 1000:
                await response.write(bytes([byte]))
                await asyncio.sleep(every_s)
        except ConnectionError:
            pass
        return response

    return handler


def fixed(body: bytes, content_type: str = "application/xml", status: int = 200) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, status=status)

    return handler


async def hung(_: web.Request) -> web.Response:
    """Accepts the request and never answers."""
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


@asynccontextmanager
async def serve(
    routes: dict[tuple[str, str], Handler], tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """An aiohttp server on a free loopback port with these (method, path) routes ("*" for any)."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


class Exchanges(list[Exchange]):
    def __call__(self, exchange: Exchange) -> None:
        self.append(exchange)

    def get(self, exchange_id: str | None) -> Exchange:
        return next(e for e in self if e.id == exchange_id)


def conn(port: int, sink: Exchanges, *, limit: int = 65536, timeout_s: float = 3.0) -> Connection:
    return Connection(
        "hostile", "127.0.0.1", port, None, "inspector", "Hostile-Pass-7", "/onvif/device_service",
        timeout_s, sink, max_reply_bytes=limit,
    )  # fmt: skip

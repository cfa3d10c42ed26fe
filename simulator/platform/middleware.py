"""What both simulated platform APIs (zhian's and the Artemis twin) put in front of every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from simulator.platform.state import PlatformState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def latency(state: PlatformState) -> Middleware:
    """Every reply waits the site's HTTP latency, as a real platform's would."""

    @web.middleware
    async def wait(request: web.Request, handler: Handler) -> web.StreamResponse:
        await state.ctx.latency.wait("http")
        return await handler(request)

    return wait

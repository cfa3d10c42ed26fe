"""`zhian archive serve`: the portfolio as a read-only web site.

One page for the portfolio, one per community (its runs, grade history, open problems, what has
degraded), and each run's evidence pack to download: the run restored from the database, verified
and packed with its offline viewer by `zhian export`'s own code. Every database session is read-only
at the server (default_transaction_read_only), only GET and HEAD are routed, and the pages carry a
CSP that allows nothing but their own stylesheet.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from aiohttp import web
from psycopg_pool import ConnectionPool

from zhian.archive.blobs import Conn
from zhian.archive.pages import STYLE, community_page, portfolio_page
from zhian.archive.portfolio import community, portfolio
from zhian.archive.restore import export_stored
from zhian.errors import UsageError
from zhian.evidence.export import Pack

POOL = web.AppKey("pool", ConnectionPool)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CHUNK = 1 << 20
T = TypeVar("T")


async def _query(request: web.Request, work: Callable[[Conn], T]) -> T:
    """Run `work` on a pooled read-only connection, in a thread (psycopg's blocking API)."""
    pool = request.app[POOL]

    def run() -> T:
        with pool.connection() as conn:
            return work(conn)

    return await asyncio.to_thread(run)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def index(request: web.Request) -> web.Response:
    today = date.today()
    rows = await _query(request, lambda conn: portfolio(conn, today))
    return _html(portfolio_page(rows, today))


async def community_view(request: web.Request) -> web.Response:
    today, number = date.today(), int(request.match_info["id"])
    try:
        detail = await _query(request, lambda conn: community(conn, number, today))
    except UsageError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return _html(community_page(detail, today))


async def style(request: web.Request) -> web.Response:
    return web.Response(text=STYLE, content_type="text/css", charset="utf-8")


async def pack(request: web.Request) -> web.StreamResponse:
    number = int(request.match_info["id"])
    folder = Path(tempfile.mkdtemp(prefix="zhian-pack-"))
    try:

        def build(conn: Conn) -> tuple[Pack, str]:
            row = conn.execute(
                "SELECT c.name, r.run_id FROM runs r JOIN communities c ON c.id = r.community_id"
                " WHERE r.id = %s",
                (number,),
            ).fetchone()
            if row is None:
                raise web.HTTPNotFound(text=f"no stored run {number}")
            return export_stored(conn, number, folder / "pack.zip"), f"{row[0]}-{row[1]}.zip"

        try:
            built, name = await _query(request, build)
        except UsageError as exc:  # the restored run does not verify: never hand it out as evidence
            raise web.HTTPConflict(text=f"run {number}: {exc}") from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Pack-SHA256": built.sha256,
            }
        )
        response.content_length = built.size
        await response.prepare(request)
        with built.path.open("rb") as handle:
            while block := await asyncio.to_thread(handle.read, CHUNK):
                await response.write(block)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


def build_app(url: str) -> web.Application:
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=4,
        open=False,
        kwargs={"options": "-c default_transaction_read_only=on", "connect_timeout": 10, "autocommit": True},
    )

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(pool.open, True, 30.0)
        app[POOL] = pool
        yield
        await asyncio.to_thread(pool.close)

    app = web.Application(middlewares=[_headers])
    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/", index)
    app.router.add_get("/style.css", style)
    app.router.add_get(r"/community/{id:\d+}", community_view)
    app.router.add_get(r"/run/{id:\d+}/pack.zip", pack)
    return app


async def serve(url: str, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `on_ready` gets the address once it listens."""
    runner = web.AppRunner(build_app(url), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        on_ready(f"http://{bound[0]}:{bound[1]}/")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await runner.cleanup()

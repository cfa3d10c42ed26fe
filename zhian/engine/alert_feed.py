"""The run's alert receiver: started before the probes when the config asks for one, the platform
subscribed to it, and both undone at the end (also on Ctrl-C). A receiver that cannot start or a
platform that refuses the subscription costs one line on stderr: the probes then poll only."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from collectors.errors import CollectorError
from collectors.platform_receiver import AlertReceiver
from probes.base import ProbeContext
from probes.platform_common import platform_client, platform_profile
from zhian.config import Config

UNSUBSCRIBE_S = 5.0


@contextlib.asynccontextmanager
async def alert_feed(ctx: ProbeContext, config: Config) -> AsyncIterator[AlertReceiver | None]:
    platform, target = config.inventory.platform, ctx.site.platform
    if platform is None or platform.receiver is None or target is None:
        yield None
        return
    rc = platform.receiver
    receiver = AlertReceiver(
        rc.listen, rc.port, profile=platform_profile(target), device=target.id, sink=ctx.sink,
        names=target.params.get("platform_ids") or {}, public_url=rc.public_url,
        max_body=rc.max_body_kb * 1024,
    )  # fmt: skip
    try:
        await receiver.__aenter__()
    except OSError as exc:
        print(
            f"zhian: alert receiver on {rc.listen}:{rc.port} not started ({exc}); polling only",
            file=sys.stderr,
        )
        yield None
        return
    subscribed = False
    try:
        ctx.platform_feed = receiver
        if rc.subscribe:
            try:
                async with platform_client(ctx, target) as api:
                    await api.subscribe(receiver.url)
                subscribed = True
            except CollectorError as exc:
                print(f"zhian: the platform did not subscribe {receiver.url}: {exc}", file=sys.stderr)
        yield receiver
    finally:
        ctx.platform_feed = None
        if subscribed:
            with contextlib.suppress(CollectorError, TimeoutError):
                async with asyncio.timeout(UNSUBSCRIBE_S), platform_client(ctx, target) as api:
                    await api.unsubscribe()
        await receiver.__aexit__()

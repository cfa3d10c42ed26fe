"""One worker process of a split site: `python -m simulator.worker JOB.json` (see workers.py).

It starts its share of the devices on its own event loop, forwards their bus events to the site,
answers the site's commands, and stops its devices on SIGTERM or when the site's connection ends.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from simulator.bus import SiteEvent
from simulator.site import Site
from simulator.tls import SiteTls
from simulator.workers import WorkerJob, encode, event_message


async def serve(job: WorkerJob) -> None:
    community = job.community_model()
    site = Site(community, Path(job.workdir), latency_scale=job.latency_scale)
    site.plan()
    if job.tls_dir is not None:
        tls = Path(job.tls_dir)
        site.tls = SiteTls(tls / "ca.pem", tls / "server.pem", tls / "server.key")
    reader, writer = await asyncio.open_connection("127.0.0.1", job.port)
    writer.write(encode({"worker": job.index, "token": job.token}))
    events = site.bus.subscribe()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def flush() -> None:
        while not events.empty():
            writer.write(encode(event_message(events.get_nowait())))

    async def forward() -> None:
        try:
            while True:
                event: SiteEvent = await events.get()
                writer.write(encode(event_message(event)))
                flush()
                await writer.drain()
        except ConnectionError:
            stop.set()

    async def operate(ident: int, device: str, action: str, params: dict[str, object]) -> None:
        error: str | None = None
        try:
            await site.operator(device, action, **params)
        except (KeyError, ValueError) as exc:
            error = str(exc)
        writer.write(encode({"op": "done", "id": ident, "error": error}))

    async def commands() -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                message = json.loads(line)
                ident, device, action = message["id"], message["device"], message["action"]
                task = asyncio.create_task(operate(ident, device, action, message.get("params") or {}))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionError:
            pass
        stop.set()  # the site is gone

    specs = [s for s in community.devices if s.id in set(job.device_ids)]
    try:
        await site.start_devices(specs)
        flush()  # every event of the start before "ready", so the platform's history has them
        actuators = [s.id for s in specs if site.bus.has(s.id)]
        writer.write(encode({"op": "ready", "actuators": actuators}))
        async with asyncio.TaskGroup() as tg:
            jobs = [tg.create_task(forward()), tg.create_task(commands())]
            await stop.wait()
            for task in jobs:
                task.cancel()
    finally:
        await site.stop()
        writer.close()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m simulator.worker JOB.json", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(WorkerJob.read(Path(sys.argv[1]))))
    except (ConnectionError, OSError) as exc:
        print(f"simulator worker: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

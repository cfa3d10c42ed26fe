"""A site split over several processes: the camera-side devices run in worker processes.

One Python process cannot answer a large site's 1,300 TLS listeners while an inspector opens
hundreds of connections at once: its one event loop falls behind and replies time out, so a bench
would measure the simulator. With `workers`, the cameras, NVRs and doors (the HTTP devices, most of
a site) are dealt round-robin by address to worker processes, each with its own event loop
(`python -m simulator.worker`). The broker, gateways, fire panels and the platform stay in the
site's own process, with the site bus.

The bus crosses processes over one loopback connection per worker, as JSON lines: a worker
forwards every event its devices publish and names the devices that take commands; the site
forwards commands (and the operator's unplug and replug) to the worker that holds the device.
Nothing else is shared: every process plans the same addresses and passwords from the community
and reads the same TLS files.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any

from simulator.bus import SiteBus, SiteEvent
from simulator.model import Community, DeviceSpec

WORKER_KINDS = ("camera", "nvr", "door")  # HTTP devices: ONVIF and ISAPI
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0
LINE_LIMIT = 2**24


@dataclass(frozen=True)
class WorkerJob:
    """What one worker is told: the community, its share of the devices, where to report."""

    index: int
    community: dict[str, Any]
    device_ids: list[str]
    workdir: str
    latency_scale: float
    tls_dir: str | None
    port: int
    token: str

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> WorkerJob:
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def community_model(self) -> Community:
        return Community.model_validate(self.community)


def partition(devices: Iterable[DeviceSpec], workers: int) -> list[list[str]]:
    """Each worker's device ids: the HTTP devices dealt round-robin in address order."""
    shares: list[list[str]] = [[] for _ in range(workers)]
    movable = [d.id for d in devices if d.kind in WORKER_KINDS]
    for position, device_id in enumerate(movable):
        shares[position % workers].append(device_id)
    return shares


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"


def event_message(event: SiteEvent) -> dict[str, Any]:
    return {"op": "publish", "event": asdict(event)}


class WorkerPool:
    """The site's side: starts the workers, relays their events onto the bus, routes commands."""

    def __init__(self, bus: SiteBus, workdir: Path, latency_scale: float) -> None:
        self.bus = bus
        self.workdir = workdir
        self.latency_scale = latency_scale
        self._token = secrets.token_hex(16)
        self._server: asyncio.Server | None = None
        self._procs: list[asyncio.subprocess.Process] = []
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._ready: dict[int, asyncio.Event] = {}
        self._owner: dict[str, int] = {}
        self._pending: dict[int, asyncio.Future[str | None]] = {}
        self._ids = count()
        self._readers: set[asyncio.Task[None]] = set()

    def owns(self, device_id: str) -> bool:
        return device_id in self._owner

    async def start(self, community: Community, shares: list[list[str]], tls_dir: Path | None) -> None:
        """Start one process per share; `wait_ready` returns once every one listens."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=LINE_LIMIT)
        port = self._server.sockets[0].getsockname()[1]
        data = community.model_dump(mode="json")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for index, ids in enumerate(shares):
            self._ready[index] = asyncio.Event()
            for device_id in ids:
                self._owner[device_id] = index
            job = WorkerJob(
                index=index,
                community=data,
                device_ids=ids,
                workdir=str(self.workdir),
                latency_scale=self.latency_scale,
                tls_dir=str(tls_dir) if tls_dir else None,
                port=port,
                token=self._token,
            ).write(self.workdir / f"worker-{index}.json")
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "simulator.worker", str(job))
            self._procs.append(proc)

    async def wait_ready(self) -> None:
        """Every worker listening on all its devices, or RuntimeError naming the one that is not."""
        for index, ready in self._ready.items():
            waiter = asyncio.ensure_future(ready.wait())
            exited = asyncio.ensure_future(self._procs[index].wait())
            await asyncio.wait({waiter, exited}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            exited.cancel()
            if not ready.is_set():
                code = self._procs[index].returncode
                why = f"exited {code}" if code is not None else f"not ready in {READY_TIMEOUT_S:.0f} s"
                raise RuntimeError(f"simulator worker {index} {why}")

    async def operate(self, device_id: str, action: str, params: dict[str, Any]) -> None:
        """The operator's hand or a bus command on a device a worker holds."""
        writer = self._writers[self._owner[device_id]]
        ident = next(self._ids)
        reply: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[ident] = reply
        writer.write(encode({"op": "operate", "id": ident, "device": device_id, "action": action,
                             "params": params}))  # fmt: skip
        try:
            error = await reply
        finally:
            self._pending.pop(ident, None)
        if error is not None:
            raise KeyError(error)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            hello = json.loads(await reader.readline() or b"{}")
            if hello.get("token") != self._token:
                return
            index = int(hello["worker"])
            self._writers[index] = writer
            while line := await reader.readline():
                self._handle(index, json.loads(line))
        except (ConnectionError, ValueError):
            pass  # a worker gone: wait_ready or stop reports its exit
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_result("the simulator worker is gone")

    def _handle(self, index: int, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "publish":
            self.bus.publish(SiteEvent(**message["event"]))
        elif op == "ready":
            for device_id in message["actuators"]:
                self.bus.register(device_id, self._forwarder(device_id))
            self._ready[index].set()
        elif op == "done":
            reply = self._pending.get(int(message["id"]))
            if reply is not None and not reply.done():
                reply.set_result(message.get("error"))

    def _forwarder(self, device_id: str) -> Any:
        async def forward(action: str, params: dict[str, Any]) -> None:
            await self.operate(device_id, action, params)

        return forward

    async def stop(self) -> None:
        """SIGTERM to every worker (each stops its devices), SIGKILL to one that does not exit."""
        for proc in self._procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for writer in self._writers.values():
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._readers):
            task.cancel()

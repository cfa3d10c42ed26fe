"""CPU per ONVIF call on zhian's side: the SOAP layer under every camera probe of a large site.

One simulated camera runs in a child process on loopback (TLS as on the large site unless
`--plain`), so its work is never counted; this process makes `--rounds` rounds of the calls a
large-site run makes most (GetSystemDateAndTime, GetServices, GetEventProperties,
CreatePullPointSubscription, SetSynchronizationPoint, PullMessages, Renew, Unsubscribe) through
OnvifSession, one call at a time, and splits each call's process CPU time into:
  build      from the call to the request handed to the transport (zeep's serialisation,
             WS-Addressing, WS-Security, the envelope as text)
  transport  the HTTP exchange (aiohttp, TLS, the event loop while the reply is awaited)
  parse      from the reply read to the typed result (XML parsing, XSD deserialisation)
  record     the Exchange made for the ledger (redaction, excerpt); the sink itself is a list
  setup      the services (zeep proxies) made for a new pull point's address
Prints a table, then one JSON line (µs per call by operation and part).
Profile: .venv/bin/py-spy record -o onvif.speedscope -f speedscope --
         .venv/bin/python bench/bench_onvif_calls.py --total-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from collectors.connection import Connection
from collectors.exchange import Exchange
from collectors.onvif_client import OnvifSession, _RecordingTransport
from collectors.onvif_events import PullPoint
from simulator.bus import SiteBus
from simulator.latency import Latency
from simulator.model import Community, Credentials
from simulator.onvif import OnvifCamera
from simulator.runtime import DeviceContext
from simulator.tls import SiteTls, make_site_tls

USER, PASSWORD = "operator", "bench-Pass-1"
PARTS = ("build", "transport", "parse", "record", "setup")
OPERATIONS = (
    "GetSystemDateAndTime",
    "GetServices",
    "GetEventProperties",
    "CreatePullPointSubscription",
    "SetSynchronizationPoint",
    "PullMessages",
    "Renew",
    "Unsubscribe",
)


def _camera(tls: SiteTls | None, pipe: Pipe) -> None:
    """The child: one camera with a TopicSet and event states like the large site's, until the
    parent sends on the pipe."""
    community = Community.model_validate(
        {
            "name": "bench",
            "areas": [{"id": "gate", "kind": "perimeter"}, {"id": "mc", "kind": "monitoring_center"}],
            "devices": [
                {"id": "cam1", "kind": "camera", "protocol": "onvif", "area": "gate"},
                {"id": "plat", "kind": "platform", "protocol": "http", "area": "mc"},
            ],
        }
    )

    async def serve() -> None:
        ctx = DeviceContext(
            spec=community.devices[0],
            community=community,
            host="127.0.0.1",
            port=0,
            credentials=Credentials(username=USER, password=PASSWORD),
            bus=SiteBus(),
            latency=Latency(community.latency, scale=0),
            server_tls=tls.server_context("127.0.0.1") if tls else None,
            client_tls=None,
            directory={},
        )
        device = OnvifCamera(ctx)
        await device.start()
        pipe.send(device.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await device.stop()

    asyncio.run(serve())


class Meter:
    """Process CPU checkpoints around one call at a time (the camera is in another process)."""

    def __init__(self) -> None:
        self.spent: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.sent_at = 0  # when the request reached the transport
        self.acc: dict[str, int] = defaultdict(int)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.process_time_ns()
        if name == "transport":
            self.sent_at = start
        try:
            yield
        finally:
            self.acc[name] += time.process_time_ns() - start

    def install(self) -> None:
        """Checkpoints at the transport's post, the session's recording and its proxies for a new
        address (a pull point's, made after CreatePullPointSubscription)."""
        post, record, service = _RecordingTransport._post, OnvifSession._record, OnvifSession.service
        meter = self

        async def timed_service(self: Any, *args: Any, **kwargs: Any) -> Any:
            with meter.part("setup"):
                return await service(self, *args, **kwargs)

        async def timed_post(self: Any, *args: Any, **kwargs: Any) -> Any:
            with meter.part("transport"):
                return await post(self, *args, **kwargs)

        def timed_record(self: Any, *args: Any, **kwargs: Any) -> Exchange:
            with meter.part("record"):
                return record(self, *args, **kwargs)

        _RecordingTransport._post = timed_post  # type: ignore[method-assign]
        OnvifSession._record = timed_record  # type: ignore[method-assign]
        OnvifSession.service = timed_service  # type: ignore[method-assign]

    def settle(self, operation: str, start: int, end: int) -> None:
        parts = {"build": self.sent_at - start if self.sent_at else 0, **self.acc}
        parts["parse"] = end - start - sum(parts.values())
        for name in PARTS:
            self.spent[operation][name].append(parts.get(name, 0))
        self.acc.clear()


async def rounds(session: OnvifSession, meter: Meter | None, count: int) -> int:
    """`count` rounds of the calls, each call's CPU settled into `meter` (None: warm-up or
    --total-only); the number of calls made."""
    calls = 0

    async def measured(operation: str, coro: Any) -> Any:
        nonlocal calls
        if meter is not None:
            meter.acc.clear()  # a service made between calls is no call's
            meter.sent_at = 0
        start = time.process_time_ns()
        result = await coro
        end = time.process_time_ns()
        if meter is not None:
            meter.settle(operation, start, end)
        calls += 1
        return result

    device = await session.service("devicemgmt")
    for _ in range(count):
        await measured("GetSystemDateAndTime", session.call(device, "GetSystemDateAndTime", authless=True))
        reply, _ = await measured(
            "GetServices", session.call(device, "GetServices", {"IncludeCapability": False})
        )
        events_xaddr = next(
            str(s.XAddr) for s in reply if s.Namespace == "http://www.onvif.org/ver10/events/wsdl"
        )
        events = await session.service("events", events_xaddr)
        await measured("GetEventProperties", session.call(events, "GetEventProperties"))
        pp = PullPoint(session, events, 60.0)
        await measured("CreatePullPointSubscription", pp.__aenter__())
        await measured("SetSynchronizationPoint", pp.synchronize())
        await measured("PullMessages", pp.pull(1.0))
        await measured("Renew", pp.renew(60.0))
        await measured("Unsubscribe", pp.unsubscribe())
    return calls


async def main_async(args: argparse.Namespace, tls: SiteTls | None, port: int) -> dict[str, Any]:
    exchanges: list[Exchange] = []
    conn = Connection(
        device="cam1",
        host="127.0.0.1",
        port=port,
        tls=tls.client_context() if tls else None,
        username=USER,
        password=PASSWORD,
        timeout_s=10.0,
        sink=exchanges.append,
    )
    session = OnvifSession(conn)
    await session.open()
    try:
        await rounds(session, None, 3)  # WSDLs loaded, connection open
        meter = None if args.total_only else Meter()
        if meter is not None:
            meter.install()
        exchanges.clear()
        cpu0 = time.process_time()
        calls = await rounds(session, meter, args.rounds)
        cpu = time.process_time() - cpu0
    finally:
        await session.close()
    table: dict[str, dict[str, int]] = {}  # --total-only: no split
    if meter is not None:
        for op in OPERATIONS:
            spent = meter.spent[op]
            table[op] = {part: round(sum(spent[part]) / len(spent[part]) / 1000) for part in PARTS}
            table[op]["total"] = sum(table[op].values())
    return {
        "rounds": args.rounds,
        "tls": tls is not None,
        "calls": calls,
        "exchanges": len(exchanges),
        "cpu_us_per_call": round(cpu / calls * 1e6),
        "us_per_call": table,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the eight calls")
    parser.add_argument("--plain", action="store_true", help="plain HTTP (the large site uses TLS)")
    parser.add_argument(
        "--total-only", action="store_true", help="no split into parts (its checkpoints cost ~25 µs a call)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tls = None if args.plain else make_site_tls(Path(tmp), "bench", ["127.0.0.1"])
        ours, theirs = multiprocessing.Pipe()
        child = multiprocessing.get_context("spawn").Process(target=_camera, args=(tls, theirs))
        child.start()
        try:
            port = ours.recv()
            figures = asyncio.run(main_async(args, tls, port))
        finally:
            ours.send("stop")
            child.join(10)
    if figures["us_per_call"]:
        print(f"{'operation':30}" + "".join(f"{p:>10}" for p in (*PARTS, "total")) + "   (CPU µs per call)")
    for op, parts in figures["us_per_call"].items():
        print(f"{op:30}" + "".join(f"{parts[p]:>10}" for p in (*PARTS, "total")))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`zhian sim up`: run a virtual community in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from importlib import resources
from pathlib import Path

from simulator.model import Community, CommunityError, load_community
from simulator.site import Site
from zhian.errors import UsageError

SHIPPED = ("small", "faulty", "large")


def community_path(name: str) -> Path:
    """A community file by path, or one of the shipped ones by name (small, faulty, large)."""
    path = Path(name)
    if path.exists():
        return path
    if name in SHIPPED:
        return Path(str(resources.files("simulator") / "communities" / f"{name}.yaml"))
    raise UsageError(f"{name}: no such community file (shipped: {', '.join(SHIPPED)})")


def read_community(name: str) -> Community:
    try:
        return load_community(community_path(name))
    except CommunityError as exc:
        raise UsageError(str(exc)) from None


async def _serve(site: Site, endpoints: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with site:
        for ep in site.endpoints():
            scheme = "tls " if ep.tls else ""
            print(f"{ep.kind:<8} {ep.id:<20} {scheme}{ep.protocol:<6} {ep.host}:{ep.port}{ep.path}")
        if endpoints is not None:
            site.write_endpoints(endpoints)
            print(f"endpoints written to {endpoints}")
        print(f"community {site.community.name} is up; Ctrl-C stops it", flush=True)
        await stop.wait()
    print("stopped", file=sys.stderr)


def cmd_sim_up(args: argparse.Namespace) -> int:
    community = read_community(args.community)
    with tempfile.TemporaryDirectory(prefix="zhian-sim-") as tmp:
        workdir = args.workdir or Path(tmp)
        site = Site(community, workdir, latency_scale=args.latency_scale, broker_impl=args.broker)
        asyncio.run(_serve(site, args.endpoints))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("sim", help="the virtual community (simulated devices on loopback)")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    p = sim_sub.add_parser("up", help="start a community in the foreground")
    p.add_argument("community", help="a community YAML file, or small | faulty | large")
    p.add_argument("--endpoints", type=Path, help="write the endpoints JSON once every device listens")
    p.add_argument("--workdir", type=Path, help="where TLS material and broker files go (default: temp)")
    p.add_argument("--latency-scale", type=float, default=1.0, help="0 turns simulated latency off")
    p.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto")
    p.set_defaults(func=cmd_sim_up)

"""`zhian sim up`: run a virtual community in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import get_args

from aiohttp import web

from simulator.model import Community, CommunityError, PlatformParams, load_community
from simulator.site import Site, free_address_base
from zhian.cli.help import EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.cli.simconfig import write_site_config
from zhian.config import ActiveTest
from zhian.errors import UsageError

SHIPPED = ("small", "faulty", "large")


def _tests(text: str) -> list[str]:
    names = list(get_args(ActiveTest)) if text == "all" else [t for t in text.split(",") if t]
    unknown = set(names) - set(get_args(ActiveTest))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown active tests {sorted(unknown)}")
    return names


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


async def operator_endpoint(site: Site, port: int) -> tuple[web.AppRunner, str]:
    """The operator's hand over HTTP, for guided active tests run from another process."""

    async def operate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            device, action = str(body["device"]), str(body["action"])
            params = dict(body.get("params") or {})
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected {device, action, params}"}, status=400)
        print(f"operator: {action} on {device} {params or ''}", flush=True)
        try:
            await site.operator(device, action, **params)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"done": True})

    app = web.Application()
    app.router.add_post("/sim/operator", operate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site_ = web.TCPSite(runner, "127.0.0.1", port)
    await site_.start()
    bound = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{bound}/sim/operator"


async def _serve(site: Site, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with site:
        runner, hook = await operator_endpoint(site, args.control_port)
        try:
            for ep in site.endpoints():
                scheme = "tls " if ep.tls else ""
                print(f"{ep.kind:<8} {ep.id:<20} {scheme}{ep.protocol:<6} {ep.host}:{ep.port}{ep.path}")
            print(f"operator hook: {hook}")
            if args.write_config is not None:
                env = write_site_config(site, args.write_config, hook, args.allow_tests, args.sampling)
                print(f"config written to {args.write_config} (secrets in {env})")
            if args.endpoints is not None:
                site.write_endpoints(args.endpoints)
                print(f"endpoints written to {args.endpoints}")
            print(f"community {site.community.name} is up; Ctrl-C stops it", flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()
    print("stopped", file=sys.stderr)


def address_base(text: str) -> str:
    if not re.fullmatch(r"127\.(25[0-4]|2[0-4]\d|1?\d?\d)", text) or text == "127.0":
        raise argparse.ArgumentTypeError(f"{text!r}: expected 127.N with N from 1 to 254")
    return text


def cmd_sim_up(args: argparse.Namespace) -> int:
    community = read_community(args.community)
    if args.platform_profile:
        community = with_platform_profile(community, args.platform_profile)
    try:
        base = args.address_base or free_address_base(community.address_base)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    if base != community.address_base:
        print(f"address base {base} (the community's {community.address_base} is taken or overridden)")
    community = community.model_copy(update={"address_base": base})
    with tempfile.TemporaryDirectory(prefix="zhian-sim-") as tmp:
        workdir = args.workdir or Path(tmp)
        scale, broker = args.latency_scale, args.broker
        site = Site(community, workdir, latency_scale=scale, broker_impl=broker, workers=args.workers)
        asyncio.run(_serve(site, args))
    return 0


def with_platform_profile(community: Community, profile: str) -> Community:
    """The community with its platform speaking this API."""
    devices = [
        d.model_copy(
            update={"platform": (d.platform or PlatformParams()).model_copy(update={"profile": profile})}
        )
        if d.kind == "platform"
        else d
        for d in community.devices
    ]
    return community.model_copy(update={"devices": devices})


def add_parser(sub: SubParsers) -> None:
    sim = sub.add_parser("sim", help="the virtual community (simulated devices on loopback)")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    p = command(
        sim_sub,
        "up",
        "start a community in the foreground (Ctrl-C stops it)",
        [
            ("zhian sim up faulty --write-config site.yaml --allow-tests all", "the demo's site"),
            ("zhian sim up large --latency-scale 0 --endpoints ep.json", "the benchmark's site"),
            ("zhian sim up small --address-base 127.40", "a second small site beside the first"),
        ],
        (EXIT_OK, EXIT_USAGE),
    )
    p.add_argument("community", help="a community YAML file, or small | faulty | large")
    p.add_argument("--endpoints", type=Path, help="write the endpoints JSON once every device listens")
    p.add_argument("--write-config", type=Path, help="write a zhian config for this site (+ .env secrets)")
    p.add_argument("--control-port", type=int, default=0, help="port of the operator hook (default: any)")
    p.add_argument(
        "--allow-tests",
        type=_tests,
        default=[],
        help="active tests the written config permits: a comma list, or 'all'",
    )
    p.add_argument(
        "--sampling",
        choices=("inspection", "monitoring"),
        default="inspection",
        help="the written config's sampling: inspection (7.4 samples, default) or monitoring (every device)",
    )
    p.add_argument("--workdir", type=Path, help="where TLS material and broker files go (default: temp)")
    p.add_argument("--latency-scale", type=float, default=1.0, help="0 turns simulated latency off")
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="MQTT broker: auto (mosquitto when installed, else amqtt), mosquitto or amqtt",
    )
    p.add_argument(
        "--address-base",
        type=address_base,
        help="loopback addresses 127.N.x.y of the devices (default: the community's, or the next "
        "free one when another site holds it)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run the cameras, NVRs and doors in N worker processes, each with its own event loop "
        "(a large site in one process falls behind its inspector; default 0: one process)",
    )
    p.add_argument(
        "--platform-profile",
        choices=("zhian", "hikvision-artemis"),
        help="the API the platform speaks (default: the community file's, else zhian)",
    )
    p.set_defaults(func=cmd_sim_up)

"""`zhian discover`: draft a site's inventory from its network or from a platform's device list."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from pathlib import Path

from collectors.exchange import Exchange, Sink
from collectors.wsdiscovery import probe
from zhian.cli.help import EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.discover.csvimport import import_csv
from zhian.discover.draft import draft_config
from zhian.discover.found import Found, hosts_of
from zhian.discover.network import Login, Reach, isapi_devices, onvif_devices
from zhian.errors import UsageError


def _logins(specs: list[str]) -> list[Login]:
    out = []
    for n, spec in enumerate(specs, start=1):
        user, sep, env = spec.rpartition(":")
        if not sep or not user or not env:
            raise UsageError(f"--login {spec!r}: give USER:ENV_VAR (the password is read from ENV_VAR)")
        password = os.environ.get(env)
        if password is None:
            raise UsageError(f"--login {user}: environment variable {env} is not set")
        out.append(Login(f"login{n}", user, password, env))
    return out


def _ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--isapi-ports {text!r}: a comma list of port numbers") from None
    if any(not 0 < p < 65536 for p in ports):
        raise UsageError(f"--isapi-ports {text!r}: ports are 1..65535")
    return ports


async def scan(
    args: argparse.Namespace, logins: list[Login], sink: Sink | None = None
) -> tuple[list[Found], int]:
    """The devices found and how many exchanges it took (each also handed to `sink`)."""
    exchanges: list[Exchange] = []

    def keep(exchange: Exchange) -> None:
        exchanges.append(exchange)
        if sink is not None:
            sink(exchange)

    trust = ssl.create_default_context(cafile=str(args.ca_file)) if args.ca_file else None
    reach = Reach(logins, trust, keep, timeout_s=args.timeout)
    hosts = hosts_of(args.range)
    matches = await probe(hosts, window_s=args.window, multicast=args.multicast, sink=keep)
    found = await onvif_devices(matches, reach)
    if args.isapi_ports:
        known = {f.host for f in found}
        found += await isapi_devices(hosts, _ports(args.isapi_ports), reach, known)
    return found, len(exchanges)


def cmd_discover(args: argparse.Namespace) -> int:
    if bool(args.range) == bool(args.import_csv):
        raise UsageError("give --range (scan the network) or --import FILE (a platform's device list)")
    if args.out is not None and args.out.exists() and not args.force:
        raise UsageError(f"{args.out}: exists; give --force to overwrite it")
    logins = _logins(args.login)
    if args.import_csv:
        found = import_csv(args.import_csv)
        source, note = f"{args.import_csv.name}", f"{len(found)} devices read"
    else:
        found, exchanges = asyncio.run(scan(args, logins))
        source, note = f"a scan of {args.range}", f"{exchanges} exchanges"
    text = draft_config(found, [(x.name, x.username, x.env) for x in logins], source)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    kinds = {k: sum(1 for f in found if f.kind == k) for k in ("camera", "nvr", "door")}
    unread = sum(1 for f in found if f.note)
    print(
        f"zhian discover: {kinds['camera']} cameras, {kinds['nvr']} NVRs, {kinds['door']} doors "
        f"({unread} with TODOs) from {source}, {note}" + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "discover",
        "draft a site's inventory (a config with TODOs) from its network or a platform's export",
        [
            ("zhian discover --range 10.20.1.0/24 --login admin:ONVIF_PW --out site.yaml", "scan a subnet"),
            ("zhian discover --range 10.20.1.10-200 --multicast --isapi-ports 80,443", "ONVIF and ISAPI"),
            ("zhian discover --import cameras.csv --out site.yaml", "a platform's device list"),
        ],
        (EXIT_OK, EXIT_USAGE),
    )
    p.add_argument("--range", help="addresses to probe: 10.0.0.0/24, 10.0.0.5-40, a comma list")
    p.add_argument("--import", dest="import_csv", type=Path, help="a CSV device list exported by a platform")
    p.add_argument("--login", action="append", default=[], help="USER:ENV_VAR, tried in order (at most 3)")
    p.add_argument("--multicast", action="store_true", help="also probe 239.255.255.250 (same subnet only)")
    p.add_argument("--isapi-ports", default="", help="also ask ISAPI deviceInfo on these ports (e.g. 80,443)")
    p.add_argument("--ca-file", type=Path, help="the site's CA for devices that speak HTTPS")
    p.add_argument("--window", type=float, default=2.0, help="seconds to wait for WS-Discovery answers")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds for each device call")
    p.add_argument("--out", type=Path, help="write the draft config here (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=cmd_discover)

"""`zhian discover`: draft a site's inventory from its network or from a platform's device list."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from collectors.connection import Connection
from collectors.exchange import Exchange, Sink
from collectors.mqtt.profile import ProfileError
from collectors.wsdiscovery import probe
from zhian.cli.help import EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.discover.csvimport import import_csv
from zhian.discover.draft import Broker, draft_config
from zhian.discover.found import Found, hosts_of
from zhian.discover.gateways import Gateway, mqtt_gateways, profiles_to_try
from zhian.discover.iot import Panel, modbus_panels
from zhian.discover.network import Login, Reach, isapi_devices, onvif_devices
from zhian.errors import UsageError

MAX_LOGINS = 3


def _logins(specs: list[str], prefix: str = "login") -> list[Login]:
    if len(specs) > MAX_LOGINS:
        raise UsageError(
            f"--login: at most {MAX_LOGINS} (each device is tried with each; lockouts start at 5)"
        )
    out = []
    for n, spec in enumerate(specs, start=1):
        user, sep, env = spec.rpartition(":")
        if not sep or not user or not env:
            raise UsageError(f"--login {spec!r}: give USER:ENV_VAR (the password is read from ENV_VAR)")
        password = os.environ.get(env)
        if password is None:
            raise UsageError(f"--login {user}: environment variable {env} is not set")
        out.append(Login(f"{prefix}{n}" if prefix == "login" else prefix, user, password, env))
    return out


def _ports(text: str, option: str) -> list[int]:
    try:
        numbers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: a comma list of numbers") from None
    if any(not 0 <= p < 65536 for p in numbers):
        raise UsageError(f"{option} {text!r}: out of range")
    return numbers


@dataclass
class Scan:
    found: list[Found] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    broker: Broker | None = None
    exchanges: int = 0


def _address(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} {text!r}: give HOST:PORT")
    return host.strip("[]"), int(port)


async def scan(args: argparse.Namespace, logins: list[Login], sink: Sink | None = None) -> Scan:
    """What the network shows; every exchange is counted (and handed to `sink`)."""
    result = Scan()

    def keep(exchange: Exchange) -> None:
        result.exchanges += 1
        if sink is not None:
            sink(exchange)

    trust = ssl.create_default_context(cafile=str(args.ca_file)) if args.ca_file else None
    reach = Reach(logins, trust, keep, timeout_s=args.timeout)
    hosts = hosts_of(args.range) if args.range else []
    if hosts:
        matches = await probe(hosts, window_s=args.window, multicast=args.multicast, sink=keep)
        result.found = await onvif_devices(matches, reach)
        if args.isapi_ports:
            known = {f.host for f in result.found}
            result.found += await isapi_devices(
                hosts, _ports(args.isapi_ports, "--isapi-ports"), reach, known
            )
        if args.modbus_ports:
            ports, units = _ports(args.modbus_ports, "--modbus-ports"), _ports(args.unit_ids, "--unit-ids")

            def modbus(host: str, port: int) -> Connection:
                return Connection(f"modbus:{host}", host, port, timeout_s=args.timeout, sink=keep)

            result.panels = await modbus_panels(hosts, ports, units, modbus)
    if args.mqtt:
        host, port = _address(args.mqtt, "--mqtt")
        try:
            profiles = profiles_to_try(args.mqtt_profile_file)
        except ProfileError as exc:
            raise UsageError(f"--mqtt-profile-file: {exc}") from None
        login = _logins([args.mqtt_login], "mqtt")[0] if args.mqtt_login else None
        conn = reach.connection("mqtt-broker", host, port, args.mqtt_tls, "", login)
        result.broker = Broker(host, port, args.mqtt_tls, login.name if login else None)
        result.gateways = await mqtt_gateways(conn, args.listen, profiles)
    return result


def cmd_discover(args: argparse.Namespace) -> int:
    if bool(args.range or args.mqtt) == bool(args.import_csv):
        raise UsageError("give --range and/or --mqtt (scan the network), or --import FILE (a device list)")
    if args.out is not None and args.out.exists() and not args.force:
        raise UsageError(f"{args.out}: exists; give --force to overwrite it")
    logins = _logins(args.login)
    named = [(x.name, x.username, x.env) for x in logins]
    if args.import_csv:
        result = Scan(found=import_csv(args.import_csv))
        source, note = f"{args.import_csv.name}", f"{len(result.found)} devices read"
    else:
        result = asyncio.run(scan(args, logins))
        source = "a scan of " + " and ".join(
            x for x in (args.range, args.mqtt and f"broker {args.mqtt}") if x
        )
        note = f"{result.exchanges} exchanges"
        if args.mqtt_login:
            named += [(x.name, x.username, x.env) for x in _logins([args.mqtt_login], "mqtt")]
    found = result.found
    text = draft_config(
        found, named, source, broker=result.broker, gateways=result.gateways, panels=result.panels
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    kinds = {k: sum(1 for f in found if f.kind == k) for k in ("camera", "nvr", "door")}
    unread = sum(1 for f in found if f.note)
    children = sum(len(g.devices) for g in result.gateways)
    print(
        f"zhian discover: {kinds['camera']} cameras, {kinds['nvr']} NVRs, {kinds['door']} doors "
        f"({unread} with TODOs), {len(result.panels)} fire panels, {len(result.gateways)} gateways with "
        f"{children} devices from {source}, {note}" + (f" -> {args.out}" if args.out else ""),
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
            ("zhian discover --mqtt 10.20.4.3:8883 --mqtt-tls --mqtt-login zhian:MQTT_PW", "gateways"),
            ("zhian discover --import cameras.csv --out site.yaml", "a platform's device list"),
        ],
        (EXIT_OK, EXIT_USAGE),
    )
    p.add_argument("--range", help="addresses to probe: 10.0.0.0/24, 10.0.0.5-40, a comma list")
    p.add_argument("--import", dest="import_csv", type=Path, help="a CSV device list exported by a platform")
    p.add_argument("--login", action="append", default=[], help="USER:ENV_VAR, tried in order (at most 3)")
    p.add_argument("--multicast", action="store_true", help="also probe 239.255.255.250 (same subnet only)")
    p.add_argument("--isapi-ports", default="", help="also ask ISAPI deviceInfo on these ports (e.g. 80,443)")
    p.add_argument("--modbus-ports", default="", help="also read fire panel profiles on these ports (502)")
    p.add_argument("--unit-ids", default="1", help="Modbus unit ids to try (comma list)")
    p.add_argument("--mqtt", help="HOST:PORT of the site's broker: gateways and devices heard on it")
    p.add_argument("--mqtt-login", help="USER:ENV_VAR for the broker")
    p.add_argument("--mqtt-tls", action="store_true", help="the broker speaks TLS (give --ca-file)")
    p.add_argument("--listen", type=float, default=30.0, help="seconds to listen on the broker")
    p.add_argument(
        "--mqtt-profile-file",
        type=Path,
        action="append",
        default=[],
        help="a site's own MQTT topic profile (repeatable), tried before the shipped ones",
    )
    p.add_argument("--ca-file", type=Path, help="the site's CA for devices that speak HTTPS")
    p.add_argument("--window", type=float, default=2.0, help="seconds to wait for WS-Discovery answers")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds for each device call")
    p.add_argument("--out", type=Path, help="write the draft config here (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(func=cmd_discover)

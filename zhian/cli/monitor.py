"""`zhian monitor`: watch a live site until stopped, with Prometheus metrics and sealed daily evidence."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from probes.registry import PROBES
from zhian.cli.help import CODES, EXIT_OK, EXIT_USAGE, SubParsers, add_key_dir, command
from zhian.configcheck import check_config
from zhian.errors import UsageError
from zhian.evidence.chain import LedgerError
from zhian.evidence.keys import default_key_dir, load_or_create
from zhian.monitor.service import LIVE_PROBES, Monitor


def listen_address(text: str) -> tuple[str, int] | None:
    if text == "none":
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: HOST:PORT expected (or none)")
    return host.strip("[]"), int(port)


def cmd_monitor(args: argparse.Namespace) -> int:
    config = check_config(args.config).config  # all a run checks, before anything starts
    unknown = sorted(set(config.monitor.schedule) - set(PROBES))
    if unknown:
        raise UsageError(f"{args.config}: monitor.schedule names no probe {', '.join(unknown)}")
    live = sorted(set(config.monitor.schedule) & LIVE_PROBES)
    if live:
        raise UsageError(
            f"{args.config}: monitor.schedule: {', '.join(live)} are watched live, never scheduled"
        )
    listen = listen_address(args.listen)
    state: Path = args.state
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{state}: {exc.strerror}") from None
    key = load_or_create(args.key_dir or default_key_dir(), not_inside=state)
    try:
        monitor = Monitor(config, args.config, state, key, listen)
        asyncio.run(monitor.run())
    except (LedgerError, OSError) as exc:
        raise UsageError(f"{state}: {exc}") from None
    return 0


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "monitor",
        "watch a live site until stopped: live heartbeats, scheduled checks, metrics, sealed daily segments",
        [
            ("zhian monitor --config site.yaml --state /var/lib/zhian/site", "metrics on 127.0.0.1:9108"),
            ("zhian monitor --config site.yaml --state st --listen none", "no HTTP endpoint"),
            ("zhian verify /var/lib/zhian/site", "the whole chain of segments"),
        ],
        {
            EXIT_OK: "stopped by SIGTERM or SIGINT: the open segment sealed",
            EXIT_USAGE: CODES[EXIT_USAGE] + " (config, state directory, listen address)",
        },
    )
    p.add_argument("--config", type=Path, required=True, help="the site config (the same as zhian run's)")
    p.add_argument("--state", type=Path, required=True, help="state directory: the segmented evidence chain")
    p.add_argument("--listen", default="127.0.0.1:9108", help="HOST:PORT of /metrics and /healthz, or none")
    add_key_dir(p)
    p.set_defaults(func=cmd_monitor)

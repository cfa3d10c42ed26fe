"""`zhian config check` and `zhian config schema`: a site's config checked before anything touches
the site. Kept light (no protocol libraries): the check of a 1,000-camera config is a command a
user types, and its start is part of what they wait for (bench/bench_config_check.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zhian.cli.help import SubParsers, command
from zhian.config import schema as config_schema
from zhian.configcheck import check_config


def cmd_config_check(args: argparse.Namespace) -> int:
    inv = check_config(args.config, secrets=not args.no_secrets).config.inventory
    counts = {k: len(getattr(inv, k)) for k in ("cameras", "nvrs", "doors", "panels", "brokers", "gateways")}
    counts["gateway devices"] = sum(len(gw.devices) for gw in inv.gateways)
    counts["platform"] = int(inv.platform is not None)
    skipped = "; secrets not checked (--no-secrets)" if args.no_secrets else ""
    print(f"{args.config}: valid; " + ", ".join(f"{n} {k}" for k, n in counts.items()) + skipped)
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(config_schema(), ensure_ascii=False, indent=2) + "\n")
    return 0


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser("config", help="check a config file, or print its JSON schema")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    c = command(
        config_sub,
        "check",
        "everything a run checks before it touches the site: the format, ids and references, "
        "addresses, ca_file, vendor profiles and secrets; every problem names the file, line and key",
        [
            ("zhian config check site.yaml", ""),
            ("zhian config check --no-secrets site.yaml", "before the secrets are handed over"),
        ],
    )
    c.add_argument("config", type=Path, help="the site's config (see config.example.yaml)")
    c.add_argument(
        "--no-secrets", action="store_true", help="skip resolving env:/file: secrets (not handed over yet)"
    )
    c.set_defaults(func=cmd_config_check)
    c = command(
        config_sub,
        "schema",
        "the JSON schema of the config format",
        [("zhian config schema > config.schema.json", "for an editor's completion")],
    )
    c.set_defaults(func=cmd_config_schema)

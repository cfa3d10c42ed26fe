"""`zhian catalog`, `zhian score` and `zhian sample`: the standard's indicators, its arithmetic and
its sampling rule (7.4), from files only."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml

from mapping.catalog import LEVELS, load_catalog
from scorer.sampling import plan
from scorer.score import score
from zhian.cli.failon import add_fail_on, fail_on
from zhian.cli.help import EXIT_FAIL_ON, EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.errors import UsageError
from zhian.report.tables import catalog_summary, catalog_table, score_table
from zhian.verdicts import load_verdicts

THRESHOLD_HELP = "gt: a level passes above 80 (9.1, default); ge: from 80 (9.2 '80 以上')"


def _dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def cmd_catalog(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    levels = (args.level,) if args.level else LEVELS
    if args.summary:
        sys.stdout.write(catalog_summary(catalog))
    elif args.format == "table":
        sys.stdout.write(catalog_table(catalog, levels))
    else:
        rows = [i.as_dict() for lv in levels for i in catalog.level(lv)]
        sys.stdout.write(_dump(rows, args.format))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    verdicts = load_verdicts(catalog, args.verdicts)
    report = score(catalog, verdicts, args.threshold)
    if args.format == "json":
        sys.stdout.write(_dump(report.as_dict(), "json"))
    else:
        sys.stdout.write(score_table(report))
    return fail_on(report, args.fail_on, args.target)


def cmd_sample(args: argparse.Namespace) -> int:
    items: list[str] | None = None
    if args.items is not None:
        try:
            lines = args.items.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"{args.items}: {exc.strerror}") from None
        items = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    population = args.population if args.population is not None else len(items or [])
    if args.population is None and items is None:
        raise UsageError("sample: give --population N or --items FILE")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    try:
        result = plan(population, seed if items is not None else args.seed, items)
    except ValueError as exc:
        raise UsageError(f"sample: {args.items or '--population'}: {exc}") from None
    if args.format == "json":
        sys.stdout.write(_dump(result.as_dict(), "json"))
        return 0
    print(f"population {result.population}: sample at least {result.size} ({float(result.ratio):.0%})")
    print(f"rule: {result.rule}")
    if result.items is not None:
        print(f"seed: {seed}  (give --seed {seed} to draw the same sample again)")
        for item in result.items:
            print(item)
    return 0


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "catalog",
        "list the indicators of the standard (appendices A, B, C)",
        [
            ("zhian catalog --summary", "points and counts per level"),
            ("zhian catalog --level A", "the level A table, Chinese and English"),
            ("zhian catalog --format json", "every indicator as a JSON object"),
        ],
    )
    p.add_argument("--level", choices=LEVELS, help="one level only (default: A, B and C)")
    p.add_argument(
        "--format", choices=("table", "json", "yaml"), default="table", help="table (default), json or yaml"
    )
    p.add_argument("--summary", action="store_true", help="points and counts per level only")
    p.set_defaults(func=cmd_catalog)

    p = command(
        sub,
        "score",
        "score verdict files (machine and/or evaluator): gates, totals, grade, eligibility",
        [
            ("zhian score runs/demo/run/verdicts.yaml", "the machine's proposal"),
            ("zhian score RUN/verdicts.yaml evaluator.yaml", "with the evaluator's verdicts over it"),
            ("zhian score V.yaml --fail-on gate", "exit 3 when a basic requirement failed (6.2)"),
        ],
        (EXIT_OK, EXIT_USAGE, EXIT_FAIL_ON),
    )
    p.add_argument(
        "verdicts",
        nargs="+",
        type=Path,
        metavar="VERDICTS.yaml",
        help="verdict files; later ones add to earlier",
    )
    p.add_argument("--threshold", choices=("gt", "ge"), default="gt", help=THRESHOLD_HELP)
    p.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    add_fail_on(p)
    p.set_defaults(func=cmd_score)

    p = command(
        sub,
        "sample",
        "clause 7.4 sample size, and a reproducible pick",
        [
            ("zhian sample --population 240", "how many of 240 devices to check"),
            ("zhian sample --items cameras.txt --seed 7", "which ones, the same for the same seed"),
        ],
    )
    p.add_argument("--population", type=int, help="how many homogeneous devices there are")
    p.add_argument("--seed", type=int, help="draw the same sample again (default: a random seed, printed)")
    p.add_argument(
        "--items", type=Path, help="one device ID per line ('#' comments); the population is its count"
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_sample)

"""`zhian report`: the evaluation report of a run directory (9.5), in html, md, json or JUnit XML."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zhian.errors import UsageError
from zhian.report.model import report_schema
from zhian.report.write import EXTENSIONS, write_report


def cmd_report(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(json.dumps(report_schema(), ensure_ascii=False, indent=2) + "\n")
        return 0
    if args.run_dir is None:
        raise UsageError("report: give RUN_DIR (a directory written by `zhian run`)")
    print(write_report(args.run_dir, args.format, args.lang, args.evaluator, args.out))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="the evaluation report of a run (9.5): html, md, json, junit")
    p.add_argument("run_dir", type=Path, nargs="?", metavar="RUN_DIR")
    p.add_argument("--format", choices=tuple(EXTENSIONS), default="html")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="zh (default) or en")
    p.add_argument(
        "--evaluator",
        type=Path,
        metavar="FILE",
        help="the evaluator's verdicts, waivers, names and date (the `zhian score` format); merged with "
        "RUN_DIR/verdicts.yaml as `zhian score RUN_DIR/verdicts.yaml FILE` does",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="default: RUN_DIR/reports/report.<lang>.<ext>")
    p.add_argument(
        "--schema", action="store_true", help="print the JSON schema of --format json (zhian.report/1)"
    )
    p.set_defaults(func=cmd_report)

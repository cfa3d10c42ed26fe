"""`zhian report`: the evaluation report of a run directory (9.5), in html, md, json or JUnit XML."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from zhian.cli.run import KEY_DIR_HELP
from zhian.errors import UsageError
from zhian.evidence.keys import default_key_dir, load_or_create
from zhian.evidence.verify import resealing
from zhian.report.build import build_report
from zhian.report.model import report_schema
from zhian.report.screen import render_screen
from zhian.report.write import EXTENSIONS, write_report

EVALUATOR_DIR = "evaluator"


def cmd_report(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(json.dumps(report_schema(), ensure_ascii=False, indent=2) + "\n")
        return 0
    if args.run_dir is None:
        raise UsageError("report: give RUN_DIR (a directory written by `zhian run`)")
    if args.summary:
        sys.stdout.write(render_screen(build_report(args.run_dir, args.lang, args.evaluator)))
        return 0
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    inside = args.out is None or args.out.resolve().is_relative_to(run_dir.resolve())
    if not inside:
        print(write_report(run_dir, args.format, args.lang, args.evaluator, args.out))
        return 0
    key = load_or_create(args.key_dir or default_key_dir(), not_inside=run_dir)
    with resealing(run_dir, key):
        if args.evaluator:
            keep_evaluator_file(run_dir, args.evaluator)
        print(write_report(run_dir, args.format, args.lang, args.evaluator, args.out))
    print(f"re-sealed: {run_dir / 'manifest.json'} signed by {key.describe()['fingerprint']}")
    return 0


def keep_evaluator_file(run_dir: Path, evaluator: Path) -> Path:
    """A report sealed into the run directory names the evaluator's file by sha256: keep that file
    beside it, so the report can be re-derived years later from the sealed directory alone."""
    try:
        data = evaluator.read_bytes()
    except OSError as exc:
        raise UsageError(f"{evaluator}: {exc.strerror}") from None
    kept = (
        run_dir
        / EVALUATOR_DIR
        / f"{evaluator.stem}.{hashlib.sha256(data).hexdigest()[:12]}{evaluator.suffix}"
    )
    kept.parent.mkdir(exist_ok=True)
    kept.write_bytes(data)
    return kept


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
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="default: RUN_DIR/reports/report.<lang>.<ext>; a report written into RUN_DIR re-seals it",
    )
    p.add_argument("--key-dir", type=Path, help=KEY_DIR_HELP)
    p.add_argument("--summary", action="store_true", help="print a one-screen summary; write nothing")
    p.add_argument(
        "--schema", action="store_true", help="print the JSON schema of --format json (zhian.report/1)"
    )
    p.set_defaults(func=cmd_report)

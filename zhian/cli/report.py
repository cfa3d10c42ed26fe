"""`zhian report`: the evaluation report of a run directory (9.5), in html, md, json or JUnit XML."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import date
from pathlib import Path
from typing import cast

from zhian.cli.help import SubParsers, add_key_dir, command
from zhian.errors import UsageError
from zhian.evidence.keys import default_key_dir, load_existing
from zhian.evidence.segments import SEGMENTS_DIR
from zhian.evidence.verify import resealing
from zhian.monitor.period import period_report
from zhian.report.build import build_report
from zhian.report.model import report_schema
from zhian.report.period import PERIOD_RENDERERS, render_period
from zhian.report.rundir import EVALUATOR_DIR
from zhian.report.summary import SUMMARY_RENDERERS
from zhian.report.write import EXTENSIONS, RENDERERS, Format, write_report, write_text


def cmd_report(args: argparse.Namespace) -> int:
    if args.schema:
        sys.stdout.write(json.dumps(report_schema(), ensure_ascii=False, indent=2) + "\n")
        return 0
    if args.run_dir is None:
        raise UsageError("report: give RUN_DIR (a directory written by `zhian run`)")
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    if (run_dir / SEGMENTS_DIR).is_dir():
        return cmd_period(args)
    if args.period_from or args.period_to or args.baseline:
        raise UsageError("report: --from, --to and --baseline are for a monitor's state directory")
    fmt: str = args.format or ("text" if args.summary else "html")
    if fmt == "text" and not args.summary:
        raise UsageError("report: --format text is the one-screen summary's: add --summary")
    if args.summary and fmt not in SUMMARY_RENDERERS:
        raise UsageError(f"report: --summary has no --format {fmt} (text, json, md, html or junit)")
    if args.into_run:
        if args.summary or args.out is not None:
            raise UsageError(
                "report: --into-run writes RUN_DIR/reports/ and cannot go with --summary or --out"
            )
        return _into_run(args, run_dir, cast(Format, fmt))
    out = args.out or Path("-")
    if str(out) != "-" and out.resolve().is_relative_to(run_dir.resolve()):
        raise UsageError(
            f"{out}: inside the sealed run {run_dir}; write it elsewhere, "
            "or add it to the run with --into-run"
        )
    if not args.summary and str(out) != "-":  # the html page is written as it is rendered
        print(write_report(run_dir, cast(Format, fmt), args.lang, args.evaluator, out))
        return 0
    report = build_report(run_dir, args.lang, args.evaluator)
    text = SUMMARY_RENDERERS[fmt](report) if args.summary else RENDERERS[cast(Format, fmt)](report)
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        print(write_text(text, out))
    return 0


def cmd_period(args: argparse.Namespace) -> int:
    """A monitor's state directory: compliance over --from .. --to (md by default; html, json, junit,
    oscal)."""
    if args.period_from is None or args.period_to is None:
        raise UsageError(f"{args.run_dir}: a monitor's state: give the period (--from DATE --to DATE)")
    fmt = args.format or "md"
    if fmt not in PERIOD_RENDERERS or args.summary or args.into_run:
        known = ", ".join(sorted(PERIOD_RENDERERS))
        raise UsageError(f"report: a period report is {known}, without --summary or --into-run")
    doc = period_report(args.run_dir, args.period_from, args.period_to, args.baseline)
    text = render_period(doc, fmt, args.lang)
    out = args.out or Path("-")
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        print(write_text(text, out))
    return 0


def _into_run(args: argparse.Namespace, run_dir: Path, fmt: Format) -> int:
    """Add the report to the sealed run and re-seal it, only with the key that sealed the run."""
    key_dir = args.key_dir or default_key_dir()
    key = load_existing(key_dir, not_inside=run_dir)
    if key is None:
        raise UsageError(
            f"{key_dir}: no signing key here; --into-run re-seals only with the key that sealed {run_dir} "
            "(give its folder with --key-dir)"
        )
    with resealing(run_dir, key):
        if args.evaluator:
            keep_evaluator_file(run_dir, args.evaluator)
        print(write_report(run_dir, fmt, args.lang, args.evaluator, None))
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


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "report",
        "the evaluation report of a run (9.5): html, md, json, junit, oscal; reading never changes the run",
        [
            ("zhian report runs/demo/run --out report.html", "the Chinese HTML report, beside the run"),
            ("zhian report RUN --lang en --format md", "English Markdown on stdout"),
            ("zhian report RUN --format oscal --out ar.json", "OSCAL assessment-results"),
            ("zhian report RUN --evaluator ev.yaml --into-run", "add the report to the sealed run"),
            ("zhian report RUN --summary", "one screen: grade, levels, sample, problems"),
            ("zhian report RUN --summary --format json", "the same as data (zhian.summary/1)"),
            ("zhian report STATE --from 2026-11-01 --to 2026-11-30", "a monitor's month, in Markdown"),
            (
                "zhian report STATE --from 2026-11-01 --to 2026-11-30 --format html --baseline RUN",
                "the same in HTML with its retention chart, and what degraded since the graded run",
            ),
            ("zhian report STATE --from 2026-11-01 --to 2026-11-30 --format oscal", "the month in OSCAL"),
        ],
        description="Render the report of a run directory. It reads the run and writes only where --out "
        "says (stdout by default); --into-run adds the report to the sealed run and re-seals it.",
    )
    p.add_argument(
        "run_dir", type=Path, nargs="?", metavar="RUN_DIR", help="a directory written by `zhian run`"
    )
    p.add_argument(
        "--format",
        choices=(*EXTENSIONS, "text"),
        help="html (default), md, json (zhian.report/1), junit (one test case per indicator), "
        "oscal (OSCAL 1.2 assessment-results); "
        "with --summary also text (its default); a monitor's period: md (default), html, json, junit, oscal",
    )
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
        help="where to write (default -: stdout); never inside RUN_DIR, which is sealed (see --into-run)",
    )
    p.add_argument(
        "--into-run",
        action="store_true",
        help="write RUN_DIR/reports/report.<lang>.<ext> (and keep the evaluator's file) and re-seal the run; "
        "only if the run verifies and --key-dir holds the key that sealed it",
    )
    add_key_dir(p, "used by --into-run only")
    p.add_argument(
        "--summary",
        action="store_true",
        help="one screen (grade, score per level, what was sampled, problems); "
        "--format text (default), json, md, html or junit",
    )
    p.add_argument(
        "--schema", action="store_true", help="print the JSON schema of --format json (zhian.report/1)"
    )
    p.add_argument(
        "--from", dest="period_from", type=date.fromisoformat, metavar="DATE",
        help="a monitor's state directory: the period's first day (YYYY-MM-DD, UTC)",
    )  # fmt: skip
    p.add_argument(
        "--to", dest="period_to", type=date.fromisoformat, metavar="DATE",
        help="a monitor's state directory: the period's last day, included",
    )  # fmt: skip
    p.add_argument(
        "--baseline", type=Path, metavar="RUN_DIR",
        help="with --from/--to: the sealed run the grade was given on; lists what degraded since (4.10)",
    )  # fmt: skip
    p.set_defaults(func=cmd_report)

"""`zhian run`: evaluate a live site from its config; the steps are zhian.engine.session's, this
module parses the options and prints how the run ended."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from mapping.catalog import LEVELS
from zhian.cli.failon import add_fail_on, fail_on
from zhian.cli.help import (
    EXIT_FAIL_ON,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_SPACE,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    SubParsers,
    add_key_dir,
    command,
)
from zhian.engine.session import Outcome, RunOptions, Session, run_session
from zhian.engine.stops import Stopped, Stopper
from zhian.report.tables import score_table

EXITS = {
    "interrupted": EXIT_INTERRUPTED,
    "terminated": EXIT_TERMINATED,
    "no_space": EXIT_NO_SPACE,
    "failed": EXIT_FAILED,
}


def signal_exit(signum: int) -> int:
    return EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED


def sample_line(mode: str, seed: int, samples: dict[str, dict[str, Any]]) -> str:
    """Whether a 7.4 sample was taken, of how many, with which seed: said before the run starts."""
    drawn = [
        f"{g['size']} of {g['population']} {name} ({str(g.get('rule', '')).split(':')[0]})"
        for name, g in samples.items()
        if g.get("size", 0) < g.get("population", 0)
    ]
    if mode != "inspection" or not drawn:
        return "scope: every device of the inventory (no 7.4 sample)"
    return f"7.4 sample, seed {seed}: " + "; ".join(drawn)


def announce(session: Session) -> None:
    jobs, devices = len(session.jobs), len(session.site.targets)
    print(
        f"zhian run {session.result.run_id}: {jobs} probe jobs on {devices} devices -> {session.out}",
        file=sys.stderr,
    )
    sampling = session.config.sampling
    print(f"zhian run: {sample_line(sampling.mode, session.seed, session.result.samples)}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    options = RunOptions(
        config=args.config,
        out=args.out,
        level=args.level,
        allow_active=args.allow_active,
        threshold=args.threshold,
        key_dir=args.key_dir,
        lang=args.lang,
    )
    stopper = Stopper()
    stopper.install()  # before anything else: a signal at any moment has one known effect
    try:
        outcome = run_session(options, stopper, announce)
    except Stopped as stop:
        print(f"zhian: {stop}: stopped before the run started; nothing was written", file=sys.stderr)
        return signal_exit(stop.signum)
    finally:
        stopper.uninstall()
    return finish(outcome, args)


def finish(outcome: Outcome, args: argparse.Namespace) -> int:
    """What the operator reads, and the exit code: one plain line on stderr when it did not complete."""
    if outcome.report is not None:
        sys.stdout.write(score_table(outcome.report))
    states = {"complete": "complete", "failed": "complete, without its report"}
    state = states.get(outcome.ending, "stopped; kept what was collected")
    print(f"run {state}: {outcome.findings} findings, {outcome.exchanges} exchanges in {outcome.out}")
    if outcome.report_path:
        print(f"report: {outcome.report_path}")
    if outcome.sealed:
        manifest = outcome.out / "manifest.json"
        print(f"sealed: {manifest} signed by {outcome.signer} (key in {outcome.key_folder})")
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.problem:
        print(f"zhian: error: {outcome.problem}", file=sys.stderr)
    if outcome.ending in ("interrupted", "terminated") and not outcome.problem:
        print(f"zhian: {outcome.ending}: the run stopped early; what it collected is sealed", file=sys.stderr)
    if outcome.ending != "complete":
        return EXITS[outcome.ending]
    assert outcome.report is not None and outcome.config is not None
    return fail_on(outcome.report, args.fail_on, outcome.config.community.target_level)


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "run",
        "evaluate a live site: probes, verdicts, score, findings, report, sealed evidence",
        [
            ("zhian run --config site.yaml", "passive checks only, into runs/<run id>"),
            (
                "zhian run --config site.yaml --allow-active --out runs/2026-12",
                "with the permitted active tests",
            ),
            ("zhian run --config site.yaml --fail-on gate", "for CI: exit 3 when a basic requirement failed"),
        ],
        (
            EXIT_OK,
            EXIT_USAGE,
            EXIT_FAIL_ON,
            EXIT_NO_SPACE,
            EXIT_FAILED,
            EXIT_INTERRUPTED,
            EXIT_TERMINATED,
        ),
    )
    p.add_argument(
        "--config", type=Path, required=True, help="the site's config (check it with `zhian config check`)"
    )
    p.add_argument("--out", type=Path, help="run directory, new or empty (default runs/<run id>)")
    p.add_argument(
        "--level", choices=LEVELS, help="evaluate one level's indicators only (default: A, B and C)"
    )
    p.add_argument(
        "--allow-active",
        action="store_true",
        help="permit the active tests the config's active.allow lists (they always restore the site)",
    )
    p.add_argument(
        "--threshold",
        choices=("gt", "ge"),
        default="gt",
        help="gt: a level passes above 80 (9.1, default); ge: from 80 (9.2 '80 以上')",
    )
    add_key_dir(p)
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the run's report")
    add_fail_on(p, target_option=False)
    p.set_defaults(func=cmd_run)
